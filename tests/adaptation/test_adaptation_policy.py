"""The adaptive policy: over-commitment, phases, rollback, decision log, and real runs that are
deterministic and resume bit for bit."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import pytest
import torch

from hypergpu_lab import ConfigError, Coordinator, NodePool, NodeState
from hypergpu_lab.adaptation import AdaptivePolicy, RoundEvent, Scenario, build_scenario
from hypergpu_lab.events import Decision
from hypergpu_lab.faults import Fault
from hypergpu_lab.models import ModelCost
from hypergpu_lab.network import LatencySpike
from hypergpu_lab.plan import Planner

COST = ModelCost(train_flops_per_sample=3e4, activation_bytes_per_sample=1064.0, param_bytes=26_280)
LATENCY = {0: 0.02, 1: 0.05, 2: 0.1, 3: 0.4, 4: 0.8, 5: 1.2}


@pytest.fixture(scope="module")
def pool() -> NodePool:
    return NodePool.simulated(6, dataset="digits", network="lan", seed=0)


def drive(
    policy: AdaptivePolicy,
    pool: NodePool,
    make_record,
    make_report,
    rounds: range,
    accuracy: Callable[[int], float],
    latency: Callable[[int, int], float] = lambda r, n: LATENCY[n],
) -> list:
    """Plan each round, answer with hand-built records (node n's link takes latency(r, n) seconds)."""
    plans, t = [], 0.0
    for r in rounds:
        plan = policy.plan(r, pool, t, COST)
        lat = {n: latency(r, n) for n in plan.nodes}
        recs = [make_record(n, down=lat[n], up=lat[n], loss=1.0 / r, samples=100) for n in plan.nodes]
        duration = max(2 * v for v in lat.values())
        policy.observe(make_report(r, recs, accuracy=accuracy(r), t_start=t, duration=duration))
        plans.append(plan)
        t += duration
    return plans


def test_implements_the_policy_protocol() -> None:
    policy: Planner = AdaptivePolicy(seed=0)
    assert callable(policy.plan) and callable(policy.observe)


def test_warmup_is_plain_sampling_then_over_commitment_closes_at_k(pool, make_record, make_report) -> None:
    policy = AdaptivePolicy(seed=0, clients_per_round=3, warmup_rounds=2, over_commit=1.3, base_batch=16)
    plans = drive(policy, pool, make_record, make_report, range(1, 5), lambda r: 0.1 * r)
    # Warm-up: K nodes, base batch, no target, no deadline.
    assert [len(p.nodes) for p in plans[:2]] == [3, 3]
    assert all(p.target_updates is None and p.deadline_s is None for p in plans[:2])
    assert all(set(p.batch_sizes.values()) == {16} for p in plans[:2])
    # Adaptive: ceil(1.3 x 3) = 4 selected, the round closes at the first 3 updates.
    assert len(plans[2].nodes) == math.ceil(1.3 * 3) and plans[2].target_updates == 3
    assert plans[2].deadline_s is not None
    assert any(n.startswith("adaptive: select") for n in plans[2].notes)
    assert [d.after for d in policy.decisions if d.action == "phase"] == ["adaptive"]


def test_rollback_fires_on_a_planted_accuracy_drop_and_restores_the_snapshot(pool, make_record, make_report) -> None:
    # Prepare: node 3's link slows every round, which doubles its batch every round (snapshots at
    # rounds 1, 3, 5); accuracy collapses in round 7.
    policy = AdaptivePolicy(
        seed=0,
        clients_per_round=3,
        warmup_rounds=1,
        snapshot_every=2,
        acc_drop=0.05,
        selection="top_n",
        force_include=(3,),
        batch_strategy="latency",
        base_batch=16,
        max_batch=1024,
        cooldown=2,
        plateau_window=50,
        time_growth=1e6,
    )
    # Execute
    growing = lambda r, n: LATENCY[n] * 2**r if n == 3 else LATENCY[n]  # noqa: E731
    drive(policy, pool, make_record, make_report, range(1, 7), lambda r: 0.80, growing)
    before = dict(policy.batch.current)
    snap = policy.snapshots[-1]
    drive(policy, pool, make_record, make_report, range(7, 8), lambda r: 0.60, growing)
    # Assert: one rollback at round 7, to the round-5 configuration, then a cool-down.
    rollbacks = [d for d in policy.decisions if d.action == "rollback"]
    assert [s["round"] for s in policy.snapshots] == [1, 3, 5]
    assert len(rollbacks) == 1 and rollbacks[0].round == 7 and rollbacks[0].after == snap["round"] == 5
    assert "accuracy" in rollbacks[0].reason
    assert policy.batch.current == snap["config"]["batch"] != before
    assert snap["config"]["batch"][3] < before[3]
    assert policy.cooldown == 2
    # The degradation persists: after the cool-down the present becomes the new reference, no second rollback.
    drive(policy, pool, make_record, make_report, range(8, 13), lambda r: 0.60, growing)
    assert len([d for d in policy.decisions if d.action == "rollback"]) == 1
    rebased = [s for s in policy.snapshots if s["round"] == 9]  # cool-down of 2 rounds after round 7
    assert rebased and rebased[0]["accuracy"] == pytest.approx(0.6)
    # No rollback without degradation.
    calm = AdaptivePolicy(seed=0, clients_per_round=3, snapshot_every=2, selection="top_n")
    drive(calm, pool, make_record, make_report, range(1, 12), lambda r: 0.8)
    assert not [d for d in calm.decisions if d.action == "rollback"]


def test_phases_warmup_adaptive_convergence_completed(pool, make_record, make_report) -> None:
    acc = {1: 0.5, 2: 0.6, 3: 0.7, 4: 0.7, 5: 0.7, 6: 0.7, 7: 0.7, 8: 0.95}
    policy = AdaptivePolicy(seed=0, clients_per_round=2, warmup_rounds=1, plateau_window=3, target_accuracy=0.9)
    drive(policy, pool, make_record, make_report, range(1, 9), acc.__getitem__)
    phases = [(d.round, d.before, d.after) for d in policy.decisions if d.action == "phase"]
    assert phases == [(1, "warmup", "adaptive"), (6, "adaptive", "convergence"), (8, "convergence", "completed")]
    # Converged: batch sizes are frozen.
    assert not [d for d in policy.decisions if d.action == "batch" and d.round in (7, 8)]


def test_decisions_are_bounded_and_name_node_change_and_reason(pool, make_record, make_report) -> None:
    full = AdaptivePolicy(seed=0, clients_per_round=3, batch_strategy="latency")
    short = AdaptivePolicy(seed=0, clients_per_round=3, batch_strategy="latency", max_decisions=20)
    for policy in (full, short):
        drive(policy, pool, make_record, make_report, range(1, 15), lambda r: 0.5)
    assert len(full.decisions) > 20 and short.decisions == full.decisions[-20:]
    assert all(list(d.to_dict()) == ["round", "node", "what", "old", "new", "reason"] for d in full.decisions)
    batch = [d for d in full.decisions if d.action == "batch"]
    assert batch and all(d.node is not None and d.before != d.after and d.reason for d in batch)


def test_the_decision_log_is_stored_with_its_original_keys_and_reads_back(pool, make_record, make_report) -> None:
    policy = AdaptivePolicy(seed=0, clients_per_round=3, batch_strategy="latency")
    drive(policy, pool, make_record, make_report, range(1, 6), lambda r: 0.5)

    stored = json.loads(json.dumps(policy.state_dict()["decisions"]))
    fresh = AdaptivePolicy(seed=0, clients_per_round=3, batch_strategy="latency")
    fresh.load_state_dict(policy.state_dict())

    assert stored and all(list(d) == ["round", "node", "what", "old", "new", "reason"] for d in stored)
    assert [Decision.from_dict(d) for d in stored] == policy.decisions == fresh.decisions
    assert all(isinstance(d, Decision) for d in fresh.decisions)


def test_proactive_mode_deprioritises_a_degrading_node(pool, make_record, make_report) -> None:
    policy = AdaptivePolicy(
        seed=0, clients_per_round=2, mode="proactive", selection="top_n", over_commit=1.0, monitor_options={"window": 1}
    )
    lat = dict(LATENCY)
    t = 0.0
    for r, l0 in enumerate([0.02, 0.04, 0.08, 0.16, 0.2], start=1):
        lat[0] = l0
        plan = policy.plan(r, pool, t, COST)
        policy.observe(make_report(r, [make_record(n, down=lat[n], up=lat[n]) for n in plan.nodes], t_start=t))
        t += 1.0
    assert policy.monitor.trend(0) == "degrading"
    plan = policy.plan(6, pool, t, COST)
    assert 0 not in plan.nodes
    assert any(d.action == "deprioritise" and d.node == 0 for d in policy.decisions)


def test_from_train_config_takes_batch_size_k_and_deadline() -> None:
    from hypergpu_lab import TrainConfig

    policy = AdaptivePolicy.from_train_config(
        TrainConfig(batch_size=10, clients_per_round=4, deadline_s=2.0), seed=3, mode="aggressive"
    )
    assert policy.batch.base == 10 and not policy.batch.powers_of_two
    assert policy.clients_per_round == 4 and policy.deadline == 2.0 and policy.mode.name == "aggressive"


def test_options_are_validated() -> None:
    with pytest.raises(ConfigError, match="mode"):
        AdaptivePolicy(mode="bold")
    with pytest.raises(ConfigError, match="over_commit"):
        AdaptivePolicy(over_commit=0.5)
    with pytest.raises(ConfigError, match="selection.strategy"):
        AdaptivePolicy(selection="best")
    with pytest.raises(ConfigError, match="monitor.nonsense"):
        AdaptivePolicy(monitor_options={"nonsense": 1})
    with pytest.raises(ConfigError, match="batch.tolerance"):
        AdaptivePolicy(batch_options={"tolerance": -1})
    with pytest.raises(ConfigError, match="mode"):
        AdaptivePolicy(mode="aggressive").load_state_dict(AdaptivePolicy(mode="reactive").state_dict())


# -- real runs ----------------------------------------------------------------------------------


def _run(seed: int, rounds: int) -> tuple[Coordinator, AdaptivePolicy]:
    scenario = build_scenario("demo", seed=seed)
    policy = AdaptivePolicy(seed=seed, clients_per_round=3, mode="proactive", base_batch=16)
    coord = Coordinator(pool=scenario.pool, model="mlp", policy=policy)
    scenario.attach(coord)
    coord.run(rounds=rounds, progress=False)
    return coord, policy


def _rows(coord: Coordinator) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in coord.history]


