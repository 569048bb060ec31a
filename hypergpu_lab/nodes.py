"""Simulated GPU nodes: each owns a private data shard, a GPU spec and a network link.

A node's GPU turns samples into simulated compute seconds and bounds the
largest batch it accepts; its state (online, crashed, quarantined), heartbeat
and failure counts are what selection and fault handling read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np
import torch

from .errors import ConfigError
from .models import ModelCost
from .network import Network
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


@dataclass(eq=False)
class Node:
    """One participant. ``x``/``y`` are its own shard and are never sent anywhere.

    With a remote backend (Ray) the shard lives where the node trains: ``x``/``y`` are None
    here and the node keeps only its metadata (sample count, GPU, state).
    """

    id: int
    gpu: GPUSpec
    x: torch.Tensor | None = field(repr=False)
    y: torch.Tensor | None = field(repr=False)
    state: NodeState = NodeState.ONLINE
    last_heartbeat: float = 0.0
    consecutive_failures: int = 0
    total_failures: int = 0
    rounds_selected: int = 0
    _samples: int = field(default=0, init=False, repr=False, compare=False)  # size of a released shard

    @property
    def num_samples(self) -> int:
        return int(self.y.shape[0]) if self.y is not None else self._samples

    def release_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Hand the shard to a backend that keeps it elsewhere; this node keeps only its size."""
        if self.x is None or self.y is None:
            raise ConfigError("node", self.id, "a node that still holds its shard (this one gave it away)")
        x, y = self.x, self.y
        self._samples, self.x, self.y = int(y.shape[0]), None, None
        return x, y

    @property
    def available(self) -> bool:
        return self.state is NodeState.ONLINE

    def max_batch(self, cost: ModelCost, *, usable: float = 0.9) -> int:
        """Largest batch whose activations fit beside weights, grads and optimiser state (4x params)."""
        free = self.gpu.memory_gb * 2**30 * usable - 4 * cost.param_bytes
        return max(0, int(free // max(cost.activation_bytes_per_sample, 1.0)))

    def compute_seconds(self, samples: int, cost: ModelCost) -> float:
        """Simulated wall time of ``samples`` forward+backward passes on this GPU."""
        return samples * cost.train_flops_per_sample / (self.gpu.tflops * 1e12 * self.gpu.efficiency)

    def heartbeat(self, t: float) -> None:
        self.last_heartbeat = max(self.last_heartbeat, t)
        self.consecutive_failures = 0

    def record_failure(self) -> None:
        self.consecutive_failures += 1
        self.total_failures += 1


def assign(names: Sequence[str], fractions: Sequence[float], n: int, rng: np.random.Generator) -> list[str]:
    """Exact counts by largest remainder, then a seeded shuffle: a mix of 10% gives 10% of nodes."""
    raw = np.asarray(fractions, dtype=float) / float(np.sum(fractions)) * n
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    out = [name for name, c in zip(names, counts) for _ in range(c)]
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


class NodePool:
    """The nodes, their links and the coordinator's held-out test set."""

    def __init__(
        self,
        nodes: Sequence[Node],
        network: Network,
        *,
        x_test: torch.Tensor,
        y_test: torch.Tensor,
        num_classes: int,
        config: PoolConfig | None = None,
    ) -> None:
        self.nodes: dict[int, Node] = {n.id: n for n in nodes}
        self.network = network
        self.x_test, self.y_test = x_test, y_test
        self.num_classes = num_classes
        shard = nodes[0].x if nodes else None
        self.input_shape = tuple((shard if shard is not None else x_test).shape[1:])
        self.config = config
        self.backend: Any = None  # where the nodes train when not in this process (see with_backend)
        # Nodes the availability model has offline now: set by the coordinator at each round's start.
        self.offline: frozenset[int] = frozenset()

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
        self.backend = backend
        return self

    @classmethod
    def from_config(cls, cfg: PoolConfig, *, backend: Any = None) -> NodePool:
        """Load, partition and place the data ``cfg`` describes; ``backend`` as in :meth:`with_backend`."""
        if backend is not None:
            _check_backend(backend)  # before the data loads: a wrong backend fails fast
        from .data import load_dataset
        from .partition import partition

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
        mix = _gpu_mix(cfg.gpus)
        gpus = assign(list(mix), list(mix.values()), cfg.num_nodes, np.random.default_rng([cfg.seed, 1]))
        # Rows are reordered once so that each node's shard is one contiguous slice; a node holds a view
        # of its own slice only. One copy of the data in all, however many nodes (10,000 fit in memory).
        order = np.concatenate([np.asarray(p, dtype=np.int64) for p in parts])
        if np.array_equal(order, np.arange(len(order))):  # already node by node (synthetic): no copy
            xs, ys = data.x_train[: len(order)], data.y_train[: len(order)]
        else:
            xs, ys = data.x_train[torch.from_numpy(order)], data.y_train[torch.from_numpy(order)]
        del data
        sizes = [len(p) for p in parts]
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        nodes = [
            Node(i, GPUS[g], xs[bounds[i] : bounds[i + 1]], ys[bounds[i] : bounds[i + 1]]) for i, g in enumerate(gpus)
        ]
        network = Network.build(list(range(cfg.num_nodes)), mix=cfg.network, regions=cfg.regions, seed=cfg.seed)
        log.info(
            "pool: %d nodes, %s/%s, %d train / %d test samples",
            cfg.num_nodes,
            cfg.dataset,
            cfg.partition,
            sum(n.num_samples for n in nodes),
            len(y_test),
        )
        pool = cls(nodes, network, x_test=x_test, y_test=y_test, num_classes=num_classes, config=cfg)
        return pool.with_backend(backend)

    # -- membership and state ------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def __getitem__(self, node_id: int) -> Node:
        try:
            return self.nodes[node_id]
        except KeyError:
            raise ConfigError(
                "node", node_id, f"an id of a registered node (0..{max(self.nodes, default=-1)})"
            ) from None

    def register(self, node: Node, *, profile: str = "good", region: str = "local") -> None:
        """Add a node and give it a link; ids are unique."""
        if node.id in self.nodes:
            raise ConfigError("node.id", node.id, "an id not yet registered")
        if node.x is not None and node.x.shape[1:] != torch.Size(self.input_shape):
            raise ConfigError("node.x", tuple(node.x.shape), f"samples of shape {self.input_shape}")
        self.nodes[node.id] = node
        self.network.add_link(node.id, profile, region=region, seed=node.id)

    def remove(self, node_id: int) -> Node:
        node = self[node_id]
        del self.nodes[node_id]
        self.network.remove_link(node_id)
        return node

    def available(self) -> list[int]:
        """Ids of nodes that can be selected (healthy and online), in id order."""
        return [i for i, n in self.nodes.items() if n.available and i not in self.offline]

    def set_state(self, node_id: int, state: NodeState | str) -> None:
        try:
            state = NodeState(state)
        except ValueError:
            raise ConfigError("state", state, "one of " + ", ".join(s.value for s in NodeState)) from None
        self[node_id].state = state

    @property
    def total_samples(self) -> int:
        return sum(n.num_samples for n in self.nodes.values())

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
                for i, n in self.nodes.items()
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
