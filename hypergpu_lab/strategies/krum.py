"""Krum and Multi-Krum: Blanchard, El Mhamdi, Guerraoui and Stainer, "Machine Learning with
Adversaries: Byzantine Tolerant Gradient Descent", NeurIPS 2017. Each update is scored by
the sum of squared distances to its n - f - 2 nearest neighbours; Krum applies the update
with the lowest score, Multi-Krum the plain mean of the m lowest. Needs n >= 2f + 3.

A round in which fewer than 2f + 3 updates arrive (crashes, stragglers) degrades instead of
ending the run, by a stated rule recorded in the round's events: Krum with the largest f' the
round supports, f' = floor((n - 3) / 2), when n >= 3; the coordinate-wise median of the n
updates when n < 3 (with 1 or 2 updates no robust choice exists; the median of two is their
mean). A configuration where 2f + 3 exceeds the pool itself is refused at construction."""

from __future__ import annotations

import torch

from .. import checks
from ..errors import ConfigError
from .aggregate import coordinate_median, multi_krum
from .base import Strategy


class Krum(Strategy):
    """w + the delta with the lowest Krum score; a round with n < 2f + 3 updates degrades (module docstring).

    Parameters
    ----------
    f : int
        Number of Byzantine clients tolerated, >= 0.
    """

    name = "krum"
    needs_individual_updates = True  # distances between individual updates

    def __init__(self, *, f: int = 1) -> None:
        self.f = checks.integer("strategy_options.f", f, low=0)
        self.m: int | None = 1

    def check_pool(self, num_nodes: int) -> None:
        """Refuse an f (or m) that no round on ``num_nodes`` nodes can ever satisfy."""
        if 2 * self.f + 3 > num_nodes:
            top = (num_nodes - 3) // 2
            accepted = f"an integer in [0, {top}]" if top >= 0 else "none: Krum needs at least 3 nodes"
            raise ConfigError(
                "train.strategy_options.f", self.f, accepted, hint=f"{self.name} needs 2f + 3 <= {num_nodes} nodes"
            )
        if self.m is not None and self.m > num_nodes - self.f:
            raise ConfigError(
                "train.strategy_options.m", self.m, f"an integer in [1, {num_nodes - self.f}] (n - f, n={num_nodes})"
            )

    def aggregate(self, global_weights: torch.Tensor, deltas: torch.Tensor, num_samples: torch.Tensor) -> torch.Tensor:
        n = len(deltas)
        f = self.f
        if n < 2 * f + 3:
            if n < 3:
                self.note(f"{self.name}: {n} update(s) < 2f+3={2 * f + 3}; fell back to the coordinate-wise median")
                return global_weights + coordinate_median(deltas)
            f = (n - 3) // 2
            self.note(f"{self.name}: {n} updates < 2f+3={2 * self.f + 3}; used f={f} this round")
        m = n - f if self.m is None else min(self.m, n - f)
        if self.m is not None and m < self.m:
            self.note(f"{self.name}: m={self.m} > n - f={n - f}; averaged {m} this round")
        return global_weights + multi_krum(deltas, f, m)


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
