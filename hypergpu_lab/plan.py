"""What a round is planned as, and the contract every planner keeps.

This module is core: the coordinator (engine) and every planner (plug-ins such as
:class:`~hypergpu_lab.planning.UniformPolicy` and
:class:`~hypergpu_lab.adaptation.AdaptivePolicy`) import it, and it imports no
planner. Planners are built by name in :func:`hypergpu_lab.registry.make_policy`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from .events import RoundReport
    from .models import ModelCost
    from .nodes import NodePool

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoundPlan:
    """Who trains in round ``round``, with which batch size each, and when the round closes."""

    round: int
    nodes: tuple[int, ...]
    batch_sizes: dict[int, int]
    deadline_s: float | None
    notes: tuple[str, ...] = field(default=())
    target_updates: int | None = None  # close the round once this many updates arrived (None: wait for all)
    compression: dict[int, str] = field(default_factory=dict)  # node -> compression.LADDER level; else the config's


def memory_limits(pool: NodePool, cost: ModelCost) -> tuple[dict[int, int], list[str]]:
    """The largest batch each available node's GPU memory allows, and a note for each node it cannot host."""
    ids, limits, notes = memory_fits(pool, cost)
    return dict(zip(ids.tolist(), limits.tolist())), notes


def memory_fits(pool: NodePool, cost: ModelCost) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """:func:`memory_limits` as arrays (ids, largest batch) in id order: per GPU kind, not per node,
    so that a planner over a million nodes does no per-node Python work."""
    from .nodes import max_batch

    t = pool.table
    ids = pool.available_ids()
    rows = np.array([t.row(i) for i in ids.tolist()], dtype=np.int64) if t.indexed else ids
    per_gpu = np.array([max_batch(g, cost) for g in t.gpus], dtype=np.int64)
    limits = per_gpu[t.gpu[rows]] if len(rows) else np.zeros(0, dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    ids, limits = ids[order], limits[order]
    notes = [f"node {i}: model does not fit in {pool[i].gpu.memory_gb} GB" for i in ids[limits < 1].tolist()]
    fit = limits >= 1
    return ids[fit], limits[fit], notes


class Planner(Protocol):
    """Decides each round's participants; the coordinator asks before a round and reports after it.

    The whole contract, as the coordinator uses it:

    * :meth:`plan` is called once per round, before any training, and
      :meth:`observe` once after that round's report is complete, so calls
      alternate ``plan(r)``, ``observe(report r)``, ``plan(r + 1)`` ...
    * A plan is a pure function of the planner's state and its arguments: the
      same state, round, pool and cost give the same :class:`RoundPlan` (runs
      are reproducible by seed; no wall clock may feed a decision).
    * :meth:`state_dict` holds everything :meth:`plan` and :meth:`observe` read, as
      plain data a checkpoint can pickle; after ``load_state_dict(state_dict())``
      on a fresh planner built with the same options, it plans exactly as the
      original would have (a resumed run equals an uninterrupted one).
    """

    def plan(self, round_: int, pool: NodePool, now: float, cost: ModelCost) -> RoundPlan:
        """The plan of round ``round_`` at virtual time ``now``: only available nodes that fit ``cost``."""
        ...

    def observe(self, report: RoundReport) -> None:
        """Learn from the finished round (who completed, how fast, accuracy); may change later plans."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything plan/observe depend on, so that a checkpoint restores the planner exactly."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (on a planner built with the same options)."""
        ...


Policy = Planner  # the name the coordinator and older code use for a planner
