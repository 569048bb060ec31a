"""FedAvg: McMahan et al., "Communication-Efficient Learning of Deep Networks from
Decentralized Data", AISTATS 2017. The new model is the sample-weighted mean of the
clients' models, i.e. w + Sum_k (n_k / n) delta_k."""
from __future__ import annotations

import torch

from .aggregate import weighted_mean
from .base import Strategy


class FedAvg(Strategy):
    """Sample-weighted model averaging (Algorithm 1, server learning rate 1)."""

    name = "fedavg"

    def aggregate(self, global_weights: torch.Tensor, deltas: torch.Tensor, num_samples: torch.Tensor) -> torch.Tensor:
        return global_weights + weighted_mean(deltas, num_samples)
