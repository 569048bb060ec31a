"""Node selection: each strategy picks what its definition says on hand-built monitor histories."""

from __future__ import annotations

import math
import statistics

import pytest

from hypergpu_lab import ConfigError
from hypergpu_lab.adaptation import NetworkMonitor, NodeSelector, jain_index


@pytest.fixture
def monitor(make_record, make_report) -> NetworkMonitor:
    """Five observed nodes, best link first; node 4 failed its only round. Nodes 5, 6 never observed."""
    mon = NetworkMonitor()
    mon.observe(
        make_report(
            1,
            [
                make_record(0, down=0.02, up=0.02, compute=0.5, waiting=0.5, loss=0.2, samples=100),
                make_record(1, down=0.1, up=0.1, compute=0.5, waiting=0.1, loss=1.0, samples=100),
                make_record(2, down=0.3, up=0.3, compute=0.5, waiting=0.0, loss=2.0, samples=200),
                make_record(3, down=1.5, up=1.5, up_attempts=3, compute=0.5, loss=3.0, samples=100),
                make_record(4, "failed", down_attempts=6, up_attempts=0, reason="download lost after 6 attempts"),
            ],
        )
    )
    return mon


ALL = [0, 1, 2, 3, 4, 5, 6]


def test_random_is_uniform_seeded_and_reproducible(monitor: NetworkMonitor) -> None:
    sel = NodeSelector(strategy="random", seed=3)
    a, b = sel.select(ALL, 3, monitor, 7), sel.select(ALL, 3, monitor, 7)
    assert a.nodes == b.nodes and len(a.nodes) == 3
    picks = {NodeSelector(strategy="random", seed=3).select(ALL, 3, monitor, r).nodes for r in range(1, 30)}
    assert len(picks) > 5  # different rounds, different samples


def test_all_takes_every_candidate(monitor: NetworkMonitor) -> None:
    assert NodeSelector(strategy="all").select(ALL, 2, monitor, 2).nodes == tuple(ALL)


def test_threshold_only_takes_nodes_at_or_above_the_bar(monitor: NetworkMonitor) -> None:
    sel = NodeSelector(strategy="threshold", min_score=80.0, prior_score=75.0)
    chosen = sel.select(ALL, 10, monitor, 2).nodes
    assert set(chosen) == {n for n in ALL if sel.quality(n, monitor) >= 80.0}
    assert chosen and 5 not in chosen  # the prior 75 is below the bar


def test_threshold_with_no_eligible_node_falls_back_to_the_best(monitor: NetworkMonitor) -> None:
    chosen = NodeSelector(strategy="threshold", min_score=100.0).select(ALL, 2, monitor, 2).nodes
    assert chosen == (0, 1)


def test_top_n_takes_the_highest_scores(monitor: NetworkMonitor) -> None:
    sel = NodeSelector(strategy="top_n", prior_score=0.0)
    assert sel.select(ALL, 3, monitor, 2).nodes == (0, 1, 2)


def test_adaptive_threshold_is_relative_to_the_cluster_median(monitor: NetworkMonitor) -> None:
    sel = NodeSelector(strategy="adaptive_threshold", relative_threshold=1.0, prior_score=10.0)
    bar = statistics.median(sel.quality(n, monitor) for n in ALL)
    chosen = sel.select(ALL, 10, monitor, 2).nodes
    assert set(chosen) == {n for n in ALL if sel.quality(n, monitor) >= bar}


def test_contribution_is_half_efficiency_half_reliability(monitor: NetworkMonitor) -> None:
    sel = NodeSelector(strategy="contribution", prior_contribution=0.0)
    # efficiency = compute / (compute + waiting): node 2 never waited (1.0), node 1 0.5/0.6, node 0 0.5/1.0
    assert sel.contribution(2, monitor) == pytest.approx(0.5 * 1.0 + 0.5 * 1.0)
    assert sel.contribution(1, monitor) == pytest.approx(0.5 * (0.5 / 0.6) + 0.5)
    assert sel.contribution(0, monitor) == pytest.approx(0.5 * 0.5 + 0.5)
    assert sel.contribution(4, monitor) == pytest.approx(0.0)  # no accepted round, never delivered
    assert sel.select(ALL, 3, monitor, 2).nodes[:2] == (2, 3)  # node 3: waiting 0, compute 0.5


