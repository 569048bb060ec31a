"""Contribution measures: how much each accepted update of a round was worth, for rewards and selection.

* ``shapley``: per-round Shapley values on a validation set the coordinator keeps (GTG-Shapley);
* ``loo``: per-round leave-one-out on the same validation set;
* the robust gate, :func:`robust_agreement`, is model-free and always computed (``NodeRecord.agreement``).

:func:`make_scorer` builds one; the coordinator calls it once per round with the round's starting
weights, the applied updates and their sample counts, and puts the values in ``NodeRecord.contribution``.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..errors import ConfigError
from .agreement import robust_agreement
from .coalitions import METRICS, CoalitionValue, Logits
from .shapley import LeaveOneOutScorer, ShapleyScorer, exact_shapley

SCORERS = {"shapley": ShapleyScorer, "loo": LeaveOneOutScorer}
_OPTIONS = {"metric", "validation_size", "permutations", "exact_up_to", "round_tolerance", "chunk"}

__all__ = ["SCORERS", "CoalitionValue", "exact_shapley", "make_scorer", "robust_agreement", "validation_rows"]


def validation_rows(num_test: int, size: int, seed: int) -> torch.Tensor:
    """The coordinator's validation rows: a seeded draw of ``size`` rows of the held-out set (sorted)."""
    g = torch.Generator().manual_seed(0x56414C00 ^ seed)  # "VAL"
    return torch.randperm(num_test, generator=g)[: min(size, num_test)].sort().values


def make_scorer(
    name: str, options: dict[str, Any], *, logits: Logits, x: torch.Tensor, y: torch.Tensor, seed: int
) -> Any:
    """A scorer ``(round, origin [P], deltas [N, P], samples) -> values`` on validation rows of ``x``, ``y``."""
    if name not in SCORERS:
        raise ConfigError("contribution", name, f"one of {sorted(SCORERS)} or None")
    unknown = set(options) - _OPTIONS
    if unknown:
        raise ConfigError("contribution_options", sorted(unknown), f"keys among {sorted(_OPTIONS)}")
    metric = options.get("metric", "accuracy")
    if metric not in METRICS:
        raise ConfigError("contribution_options.metric", metric, f"one of {METRICS}")
    size = options.get("validation_size")
    rows = validation_rows(len(y), len(y) // 2 if size is None else int(size), seed)  # default: half
    value = CoalitionValue(logits, x[rows], y[rows], metric=metric, chunk=int(options.get("chunk", 64)))
    tolerance = options.get("round_tolerance", 0.0)
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 <= tolerance < math.inf:
        raise ConfigError("contribution_options.round_tolerance", tolerance, "a finite number >= 0")
    kept = {k: options[k] for k in ("permutations", "exact_up_to", "round_tolerance") if k in options}
    return SCORERS[name](value, seed=seed, **kept)