def _state(policy: AdaptivePolicy) -> dict:
    return {k: v for k, v in policy.state_dict().items() if k != "overhead"}


@pytest.mark.slow
def test_adaptive_run_is_deterministic_and_resumes_bit_identically(tmp_path) -> None:
    # Prepare / Execute: an uninterrupted 12-round run, and the same run cut at round 8 and restored.
    full, full_policy = _run(0, 12)
    again, again_policy = _run(0, 12)
    part, _ = _run(0, 8)
    path = part.save_checkpoint(tmp_path / "round-8.ckpt")
    resumed_policy = AdaptivePolicy(seed=0, clients_per_round=3, mode="proactive", base_batch=16)
    resumed = Coordinator.restore(path, policy=resumed_policy)
    build_scenario("demo", seed=0).attach(resumed)  # round events of the rest of the run
    resumed.run(rounds=4, progress=False)
    # Assert: same seed, same everything; resumed run equal to the uninterrupted one.
    assert torch.equal(full.weights, again.weights)
    assert _rows(full) == _rows(again) and full_policy.decisions == again_policy.decisions
    assert torch.equal(full.weights, resumed.weights)
    assert _rows(full)[8:] == _rows(resumed)
    assert _state(full_policy) == _state(resumed_policy)
    assert full.pool.network.events == resumed.pool.network.events  # the round-9 spike in both
    assert any(isinstance(e, LatencySpike) for e in full.pool.network.events)
    # The notes land in the report events; the planning overhead is measured.
    assert full_policy.planning_overhead()["rounds"] == 12
    assert 0 < full_policy.planning_overhead()["mean_share"] < 1


