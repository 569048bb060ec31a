"""How a round's reward pool is split: the one Python copy of RewardDistributor.fundRound's rule.

    share_i = floor(pool * score_i / total_score)       (Math.mulDiv: exact, no overflow)

Nodes whose share floors to zero get nothing (the contract skips them and emits no credit). The
remainder, ``pool - sum(shares)`` ("dust", fewer base units than there are nodes), is never taken
from the funder: the contract pulls exactly the sum of the shares. A zero pool or a zero total
score distributes nothing (the contract reverts ``ZeroPool`` / ``NothingToDistribute``).

Every Python place that needs "what will / did this round pay" (the recorder's bookkeeping, the
rewards chart, an in-memory :class:`~hypergpu_lab.chain.ledger.Ledger`) calls :func:`split_pool`, so
no view can disagree with the chain by a float rounding. No web3 here: the core and the UI import it.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping
from typing import Any, TypeVar

from ..errors import ConfigError

K = TypeVar("K")

MAX_REWARD = 2**128 - 1  # base units a round may pay: far above any supply (10**27 by default), far below 2**256


def check_reward(value: Any, field: str = "reward_per_round") -> int | None:
    """``value`` as an integer number of token base units in [0, MAX_REWARD], or None; ConfigError otherwise.

    Runs before a value reaches the outbox: a float (1.5 would be truncated, NaN cannot be encoded),
    a string or an out-of-range integer (2**256 cannot be encoded) would otherwise be stored and
    fail every time the round is sent.
    """
    accepted = "None or an integer number of token base units in [0, 2**128 - 1] (10**18 = one token)"
    if value is None:
        return None
    if isinstance(value, bool) or isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(field, value, accepted)
    try:
        amount = operator.index(value)  # ints and numpy integers; not floats, not strings
    except TypeError:
        raise ConfigError(field, value, accepted) from None
    if not 0 <= amount <= MAX_REWARD:
        raise ConfigError(field, value, accepted)
    return amount


def split_pool(pool: int, scores: Mapping[K, int]) -> dict[K, int]:
    """Each key's share of ``pool`` (base units) pro rata by integer score, exactly as the contract splits.

    Zero shares are left out, like the contract's credits. Raises ``ValueError`` for a negative pool
    or score (the contract's uint256 cannot hold one).
    """
    pool = int(pool)
    if pool < 0:
        raise ValueError(f"pool must be >= 0 base units, got {pool}")
    if any(int(s) < 0 for s in scores.values()):
        raise ValueError("scores must be >= 0")
    total = sum(int(s) for s in scores.values())
    if pool == 0 or total == 0:
        return {}
    shares = {key: pool * int(s) // total for key, s in scores.items()}
    return {key: share for key, share in shares.items() if share}


def dust(pool: int, shares: Mapping[K, int]) -> int:
    """What the funder keeps of ``pool``: the part the floors left over."""
    return int(pool) - sum(shares.values())


def to_tokens(amount: int, decimals: int) -> float:
    """Base units as whole tokens (a float, for plotting and display only; keep the int for sums)."""
    return int(amount) / 10**decimals


def format_tokens(amount: int | None, decimals: int, digits: int = 4) -> str:
    """Base units as whole tokens, short (``"1.5"``); ``"-"`` for None."""
    return "-" if amount is None else f"{to_tokens(amount, decimals):.{digits}g}"
