"""Aggregation strategies, one per file, each named after its paper."""
from __future__ import annotations

from ..errors import ConfigError
from .base import Strategy
from .fedavg import FedAvg

STRATEGIES: dict[str, type[Strategy]] = {"fedavg": FedAvg}


def get_strategy(strategy: str | Strategy) -> Strategy:
    """A strategy instance from its name, or the instance itself."""
    if isinstance(strategy, Strategy):
        return strategy
    if strategy not in STRATEGIES:
        raise ConfigError("strategy", strategy, "one of " + ", ".join(STRATEGIES) + " or a Strategy instance")
    return STRATEGIES[strategy]()


__all__ = ["STRATEGIES", "FedAvg", "Strategy", "get_strategy"]
