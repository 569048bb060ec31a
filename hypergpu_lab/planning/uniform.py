"""The uniform baseline planner of McMahan et al.

A uniform random sample of the available nodes, seeded per round, with one
batch size for all (capped by each node's GPU memory). It implements
:class:`~hypergpu_lab.plan.Planner`; adaptive planners implement the same methods.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ..plan import RoundPlan, memory_fits

if TYPE_CHECKING:
    from ..events import RoundReport
    from ..models import ModelCost
    from ..nodes import NodePool

log = logging.getLogger(__name__)


class UniformPolicy:
    """Sample ``clients_per_round`` (or ``max(1, round(C * N))``) available nodes uniformly."""

    def __init__(
        self,
        *,
        seed: int,
        batch_size: int,
        clients_per_round: int | None = None,
        fraction: float = 1.0,
        deadline_s: float | None = None,
        min_completion: float | None = None,
    ) -> None:
        self.seed, self.batch_size = seed, batch_size
        self.clients_per_round, self.fraction, self.deadline_s = clients_per_round, fraction, deadline_s
        self.min_completion = min_completion

    def plan(self, round_: int, pool: NodePool, now: float, cost: ModelCost) -> RoundPlan:
        # Arrays over the candidates, in id order: no per-node Python work however many nodes are registered.
        candidates, limits, notes = memory_fits(pool, cost)
        k = self.clients_per_round or max(1, round(self.fraction * len(candidates)))
        k = min(k, len(candidates))
        if k == len(candidates):  # everyone: no draw needed (the round's stream is its own, so none shifts)
            picked = np.arange(k)
        else:
            rng = np.random.default_rng([self.seed, round_, 0x5E1EC7])
            picked = np.sort(rng.choice(len(candidates), size=k, replace=False))
        chosen = candidates[picked].tolist()
        fits = dict(zip(chosen, np.minimum(limits[picked], self.batch_size).tolist()))
        capped = [i for i in chosen if fits[i] < self.batch_size]
        if capped:
            notes.append(f"batch capped by GPU memory on nodes {capped}")
        target = None if self.min_completion is None else max(1, math.ceil(self.min_completion * len(chosen)))
        return RoundPlan(
            round_, tuple(chosen), {i: fits[i] for i in chosen}, self.deadline_s, tuple(notes), target_updates=target
        )

    def observe(self, report: RoundReport) -> None:
        """The uniform baseline learns nothing from a round."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Stateless: the per-round seed makes every plan reproducible."""
