"""Round planning: who trains this round, with which batch size, by which deadline.

The coordinator asks a policy for a :class:`RoundPlan` before each round and
shows it the :class:`RoundReport` after. :class:`UniformPolicy` is the
baseline of McMahan et al.: a uniform random sample of the available nodes,
seeded per round, with one batch size for all (capped by each node's GPU
memory). Adaptive policies implement the same two methods.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from .config import TrainConfig
from .errors import ConfigError
from .events import RoundReport
from .models import ModelCost
from .nodes import NodePool

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoundPlan:
    round: int
    nodes: tuple[int, ...]
    batch_sizes: dict[int, int]
    deadline_s: float | None
    notes: tuple[str, ...] = field(default=())
    target_updates: int | None = None  # close the round once this many updates arrived (None: wait for all)


def memory_limits(pool: NodePool, cost: ModelCost) -> tuple[dict[int, int], list[str]]:
    """The largest batch each available node's GPU memory allows, and a note for each node it cannot host."""
    limits: dict[int, int] = {}
    notes: list[str] = []
    for i in pool.available():
        limit = pool[i].max_batch(cost)
        if limit < 1:
            notes.append(f"node {i}: model does not fit in {pool[i].gpu.memory_gb} GB")
        else:
            limits[i] = limit
    return limits, notes


class Policy(Protocol):
    def plan(self, round_: int, pool: NodePool, now: float, cost: ModelCost) -> RoundPlan: ...

    def observe(self, report: RoundReport) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


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
        limits, notes = memory_limits(pool, cost)
        fits = {i: min(self.batch_size, limit) for i, limit in limits.items()}
        candidates = sorted(fits)
        k = self.clients_per_round or max(1, round(self.fraction * len(candidates)))
        k = min(k, len(candidates))
        if k == len(candidates):  # everyone: no draw needed (the round's stream is its own, so none shifts)
            chosen = candidates
        else:
            rng = np.random.default_rng([self.seed, round_, 0x5E1EC7])
            chosen = sorted(int(c) for c in rng.choice(candidates, size=k, replace=False))
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


def make_policy(cfg: TrainConfig, seed: int) -> Policy:
    """The policy a TrainConfig names. The adaptive one is imported by name, only when asked for."""
    if cfg.policy == "adaptive":
        import importlib

        adaptive = importlib.import_module("hypergpu_lab.adaptation").AdaptivePolicy
        return adaptive.from_train_config(cfg, seed=seed, **cfg.policy_options)
    if cfg.policy_options:
        raise ConfigError("train.policy_options", cfg.policy_options, "none for the uniform policy")
    return UniformPolicy(
        seed=seed,
        batch_size=cfg.batch_size,
        clients_per_round=cfg.clients_per_round,
        fraction=cfg.fraction,
        deadline_s=cfg.deadline_s,
        min_completion=cfg.min_completion,
    )
