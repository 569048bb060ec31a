"""Aggregation rules as pure functions on stacked flat tensors ``[K, P]``."""
from __future__ import annotations

import torch


def weighted_mean(stacked: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Sum_k w_k x_k / Sum_k w_k, accumulated in float64 so the order of nodes does not matter."""
    w = weights.to(torch.float64)
    return (w @ stacked.to(torch.float64) / w.sum()).to(stacked.dtype)
