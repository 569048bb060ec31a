"""Ray backend: nodes live in Ray actors that hold their own shards.

    pool = NodePool.simulated(100, dataset="digits", backend=RayBackend())      # local ray.init()
    pool = NodePool.simulated(100, backend=RayBackend(address="auto", num_cpus_per_actor=4))
    coord = Coordinator(pool=pool, model="mlp")    # binds its model and SGD settings to the actors

How data and weights move:

* ``attach(pool)`` splits the nodes into ``num_actors`` contiguous blocks of ids, puts each
  block's shards into the object store once, starts one actor per block and then takes the
  shards out of the driver's pool (``Node.release_data``): the pool keeps ids, sample counts,
  GPUs and states only. The object references are kept (``on_actor_death="restart"``) so a
  dead actor can be restarted with the same shards; with ``"crash"`` they are dropped once
  the actors hold their copies.
* ``bind(trainer)`` ships the coordinator's :class:`Trainer` (model, SGD config, engine
  settings) to every actor, once per coordinator.
* ``train(weights, tasks)`` puts the weights into the object store once per round and sends
  every actor the tasks of the nodes it hosts; each actor runs the same engine
  (:meth:`Trainer.train`, vectorised over its own nodes) and returns ``LocalResult`` records.

An actor that dies (killed, its machine lost, or past ``timeout_s``) returns nothing: its
nodes' results are missing, :attr:`failures` says why, and the coordinator records those
nodes as failed for the round ("backend: actor died"). The actor is restarted at once from
the shards in the object store (up to ``max_restarts`` times), so its nodes train again from
the next round; past that, or with ``on_actor_death="crash"``, its nodes are marked crashed.

Same seed, same results as in process up to float32 rounding: every node's batches come from
its own seed, so both sides run the same steps, but an actor batches only the nodes it hosts,
and batched kernels (BLAS, oneDNN) choose their blocking, hence their order of additions, by
shape. Measured: global weights within 1e-5 after 3 rounds (tests/test_ray_backend.py), each
node's update within 1e-6 of training it alone or in any group (tests/test_training.py).
Training runs on CPU in the actors, as in process: ``num_gpus_per_actor`` only reserves GPUs.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

try:
    import ray
    from ray.exceptions import GetTimeoutError, RayActorError
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("the Ray backend needs Ray: pip install 'hypergpu-lab[ray]' (or 'ray[default]>=2.9,<3')") from exc

from ..errors import ConfigError
from ..nodes import NodePool, NodeState
from ..training import Job, LocalResult, Trainer
from . import Task

log = logging.getLogger(__name__)

DEATH_POLICIES = ("restart", "crash")


class NodeHost:
    """The actor: holds the shards of the nodes it hosts and trains them with the shared engine."""

    def __init__(self, num_classes: int, threads: int, *shards: dict[int, tuple[np.ndarray, np.ndarray]]) -> None:
        torch.set_num_threads(max(1, threads))
        self.num_classes = num_classes
        self.x: dict[int, torch.Tensor] = {}
        self.y: dict[int, torch.Tensor] = {}
        self.trainer: Trainer | None = None
        for shard in shards:
            self.add(shard)

    def add(self, shard: dict[int, tuple[np.ndarray, np.ndarray]]) -> list[int]:
        """Take shards out of the object store; the actor keeps its own (writable) copy."""
        for node, (x, y) in shard.items():
            self.x[node], self.y[node] = torch.from_numpy(np.array(x)), torch.from_numpy(np.array(y))
        return sorted(self.x)

    def bind(self, trainer: Trainer) -> None:
        self.trainer = trainer

    def ready(self) -> list[int]:
        return sorted(self.x)

    def pid(self) -> int:
        return os.getpid()

    def train(self, weights: torch.Tensor, tasks: Sequence[Task]) -> tuple[np.ndarray, list[tuple]]:
        """The deltas as one [K, P] array (one zero-copy buffer in the object store) and each result's fields.

        Returning ``LocalResult`` records would pickle every delta's whole [K, P] storage once
        per record (they are views of one tensor): K^2 bytes per round.
        """
        if self.trainer is None:
            raise RuntimeError("no trainer bound: create a Coordinator on this pool first")
        jobs = [
            Job(
                t.node,
                self.x[t.node],
                self.num_classes - 1 - self.y[t.node] if t.flip_labels else self.y[t.node],
                t.batch_size,
                t.seed,
                t.correction,
                t.max_steps,
            )
            for t in tasks
        ]
        results = self.trainer.train(weights, jobs)
        deltas = torch.stack([r.delta for r in results]) if results else weights.new_zeros((0, weights.numel()))
        return deltas.numpy(), [(r.node, r.num_samples, r.loss, r.steps, r.update_norm) for r in results]


INIT_ATTEMPTS = 3
"""Starts of a local Ray tried before giving up (only its own start-up timeout is retried)."""


class RayBackend:
    """Trains nodes in Ray actors that hold their shards; see the module docstring.

    ``address``: None starts a local Ray (``ray.init()``) unless one is already initialised;
    ``"auto"``, ``"host:6379"`` or ``"ray://host:10001"`` join an existing cluster.
    ``num_actors``: how many actors share the nodes (default: as many as the cluster's CPUs
    allow at ``num_cpus_per_actor`` each, at most one per node). ``num_cpus_per_actor`` and
    ``num_gpus_per_actor`` are the Ray resources each actor reserves (its torch threads follow
    ``num_cpus_per_actor``); ``actor_options`` go to ``.options()`` as they are (e.g.
    ``{"resources": {...}, "scheduling_strategy": "SPREAD"}``); ``init_options`` to ``ray.init``
    (e.g. ``{"runtime_env": {...}}``). ``timeout_s`` bounds the wait for one round's results.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        num_actors: int | None = None,
        num_cpus_per_actor: float = 1.0,
        num_gpus_per_actor: float = 0.0,
        actor_options: dict[str, Any] | None = None,
        init_options: dict[str, Any] | None = None,
        on_actor_death: str = "restart",
        max_restarts: int = 3,
        timeout_s: float | None = None,
        ready_timeout_s: float = 300.0,
    ) -> None:
        if num_actors is not None and (
            isinstance(num_actors, bool) or not isinstance(num_actors, int) or num_actors < 1
        ):
            raise ConfigError("num_actors", num_actors, "an integer >= 1 or None")
        if not num_cpus_per_actor > 0:
            raise ConfigError("num_cpus_per_actor", num_cpus_per_actor, "a number > 0")
        if not num_gpus_per_actor >= 0:
            raise ConfigError("num_gpus_per_actor", num_gpus_per_actor, "a number >= 0")
        if on_actor_death not in DEATH_POLICIES:
            raise ConfigError("on_actor_death", on_actor_death, " or ".join(DEATH_POLICIES))
        if isinstance(max_restarts, bool) or not isinstance(max_restarts, int) or max_restarts < 0:
            raise ConfigError("max_restarts", max_restarts, "an integer >= 0")
        if timeout_s is not None and not timeout_s > 0:
            raise ConfigError("timeout_s", timeout_s, "a number of seconds > 0 or None")
        self.address, self.num_actors = address, num_actors
        self.num_cpus_per_actor, self.num_gpus_per_actor = num_cpus_per_actor, num_gpus_per_actor
        self.actor_options, self.init_options = dict(actor_options or {}), dict(init_options or {})
        self.on_actor_death, self.max_restarts = on_actor_death, max_restarts
        self.timeout_s, self.ready_timeout_s = timeout_s, ready_timeout_s
        self.pool: NodePool | None = None
        self.actors: list[Any] = []  # one handle per block; None once given up
        self.hosted: list[list[int]] = []  # node ids per actor
        self.where: dict[int, int] = {}  # node id -> actor index
        self.restarts: list[int] = []
        self.failures: dict[int, str] = {}  # nodes of the last train() that returned no result, and why
        self.init_seconds: float | None = None  # time ray.init took, when this backend started Ray
        self._shards: list[list[Any]] = []  # object refs of each actor's shards (for restarts)
        self._trainer: Any = None  # object ref of the bound Trainer
        self._owns_ray = False
        self._cls: Any = None
        self._closed = False

    # -- set-up --------------------------------------------------------------------------------
    def _init_ray(self) -> None:
        if ray.is_initialized():
            return
        t = time.perf_counter()
        options = {"include_dashboard": False, "log_to_driver": False, **self.init_options}
        for attempt in range(1, INIT_ATTEMPTS + 1):
            try:
                ray.init(address=self.address, **options)
                break
            except Exception as exc:
                # A local Ray waits a fixed 30 s for its raylet; on a busy machine the raylet's helpers
                # can take longer, and the start fails once where a second start succeeds.
                if self.address is not None or "timed out during startup" not in str(exc) or attempt == INIT_ATTEMPTS:
                    raise
                log.warning("ray.init attempt %d of %d failed (%s); starting Ray again", attempt, INIT_ATTEMPTS, exc)
                ray.shutdown()
        self.init_seconds = time.perf_counter() - t
        self._owns_ray = True
        log.info("ray.init(address=%r) took %.1fs", self.address, self.init_seconds)

    def _threads(self) -> int:
        return max(1, int(self.num_cpus_per_actor))

    def _start(self, shards: list[Any]) -> Any:
        assert self.pool is not None
        options = {"num_cpus": self.num_cpus_per_actor, "num_gpus": self.num_gpus_per_actor, **self.actor_options}
        if self._cls is None:
            self._cls = ray.remote(NodeHost)
        actor = self._cls.options(**options).remote(self.pool.num_classes, self._threads(), *shards)
        if self._trainer is not None:
            actor.bind.remote(self._trainer)  # actor tasks from one caller run in order: bound before training
        return actor

    def attach(self, pool: NodePool) -> None:
        """Move the pool's shards into actors; the pool keeps metadata only."""
        if self.pool is not None:
            raise ConfigError("backend", self, "a RayBackend not yet attached to a pool (one backend per pool)")
        self._init_ray()
        self.pool = pool
        ids = sorted(n.id for n in pool if n.x is not None)
        cpus = float(ray.cluster_resources().get("CPU", 1.0))
        k = self.num_actors or max(1, int(cpus // self.num_cpus_per_actor))
        blocks = [list(map(int, b)) for b in np.array_split(np.asarray(ids, dtype=np.int64), min(k, max(len(ids), 1)))]
        try:
            for block in blocks:
                self._add_actor(block)
            self._wait_ready(range(len(self.actors)))
        except BaseException:
            self.close()  # the pool keeps its shards: nothing was released yet
            self.pool = None
            raise
        for n in ids:  # the actors hold the shards now: the driver keeps metadata only
            pool[n].release_data()
        log.info(
            "ray backend: %d nodes in %d actors (%g CPU, %g GPU each)",
            len(ids),
            len(self.actors),
            self.num_cpus_per_actor,
            self.num_gpus_per_actor,
        )

    def _put(self, node_ids: Sequence[int]) -> Any:
        """One object in the store holding these nodes' shards (numpy: stored without pickling)."""
        assert self.pool is not None
        return ray.put({n: (self.pool[n].x.numpy(), self.pool[n].y.numpy()) for n in node_ids})

    def _add_actor(self, node_ids: list[int]) -> int:
        ref = self._put(node_ids)
        self._shards.append([ref])
        self.actors.append(self._start([ref]))
        self.hosted.append(list(node_ids))
        self.restarts.append(0)
        i = len(self.actors) - 1
        self.where.update((n, i) for n in node_ids)
        return i

    def _wait_ready(self, indices: Any) -> None:
        refs = [self.actors[i].ready.remote() for i in indices]
        if not refs:
            return
        done, pending = ray.wait(refs, num_returns=len(refs), timeout=self.ready_timeout_s)
        if pending:
            raise RuntimeError(
                f"{len(pending)} of {len(refs)} Ray actors did not start within "
                f"{self.ready_timeout_s:g}s: does the cluster have {self.num_cpus_per_actor:g} CPU and "
                f"{self.num_gpus_per_actor:g} GPU free per actor? Lower num_actors or the per-actor "
                "resources"
            )
        ray.get(done)  # raises what a constructor raised (e.g. hypergpu_lab missing on a worker)
        if self.on_actor_death == "crash":  # the actors hold their copies; nothing else keeps the shards
            for i in indices:
                self._shards[i] = []

    def bind(self, trainer: Trainer, pool: NodePool | None = None) -> None:
        """Ship a coordinator's Trainer (model, SGD config, engine settings) to every actor."""
        if self.pool is None:  # Coordinator(pool=..., backend=RayBackend()): attach on first use
            if pool is None:
                raise ConfigError("pool", None, "the NodePool whose nodes this backend trains")
            self.attach(pool)
            pool.backend = self
        self._trainer = ray.put(trainer)
        for ref in [a.bind.remote(self._trainer) for a in self.actors if a is not None]:
            try:
                ray.get(ref)
            except RayActorError:  # died since: the next train() finds out and restarts it, bound
                pass

    # -- one round -----------------------------------------------------------------------------
    def train(self, weights: torch.Tensor, tasks: Sequence[Task]) -> list[LocalResult]:
        """Every actor trains the tasks of its nodes; a dead actor's nodes are left out (see ``failures``)."""
        if self._closed:
            raise RuntimeError("this RayBackend was closed: its actors and shards are gone")
        if self._trainer is None:
            raise RuntimeError("no trainer bound: the Coordinator calls bind(trainer) on this backend")
        self.failures = {}
        by_actor: dict[int, list[Task]] = {}
        for t in tasks:
            i = self.where.get(t.node)
            if i is None and self.pool is not None and t.node in self.pool.nodes and self.pool[t.node].x is not None:
                i = self._host_new(t.node)  # registered after attach: its shard moves to an actor now
            if i is None:
                self.failures[t.node] = "node not hosted by any actor"
            elif self.actors[i] is None:
                self.failures[t.node] = "actor died"
            else:
                by_actor.setdefault(i, []).append(t)
        if not by_actor:
            return []
        w = ray.put(weights)  # once per round; every actor reads the same object
        calls = {i: self.actors[i].train.remote(w, ts) for i, ts in by_actor.items()}
        deadline = None if self.timeout_s is None else time.monotonic() + self.timeout_s
        results: dict[int, LocalResult] = {}
        for i, ref in calls.items():
            try:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                deltas, fields = ray.get(ref, timeout=left)
                rows = torch.from_numpy(np.array(deltas))  # our own copy: the store's buffer is read-only
                for row, (node, samples, loss, steps, norm) in zip(rows, fields):
                    results[node] = LocalResult(node, row, samples, loss, steps, norm)
            except RayActorError as exc:
                self._lost(i, "actor died", exc)
            except GetTimeoutError as exc:
                ray.kill(self.actors[i], no_restart=True)
                self._lost(i, f"actor timed out after {self.timeout_s:g}s", exc)
        for ts in by_actor.values():
            for t in ts:
                if t.node not in results:
                    self.failures.setdefault(t.node, "actor died")
        return [results[t.node] for t in tasks if t.node in results]

    def _host_new(self, node: int) -> int:
        """Give a node registered after attach to the actor hosting the fewest nodes."""
        live = [i for i, a in enumerate(self.actors) if a is not None]
        if not live:
            i = self._add_actor([node])
            self._wait_ready([i])
            self.pool[node].release_data()
            return i
        i = min(live, key=lambda j: len(self.hosted[j]))
        ref = self._put([node])
        ray.get(self.actors[i].add.remote(ref))
        self.pool[node].release_data()
        if self.on_actor_death == "restart":
            self._shards[i].append(ref)
        self.hosted[i].append(node)
        self.where[node] = i
        return i

    def _lost(self, i: int, reason: str, exc: BaseException) -> None:
        """Actor ``i`` died this round: its nodes failed; restart it from its shards, or mark them crashed."""
        log.warning("ray actor %d (nodes %s) lost: %s (%s)", i, self.hosted[i], reason, type(exc).__name__)
        for n in self.hosted[i]:
            self.failures[n] = reason
        if self.on_actor_death == "restart" and self.restarts[i] < self.max_restarts and self._shards[i]:
            self.restarts[i] += 1
            self.actors[i] = self._start(self._shards[i])  # asynchronous: ready by the next round
            log.info("ray actor %d restarted (%d of %d)", i, self.restarts[i], self.max_restarts)
            return
        self.actors[i] = None
        self._shards[i] = []
        if self.pool is not None:
            for n in self.hosted[i]:
                if n in self.pool.nodes:
                    self.pool.set_state(n, NodeState.CRASHED)

    # -- inspection and shutdown ---------------------------------------------------------------
    def actor_of(self, node: int) -> Any:
        """The handle of the actor hosting ``node`` (None once given up)."""
        return self.actors[self.where[node]]

    def close(self) -> None:
        """Stop the actors and drop the shards; shut Ray down if this backend started it."""
        for a in self.actors:
            if a is not None:
                ray.kill(a, no_restart=True)
        self.actors = [None] * len(self.actors)
        self._shards = [[] for _ in self._shards]
        self._trainer, self._closed = None, True
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()
            self._owns_ray = False

    def __repr__(self) -> str:
        live = sum(a is not None for a in self.actors)
        return (
            f"RayBackend(address={self.address!r}, actors={live}/{len(self.actors)}, "
            f"num_cpus_per_actor={self.num_cpus_per_actor:g}, num_gpus_per_actor={self.num_gpus_per_actor:g})"
        )
