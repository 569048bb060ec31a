"""Where local training runs: in this process (default) or elsewhere (Ray, see ``backends.ray``).

The coordinator hands a backend :class:`Task` records, which name a node but carry
no data: each backend finds the node's shard where the shard lives, so with Ray
the data never leaves the actor that holds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from ..nodes import NodePool
from ..training import Job, LocalResult, Trainer


@dataclass(frozen=True)
class Task:
    """Train ``node`` from the global weights with this batch size and seed."""

    node: int
    batch_size: int
    seed: int
    flip_labels: bool = False  # data poisoning: train on labels C - 1 - y
    correction: torch.Tensor | None = None  # added to every local gradient (the strategy's client objective)
    max_steps: int | None = None  # partial work: local steps the node completes (None: all)


class Backend(Protocol):
    """Where local training runs. The whole contract with the engine:

    - ``attach(pool)``: take the pool's shards where the nodes live (before any coordinator exists;
      the nodes left in ``pool`` may keep only their metadata).
    - ``bind(trainer, pool)``: train with this coordinator's model, SGD settings and engine.
    - ``train(weights, tasks)``: one :class:`LocalResult` per task that completed, in task order; a
      task that did not complete (a lost worker) is left out and its reason put in ``failures``.
    - ``failures``: node -> why its task of the last ``train`` call returned nothing.
    - ``close()``: release workers; the backend is not used afterwards.
    """

    failures: dict[int, str]

    def attach(self, pool: NodePool) -> None: ...

    def bind(self, trainer: Trainer, pool: NodePool) -> None: ...

    def train(self, weights: torch.Tensor, tasks: Sequence[Task]) -> list[LocalResult]: ...

    def close(self) -> None: ...


class InProcessBackend:
    """Trains in this process with the vectorised engine (or its per-node loop)."""

    def __init__(self, trainer: Trainer | None = None, pool: NodePool | None = None) -> None:
        self.trainer, self.pool = trainer, pool
        self.failures: dict[int, str] = {}  # in process, every task completes

    def attach(self, pool: NodePool) -> None:
        """The shards stay where they are: in this process's pool."""
        self.pool = pool

    def bind(self, trainer: Trainer, pool: NodePool) -> None:
        self.trainer, self.pool = trainer, pool

    def jobs(self, tasks: Sequence[Task]) -> list[Job]:
        assert self.pool is not None, "bind() the backend to a pool first"
        out = []
        for t in tasks:
            data = self.pool[t.node].shard()  # read (or generated, for synthetic nodes) once, now
            if data is None:
                raise RuntimeError(f"node {t.node}'s shard lives elsewhere: train it on the backend that holds it")
            x, y = data
            y = self.pool.num_classes - 1 - y if t.flip_labels else y
            out.append(Job(t.node, x, y, t.batch_size, t.seed, t.correction, t.max_steps))
        return out

    def train(self, weights: torch.Tensor, tasks: Sequence[Task]) -> list[LocalResult]:
        assert self.trainer is not None, "bind() the backend to a trainer first"
        return self.trainer.train(weights, self.jobs(tasks))

    def close(self) -> None:
        """Nothing to release in process."""
