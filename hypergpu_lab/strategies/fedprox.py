"""FedProx: Li et al., "Federated Optimization in Heterogeneous Networks", MLSys 2020.

Each client minimises its loss plus the proximal term mu/2 * ||w - w_t||^2, which
keeps local models near the global one under heterogeneous data; the server
aggregates as FedAvg. The term reaches the local training engine through
:meth:`~hypergpu_lab.strategies.base.Strategy.client_objective`."""

from __future__ import annotations

from .. import checks
from .base import ClientObjective
from .fedavg import FedAvg


class FedProx(FedAvg):
    """FedAvg on the server, a squared proximal term on the clients."""

    name = "fedprox"

    def __init__(self, *, mu: float = 0.01, weighted: bool = True) -> None:
        super().__init__(weighted=weighted)
        self.proximal_mu = checks.number("strategy_options.mu", mu, low=0.0)

    def client_objective(self) -> ClientObjective:
        return ClientObjective(proximal_mu=self.proximal_mu)


# Registry names this module provides (found by strategies/__init__.py; no other file lists them).
NAMES = {"fedprox": FedProx}
