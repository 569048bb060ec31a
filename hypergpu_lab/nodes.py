"""Simulated GPU nodes: each owns a private data shard, a GPU spec and a network link.

A node's GPU turns samples into simulated compute seconds and bounds the
largest batch it accepts; its state (online, crashed, quarantined), heartbeat
and failure counts are what selection and fault handling read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np
import torch

from .errors import ConfigError
from .models import ModelCost
from .network import Network, RetryPolicy
from .node_table import NodeTable, Shards, SliceShards
from .pool_config import PoolConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GPUSpec:
    """Peak FP32 throughput and memory; ``efficiency`` is the share of peak small models reach."""

    name: str
    tflops: float
    memory_gb: float
    efficiency: float = 0.3


GPUS: dict[str, GPUSpec] = {
    "laptop": GPUSpec("laptop (GTX 1650)", 3.0, 4),
    "t4": GPUSpec("T4", 8.1, 16),
    "rtx3090": GPUSpec("RTX 3090", 35.6, 24),
    "v100": GPUSpec("V100", 15.7, 32),
    "a100": GPUSpec("A100", 19.5, 80),
    "h100": GPUSpec("H100", 67.0, 80),
}

GPU_MIXES: dict[str, dict[str, float]] = {
    "mixed": {"laptop": 0.2, "t4": 0.3, "rtx3090": 0.2, "v100": 0.15, "a100": 0.1, "h100": 0.05},
    "consumer": {"laptop": 0.6, "rtx3090": 0.4},
    "cloud": {"t4": 0.4, "v100": 0.3, "a100": 0.2, "h100": 0.1},
}


class NodeState(str, Enum):
    ONLINE = "online"
    CRASHED = "crashed"
    QUARANTINED = "quarantined"


_STATES: tuple[NodeState, ...] = tuple(NodeState)
_STATE_CODE = {state: i for i, state in enumerate(_STATES)}


class Node:
    """One participant, a view of its row in the pool's :class:`NodeTable`. ``x``/``y`` are its own shard
    and are never sent anywhere; a pool's node reads them from a shared tensor or generates them from its
    seed each time they are asked for (``shard()`` gives both at once).

    ``Node(id, gpu, x, y)`` makes a node of its own (a one-row table) to register into a pool, which then
    holds its values. With a remote backend (Ray) the shard lives where the node trains: ``x``/``y`` are
    None here and the node keeps only its metadata (sample count, GPU, state).
    """

    __slots__ = ("_t", "_r")

    def __init__(
        self,
        id: int,
        gpu: GPUSpec,
        x: torch.Tensor | None,
        y: torch.Tensor | None,
        state: NodeState = NodeState.ONLINE,
        last_heartbeat: float = 0.0,
        consecutive_failures: int = 0,
        total_failures: int = 0,
        rounds_selected: int = 0,
    ) -> None:
        table = NodeTable(1)
        n = int(y.shape[0]) if y is not None else 0
        table.append(np.array([id]), np.array([table.gpu_index(gpu)]), np.array([n]))
        if x is not None and y is not None:
            table.own[0] = (x, y)
        else:
            table.held[0] = False
        self._t, self._r = table, 0
        self.state, self.last_heartbeat = state, last_heartbeat
        self.consecutive_failures, self.total_failures = consecutive_failures, total_failures
        self.rounds_selected = rounds_selected

    @classmethod
    def view(cls, table: NodeTable, row: int) -> Node:
        node = cls.__new__(cls)
        node._t, node._r = table, row
        return node

    def __repr__(self) -> str:
        return f"Node(id={self.id}, gpu={self.gpu!r}, state={self.state.value})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Node) and other._t is self._t and other._r == self._r

    def __hash__(self) -> int:
        return hash((id(self._t), self._r))

    # -- the row's columns ---------------------------------------------------------------------
    @property
    def id(self) -> int:
        return int(self._t.ids[self._r])

    @property
    def gpu(self) -> GPUSpec:
        return self._t.gpus[self._t.gpu[self._r]]

    @gpu.setter
    def gpu(self, value: GPUSpec) -> None:
        self._t.gpu[self._r] = self._t.gpu_index(value)

    @property
    def state(self) -> NodeState:
        return _STATES[self._t.state[self._r]]

    @state.setter
    def state(self, value: NodeState) -> None:
        self._t.state[self._r] = _STATE_CODE[NodeState(value)]

    @property
    def last_heartbeat(self) -> float:
        return float(self._t.heartbeat[self._r])

    @last_heartbeat.setter
    def last_heartbeat(self, value: float) -> None:
        self._t.heartbeat[self._r] = value

    @property
    def consecutive_failures(self) -> int:
        return int(self._t.consecutive_failures[self._r])

    @consecutive_failures.setter
    def consecutive_failures(self, value: int) -> None:
        self._t.consecutive_failures[self._r] = value

    @property
    def total_failures(self) -> int:
        return int(self._t.total_failures[self._r])

    @total_failures.setter
    def total_failures(self, value: int) -> None:
        self._t.total_failures[self._r] = value

    @property
    def rounds_selected(self) -> int:
        return int(self._t.rounds_selected[self._r])

    @rounds_selected.setter
    def rounds_selected(self, value: int) -> None:
        self._t.rounds_selected[self._r] = value

    @property
    def num_samples(self) -> int:
        return int(self._t.samples[self._r])

    # -- the shard -----------------------------------------------------------------------------
    def shard(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``(x, y)``, read or generated now; None once a backend took the shard elsewhere."""
        return self._t.shard(self._r)

    @property
    def x(self) -> torch.Tensor | None:
        data = self.shard()
        return None if data is None else data[0]

    @property
    def y(self) -> torch.Tensor | None:
        data = self.shard()
        return None if data is None else data[1]

    def release_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Hand the shard to a backend that keeps it elsewhere; this node keeps only its size."""
        data = self.shard()
        if data is None:
            raise ConfigError("node", self.id, "a node that still holds its shard (this one gave it away)")
        self._t.held[self._r] = False
        self._t.own.pop(self._r, None)
        return data

    # -- what selection and simulated time read -------------------------------------------------
    @property
    def available(self) -> bool:
        return self.state is NodeState.ONLINE

    def max_batch(self, cost: ModelCost, *, usable: float = 0.9) -> int:
        """Largest batch whose activations fit beside weights, grads and optimiser state (4x params)."""
        return max_batch(self.gpu, cost, usable=usable)

    def compute_seconds(self, samples: int, cost: ModelCost) -> float:
        """Simulated wall time of ``samples`` forward+backward passes on this GPU."""
        return samples * cost.train_flops_per_sample / (self.gpu.tflops * 1e12 * self.gpu.efficiency)

    def heartbeat(self, t: float) -> None:
        self.last_heartbeat = max(self.last_heartbeat, t)
        self.consecutive_failures = 0

    def record_failure(self) -> None:
        self.consecutive_failures += 1
        self.total_failures += 1


def max_batch(gpu: GPUSpec, cost: ModelCost, *, usable: float = 0.9) -> int:
    """Largest batch whose activations fit on ``gpu`` beside weights, grads and optimiser state (4x params)."""
    free = gpu.memory_gb * 2**30 * usable - 4 * cost.param_bytes
    return max(0, int(free // max(cost.activation_bytes_per_sample, 1.0)))


def assign(names: Sequence[str], fractions: Sequence[float], n: int, rng: np.random.Generator) -> list[str]:
    """Exact counts by largest remainder, then a seeded shuffle: a mix of 10% gives 10% of nodes."""
    return [names[i] for i in assign_indices(_counts(fractions, n), rng)]


def _counts(fractions: Sequence[float], n: int) -> np.ndarray:
    raw = np.asarray(fractions, dtype=float) / float(np.sum(fractions)) * n
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    return counts


def assign_indices(counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``counts[i]`` copies of ``i``, shuffled as :func:`assign` shuffles names (the same draws)."""
    out = np.repeat(np.arange(len(counts), dtype=np.int16), counts)
    rng.shuffle(out)
    return out


