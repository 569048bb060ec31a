"""Update-norm clipping, as the server side of DP-FedAvg: McMahan, Ramage, Talwar and Zhang,
"Learning Differentially Private Recurrent Language Models", ICLR 2018 (without the noise).
Each client's delta is scaled down to L2 norm at most ``max_norm`` before an inner strategy
aggregates, which bounds what any one client can move the model."""

from __future__ import annotations

from typing import Any

import torch

from .. import checks
from .aggregate import clip_by_norm
from .base import ClientObjective, Strategy, UpdateContext
from .fedavg import FedAvg


class Clipped(Strategy):
    """Clip every delta to ``max_norm``, then hand the updates to ``inner`` (whose state it carries).

    Parameters
    ----------
    inner : Strategy
        The strategy that aggregates the clipped updates, e.g. ``FedMedian()``.
    max_norm : float
        Largest L2 norm of one client's delta, > 0. It is in weight units, so depends on the
        model, learning rate and local epochs: measure typical update norms first.
    """

    def __init__(self, *, inner: Strategy, max_norm: float = 1.0) -> None:
        if not isinstance(inner, Strategy):
            raise TypeError(f"inner: got {type(inner).__name__}; accepted: a Strategy instance")
        self.inner = inner
        self.max_norm = checks.number("strategy_options.max_norm", max_norm, 0.0, open_low=True)
        self.name = f"clipped-{inner.name}"
        self.needs_individual_updates = inner.needs_individual_updates

    def aggregate(self, global_weights: torch.Tensor, deltas: torch.Tensor, num_samples: torch.Tensor) -> torch.Tensor:
        return self.inner.aggregate(global_weights, clip_by_norm(deltas, self.max_norm), num_samples)

    def aggregate_updates(
        self, global_weights: torch.Tensor, deltas: torch.Tensor, num_samples: torch.Tensor, context: UpdateContext
    ) -> torch.Tensor:
        return self.inner.aggregate_updates(global_weights, clip_by_norm(deltas, self.max_norm), num_samples, context)

    def client_objective(self) -> ClientObjective:
        return self.inner.client_objective()

    def state_dict(self) -> dict[str, Any]:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state)


class ClippedFedAvg(Clipped):
    """FedAvg over norm-clipped deltas: the registry's "clipped-fedavg"."""

    def __init__(self, *, max_norm: float = 1.0, weighted: bool = True) -> None:
        super().__init__(inner=FedAvg(weighted=weighted), max_norm=max_norm)


# Registry names this module provides (found by strategies/__init__.py; no other file lists them).
NAMES = {"clipped-fedavg": ClippedFedAvg}
