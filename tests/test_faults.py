"""Faults and resilience: nothing lost, nothing applied twice, failures detected in virtual time."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch

from hypergpu_lab import ConfigError, Coordinator, NodePool, NodeState
from hypergpu_lab.faults import Fault, FaultInjector
from hypergpu_lab.network import LinkProfile, Reconnect
from hypergpu_lab.runs import RunFolder
from hypergpu_lab.strategies import FedAvg

pytestmark = pytest.mark.slow


def _pool(**kw: object) -> NodePool:
    opts = {"dataset": "digits", "partition": "iid", "network": "lan", "seed": 0, **kw}
    return NodePool.simulated(opts.pop("num_nodes", 10), **opts)  # type: ignore[arg-type]


class _Recording(FedAvg):
    """FedAvg that keeps what it was asked to aggregate."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def aggregate(self, w, deltas, n):  # type: ignore[no-untyped-def]
        self.calls.append((deltas.clone(), n.clone()))
        return super().aggregate(w, deltas, n)


def test_fault_validation_names_the_field() -> None:
    for bad, field in [
        ({"kind": "meteor", "nodes": [1]}, "fault.kind"),
        ({"kind": "crash", "nodes": []}, "fault.nodes"),
        ({"kind": "crash", "nodes": [1]}, "fault.unit"),
        ({"kind": "noise", "nodes": [1], "start": 5, "end": 2}, "fault.end"),
        ({"kind": "straggler", "nodes": [1], "magnitude": 0.5}, "fault.magnitude"),
        ({"kind": "noise", "nodes": [1], "color": "red"}, "fault.color"),
    ]:
        with pytest.raises(ConfigError, match=field):
            Fault.from_dict(bad)
    with pytest.raises(ConfigError, match="fault.nodes"):
        Coordinator(pool=_pool(), model="mlp", faults=[Fault("crash", (99,), start=1.0, unit="time")])


def test_duplicates_and_replays_are_never_applied_twice() -> None:
    # Prepare: the same run with and without nodes that send every update twice and replay old ones.
    clean = Coordinator(pool=_pool(), model="mlp")
    faulty = Coordinator(
        pool=_pool(), model="mlp", faults=[Fault("duplicate", (1, 2, 3)), Fault("replay", (4, 5), start=2)]
    )

    # Execute
    clean_reports = [clean.step() for _ in range(3)]
    faulty_reports = [faulty.step() for _ in range(3)]

    # Assert: identical weights; every extra copy that arrived by the close (1 ms after its original)
    # is counted as dropped, and the books add up.
    assert torch.equal(clean.weights, faulty.weights)
    arrived = [
        {n.node for n in r.nodes if n.arrival is not None and n.arrival + 1e-3 <= r.t_end} for r in faulty_reports
    ]
    expected = [len(a & {1, 2, 3}) + (len(a & {4, 5}) if r.round >= 2 else 0) for a, r in zip(arrived, faulty_reports)]
    assert [r.duplicates for r in faulty_reports] == expected
    assert sum(expected) >= 10  # most copies land before the close: the check is not vacuous
    for rep in faulty_reports + clean_reports:
        assert rep.accepted + rep.rejected + rep.straggled + rep.failed == rep.selected
        assert rep.accepted == 10


@pytest.mark.parametrize(
    "kind, check",
    [
        ("sign_flip", lambda honest, sent, m: torch.equal(sent, -honest)),
        ("scale", lambda honest, sent, m: torch.allclose(sent, m * honest)),
        ("noise", lambda honest, sent, m: abs(float((sent - honest).std()) - m) < 0.05 * m),
        ("free_rider", lambda honest, sent, m: not sent.any()),
    ],
)
def test_byzantine_updates_replace_the_honest_one(kind: str, check) -> None:  # type: ignore[no-untyped-def]
    # Prepare: node 2 is Byzantine; a recording strategy sees what was aggregated.
    magnitude = {"sign_flip": 1.0, "scale": 7.0, "noise": 0.5, "free_rider": 0.0}[kind]
    honest = _Recording()
    Coordinator(pool=_pool(), model="mlp", strategy=honest).step()
    seen = _Recording()
    coord = Coordinator(pool=_pool(), model="mlp", strategy=seen, faults=[Fault(kind, (2,), magnitude=magnitude)])

    # Execute
    report = coord.step()

    # Assert: the row of node 2 (updates are stacked in node order) was corrupted as specified.
    order = sorted(r.node for r in report.nodes if r.status == "accepted")
    row = order.index(2)
    assert check(honest.calls[0][0][row], seen.calls[0][0][row], magnitude)
    assert next(r for r in report.nodes if r.node == 2).injected == kind


def test_nan_updates_never_reach_the_global_model() -> None:
    coord = Coordinator(pool=_pool(), model="mlp", faults=[Fault("nan", (0, 1, 2))])
    reports = [coord.step() for _ in range(3)]
    assert all(r.rejected == 3 and r.accepted == 7 for r in reports)
    assert all(n.reason == "non-finite values" for r in reports for n in r.nodes if n.status == "rejected")
    assert bool(torch.isfinite(coord.weights).all())


