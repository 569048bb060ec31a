"""Contribution scoring: how much useful work one accepted update did, as an integer for the chain.

    score = floor(num_samples * clamp(agreement, 0, 1) * SCORE_SCALE)

``num_samples`` is the size of the node's shard (the work it was asked to do) and ``agreement`` is
``NodeRecord.agreement`` (:func:`hypergpu_lab.round.robust_agreement`): the cosine between the node's
update and the coordinate-wise median of the round's applied updates, times the squared norm ratio
``min(|u|/|m|, |m|/|u|) ** 2``. The reference is computed by the scorer's side (the round), not taken from
the strategy, so it holds under every strategy, plain FedAvg included: an update that dominates the
aggregate no longer agrees with itself, because the median moves by at most one rank per attacker.
A sign flip scores 0 (negative cosine, clamped); an update scaled by k gets 1/k² of an honest one;
noise (a random direction of huge norm) and a free rider (a zero update) get ~0.

Zero, always, for:
    * status != "accepted": rejected (failed validation, duplicate), straggled, failed transfers;
    * agreement missing, not finite or <= 0;
    * update_norm missing, not finite or <= MIN_UPDATE_NORM: a free rider returning the model unchanged.

Why not leave-one-out or Shapley values (Wang et al. 2019; GTG-Shapley, Liu et al. 2022): they need
model evaluations per coalition per round, on a validation set the coordinator may not hold; the
median reference is one sort per round and robust to a minority of attackers. Known limits: with
half or more of a round's updates colluding the median is theirs; label flipping yields a plausible
direction and is paid less, not nothing. The formula is one function: swap it with ``scorer=``.

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
