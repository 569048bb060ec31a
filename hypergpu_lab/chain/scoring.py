"""Contribution scoring: how much useful work one accepted update did, as an integer for the chain.

    score = floor(num_samples * clamp(agreement, 0, 1) * SCORE_SCALE)

``num_samples`` is the size of the node's shard (the work it was asked to do) and ``agreement`` is
``NodeRecord.agreement``: the cosine between the node's update and the aggregate update the server
applied. An update that moved the model where the federation moved it scores up to its sample
count; one orthogonal to it scores nothing; one against it (a sign-flipping attacker, noise) is
clamped to nothing rather than charged, since rewards cannot go below zero.

Zero, always, for:
    * status != "accepted": rejected (failed validation, duplicate), straggled, failed transfers;
    * agreement missing, not finite or <= 0;
    * update_norm missing, not finite or <= MIN_UPDATE_NORM: a free rider returning the model unchanged.

Why cosine and not loss improvement: the coordinator measures the aggregate, not each node's effect
on held-out loss, and a local training loss rewards nodes with easy shards. Known bias: the aggregate
contains the node's own update, which nudges agreement up, more for heavy nodes. The formula is one
function: swap in another by passing ``scorer=`` to the recorder.

Scores are fixed point: SCORE_SCALE units per sample, so six decimal digits of agreement survive.
"""

from __future__ import annotations

import math
import operator
from typing import Any

from ..errors import ConfigError
from ..events import NodeRecord, RoundReport

SCORE_SCALE = 10**6
MIN_UPDATE_NORM = 1e-6
MAX_SCORE = 2**96 - 1  # ContributionTracker.MAX_SCORE: the most one node may score in one round


def check_score(value: Any, field: str = "score") -> int:
    """``value`` as an integer score in [0, MAX_SCORE]; ConfigError otherwise (checked before the outbox)."""
    accepted = "an integer in [0, 2**96 - 1]"
    if isinstance(value, bool):
        raise ConfigError(field, value, accepted)
    try:
        score_ = operator.index(value)
    except TypeError:
        raise ConfigError(field, value, accepted) from None
    if not 0 <= score_ <= MAX_SCORE:
        raise ConfigError(field, value, accepted)
    return score_


def score(record: NodeRecord, *, scale: int = SCORE_SCALE, min_update_norm: float = MIN_UPDATE_NORM) -> int:
    """The integer score of one node's part in a round (0 for anything but a useful accepted update)."""
    if record.status != "accepted":
        return 0
    norm, agreement = record.update_norm, record.agreement
    if norm is None or not math.isfinite(norm) or norm <= min_update_norm:
        return 0
    if agreement is None or not math.isfinite(agreement) or agreement <= 0:
        return 0
    return math.floor(record.num_samples * min(agreement, 1.0) * scale)


def round_scores(report: RoundReport, **options: float) -> dict[int, int]:
    """node -> score for every node selected in the round."""
    return {rec.node: score(rec, **options) for rec in report.nodes}