def test_norm_bound_rejects_boosted_updates() -> None:
    coord = Coordinator(pool=_pool(), model="mlp", max_update_norm=5.0, faults=[Fault("scale", (4,), magnitude=100)])
    report = coord.step()
    rec = next(r for r in report.nodes if r.node == 4)
    assert rec.status == "rejected" and rec.reason.startswith("norm") and report.accepted == 9


def test_label_flip_poisons_only_the_targeted_nodes_data() -> None:
    coord = Coordinator(pool=_pool(), model="mlp", faults=[Fault("label_flip", (3,))])
    seen = {}
    inner = coord.trainer.train
    coord.trainer.train = lambda w, jobs: (seen.update({j.node: j.y for j in jobs}), inner(w, jobs))[1]  # type: ignore

    coord.step()

    assert torch.equal(seen[3], 9 - coord.pool[3].y)
    assert torch.equal(seen[4], coord.pool[4].y)


def test_straggler_computes_k_times_slower() -> None:
    clean = Coordinator(pool=_pool(), model="mlp").step()
    slow = Coordinator(pool=_pool(), model="mlp", faults=[Fault("straggler", (5,), magnitude=4.0)]).step()
    a = {r.node: r.compute_s for r in clean.nodes}
    b = {r.node: r.compute_s for r in slow.nodes}
    assert b[5] == pytest.approx(4 * a[5]) and b[6] == a[6]


def _fixed(pool: NodePool) -> NodePool:
    profile = LinkProfile(name="fixed", latency_ms=(250.0, 250.0), loss=0.0, bandwidth_mbps=1000.0)
    for link in pool.network.links.values():
        link.profile, link.base_latency_ms = profile, 250.0
    return pool


def test_crash_is_detected_after_the_heartbeat_timeout_and_recovery_is_seen() -> None:
    # Prepare: node 7 crashes at t=2.5 s for 20 s; heartbeats every 1 s, timeout 5 s.
    coord = Coordinator(
        pool=_fixed(_pool()),
        model="mlp",
        heartbeat_interval_s=1.0,
        heartbeat_timeout_s=5.0,
        faults=[Fault("crash", (7,), start=2.5, end=22.5, unit="time")],
    )

    # Execute: rounds take ~0.5 s of virtual time; run until well past recovery.
    detections = []
    while coord.clock.now < 30.0:
        detections += coord.step().detections
        if coord.round > 200:
            pytest.fail("virtual time did not advance")

    # Assert: detected at last heartbeat (2.0) + 5 = 7.0, latency 4.5 in [timeout - interval, timeout];
    # back online at the first heartbeat after 22.5, i.e. 23.0.
    failed = [d for d in detections if d["kind"] == "failed"]
    back = [d for d in detections if d["kind"] == "recovered"]
    assert [(d["node"], d["since"], d["at"]) for d in failed] == [(7, 2.5, 7.0)]
    assert 4.0 <= failed[0]["latency"] <= 5.0
    assert [(d["node"], d["at"]) for d in back] == [(7, 23.0)]
    assert coord.pool[7].state is NodeState.ONLINE


def test_half_the_nodes_failing_each_round_the_run_completes() -> None:
    # Prepare: at every moment one half of the nodes is partitioned away, the halves alternating
    # every 8 virtual seconds (longer than the ~6 s a transfer spends on its retries).
    pool = _fixed(_pool())
    faults = []
    for k in range(40):
        half = tuple(range(10)[(k % 2) :: 2])
        faults.append(Fault("partition", half, start=k * 8.0, end=k * 8.0 + 8.0, unit="time"))
    coord = Coordinator(pool=pool, model="mlp", faults=faults, heartbeat_timeout_s=30.0)

    # Execute
    history = coord.run(rounds=15, progress=False)

    # Assert
    assert coord.round == 15 and history.final["test_accuracy"] > 0.6
    assert sum(r["failed"] for r in history) >= 0.25 * 150  # some rounds straddle a switch and retry through
    assert all(r["accepted"] + r["failed"] + r["straggled"] + r["rejected"] == r["selected"] for r in history)


def test_fault_tolerant_mode_closes_at_the_minimum_completion_rate() -> None:
    pool = _pool(network="unstable-wan")
    coord = Coordinator(pool=pool, model="mlp", min_completion=0.6)
    report = coord.step()
    arrivals = sorted(r.arrival for r in report.nodes if r.arrival is not None)
    assert report.accepted == 6 and report.t_end == arrivals[5]
    assert report.accepted + report.straggled + report.failed + report.rejected == 10


def test_below_quorum_the_run_waits_in_virtual_time_then_continues() -> None:
    # Prepare: a cascading failure takes 8 of 10 nodes down between t=1 and t=40; quorum 5.
    pool = _fixed(_pool())
    coord = Coordinator(
        pool=pool,
        model="mlp",
        quorum=5,
        heartbeat_timeout_s=2.0,
        faults=[Fault("crash", tuple(range(8)), start=1.0, end=40.0, unit="time")],
    )

    # Execute
    history = coord.run(rounds=40, progress=False)

    # Assert: the run waited for the nodes to return (no round ran with < 5 available) and finished.
    assert coord.round == 40 and coord.status == "finished"
    starts = [r["t_start"] for r in history]
    assert any(s >= 40.0 for s in starts) and not any(3.0 + 1e-9 < s < 40.0 for s in starts)


