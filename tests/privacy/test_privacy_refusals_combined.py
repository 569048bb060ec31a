"""Levers that cannot hold together are refused by field: a codec or a per-node strategy on a SecAgg sum."""

from __future__ import annotations

import pytest

from hypergpu_lab import ConfigError, TrainConfig


def test_compression_with_secure_aggregation_is_refused_by_field() -> None:
    with pytest.raises(ConfigError, match="train.compression"):
        TrainConfig(compression="int8", privacy={"mode": "off", "secagg": True})


@pytest.mark.parametrize("strategy", ["fednova", "scaffold"])
def test_per_node_strategies_with_secure_aggregation_are_refused_by_field(strategy: str) -> None:
    with pytest.raises(ConfigError, match="train.strategy"):
        TrainConfig(strategy=strategy, momentum=0.0, privacy={"mode": "off", "secagg": True})
