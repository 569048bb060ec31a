"""Aggregation strategies, one per file, each named after its paper."""
from __future__ import annotations

import inspect
from typing import Any

from ..errors import ConfigError
from .base import Strategy
from .fedavg import FedAvg

STRATEGIES: dict[str, type[Strategy]] = {"fedavg": FedAvg}


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
        raise ConfigError(f"strategy_options.{unknown[0]}", options[unknown[0]],
                          f"options of {strategy}: " + (", ".join(accepted) or "none"))
    return cls(**options)


__all__ = ["STRATEGIES", "FedAvg", "Strategy", "get_strategy"]
