"""Tests for simulated nodes, the node pool and the uniform round policy."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from hypergpu_lab import checkpoint
from hypergpu_lab.data import load_dataset
from hypergpu_lab.errors import ConfigError
from hypergpu_lab.models import ModelCost
from hypergpu_lab.network import Disconnect
from hypergpu_lab.nodes import GPU_MIXES, GPUS, GPUSpec, Node, NodePool, NodeState, assign
from hypergpu_lab.planning import UniformPolicy

# A cost with round numbers: 1 MFLOP per sample, 1 MiB of activations, 1000 bytes of parameters.
COST = ModelCost(train_flops_per_sample=1e6, activation_bytes_per_sample=2**20, param_bytes=1000)


def _node(gpu: GPUSpec, node_id: int = 0, n: int = 4, shape: tuple[int, ...] = (1, 8, 8)) -> Node:
    return Node(node_id, gpu, torch.zeros(n, *shape), torch.zeros(n, dtype=torch.long))


def _small_pool(num_nodes: int = 5, **options: object) -> NodePool:
    options.setdefault("max_train", 100)
    return NodePool.simulated(num_nodes, dataset="digits", **options)


def _gpu_key(spec: GPUSpec) -> str:
    return next(k for k, v in GPUS.items() if v == spec)


# -- GPU catalogue and per-node arithmetic ---------------------------------------------------------


def test_gpu_catalogue_is_sane() -> None:
    # Assert
    assert {"laptop", "t4", "h100"} <= set(GPUS)
    for spec in GPUS.values():
        assert spec.tflops > 0 and spec.memory_gb > 0 and 0 < spec.efficiency <= 1
    assert GPUS["h100"].tflops > GPUS["t4"].tflops > GPUS["laptop"].tflops
    for mix in GPU_MIXES.values():
        assert set(mix) <= set(GPUS)
        assert math.isclose(sum(mix.values()), 1.0)


def test_max_batch_matches_memory_formula() -> None:
    # Prepare
    cost = ModelCost(train_flops_per_sample=5e5, activation_bytes_per_sample=123_457.0, param_bytes=1_000_003)
    spec = GPUSpec("test", tflops=10.0, memory_gb=2.0)

    # Execute
    got = _node(spec).max_batch(cost)

    # Assert
    expected = math.floor((2.0 * 2**30 * 0.9 - 4 * 1_000_003) / 123_457.0)
    assert got == expected
    assert got > 0


def test_max_batch_is_zero_when_model_does_not_fit() -> None:
    # Prepare: 1 KB of memory cannot hold 4 x 1000 bytes of weights, grads and optimiser state
    tiny = GPUSpec("tiny", tflops=1.0, memory_gb=1e-6)

    # Execute / Assert
    assert _node(tiny).max_batch(COST) == 0


def test_compute_seconds_formula() -> None:
    # Prepare
    spec = GPUSpec("test", tflops=8.0, memory_gb=16, efficiency=0.25)

    # Execute
    seconds = _node(spec).compute_seconds(300, COST)

    # Assert
    assert seconds == pytest.approx(300 * 1e6 / (8.0 * 1e12 * 0.25), rel=1e-12)
    assert _node(GPUS["h100"]).compute_seconds(300, COST) < _node(GPUS["laptop"]).compute_seconds(300, COST)


def test_heartbeat_and_failures() -> None:
    # Prepare
    node = _node(GPUS["t4"])

    # Execute
    node.record_failure()
    node.record_failure()
    node.heartbeat(5.0)
    node.heartbeat(3.0)  # an older heartbeat never moves time back
    node.record_failure()

    # Assert
    assert node.last_heartbeat == 5.0
    assert (node.consecutive_failures, node.total_failures) == (1, 3)


# -- assign ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fractions", "n", "expected"),
    [
        ([0.5, 0.3, 0.2], 10, [5, 3, 2]),
        ([0.5, 0.3, 0.2], 7, [4, 2, 1]),  # 3.5/2.1/1.4 -> floors 3/2/1, the .5 remainder wins
        ([5, 3, 2], 7, [4, 2, 1]),  # weights need not sum to 1
        ([1 / 3, 1 / 3, 1 / 3], 10, [4, 3, 3]),  # ties go to the first name
        ([0.9, 0.1], 1, [1, 0]),
    ],
)
def test_assign_exact_largest_remainder_counts(fractions: list[float], n: int, expected: list[int]) -> None:
    # Prepare
    names = ["a", "b", "c"][: len(fractions)]

    # Execute
    out = assign(names, fractions, n, np.random.default_rng(0))

    # Assert
    assert len(out) == n
    assert [Counter(out)[name] for name in names] == expected


def test_assign_is_deterministic_per_seed() -> None:
    # Prepare
    names, fractions = ["a", "b", "c"], [0.5, 0.3, 0.2]

    # Execute
    first = assign(names, fractions, 10, np.random.default_rng(42))
    again = assign(names, fractions, 10, np.random.default_rng(42))
    orders = {tuple(assign(names, fractions, 10, np.random.default_rng(s))) for s in range(10)}

    # Assert
    assert first == again
    assert len(orders) > 1  # the seed shuffles which node gets which name


# -- NodePool.simulated ----------------------------------------------------------------------------


def test_shards_are_disjoint_and_cover_the_training_set() -> None:
    # Prepare
    data = load_dataset("digits", seed=0, max_train=300)

    # Execute
    pool = NodePool.simulated(6, dataset="digits", partition="dirichlet", alpha=0.5, max_train=300, seed=0)

    # Assert: the multiset of (row bytes, label) over all nodes equals the training set's
    def rows(x: torch.Tensor, y: torch.Tensor) -> Counter:
        return Counter((xi.numpy().tobytes(), int(yi)) for xi, yi in zip(x, y))

    combined: Counter = Counter()
    for node in pool:
        combined += rows(node.x, node.y)
    assert combined == rows(data.x_train, data.y_train)
    assert pool.total_samples == len(data.y_train) == 300
    assert len(pool) == 6 and pool.num_classes == 10 and pool.input_shape == (1, 8, 8)
    assert torch.equal(pool.x_test, data.x_test)


def test_shards_are_private_copies() -> None:
    # Prepare
    pool = _small_pool(3)

    # Execute
    pool[0].x.zero_()

    # Assert: writing one node's shard leaves the others alone; all shards together take one copy of
    # the training data (disjoint slices of a single buffer), however many nodes there are.
    assert pool[1].x.abs().sum() > 0
    total = sum(n.x.numel() * n.x.element_size() for n in pool)
    storages = {n.x.untyped_storage().data_ptr(): n.x.untyped_storage().nbytes() for n in pool}
    assert sum(storages.values()) == total


def test_gpus_follow_the_mix_counts() -> None:
    # Execute
    pool = _small_pool(10, gpus={"t4": 0.5, "a100": 0.3, "h100": 0.2})

    # Assert
    assert Counter(_gpu_key(n.gpu) for n in pool) == {"t4": 5, "a100": 3, "h100": 2}


def test_single_gpu_name_gives_uniform_pool() -> None:
    pool = _small_pool(4, gpus="v100")

    assert {_gpu_key(n.gpu) for n in pool} == {"v100"}


@pytest.mark.parametrize("gpus", ["tpu", {"t4": 0.5, "abacus": 0.5}, {"t4": -1.0}, {}])
def test_bad_gpu_mix_is_refused(gpus: object) -> None:
    with pytest.raises(ConfigError, match=r"^pool\.gpus: "):
        _small_pool(3, gpus=gpus)


def test_same_seed_same_pool_different_seed_different_pool() -> None:
    # Execute
    a, b = _small_pool(5, seed=1), _small_pool(5, seed=1)
    c = _small_pool(5, seed=2, partition="dirichlet")

    # Assert
    assert [torch.equal(x.x, y.x) and x.gpu == y.gpu for x, y in zip(a, b)] == [True] * 5
    assert any(x.num_samples != y.num_samples or not torch.equal(x.y, y.y) for x, y in zip(a, c))


def test_unknown_option_is_refused_by_name() -> None:
    # Execute
    with pytest.raises(ConfigError) as info:
        NodePool.simulated(3, dataset="digits", colour="red")

    # Assert
    assert info.value.field == "colour"
    assert "'red'" in str(info.value)


def test_invalid_option_value_uses_config_validation() -> None:
    with pytest.raises(ConfigError, match=r"^pool\.num_nodes: got 0"):
        NodePool.simulated(0, dataset="digits")


# -- membership and state --------------------------------------------------------------------------


def test_register_and_remove() -> None:
    # Prepare
    pool = _small_pool(3)
    newcomer = _node(GPUS["a100"], node_id=10, n=7)

    # Execute
    pool.register(newcomer, profile="poor", region="eu-west")

    # Assert
    assert len(pool) == 4 and pool[10] is newcomer
    assert pool.network.links[10].profile.name == "poor"
    assert pool.network.links[10].region == "eu-west"
    assert pool.available() == [0, 1, 2, 10]
    assert pool.total_samples == 100 + 7

    # Execute
    removed = pool.remove(1)

    # Assert
    assert removed.id == 1
    assert 1 not in pool.network.links
    assert [n.id for n in pool] == [0, 2, 10]
    with pytest.raises(ConfigError):
        pool.remove(1)


def test_register_refuses_duplicate_id_and_wrong_shape() -> None:
    # Prepare
    pool = _small_pool(3)

    # Execute / Assert
    with pytest.raises(ConfigError, match=r"^node\.id: got 2"):
        pool.register(_node(GPUS["t4"], node_id=2))
    with pytest.raises(ConfigError, match=r"^node\.x: got \(4, 64\)"):
        pool.register(_node(GPUS["t4"], node_id=5, shape=(64,)))
    assert len(pool) == 3
    assert set(pool.network.links) == {0, 1, 2}


def test_getitem_unknown_node() -> None:
    # Prepare
    pool = _small_pool(3)

    # Execute
    with pytest.raises(ConfigError) as info:
        pool[999]

    # Assert
    assert info.value.field == "node" and "999" in str(info.value)


def test_set_state_changes_availability() -> None:
    # Prepare
    pool = _small_pool(4)

    # Execute
    pool.set_state(1, "crashed")
    pool.set_state(3, NodeState.QUARANTINED)

    # Assert
    assert pool.available() == [0, 2]
    assert pool[1].state is NodeState.CRASHED and not pool[1].available

    # Execute
    pool.set_state(1, "online")

    # Assert
    assert pool.available() == [0, 1, 2]


def test_set_state_with_bad_state() -> None:
    # Prepare
    pool = _small_pool(2)

    # Execute
    with pytest.raises(ConfigError) as info:
        pool.set_state(0, "sleeping")

    # Assert
    assert info.value.field == "state" and "'sleeping'" in str(info.value)
    assert "online" in str(info.value)
    assert pool[0].state is NodeState.ONLINE


def test_state_dict_round_trip_through_a_checkpoint(tmp_path: Path) -> None:
    # Prepare: change node and network state
    pool = _small_pool(4, network="mixed", seed=5)
    pool.set_state(2, "quarantined")
    pool[1].heartbeat(12.5)
    pool[3].record_failure()
    pool[3].record_failure()
    pool[0].rounds_selected = 4
    pool.network.schedule(Disconnect((1, 3), start=2.0, duration=4.0))
    state = pool.state_dict()

    # Execute: through the checkpoint format the coordinator uses, into a freshly built pool
    checkpoint.save(tmp_path / "pool.ckpt", {"pool": state})
    fresh = _small_pool(4, network="mixed", seed=5)
    fresh.load_state_dict(checkpoint.load(tmp_path / "pool.ckpt")["pool"])

    # Assert
    assert fresh.state_dict() == state
    assert fresh.available() == [0, 1, 3]
    assert fresh[1].last_heartbeat == 12.5
    assert (fresh[3].consecutive_failures, fresh[3].total_failures) == (2, 2)
    assert fresh[0].rounds_selected == 4
    assert len(fresh.network.events) == 1
    assert fresh.network.conditions(1, 3.0).reason == "disconnected"
    assert fresh.network.conditions(1, 7.0).connected
    assert fresh.network.conditions(0, 3.0).connected


# -- UniformPolicy ---------------------------------------------------------------------------------


def test_policy_is_deterministic_per_seed_and_round() -> None:
    # Prepare
    pool = _small_pool(10, gpus="t4")
    policy = UniformPolicy(seed=3, batch_size=8, fraction=0.5)

    # Execute
    plans = [policy.plan(r, pool, 0.0, COST) for r in range(1, 11)]
    again = [UniformPolicy(seed=3, batch_size=8, fraction=0.5).plan(r, pool, 0.0, COST) for r in range(1, 11)]
    other_seed = [UniformPolicy(seed=4, batch_size=8, fraction=0.5).plan(r, pool, 0.0, COST) for r in range(1, 11)]

    # Assert
    assert plans == again
    assert len({p.nodes for p in plans}) > 1  # rounds draw different samples
    assert [p.nodes for p in plans] != [p.nodes for p in other_seed]
    for r, p in enumerate(plans, 1):
        assert p.round == r and list(p.nodes) == sorted(set(p.nodes))


@pytest.mark.parametrize(
    ("kwargs", "size"),
    [
        ({"clients_per_round": 4}, 4),
        ({"clients_per_round": 4, "fraction": 0.1}, 4),  # K overrides C
        ({"fraction": 0.3}, 3),
        ({"fraction": 0.01}, 1),  # at least one node
        ({"fraction": 1.0}, 10),
        ({"clients_per_round": 50}, 10),  # never more than there are
    ],
)
def test_policy_sample_size(kwargs: dict, size: int) -> None:
    # Prepare
    pool = _small_pool(10, gpus="t4")
    policy = UniformPolicy(seed=0, batch_size=8, **kwargs)

    # Execute
    plan = policy.plan(1, pool, 0.0, COST)

    # Assert
    assert len(plan.nodes) == size
    assert plan.batch_sizes == {i: 8 for i in plan.nodes}


def test_policy_only_selects_available_nodes() -> None:
    # Prepare
    pool = _small_pool(6, gpus="t4")
    pool.set_state(0, "crashed")
    pool.set_state(4, "quarantined")
    policy = UniformPolicy(seed=0, batch_size=8, fraction=1.0, deadline_s=3.0)

    # Execute
    plans = [policy.plan(r, pool, 0.0, COST) for r in range(1, 6)]

    # Assert
    for plan in plans:
        assert plan.nodes == (1, 2, 3, 5)
        assert plan.deadline_s == 3.0
    assert len(UniformPolicy(seed=0, batch_size=8, fraction=0.5).plan(1, pool, 0.0, COST).nodes) == 2


def test_policy_excludes_node_whose_model_does_not_fit() -> None:
    # Prepare
    pool = _small_pool(4, gpus="t4")
    pool[2].gpu = GPUSpec("tiny", tflops=1.0, memory_gb=1e-6)
    policy = UniformPolicy(seed=0, batch_size=8, fraction=1.0)

    # Execute
    plan = policy.plan(1, pool, 0.0, COST)

    # Assert
    assert plan.nodes == (0, 1, 3)
    assert any("node 2" in note and "does not fit" in note for note in plan.notes)


def test_policy_caps_batch_by_gpu_memory() -> None:
    # Prepare: 1 GiB of activations per sample; a 5 GB GPU holds floor(4.5 GiB / 1 GiB) = 4 samples
    cost = ModelCost(train_flops_per_sample=1e6, activation_bytes_per_sample=2**30, param_bytes=0)
    pool = _small_pool(3, gpus="a100")
    pool[1].gpu = GPUSpec("small", tflops=5.0, memory_gb=5.0)
    policy = UniformPolicy(seed=0, batch_size=10, fraction=1.0)

    # Execute
    plan = policy.plan(1, pool, 0.0, cost)

    # Assert
    assert plan.batch_sizes == {0: 10, 1: 4, 2: 10}
    assert any("capped" in note and "[1]" in note for note in plan.notes)


def test_policy_with_no_candidates_plans_an_empty_round() -> None:
    # Prepare
    pool = _small_pool(2)
    pool.set_state(0, "crashed")
    pool.set_state(1, "crashed")

    # Execute
    plan = UniformPolicy(seed=0, batch_size=8).plan(1, pool, 0.0, COST)

    # Assert
    assert plan.nodes == () and plan.batch_sizes == {}
