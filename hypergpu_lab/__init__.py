"""HyperGPU Lab: network-aware federated training on simulated heterogeneous GPU nodes.

The three objects a person meets first::

    from hypergpu_lab import Coordinator, NodePool
    pool = NodePool.simulated(10, dataset="digits", partition="dirichlet", alpha=0.5, network="mixed", seed=0)
    coord = Coordinator(model="cnn", pool=pool, strategy="fedavg")
    history = coord.run(rounds=20)

Every name loads on first use (PEP 562), so ``import hypergpu_lab`` costs milliseconds, not torch's
seconds: Jupyter imports the package at server start (the launcher tile) and ``%load_ext
hypergpu_lab`` imports it in every kernel that asks; neither should pay for a run it may never start.
"""

from __future__ import annotations

import logging
from typing import Any

from . import lazy

__version__ = "0.1.0"
logging.getLogger(__name__).addHandler(logging.NullHandler())

_EXPORTS = {
    "threads": "",  # the thread policy: hypergpu_lab.threads.set_threads(n)
    "PoolConfig": "config",
    "RunConfig": "config",
    "TrainConfig": "config",
    "preset": "config",
    "Coordinator": "coordinator",
    "CheckpointError": "errors",
    "ConfigError": "errors",
    "DataNotFoundError": "errors",
    "NodeRecord": "events",
    "RoundReport": "events",
    "History": "metrics",
    "GPUS": "nodes",
    "Node": "nodes",
    "NodePool": "nodes",
    "NodeState": "nodes",
    "ChainClient": "chain",  # loads web3: the core never imports a chain library
}


__getattr__, __dir__ = lazy.exports(__name__, _EXPORTS, globals())


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext hypergpu_lab``: the ``%hypergpu`` and ``%%hypergpu`` magics (see :mod:`hypergpu_lab.magics`)."""
    from .magics import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from .magics import unload

    unload(ipython)


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
