"""The simulated node pool's configuration: core, because :class:`~hypergpu_lab.nodes.NodePool` builds from it.

:mod:`hypergpu_lab.config` re-exports everything here next to the train and run
configs, which validate plug-in names (strategies, policies) and so sit above the
plug-ins; keeping :class:`PoolConfig` apart lets ``nodes.py`` import it without
an edge up the layers (see :data:`hypergpu_lab.layers.LAYERS`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from . import checks
from .errors import ConfigError
from .network import LOSS_UNITS

DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10", "synthetic")
PARTITIONS = ("iid", "shards", "dirichlet", "quantity", "natural")


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
    loss_unit: str = "message"  # what a link's loss drops: a whole message, or each packet (resent selectively)
    mtu_bytes: int = 1500  # bytes per packet when loss_unit is "packet"
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
        self.num_nodes = checks.integer(p + "num_nodes", self.num_nodes, low=1)
        checks.choice(p + "dataset", self.dataset, DATASETS)
        checks.choice(p + "partition", self.partition, PARTITIONS)
        if self.partition == "natural" and self.dataset != "synthetic":
            raise ConfigError(
                p + "partition",
                "natural",
                "iid, shards, dirichlet or quantity for " + self.dataset,
                hint="only the synthetic dataset comes split by node",
            )
        if self.dataset == "synthetic" and self.partition != "natural":
            self.partition = "natural"
        self.alpha = checks.number(p + "alpha", self.alpha, 0, open_low=True)
        self.shards_per_node = checks.integer(p + "shards_per_node", self.shards_per_node, low=1)
        if not isinstance(self.network, (str, dict)):
            raise ConfigError(p + "network", self.network, "a mix name, a link profile name or {profile: fraction}")
        checks.choice(p + "loss_unit", self.loss_unit, LOSS_UNITS)
        self.mtu_bytes = checks.integer(
            p + "mtu_bytes", self.mtu_bytes, low=1, accepted="an integer >= 1 (bytes per packet)"
        )
        if not isinstance(self.gpus, (str, dict)):
            raise ConfigError(p + "gpus", self.gpus, "a GPU mix name, a GPU name or {gpu: fraction}")
        if self.regions is not None and (not isinstance(self.regions, (list, tuple)) or not self.regions):
            raise ConfigError(p + "regions", self.regions, "a non-empty list of region names or null")
        self.seed = checks.seed(p + "seed", self.seed)
        if self.data_root is not None and not isinstance(self.data_root, (str, os.PathLike)):
            raise ConfigError(p + "data_root", self.data_root, "a folder path or null")
        checks.boolean(p + "download", self.download)
        self.test_fraction = checks.number(p + "test_fraction", self.test_fraction, 0, 0.9, open_low=True)
        self.max_train = checks.optional(checks.integer, p + "max_train", self.max_train, low=1)
        self.max_test = checks.optional(checks.integer, p + "max_test", self.max_test, low=1)
        self.synthetic_alpha = checks.number(p + "synthetic_alpha", self.synthetic_alpha, 0)
        self.synthetic_beta = checks.number(p + "synthetic_beta", self.synthetic_beta, 0)
