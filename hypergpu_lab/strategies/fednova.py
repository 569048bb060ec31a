"""FedNova: Wang, Liu, Liang, Joshi and Poor, "Tackling the Objective Inconsistency Problem in
Heterogeneous Federated Optimization", NeurIPS 2020. Nodes that take more local steps move further;
FedAvg then weighs them by distance travelled and converges to a skewed objective. FedNova averages
normalised updates instead: with a_i = ||a_i||_1 the effective number of gradients node i summed
(its local steps tau_i for plain SGD; see :func:`~hypergpu_lab.strategies.base.effective_steps` for
momentum), w <- w + tau_eff Sum_i p_i delta_i / a_i, tau_eff = Sum_i p_i a_i (eq. 6-7)."""

from __future__ import annotations

import torch

from .. import checks
from .aggregate import average
from .base import Strategy, UpdateContext, effective_steps


def fednova_step(
    global_weights: torch.Tensor, deltas: torch.Tensor, p: torch.Tensor, a: torch.Tensor, *, server_lr: float = 1.0
) -> torch.Tensor:
    """w + lr tau_eff Sum_i p_i delta_i / a_i with tau_eff = Sum_i p_i a_i; p normalised here, in float64."""
    p = p.to(torch.float64) / p.to(torch.float64).sum()
    tau_eff = float((p * a).sum())
    coef = (server_lr * tau_eff * p / a).to(deltas.dtype)
    return torch.addmv(global_weights, deltas.T, coef)


class FedNova(Strategy):
    """Normalised averaging by each update's local work; equals FedAvg when every node took the same steps.

    Parameters
    ----------
    server_lr : float
        Server learning rate, > 0 (the paper uses 1).
    weighted : bool
        p_i by sample count (the paper) or uniform.
    """

    name = "fednova"
    needs_individual_updates = True  # per-node step counts / control variates, not one sum

    def __init__(self, *, server_lr: float = 1.0, weighted: bool = True) -> None:
        self.server_lr = checks.number("strategy_options.server_lr", server_lr, 0.0, open_low=True)
        self.weighted = checks.boolean("strategy_options.weighted", weighted)

    def aggregate(self, global_weights: torch.Tensor, deltas: torch.Tensor, num_samples: torch.Tensor) -> torch.Tensor:
        """Without step counts every node counts as equal work: FedAvg (with the server learning rate)."""
        return global_weights + self.server_lr * average(deltas, num_samples, weighted=self.weighted)

    def aggregate_updates(
        self, global_weights: torch.Tensor, deltas: torch.Tensor, num_samples: torch.Tensor, context: UpdateContext
    ) -> torch.Tensor:
        p = num_samples if self.weighted else torch.ones(len(deltas), dtype=torch.float64)
        a = effective_steps(context.steps, context.momentum).clamp(min=1e-12)
        return fednova_step(global_weights, deltas, p, a, server_lr=self.server_lr)


# Registry names this module provides (found by strategies/__init__.py; no other file lists them).
NAMES = {"fednova": FedNova}
