"""Aggregation strategies, one per file, each named after its paper.

Registry names and their options (``TrainConfig.strategy_options``). Each module declares the
names it provides in a ``NAMES`` table, so adding a strategy is one new file (plus its tests):

==================  ==============================================================
fedavg              weighted=True
mean                weighted=False (FedAvg's plain mean)
fedavgm             beta=0.9, server_lr=1.0, weighted=True
fedprox             mu=0.01 (client proximal term), weighted=True
fedadagrad          eta=1e-2, beta1=0.9, tau=1e-3, weighted=True
fedadam, fedyogi    eta=1e-2, beta1=0.9, beta2=0.99, tau=1e-3, weighted=True
median              (none)
trimmed-mean        beta=0.1 (fraction trimmed from each end, in [0, 0.5))
krum                f=1 (needs n >= 2f+3 updates in a round)
multi-krum          f=1, m=None (None: n - f)
clipped-fedavg      max_norm=1.0, weighted=True
fednova             server_lr=1.0, weighted=True (normalised by each node's local steps)
scaffold            server_lr=1.0, weighted=False (control variates; client correction)
==================  ==============================================================

Other combinations are built directly, e.g. ``Clipped(inner=FedMedian(), max_norm=0.5)``,
and passed to the Coordinator as an instance.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable
from typing import Any

from ..errors import ConfigError
from .base import ClientObjective, Strategy, UpdateContext
from .clipping import Clipped, ClippedFedAvg
from .fedavg import FedAvg
from .fedavgm import FedAvgM
from .fednova import FedNova
from .fedopt import FedAdagrad, FedAdam, FedOpt, FedYogi
from .fedprox import FedProx
from .krum import Krum, MultiKrum
from .median import FedMedian
from .scaffold import Scaffold
from .trimmed_mean import TrimmedMean


def _discover() -> dict[str, Callable[..., Strategy]]:
    """Every ``NAMES`` table of the modules in this package, in module order: a new strategy is one new file."""
    found: dict[str, Callable[..., Strategy]] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        names = getattr(importlib.import_module(f"{__name__}.{info.name}"), "NAMES", {})
        if clash := sorted(set(names) & set(found)):
            raise RuntimeError(f"strategy name {clash[0]!r} is registered twice (second time in {info.name})")
        found.update(names)
    return found


STRATEGIES: dict[str, Callable[..., Strategy]] = _discover()


def get_strategy(strategy: str | Strategy, **options: Any) -> Strategy:
    """A strategy instance from its name and keyword options, or the instance itself."""
    if isinstance(strategy, Strategy):
        if options:
            raise ConfigError("strategy_options", options, "none when a Strategy instance is given")
        return strategy
    if strategy not in STRATEGIES:
        raise ConfigError("strategy", strategy, "one of " + ", ".join(STRATEGIES) + " or a Strategy instance")
    cls = STRATEGIES[strategy]
    accepted = [p for p in inspect.signature(cls).parameters]
    if unknown := sorted(set(options) - set(accepted)):
        raise ConfigError(
            f"strategy_options.{unknown[0]}",
            options[unknown[0]],
            f"options of {strategy}: " + (", ".join(accepted) or "none"),
        )
    return cls(**options)


__all__ = [
    "STRATEGIES",
    "ClientObjective",
    "Clipped",
    "ClippedFedAvg",
    "FedAdagrad",
    "FedAdam",
    "FedAvg",
    "FedAvgM",
    "FedMedian",
    "FedNova",
    "FedProx",
    "FedOpt",
    "FedYogi",
    "Krum",
    "MultiKrum",
    "Scaffold",
    "Strategy",
    "TrimmedMean",
    "UpdateContext",
    "get_strategy",
]
