"""HyperGPU Lab: network-aware federated training on simulated heterogeneous GPU nodes.

The three objects a person meets first::

    from hypergpu_lab import Coordinator, NodePool
    pool = NodePool.simulated(10, dataset="digits", partition="dirichlet", alpha=0.5, network="mixed", seed=0)
    coord = Coordinator(model="cnn", pool=pool, strategy="fedavg")
    history = coord.run(rounds=20)
"""

from __future__ import annotations

import logging

from . import threads as threads  # the thread policy: hypergpu_lab.threads.set_threads(n)
from .config import PoolConfig, RunConfig, TrainConfig, preset
from .coordinator import Coordinator
from .errors import CheckpointError, ConfigError, DataNotFoundError
from .events import NodeRecord, RoundReport
from .metrics import History
from .nodes import GPUS, Node, NodePool, NodeState

__version__ = "0.1.0"
logging.getLogger(__name__).addHandler(logging.NullHandler())


def __getattr__(name: str) -> object:
    """``ChainClient`` loads web3 only when asked for: the core never imports a chain library."""
    if name == "ChainClient":
        from .chain import ChainClient

        return ChainClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ChainClient",
    "GPUS",
    "CheckpointError",
    "ConfigError",
    "Coordinator",
    "DataNotFoundError",
    "History",
    "Node",
    "NodePool",
    "NodeRecord",
    "NodeState",
    "PoolConfig",
    "RoundReport",
    "RunConfig",
    "TrainConfig",
    "__version__",
    "preset",
]
