"""Krum and Multi-Krum: Blanchard, El Mhamdi, Guerraoui and Stainer, "Machine Learning with
Adversaries: Byzantine Tolerant Gradient Descent", NeurIPS 2017. Each update is scored by
the sum of squared distances to its n - f - 2 nearest neighbours; Krum applies the update
with the lowest score, Multi-Krum the plain mean of the m lowest. Needs n >= 2f + 3."""

from __future__ import annotations

import torch

from .. import checks
from .aggregate import multi_krum
from .base import Strategy


class Krum(Strategy):
    """w + the delta with the lowest Krum score; raises ConfigError in a round with n < 2f + 3 updates.

    Parameters
    ----------
    f : int
        Number of Byzantine clients tolerated, >= 0.
    """

    name = "krum"

    def __init__(self, *, f: int = 1) -> None:
        self.f = checks.integer("strategy_options.f", f, low=0)
        self.m: int | None = 1

    def aggregate(self, global_weights: torch.Tensor, deltas: torch.Tensor, num_samples: torch.Tensor) -> torch.Tensor:
        m = len(deltas) - self.f if self.m is None else self.m
        return global_weights + multi_krum(deltas, self.f, m)


class MultiKrum(Krum):
    """w + the plain mean of the m deltas with the lowest Krum scores.

    Parameters
    ----------
    f : int
        Number of Byzantine clients tolerated, >= 0.
    m : int or None
        How many updates to average, in [1, n - f]; None (default) means n - f each round.
    """

    name = "multi-krum"

    def __init__(self, *, f: int = 1, m: int | None = None) -> None:
        super().__init__(f=f)
        self.m = checks.optional(checks.integer, "strategy_options.m", m, low=1)


# Registry names this module provides (found by strategies/__init__.py; no other file lists them).
NAMES = {"krum": Krum, "multi-krum": MultiKrum}
