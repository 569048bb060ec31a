"""SCAFFOLD: Karimireddy, Kale, Mohri, Reddi, Stich and Suresh, "SCAFFOLD: Stochastic Controlled
Averaging for Federated Learning", ICML 2020 (Algorithm 1, option II). Client drift under non-IID
data is corrected by control variates: every local step uses g_i(y) - c_i + c; after K steps the
node sets c_i+ = c_i - c + (x - y) / (K lr); the server takes x <- x + lr_g mean(dy_i) and
c <- c + |S|/N mean(dc_i).

The node's correction c - c_i reaches local training through
:meth:`~hypergpu_lab.strategies.base.Strategy.client_objective` (both engines add it to every
gradient). The client variates c_i live here with c (the nodes are simulated in this process) and
are checkpointed with the server state. c_i+ is computed from the update the server received, so
c stays the mean of the c_i even when updates are compressed. With local momentum, K becomes the
effective number of summed gradients (FedNova's ||a||_1), which is K for plain SGD.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from .. import checks
from .aggregate import average
from .base import ClientObjective, Strategy, UpdateContext, effective_steps, state_keys

log = logging.getLogger(__name__)


class Scaffold(Strategy):
    """Control-variate corrected local SGD; the server averages like FedAvg and updates c.

    Parameters
    ----------
    server_lr : float
        lr_g, > 0 (1 in the paper's experiments).
    weighted : bool
        Sample-weighted mean of the model updates (the lab's FedAvg) or the paper's plain mean.
    """

    name = "scaffold"
    needs_individual_updates = True  # per-node step counts / control variates, not one sum

    def __init__(self, *, server_lr: float = 1.0, weighted: bool = False) -> None:
        self.server_lr = checks.number("strategy_options.server_lr", server_lr, 0.0, open_low=True)
        self.weighted = checks.boolean("strategy_options.weighted", weighted)
        self.c: torch.Tensor | None = None  # server control variate, float32 [P]; created on the first round
        self.ci: dict[int, torch.Tensor] = {}  # node -> its control variate; zero until it first reports

    def client_objective(self) -> ClientObjective:
        return ClientObjective(correction=self.correction, download_copies=2)

    def correction(self, node: int) -> torch.Tensor | None:
        """c - c_i, what node adds to every local gradient this round (None before the first round)."""
        if self.c is None:
            return None
        ci = self.ci.get(node)
        return self.c.clone() if ci is None else self.c - ci

    def aggregate(self, global_weights: torch.Tensor, deltas: torch.Tensor, num_samples: torch.Tensor) -> torch.Tensor:
        """Without senders and step counts there are no variates to update: the model step alone."""
        return global_weights + self.server_lr * average(deltas, num_samples, weighted=self.weighted)

    def aggregate_updates(
        self, global_weights: torch.Tensor, deltas: torch.Tensor, num_samples: torch.Tensor, context: UpdateContext
    ) -> torch.Tensor:
        if context.momentum and self.c is None:
            # Measured in bench/communication.py: digits CNN, Dirichlet(0.1), lr 0.05, momentum 0.9 -> 10% accuracy.
            log.warning(
                "SCAFFOLD with local momentum %g: the paper assumes plain SGD; it diverged here", context.momentum
            )
        c = self.c if self.c is not None else torch.zeros_like(global_weights)
        k = effective_steps(context.steps, context.momentum).clamp(min=1e-12)
        dc = torch.zeros_like(global_weights)
        for row, node in enumerate(context.nodes):
            old = self.ci.get(node, torch.zeros_like(global_weights))
            new = old - c - deltas[row] / float(k[row] * context.lr)
            dc += new - old
            self.ci[node] = new
        self.c = c + (len(deltas) / context.population) * (dc / len(deltas))
        return self.aggregate(global_weights, deltas, num_samples)

    def state_dict(self) -> dict[str, Any]:
        if self.c is None:
            return {}
        return {"c": self.c.clone(), "ci": {int(n): v.clone() for n, v in sorted(self.ci.items())}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state_keys(self.name, state, ("c", "ci"))
        self.c = state["c"].clone() if state else None
        self.ci = {int(n): v.clone() for n, v in state.get("ci", {}).items()}


# Registry names this module provides (found by strategies/__init__.py; no other file lists them).
NAMES = {"scaffold": Scaffold}