@pytest.mark.slow
def test_real_run_quarantines_a_failing_node_then_readmits_it() -> None:
    # Prepare: node 2 sends non-finite updates (rejected) in rounds 1-4, then behaves.
    pool = NodePool.simulated(5, dataset="digits", network="lan", seed=0)
    policy = AdaptivePolicy(seed=0, clients_per_round=5, selection="all", quarantine_after=3, quarantine_for=2)
    coord = Coordinator(pool=pool, model="mlp", policy=policy, faults=[Fault(kind="nan", nodes=(2,), start=1, end=5)])
    states = []
    coord.bus.subscribe(lambda rep: states.append(pool[2].state))
    # Execute
    coord.run(rounds=8, progress=False)
    # Assert: rejected 3 times -> quarantined in rounds 4-5 -> probation in 6 -> re-admitted.
    what = [(d.round, d.action) for d in policy.decisions if d.node == 2 and d.action != "batch"]
    assert what == [(3, "quarantine"), (6, "release"), (6, "readmit")]
    assert states[2:5] == [NodeState.QUARANTINED] * 3 and states[5] is NodeState.ONLINE
    selected = [r["selected"] for r in coord.history]
    assert selected[3:5] == [4, 4] and selected[5] == 5


@pytest.mark.slow
def test_real_run_rolls_back_when_round_time_degrades() -> None:
    # Prepare: a fast LAN, then every link gets 2 s of extra latency after round 6.
    pool = NodePool.simulated(6, dataset="digits", network="lan", seed=0)
    # Only the round-time trigger is under test: an accuracy drop of 100% never fires.
    policy = AdaptivePolicy(seed=0, clients_per_round=3, snapshot_every=2, time_growth=2.0, acc_drop=1.0)
    coord = Coordinator(pool=pool, model="mlp", policy=policy)
    Scenario(
        "spike",
        "planted",
        pool,
        12,
        (RoundEvent(6, LatencySpike(tuple(range(6)), start=0.0, duration=1e6, extra_ms=2000.0)),),
    ).attach(coord)
    # Execute
    coord.run(rounds=12, progress=False)
    # Assert
    rollbacks = [d for d in policy.decisions if d.action == "rollback"]
    assert rollbacks and rollbacks[0].round > 6 and "round time" in rollbacks[0].reason
    assert all(d.round > 6 for d in rollbacks)