def _gpu_mix(gpus: str | dict[str, float]) -> dict[str, float]:
    mix = GPU_MIXES.get(gpus, {gpus: 1.0}) if isinstance(gpus, str) else gpus
    bad = [g for g in mix if g not in GPUS]
    if (
        bad
        or not mix
        or any(not (isinstance(v, (int, float)) and v >= 0) for v in mix.values())
        or sum(mix.values()) <= 0
    ):
        raise ConfigError(
            "pool.gpus",
            gpus,
            "a GPU mix (" + ", ".join(GPU_MIXES) + "), a GPU (" + ", ".join(GPUS) + ") or {gpu: fraction >= 0}",
        )
    return mix


def _check_backend(backend: Any) -> None:
    """Refuse what is not a backend object: names resolve in the registry layer, above this core module."""
    if isinstance(backend, str) or not hasattr(backend, "attach"):
        raise ConfigError(
            "backend",
            backend,
            "None or a backend object with attach(pool)",
            hint=f"for a name, pass hypergpu_lab.registry.make_backend({backend!r})",
        )


class NodeIds(Mapping[int, Node]):
    """``pool.nodes``: id -> node over the pool's table; membership and iteration read arrays only."""

    def __init__(self, pool: NodePool) -> None:
        self._pool = pool

    def __getitem__(self, node_id: int) -> Node:
        if node_id not in self._pool:
            raise KeyError(node_id)
        return self._pool[node_id]

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._pool

    def __iter__(self) -> Iterator[int]:
        t = self._pool.table
        return iter(t.ids[t.live()].tolist())

    def __len__(self) -> int:
        return len(self._pool)


