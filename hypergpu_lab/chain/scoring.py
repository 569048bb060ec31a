"""Contribution scoring: how much useful work one accepted update did, as an integer for the chain.

    score = num_samples * SCORE_SCALE                          if contribution > 0   (a valued round)
    score = floor(num_samples * clamp(agreement, 0, 1) * SCORE_SCALE)                 (no value computed)

``contribution`` is ``NodeRecord.contribution``: the update's per-round Shapley value on the
coordinator's validation rows (:mod:`hypergpu_lab.contribution`, GTG-Shapley; Liu et al. 2022), which
a coordinator with a chain always computes. It reconstructs each coalition's FedAvg model from the
round's updates, so it means the same under every strategy: a sign flip, a scaled or noisy update, a
free rider's zero update diluting the mean, flipped labels all make the round's model worse and
get a value <= 0. ``agreement`` (:func:`hypergpu_lab.contribution.robust_agreement`) is the cosine
with the coordinate-wise median of the round's updates times the squared norm ratio; it gates the
value (an update opposing the round's majority scores 0) and is the whole measure when no value was
computed (SecAgg-masked rounds, a custom bus, a round the measure returned None for: no value positive,
or truncated by ``round_tolerance``, off by default).

Why pay samples and not the value itself: under diminishing returns Shapley values reward splitting.
Three thirds of one shard each get a larger share of the value than a third of the whole's (1.23x
the whole node over 15 rounds in one run of ``python -m bench contribution``); paying the work of
every update whose value is positive kept the split below 1.0x and ranked honest nodes no worse
against their exact Shapley values (the benchmark's table in BENCHMARKS.md).

Zero, always, for:
    * status != "accepted": rejected (failed validation, duplicate), straggled, failed transfers;
    * agreement missing, not finite or <= 0;
    * update_norm missing, not finite or <= MIN_UPDATE_NORM: a free rider returning the model unchanged;
    * contribution present and not > 0.

Scores are fixed point: SCORE_SCALE units per sample. The formula is one function: swap it with ``scorer=``.
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


def score(
    record: NodeRecord,
    *,
    scale: int = SCORE_SCALE,
    min_update_norm: float = MIN_UPDATE_NORM,
) -> int:
    """The integer score of one node's part in a round (0 for anything but a useful accepted update)."""
    if record.status != "accepted":
        return 0
    norm, agreement = record.update_norm, record.agreement
    if norm is None or not math.isfinite(norm) or norm <= min_update_norm:
        return 0
    if agreement is None or not math.isfinite(agreement) or agreement <= 0:
        return 0
    value = record.contribution
    if value is not None:  # a Shapley value: pay the update's work when it made the round's model better
        return record.num_samples * scale if math.isfinite(value) and value > 0 else 0
    return math.floor(record.num_samples * min(agreement, 1.0) * scale)


def round_scores(report: RoundReport, **options: float) -> dict[int, int]:
    """node -> score for every node selected in the round."""
    return {rec.node: score(rec, **options) for rec in report.nodes}
