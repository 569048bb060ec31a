"""Windowed statistics, trends, the median/MAD anomaly rule and simulated GPU figures, against hand-computed oracles."""

from __future__ import annotations

import math

import pytest

from hypergpu_lab import Coordinator, NodePool
from hypergpu_lab.events import NodeRecord
from hypergpu_lab.metrics import NodeMonitor, gpu_usage, robust_z, trend, window_stats
from hypergpu_lab.models import ModelCost


def test_window_stats_by_hand() -> None:
    # [9, 1, 2, 3, 4] with window 4 is [1, 2, 3, 4]: mean 2.5, variance (2.25+0.25+0.25+2.25)/4 = 1.25
    s = window_stats([9, 1, 2, 3, float("nan"), 4], window=4)
    assert (s.n, s.mean, s.min, s.max, s.median) == (4, 2.5, 1.0, 4.0, 2.5)
    assert s.std == pytest.approx(math.sqrt(1.25), abs=1e-12)
    assert window_stats([]) is None


def test_trend_is_the_least_squares_slope() -> None:
    assert trend([1, 3, 5, 7]) == pytest.approx(2.0)
    # y = 0, 1, 0, 1 over t = 0..3: slope = sum((t-1.5)(y-0.5)) / sum((t-1.5)^2) = 1 / 5
    assert trend([0, 1, 0, 1]) == pytest.approx(0.2)
    assert trend([5, 1, 2], window=2) == pytest.approx(1.0)
    assert trend([1]) is None


def test_robust_z_is_the_modified_z_score_of_iglewicz_and_hoaglin() -> None:
    # median 3, |x - 3| = 2, 1, 0, 1, 97 -> MAD 1; z(50) = 0.6745 * 47 / 1
    assert robust_z([1, 2, 3, 4, 100], 50) == pytest.approx(31.7015, abs=1e-4)
    assert robust_z([1, 2, 3, 4, 100], 3) == 0.0
    # MAD 0 (four equal values): mean absolute deviation 2/5 = 0.4; z(20) = 0.7979 * 10 / 0.4
    assert robust_z([10, 10, 10, 10, 12], 20) == pytest.approx(19.9475, abs=1e-4)
    assert robust_z([7, 7, 7], 8) is None  # no spread: nothing to judge against
    assert robust_z([], 1) is None


def _record(node: int, loss: float, norm: float = 1.0, compute_s: float = 0.5, batch: int = 10) -> NodeRecord:
    return NodeRecord(node, "accepted", None, batch, 100, 0.1, compute_s, 0.1, 0.0, 1.0, 1, 1, loss, norm)


def test_node_monitor_flags_a_jump_against_the_nodes_own_history() -> None:
    # Prepare: node 0's loss wanders 1.0 +- 0.1, node 1's is ten times larger and steady
    cost = ModelCost(train_flops_per_sample=1e6, activation_bytes_per_sample=1000.0, param_bytes=4000)
    monitor = NodeMonitor(window=10, threshold=3.5, min_history=5)
    losses = [1.0, 1.1, 0.9, 1.0, 1.1, 0.9]
    for r, loss in enumerate(losses, 1):
        assert monitor.observe(r, [_record(0, loss), _record(1, 10 * loss)], 1.0, {0: 16, 1: 16}, cost) == []

    # Execute: node 0 jumps to 5.0; node 1's 10.0 is normal for node 1
    found = monitor.observe(7, [_record(0, 5.0), _record(1, 10.0)], 1.0, {0: 16, 1: 16}, cost)

    # Assert: z = 0.6745 * (5.0 - 1.0) / MAD; history [1.0,1.1,0.9,1.0,1.1,0.9], median 1.0, MAD 0.1
    (a,) = found
    assert (a.round, a.node, a.metric, a.value, a.median) == (7, 0, "loss", 5.0, 1.0)
    assert a.z == pytest.approx(0.6745 * 4.0 / 0.1)
    assert a.describe().startswith("anomaly: node 0 loss 5 (median 1, robust z +27.0)")
    assert monitor.stats(0, "loss").n == 7 and monitor.trend(1, "loss", window=3) is not None


def test_gpu_usage_from_the_compute_model() -> None:
    cost = ModelCost(train_flops_per_sample=1e6, activation_bytes_per_sample=1000.0, param_bytes=4000)
    u = gpu_usage(_record(0, 1.0, compute_s=0.5, batch=32), 16, cost, round_s=2.0)
    assert u.utilisation == 0.25
    assert u.memory_bytes == 4 * 4000 + 32 * 1000
    assert u.memory_share == pytest.approx(48_000 / (16 * 2**30))
    assert gpu_usage(_record(0, 1.0, compute_s=0.0), 16, cost, 2.0).memory_bytes == 0.0


def test_a_scaled_update_becomes_an_anomaly_event_in_the_round_report() -> None:
    # Prepare: node 2 sends 50x its update from round 8, after 7 normal rounds
    pool = NodePool.simulated(4, dataset="synthetic", max_train=300, max_test=60, network="lan", seed=0)
    faults = [{"kind": "scale", "nodes": [2], "start": 8, "magnitude": 50.0}]
    coord = Coordinator(pool=pool, model="mlp", faults=faults)
    reports = []
    coord.bus.subscribe(reports.append)

    # Execute
    coord.run(rounds=8, progress=False)

    # Assert
    flagged = [e for e in reports[-1].events if e.startswith("anomaly: node 2 update_norm")]
    assert flagged, reports[-1].events
    assert not any(e.startswith("anomaly: node 2 update_norm") for r in reports[:-1] for e in r.events)
    assert coord.monitor.anomalies[-1].node == 2
    assert 0 < coord.monitor.stats(0, "gpu_util").max <= 1
