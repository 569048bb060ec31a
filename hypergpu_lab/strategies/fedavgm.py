"""FedAvgM: Hsu, Qi and Brown, "Measuring the Effects of Non-Identical Data Distribution
for Federated Visual Classification", arXiv:1909.06335, 2019. The server keeps momentum
over the averaged update: v = beta v + avg_delta; w = w + server_lr v."""

from __future__ import annotations

from typing import Any

import torch

from .. import checks
from .aggregate import average, momentum_step
from .base import Strategy, state_keys


class FedAvgM(Strategy):
    """FedAvg with server momentum; beta = 0 and server_lr = 1 is FedAvg.

    Parameters
    ----------
    beta : float
        Server momentum in [0, 1).
    server_lr : float
        Server learning rate, > 0.
    weighted : bool
        Sample-weighted mean of the updates (True) or plain mean.
    """

    name = "fedavgm"

    def __init__(self, *, beta: float = 0.9, server_lr: float = 1.0, weighted: bool = True) -> None:
        self.beta = checks.number("strategy_options.beta", beta, 0.0, 1.0, open_high=True)
        self.server_lr = checks.number("strategy_options.server_lr", server_lr, 0.0, open_low=True)
        self.weighted = checks.boolean("strategy_options.weighted", weighted)
        self.v: torch.Tensor | None = None  # float64 [P]; created on the first round

    def aggregate(self, global_weights: torch.Tensor, deltas: torch.Tensor, num_samples: torch.Tensor) -> torch.Tensor:
        if self.v is None:
            self.v = torch.zeros(global_weights.shape, dtype=torch.float64)
        w, self.v = momentum_step(
            global_weights,
            average(deltas, num_samples, weighted=self.weighted),
            self.v,
            beta=self.beta,
            lr=self.server_lr,
        )
        return w

    def state_dict(self) -> dict[str, Any]:
        return {} if self.v is None else {"v": self.v.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.v = state_keys(self.name, state, ("v",)).get("v")


# Registry names this module provides (found by strategies/__init__.py; no other file lists them).
NAMES = {"fedavgm": FedAvgM}
