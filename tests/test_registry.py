"""Names resolve in the registry layer; the core takes objects (see hypergpu_lab.layers)."""

from __future__ import annotations

import pytest

from hypergpu_lab import config, registry, strategies
from hypergpu_lab.adaptation import AdaptivePolicy
from hypergpu_lab.config import TrainConfig
from hypergpu_lab.errors import ConfigError
from hypergpu_lab.nodes import NodePool
from hypergpu_lab.planning import UniformPolicy


def test_strategy_names_have_one_source() -> None:
    assert config.STRATEGIES is registry.STRATEGIES and set(registry.STRATEGIES) == set(strategies.STRATEGIES)
    with pytest.raises(ConfigError, match="train.strategy"):
        TrainConfig(strategy="no-such-strategy")


def test_make_policy_builds_the_planner_a_config_names() -> None:
    uniform = registry.make_policy(TrainConfig(batch_size=16, clients_per_round=3), seed=1)
    assert isinstance(uniform, UniformPolicy) and uniform.batch_size == 16 and uniform.clients_per_round == 3
    assert isinstance(registry.make_policy(TrainConfig(policy="adaptive"), seed=1), AdaptivePolicy)
    with pytest.raises(ConfigError, match="policy_options"):
        registry.make_policy(TrainConfig(policy_options={"mode": "proactive"}), seed=1)


def test_backend_names_resolve_in_the_registry_only() -> None:
    assert registry.make_backend("inprocess") is None and registry.make_backend(None) is None

    class Fake:
        def attach(self, pool: NodePool) -> None:
            self.pool = pool

    fake = Fake()
    assert registry.make_backend(fake) is fake
    with pytest.raises(ConfigError, match="backend"):
        registry.make_backend("no-such-backend")
    pool = NodePool.simulated(3, dataset="digits", network="lan", seed=0, backend=fake)
    assert pool.backend is fake and fake.pool is pool
    with pytest.raises(ConfigError, match="make_backend"):  # the core refuses names (before loading data)
        NodePool.simulated(3, dataset="digits", backend="ray")
    with pytest.raises(ConfigError, match="make_backend"):
        pool.with_backend("inprocess")