def test_utility_is_oort_statistical_utility_times_the_speed_penalty(monitor: NetworkMonitor) -> None:
    # Prepare: no exploration, no staleness bonus, T = 0.5 s, alpha = 2.
    sel = NodeSelector(strategy="utility", preferred_duration_s=0.5, alpha=2.0, exploration=0.0, staleness=0.0)
    util = sel.utilities([0, 1, 2, 3, 4], monitor, 2)
    stat = {0: 100 * 0.2, 1: 100 * 1.0, 2: 200 * 2.0, 3: 100 * 3.0, 4: 0.0}
    dur = {0: 0.02 + 0.5 + 0.02, 1: 0.7, 2: 1.1, 3: 3.5}
    # Assert: |B| x loss normalised, times (T/t)^alpha for nodes slower than T.
    for n in (0, 1, 2, 3):
        penalty = (0.5 / dur[n]) ** 2 if dur[n] > 0.5 else 1.0
        assert util[n] == pytest.approx(stat[n] / 400 * penalty)
    assert util[4] == 0.0
    # Execute: node 2 has the most to learn and is only moderately slow; node 3 is too slow.
    assert sel.select([0, 1, 2, 3, 4], 2, monitor, 2).nodes == (2, 1)


def test_utility_explores_never_tried_nodes(monitor: NetworkMonitor) -> None:
    sel = NodeSelector(strategy="utility", exploration=0.5, seed=1)
    s = sel.select(ALL, 4, monitor, 2)
    explored = [n for n in s.nodes if s.reasons[n].startswith("explore")]
    assert sorted(explored) == [5, 6] and len(s.nodes) == 4


def test_staleness_bonus_favours_nodes_not_selected_for_long(make_record, make_report) -> None:
    mon = NetworkMonitor()
    mon.observe(make_report(1, [make_record(0, loss=1.0)]))
    mon.observe(make_report(20, [make_record(1, loss=1.0)]))
    util = NodeSelector(strategy="utility", staleness=0.1).utilities([0, 1], mon, 21)
    assert util[0] - util[1] == pytest.approx(math.sqrt(0.1 * math.log(21) / 1) - math.sqrt(0.1 * math.log(21) / 20))


def test_force_include_and_exclude(monitor: NetworkMonitor) -> None:
    sel = NodeSelector(strategy="top_n", force_include=[4], force_exclude=[0])
    chosen = sel.select(ALL, 3, monitor, 2)
    assert chosen.nodes[0] == 4 and 0 not in chosen.nodes and len(chosen.nodes) == 3
    assert chosen.reasons[4] == "forced include"
    with pytest.raises(ConfigError):
        NodeSelector(force_include=[1], force_exclude=[1])


def test_trend_penalty_deprioritises_degrading_nodes(make_record, make_report) -> None:
    mon = NetworkMonitor(window=1)
    for r, lat in enumerate([0.02, 0.05, 0.1, 0.2], start=1):  # node 0 good but degrading
        mon.observe(make_report(r, [make_record(0, down=lat, up=lat), make_record(1, down=0.25, up=0.25)]))
    assert mon.trend(0) == "degrading" and mon.score(0) > mon.score(1)
    assert NodeSelector(strategy="top_n").select([0, 1], 1, mon, 5).nodes == (0,)
    assert NodeSelector(strategy="top_n", trend_penalty=15).select([0, 1], 1, mon, 5).nodes == (1,)


def test_jain_index() -> None:
    assert jain_index([3, 3, 3, 3]) == pytest.approx(1.0)
    assert jain_index([4, 0, 0, 0]) == pytest.approx(0.25)
    assert jain_index([1, 2, 3]) == pytest.approx(36 / (3 * 14))
