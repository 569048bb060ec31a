"""Coordinate-wise trimmed mean: Yin, Chen, Ramchandran and Bartlett, "Byzantine-Robust
Distributed Learning: Towards Optimal Statistical Rates", ICML 2018 (Option II). Per
coordinate, drop the floor(beta K) largest and smallest values and average the rest."""

from __future__ import annotations

import torch

from .. import checks
from .aggregate import trimmed_mean
from .base import Strategy


class TrimmedMean(Strategy):
    """w + beta-trimmed mean of the deltas per coordinate (sample counts are ignored, as in the paper).

    Parameters
    ----------
    beta : float
        Fraction trimmed from each end, in [0, 0.5): with beta < 1/2 at least one value
        always remains. It should exceed the fraction of Byzantine clients.
    """

    name = "trimmed-mean"
    needs_individual_updates = True  # sorts each coordinate over the updates

    def __init__(self, *, beta: float = 0.1) -> None:
        self.beta = checks.number("strategy_options.beta", beta, 0.0, 0.5, open_high=True)

    def aggregate(self, global_weights: torch.Tensor, deltas: torch.Tensor, num_samples: torch.Tensor) -> torch.Tensor:
        return global_weights + trimmed_mean(deltas, self.beta)


# Registry names this module provides (found by strategies/__init__.py; no other file lists them).
NAMES = {"trimmed-mean": TrimmedMean}
