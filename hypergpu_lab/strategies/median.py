"""Coordinate-wise median: Yin, Chen, Ramchandran and Bartlett, "Byzantine-Robust Distributed
Learning: Towards Optimal Statistical Rates", ICML 2018 (Option I, the median aggregator).
Each coordinate of the update is the median of the clients' values, so a minority of
arbitrary updates cannot move it outside the honest range."""

from __future__ import annotations

import torch

from .aggregate import coordinate_median
from .base import Strategy


class FedMedian(Strategy):
    """w + median_k delta_k per coordinate (sample counts are ignored, as in the paper)."""

    name = "median"
    needs_individual_updates = True  # a coordinate-wise median of the updates

    def aggregate(self, global_weights: torch.Tensor, deltas: torch.Tensor, num_samples: torch.Tensor) -> torch.Tensor:
        return global_weights + coordinate_median(deltas)


# Registry names this module provides (found by strategies/__init__.py; no other file lists them).
NAMES = {"median": FedMedian}