class NodePool:
    """The nodes, their links and the coordinator's held-out test set."""

    def __init__(
        self,
        nodes: Sequence[Node] | NodeTable,
        network: Network,
        *,
        x_test: torch.Tensor,
        y_test: torch.Tensor,
        num_classes: int,
        config: PoolConfig | None = None,
        input_shape: tuple[int, ...] | None = None,
    ) -> None:
        self.network = network
        self.x_test, self.y_test = x_test, y_test
        self.num_classes = num_classes
        shard = nodes[0].x if isinstance(nodes, Sequence) and nodes else None
        self.input_shape = input_shape or tuple((shard if shard is not None else x_test).shape[1:])
        self.table = nodes if isinstance(nodes, NodeTable) else NodeTable()
        self._registered: dict[int, Node] = {}  # nodes registered as objects: pool[id] gives the same object
        if isinstance(nodes, Sequence):
            for node in nodes:
                self._adopt(node)
        self.config = config
        self.backend: Any = None  # where the nodes train when not in this process (see with_backend)
        # Nodes the availability model has offline now: set by the coordinator at each round's start.
        self.offline: frozenset[int] = frozenset()

    def _adopt(self, node: Node) -> None:
        """Copy a node's row into this pool's table; the node object then views that row."""
        old, r = node._t, node._r
        (row,) = self.table.append(
            np.array([node.id]), np.array([self.table.gpu_index(node.gpu)]), np.array([node.num_samples])
        )
        for name in ("held", "state", "heartbeat", "consecutive_failures", "total_failures", "rounds_selected"):
            getattr(self.table, name)[row] = getattr(old, name)[r]
        if r in old.own:
            self.table.own[int(row)] = old.own[r]
        elif old.held[r]:
            self.table.own[int(row)] = old.shard(r)
        node._t, node._r = self.table, int(row)
        self._registered[node.id] = node

    @classmethod
    def simulated(cls, num_nodes: int = 10, *, backend: Any = None, **options: Any) -> NodePool:
        """Build a pool from :class:`PoolConfig` fields, e.g. ``dataset="digits", partition="dirichlet"``.

        ``backend=RayBackend(...)`` (or ``registry.make_backend("ray")``) moves every node's shard into Ray actors.
        """
        names = {f for f in PoolConfig.__dataclass_fields__}
        unknown = sorted(set(options) - names)
        if unknown:
            raise ConfigError(unknown[0], options[unknown[0]], "a PoolConfig field: " + ", ".join(sorted(names)))
        return cls.from_config(PoolConfig(num_nodes=num_nodes, **options), backend=backend)

    def with_backend(self, backend: Any) -> NodePool:
        """Train this pool's nodes elsewhere: a backend object with ``attach(pool)`` (None: in this process).

        The backend takes the shards (the nodes here keep only their metadata) and the
        coordinator picks it up from ``pool.backend``. Names (``"ray"``, ``"inprocess"``) are
        resolved by :func:`hypergpu_lab.registry.make_backend`: the pool is core and imports no backend.
        """
        if backend is None:
            return self
        _check_backend(backend)
        backend.attach(self)
        self.table.forget_released()  # the driver keeps no copy of shards that now live in the backend
        self.backend = backend
        return self

    @classmethod
    def from_config(cls, cfg: PoolConfig, *, backend: Any = None, lazy: bool = True) -> NodePool:
        """Load, partition and place the data ``cfg`` describes; ``backend`` as in :meth:`with_backend`.

        Synthetic data (without ``max_train``) is generated node by node when a node trains, so a
        pool costs memory per node selected; ``lazy=False`` generates every shard now instead
        (the same values: each node draws from its own stream).
        """
        if backend is not None:
            _check_backend(backend)  # before the data loads: a wrong backend fails fast
        from .data import load_dataset
        from .partition import partition

        if lazy and cfg.dataset == "synthetic" and cfg.max_train is None:
            return cls._synthetic(cfg).with_backend(backend)

        data = load_dataset(
            cfg.dataset,
            root=cfg.data_root,
            download=cfg.download,
            seed=cfg.seed,
            test_fraction=cfg.test_fraction,
            num_nodes=cfg.num_nodes,
            synthetic_alpha=cfg.synthetic_alpha,
            synthetic_beta=cfg.synthetic_beta,
            max_train=cfg.max_train,
            max_test=cfg.max_test,
        )
        x_test, y_test, num_classes = data.x_test, data.y_test, data.num_classes
        if data.natural_partition is not None:
            parts = data.natural_partition
        else:
            parts = partition(
                data.y_train.numpy(),
                cfg.num_nodes,
                cfg.partition,
                alpha=cfg.alpha,
                shards_per_node=cfg.shards_per_node,
                seed=cfg.seed,
            )
        pool = cls._assemble(
            data.x_train,
            data.y_train,
            parts,
            x_test,
            y_test,
            num_classes,
            cfg.gpus,
            cfg.network,
            cfg.regions,
            cfg.seed,
            cfg,
        )
        pool._log_built()
        return pool.with_backend(backend)

    @classmethod
    def _synthetic(cls, cfg: PoolConfig) -> NodePool:
        """Synthetic nodes that generate their shard from their own seed each time they train."""
        from .data import SYNTHETIC_CLASSES, SyntheticShards, subsample_test

        gen = SyntheticShards(
            cfg.num_nodes,
            alpha=cfg.synthetic_alpha,
            beta=cfg.synthetic_beta,
            test_fraction=cfg.test_fraction,
            seed=cfg.seed,
        )
        x_test, y_test = subsample_test(*gen.test_set(), max_test=cfg.max_test, seed=cfg.seed)
        shape = gen.sample_shape
        pool = cls._build(gen, gen.n_train, x_test, y_test, SYNTHETIC_CLASSES, shape, cfg.gpus, cfg.network, cfg)
        pool._log_built()
        return pool

    def _log_built(self) -> None:
        cfg = self.config
        assert cfg is not None
        log.info(
            "pool: %d nodes, %s/%s, %d train / %d test samples",
            cfg.num_nodes,
            cfg.dataset,
            cfg.partition,
            self.total_samples,
            len(self.y_test),
        )

    @classmethod
    def _assemble(
        cls,
        x_train: torch.Tensor,
        y_train: torch.Tensor,
        parts: Sequence[np.ndarray],
        x_test: torch.Tensor,
        y_test: torch.Tensor,
        num_classes: int,
        gpus_mix: str | dict[str, float],
        network_mix: str | dict[str, float],
        regions: list[str] | None,
        seed: int,
        cfg: PoolConfig | None,
    ) -> NodePool:
        """Nodes holding contiguous slices of the training rows, GPUs and links drawn by seed."""
        # Rows are reordered once so that each node's shard is one contiguous slice; a node holds a view
        # of its own slice only. One copy of the data in all, however many nodes.
        order = np.concatenate([np.asarray(p, dtype=np.int64) for p in parts])
        if np.array_equal(order, np.arange(len(order))):  # already node by node (synthetic): no copy
            xs, ys = x_train[: len(order)], y_train[: len(order)]
        else:
            xs, ys = x_train[torch.from_numpy(order)], y_train[torch.from_numpy(order)]
        sizes = np.array([len(p) for p in parts], dtype=np.int64)
        shards = SliceShards(xs, ys, np.concatenate([[0], np.cumsum(sizes)]))
        shape = tuple(xs.shape[1:])
        return cls._build(
            shards, sizes, x_test, y_test, num_classes, shape, gpus_mix, network_mix, cfg, regions=regions, seed=seed
        )

    @classmethod
    def _build(
        cls,
        shards: Shards,
        sizes: np.ndarray,
        x_test: torch.Tensor,
        y_test: torch.Tensor,
        num_classes: int,
        input_shape: tuple[int, ...],
        gpus_mix: str | dict[str, float],
        network_mix: str | dict[str, float],
        cfg: PoolConfig | None,
        *,
        regions: list[str] | None = None,
        seed: int | None = None,
    ) -> NodePool:
        """Nodes ``0..n-1`` as table rows served by ``shards``; GPUs and links drawn by seed."""
        if cfg is not None:
            regions, seed = cfg.regions, cfg.seed
        seed = seed or 0
        num_nodes = len(sizes)
        mix = _gpu_mix(gpus_mix)
        names = list(mix)
        picks = assign_indices(_counts(list(mix.values()), num_nodes), np.random.default_rng([seed, 1]))
        table = NodeTable(num_nodes)
        table.gpus = [GPUS[g] for g in names]
        table.append(np.arange(num_nodes), picks, sizes)
        table.shards = shards
        retry = RetryPolicy() if cfg is None else RetryPolicy(loss_unit=cfg.loss_unit, mtu_bytes=cfg.mtu_bytes)
        network = Network.build(range(num_nodes), mix=network_mix, regions=regions, seed=seed, retry=retry)
        return cls(
            table, network, x_test=x_test, y_test=y_test, num_classes=num_classes, config=cfg, input_shape=input_shape
        )

    @classmethod
    def from_arrays(
        cls,
        x: Any,
        y: Any,
        *,
        num_nodes: int,
        x_test: Any = None,
        y_test: Any = None,
        partition: str | Callable[[np.ndarray, int], Sequence[Sequence[int]]] = "iid",
        alpha: float = 0.5,
        shards_per_node: int = 2,
        test_fraction: float = 0.2,
        num_classes: int | None = None,
        network: str | dict[str, float] = "mixed",
        gpus: str | dict[str, float] = "mixed",
        regions: list[str] | None = None,
        seed: int = 0,
        backend: Any = None,
    ) -> NodePool:
        """A pool over your own data: features ``x`` (numpy or torch, any shape ``[N, ...]``), labels ``y``.

        ``partition`` is a name (iid, shards, dirichlet, quantity) or a function ``(labels, num_nodes)
        -> one index list per node``. Without ``x_test``/``y_test``, a stratified ``test_fraction``
        is held out. Features become float32 (the lab trains in float32) and labels int64 class ids.
        The pool records no config, so ``Coordinator.restore`` needs it passed again (``pool=``).
        """
        from . import checks
        from .data import stratified_split
        from .partition import PARTITIONS
        from .partition import partition as split

        num_nodes = checks.integer("num_nodes", num_nodes, low=1)
        seed = checks.seed("seed", seed)
        xs, ys = _features("x", x), _labels("y", y)
        if len(xs) != len(ys):
            raise ConfigError("y", f"{len(ys)} labels", f"one label per row of x ({len(xs)} rows)")
        if x_test is None and y_test is None:
            test_fraction = checks.number("test_fraction", test_fraction, 0, 0.9, open_low=True)
            train_idx, test_idx = stratified_split(ys.numpy(), test_fraction, seed)
            train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
            xt, yt = xs[torch.from_numpy(test_idx)], ys[torch.from_numpy(test_idx)]
            xs, ys = xs[torch.from_numpy(train_idx)], ys[torch.from_numpy(train_idx)]
        elif x_test is None or y_test is None:
            raise ConfigError("x_test", "only one of x_test, y_test", "both x_test and y_test, or neither")
        else:
            xt, yt = _features("x_test", x_test), _labels("y_test", y_test)
            if len(xt) != len(yt) or xt.shape[1:] != xs.shape[1:]:
                raise ConfigError(
                    "x_test", tuple(xt.shape), f"rows shaped like x's {tuple(xs.shape[1:])}, one per label"
                )
        top = int(max(ys.max(), yt.max())) + 1 if len(ys) else 0
        classes = checks.integer("num_classes", num_classes if num_classes is not None else top, low=max(top, 2))
        if len(ys) < num_nodes:
            raise ConfigError("num_nodes", num_nodes, f"at most {len(ys)} (the training rows)")
        if callable(partition):
            parts = [np.asarray(p, dtype=np.int64) for p in partition(ys.numpy(), num_nodes)]
            flat = np.concatenate(parts) if parts else np.empty(0, np.int64)
            if len(parts) != num_nodes or any(len(p) == 0 for p in parts):
                raise ConfigError("partition", f"{len(parts)} parts", f"{num_nodes} non-empty index lists")
            if len(np.unique(flat)) != len(flat) or flat.min() < 0 or flat.max() >= len(ys):
                raise ConfigError(
                    "partition", "overlapping or out-of-range indices", f"disjoint indices in [0, {len(ys)})"
                )
        else:
            checks.choice("partition", partition, tuple(p for p in PARTITIONS if p != "natural"))
            parts = split(ys.numpy(), num_nodes, partition, alpha=alpha, shards_per_node=shards_per_node, seed=seed)
        if backend is not None:
            _check_backend(backend)
        pool = cls._assemble(xs, ys, parts, xt, yt, classes, gpus, network, regions, seed, None)
        return pool.with_backend(backend)

    @classmethod
    def from_dataset(cls, dataset: Any, *, num_nodes: int, test_dataset: Any = None, **options: Any) -> NodePool:
        """A pool over any torch ``Dataset`` of ``(features, label)`` pairs; options as :meth:`from_arrays`.

        The samples are read once and stacked (the simulated nodes hold tensors, not loaders).
        """
        x, y = _stack(dataset, "dataset")
        if test_dataset is not None:
            options["x_test"], options["y_test"] = _stack(test_dataset, "test_dataset")
        return cls.from_arrays(x, y, num_nodes=num_nodes, **options)

    # -- membership and state ------------------------------------------------------------------
    @property
    def nodes(self) -> NodeIds:
        """The registered nodes by id (a read-only mapping over the table: nothing is copied)."""
        return NodeIds(self)

    def __len__(self) -> int:
        return int(self.table.present[: self.table.size].sum())

    def __iter__(self) -> Iterator[Node]:
        return (self._node(int(r)) for r in self.table.live())

    def _node(self, row: int) -> Node:
        node = self._registered.get(int(self.table.ids[row]))
        return node if node is not None else Node.view(self.table, row)

    def __getitem__(self, node_id: int) -> Node:
        row = self.table.row(node_id)
        if row is None:
            live = self.table.ids[self.table.live()]
            raise ConfigError("node", node_id, f"an id of a registered node (0..{int(live.max(initial=-1))})")
        return self._node(row)

    def __contains__(self, node_id: object) -> bool:
        return isinstance(node_id, (int, np.integer)) and self.table.row(int(node_id)) is not None

    def register(self, node: Node, *, profile: str = "good", region: str = "local") -> None:
        """Add a node and give it a link; ids are unique."""
        if node.id in self:
            raise ConfigError("node.id", node.id, "an id not yet registered")
        x = node.x
        if x is not None and x.shape[1:] != torch.Size(self.input_shape):
            raise ConfigError("node.x", tuple(x.shape), f"samples of shape {self.input_shape}")
        self._adopt(node)
        self.network.add_link(node.id, profile, region=region, seed=node.id)

    def remove(self, node_id: int) -> Node:
        """Unregister a node; the node returned keeps its values in a row of its own."""
        node = self[node_id]
        data = node.shard()
        detached = Node(node.id, node.gpu, *(data if data is not None else (None, None)))
        for name in ("state", "last_heartbeat", "consecutive_failures", "total_failures", "rounds_selected"):
            setattr(detached, name, getattr(node, name))
        detached._t.samples[0] = node.num_samples
        self.table.remove(node._r)
        self._registered.pop(node.id, None)
        node._t, node._r = detached._t, detached._r  # whoever holds the node object keeps a valid node
        self.network.remove_link(node_id)
        return node

    def available_ids(self) -> np.ndarray:
        """Ids of nodes that can be selected (healthy and online), in registration order, as an array."""
        t = self.table
        ok = t.present[: t.size] & (t.state[: t.size] == _STATE_CODE[NodeState.ONLINE])
        ids = t.ids[: t.size][ok]
        if self.offline:
            ids = ids[~np.isin(ids, np.fromiter(self.offline, dtype=np.int64, count=len(self.offline)))]
        return ids

    def available(self) -> list[int]:
        """Ids of nodes that can be selected (healthy and online), in registration order."""
        return self.available_ids().tolist()

    def set_state(self, node_id: int, state: NodeState | str) -> None:
        try:
            state = NodeState(state)
        except ValueError:
            raise ConfigError("state", state, "one of " + ", ".join(s.value for s in NodeState)) from None
        self[node_id].state = state

    @property
    def total_samples(self) -> int:
        t = self.table
        return int(t.samples[: t.size][t.present[: t.size]].sum())

    def state_dict(self) -> dict[str, Any]:
        """Mutable node and network state for checkpoints; shards are rebuilt from the config."""
        return {
            "nodes": {
                i: {
                    "state": n.state.value,
                    "last_heartbeat": n.last_heartbeat,
                    "consecutive_failures": n.consecutive_failures,
                    "total_failures": n.total_failures,
                    "rounds_selected": n.rounds_selected,
                }
                for i, n in ((n.id, n) for n in self)
            },
            "network": self.network.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for i, s in state["nodes"].items():
            node = self[int(i)]
            node.state = NodeState(s["state"])
            node.last_heartbeat = float(s["last_heartbeat"])
            node.consecutive_failures = int(s["consecutive_failures"])
            node.total_failures = int(s["total_failures"])
            node.rounds_selected = int(s["rounds_selected"])
        self.network.load_state_dict(state["network"])


def _features(field: str, x: Any) -> torch.Tensor:
    """Features as a float32 tensor ``[N, ...]`` (float64 and integer inputs are converted)."""
    try:
        t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    except (TypeError, ValueError, RuntimeError):
        raise ConfigError(field, type(x).__name__, "a numeric array or tensor [N, ...]") from None
    if t.dim() < 2 or not (
        t.is_floating_point() or t.dtype in (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)
    ):
        raise ConfigError(
            field, f"{t.dtype} {tuple(t.shape)}", "a numeric array or tensor [N, features...] with N rows"
        )
    t = t.to(torch.float32)
    if not bool(torch.isfinite(t).all()):
        raise ConfigError(field, "non-finite values", "finite features (no NaN or inf)")
    return t.contiguous()


def _labels(field: str, y: Any) -> torch.Tensor:
    """Labels as int64 class ids ``[N]`` in ``[0, C)``."""
    t = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y)
    if t.dim() != 1 or t.is_floating_point() or t.dtype == torch.bool or t.is_complex():
        raise ConfigError(field, f"{t.dtype} {tuple(t.shape)}", "integer class ids, one per row ([N])")
    t = t.to(torch.int64)
    if len(t) and int(t.min()) < 0:
        raise ConfigError(field, int(t.min()), "class ids >= 0")
    return t


def _stack(dataset: Any, field: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Read a map-style torch Dataset's ``(x, y)`` pairs into two stacked tensors."""
    try:
        n = len(dataset)
    except TypeError:
        raise ConfigError(field, type(dataset).__name__, "a map-style Dataset (with __len__ and __getitem__)") from None
    if n == 0:
        raise ConfigError(field, "an empty dataset", "at least one sample")
    xs, ys = [], []
    for i in range(n):
        item = dataset[i]
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise ConfigError(field, f"item {i}: {type(item).__name__}", "(features, label) pairs")
        xs.append(torch.as_tensor(np.asarray(item[0]) if not isinstance(item[0], torch.Tensor) else item[0]))
        ys.append(int(item[1]))
    return torch.stack(xs), torch.tensor(ys, dtype=torch.int64)
