"""The simulated node pool's configuration: core, because :class:`~hypergpu_lab.nodes.NodePool` builds from it.

:mod:`hypergpu_lab.config` re-exports everything here next to the train and run
configs, which validate plug-in names (strategies, policies) and so sit above the
plug-ins; keeping :class:`PoolConfig` apart lets ``nodes.py`` import it without
an edge up the layers (see :data:`hypergpu_lab.layers.LAYERS`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError

DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10", "synthetic")
PARTITIONS = ("iid", "shards", "dirichlet", "quantity", "natural")


def _int(name: str, value: Any, low: int, high: float = math.inf) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        rng = f">= {low}" if high == math.inf else f"in [{low}, {int(high)}]"
        raise ConfigError(name, value, f"an integer {rng}")


def _num(name: str, value: Any, low: float, high: float = math.inf, *, open_low: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if open_low else value >= low) and value <= high
    if not ok:
        lo = f"> {low}" if open_low else f">= {low}"
        raise ConfigError(name, value, f"a finite number {lo}" + ("" if high == math.inf else f" and <= {high}"))


def _choice(name: str, value: Any, accepted: tuple[str, ...]) -> None:
    if value not in accepted:
        raise ConfigError(name, value, "one of " + ", ".join(accepted))


@dataclass
class PoolConfig:
    """The simulated nodes: how many, whose data, which GPUs and links."""

    num_nodes: int = 10
    dataset: str = "digits"
    partition: str = "iid"  # natural is the synthetic dataset's own per-node split
    alpha: float = 0.5  # Dirichlet concentration (dirichlet, quantity); smaller = more skew
    shards_per_node: int = 2  # label shards (McMahan et al.)
    network: str | dict[str, float] = "mixed"  # a mix, a single link profile, or {profile: fraction}
    regions: list[str] | None = None
    gpus: str | dict[str, float] = "mixed"  # a GPU mix, a single GPU, or {gpu: fraction}
    seed: int = 0
    data_root: str | None = None  # folder holding MNIST / Fashion-MNIST / CIFAR-10 files
    download: bool = False
    test_fraction: float = 0.2
    max_train: int | None = None
    max_test: int | None = None
    synthetic_alpha: float = 1.0
    synthetic_beta: float = 1.0

    def __post_init__(self) -> None:
        p = "pool."
        _int(p + "num_nodes", self.num_nodes, 1)
        _choice(p + "dataset", self.dataset, DATASETS)
        _choice(p + "partition", self.partition, PARTITIONS)
        if self.partition == "natural" and self.dataset != "synthetic":
            raise ConfigError(
                p + "partition",
                "natural",
                "iid, shards, dirichlet or quantity for " + self.dataset,
                hint="only the synthetic dataset comes split by node",
            )
        if self.dataset == "synthetic" and self.partition != "natural":
            self.partition = "natural"
        _num(p + "alpha", self.alpha, 0, open_low=True)
        _int(p + "shards_per_node", self.shards_per_node, 1)
        if not isinstance(self.network, (str, dict)):
            raise ConfigError(p + "network", self.network, "a mix name, a link profile name or {profile: fraction}")
        if not isinstance(self.gpus, (str, dict)):
            raise ConfigError(p + "gpus", self.gpus, "a GPU mix name, a GPU name or {gpu: fraction}")
        if self.regions is not None and (not isinstance(self.regions, (list, tuple)) or not self.regions):
            raise ConfigError(p + "regions", self.regions, "a non-empty list of region names or null")
        _int(p + "seed", self.seed, 0)
        if self.data_root is not None and not isinstance(self.data_root, (str, os.PathLike)):
            raise ConfigError(p + "data_root", self.data_root, "a folder path or null")
        if not isinstance(self.download, bool):
            raise ConfigError(p + "download", self.download, "true or false")
        _num(p + "test_fraction", self.test_fraction, 0, 0.9, open_low=True)
        for name in ("max_train", "max_test"):
            if getattr(self, name) is not None:
                _int(p + name, getattr(self, name), 1)
        _num(p + "synthetic_alpha", self.synthetic_alpha, 0)
        _num(p + "synthetic_beta", self.synthetic_beta, 0)