def test_permanent_loss_pauses_with_a_clear_status_and_resumes_when_nodes_return(caplog) -> None:
    pool = _fixed(_pool())
    coord = Coordinator(
        pool=pool,
        model="mlp",
        quorum=5,
        max_wait_s=30.0,
        heartbeat_timeout_s=2.0,
        faults=[Fault("crash", tuple(range(8)), start=1.0, unit="time")],
    )
    with caplog.at_level(logging.WARNING):
        coord.run(rounds=1000, progress=False)
    assert coord.status == "waiting"
    assert coord.control.detail.startswith("waiting for quorum: 2 of 10 nodes available, 5 needed")
    stuck = coord.round
    assert "waiting for quorum" in caplog.text

    pool.network.schedule(Reconnect(nodes=tuple(range(8)), at=coord.clock.now))
    coord.run(rounds=3, progress=False)
    assert coord.round == stuck + 3 and coord.status == "finished"


def test_buffered_async_applies_stragglers_once_with_staleness_weight() -> None:
    # Prepare: a deadline some nodes miss; FedBuff-style buffering of late updates.
    strategy = _Recording()
    coord = Coordinator(
        pool=_pool(network="unstable-wan"), model="mlp", deadline_s=1.2, late_updates="buffer", strategy=strategy
    )

    # Execute
    reports = [coord.step() for _ in range(6)]

    # Assert: late updates show up later with weight n_k / sqrt(1 + staleness), each exactly once.
    late_total = sum(r.late_applied for r in reports)
    assert late_total >= 1
    straggled = sum(r.straggled for r in reports[:-1])
    assert late_total <= straggled + reports[-1].straggled
    sizes = {n.id: n.num_samples for n in coord.pool}
    weights = set()
    for _, n in strategy.calls:
        weights.update(np.round(n.numpy(), 6).tolist())
    assert any(any(abs(w - s / math.sqrt(1 + k)) < 1e-6 for s in sizes.values() for k in (1, 2, 3)) for w in weights)
    late_events = [e for r in reports for e in r.events if e.startswith("late update")]
    keys = [e.split(" applied")[0] for e in late_events]
    assert len(keys) == len(set(keys)) == late_total


def test_corrupted_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, caplog) -> None:
    def make(name: str) -> Coordinator:
        return Coordinator(
            pool=_pool(),
            model="mlp",
            checkpoint_every=2,
            keep_checkpoints=5,
            run_dir=RunFolder.create(tmp_path, name, {}),
        )

    full = make("full")
    full.run(rounds=6, progress=False)
    broken = make("broken")
    broken.run(rounds=6, progress=False)
    newest = broken.run_folder.checkpoints / "round-000000000006.ckpt"
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    newest.write_bytes(bytes(data))

    with caplog.at_level(logging.WARNING):
        resumed = Coordinator.restore(tmp_path / "broken")
    assert resumed.round == 4 and "checksum" in caplog.text
    resumed.run(until=6, progress=False)
    assert torch.equal(resumed.weights, full.weights)


def test_fault_plan_survives_a_restore(tmp_path) -> None:
    faults = [Fault("sign_flip", (1,), start=3), Fault("crash", (2,), start=0.5, end=3.0, unit="time")]
    full = Coordinator(pool=_pool(), model="mlp", faults=faults)
    full.run(rounds=6, progress=False)
    half = Coordinator(pool=_pool(), model="mlp", faults=faults)
    half.run(rounds=3, progress=False)
    path = half.save_checkpoint(tmp_path / "c.ckpt")

    resumed = Coordinator.restore(path)
    resumed.run(rounds=3, progress=False)

    assert [f.kind for f in resumed.faults.faults] == ["sign_flip", "crash"]
    assert torch.equal(resumed.weights, full.weights)


def test_injector_state_round_trip_keeps_what_a_stale_free_rider_resends() -> None:
    # Prepare: node 0 sends an honest update in round 1, then free-rides (re-sends it) from round 2.
    from hypergpu_lab.training import LocalResult

    plan = [Fault("free_rider", (0,), start=2, magnitude=1.0)]
    honest = LocalResult(0, torch.arange(5.0), 10, 0.5, 2, 1.0)
    inj = FaultInjector(plan, seed=0)
    inj.corrupt(honest, 1, 0.0)

    # Execute: a restored injector takes over before round 2.
    restored = FaultInjector(plan, seed=0)
    restored.load_state_dict(inj.state_dict())
    fresh = LocalResult(0, torch.full((5,), 9.0), 10, 0.4, 2, 1.0)

    # Assert: both re-send the round-1 update, not the fresh one.
    assert torch.equal(restored.corrupt(fresh, 2, 0.0).delta, honest.delta)
    assert torch.equal(inj.corrupt(fresh, 2, 0.0).delta, honest.delta)
