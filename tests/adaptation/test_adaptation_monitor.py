"""Network quality monitor: the documented score, classes with hysteresis, trends, alerts, summary."""

from __future__ import annotations

import math

import pytest

from hypergpu_lab import ConfigError
from hypergpu_lab.adaptation import NetworkMonitor, hysteresis_class, raw_class


def test_score_follows_the_documented_formula(make_record, make_report) -> None:
    # Prepare: one clean round and one where the upload needed 3 attempts and took longer.
    mon = NetworkMonitor(window=8)
    # Execute
    mon.observe(make_report(1, [make_record(0, down=0.05, up=0.05)]))
    mon.observe(make_report(2, [make_record(0, down=0.05, up=0.45, up_attempts=3)]))
    # Assert: L = mean of 4 transfer durations, p = 2 lost of 6 attempts, r = 1.
    q = mon.quality(0)
    latency, loss = (0.05 + 0.05 + 0.05 + 0.45) / 4, 2 / 6
    expected = (
        40 * min(max(math.log(2.0 / latency) / math.log(2.0 / 0.01), 0), 1) + 30 * max(1 - loss / 0.2, 0) + 30 * 1.0
    )
    assert q.latency_s == pytest.approx(latency)
    assert q.loss_rate == pytest.approx(loss)
    assert q.reliability == 1.0
    assert q.score == pytest.approx(expected)


def test_failures_lower_reliability_and_failed_transfers_are_not_latency_samples(make_record, make_report) -> None:
    mon = NetworkMonitor()
    mon.observe(make_report(1, [make_record(0, down=0.1, up=0.1)]))
    mon.observe(
        make_report(
            2,
            [
                make_record(
                    0, "failed", down=9.0, down_attempts=6, up_attempts=0, reason="download lost after 6 attempts"
                )
            ],
        )
    )
    q = mon.quality(0)
    assert q.reliability == 0.5
    assert q.latency_s == pytest.approx(0.1)  # the 9 s give-up time is not a latency sample
    assert q.loss_rate == pytest.approx(6 / 8)


def test_hysteresis_keeps_a_node_on_a_boundary_in_one_class(make_record, make_report) -> None:
    # Prepare: window 1, so each round's score depends on that round alone; the latency
    # alternates so that the score crosses the Good/Fair boundary (70) every round.
    mon = NetworkMonitor(window=1, margin=5.0)
    latencies = [0.50, 0.56] * 6
    scores, classes = [], []
    # Execute
    for r, lat in enumerate(latencies, start=1):
        mon.observe(make_report(r, [make_record(0, down=lat, up=lat)]))
        scores.append(mon.score(0))
        classes.append(mon.quality(0).quality)
    # Assert: the raw class flaps every round, the monitor's class never changes.
    assert min(scores) < 70 < max(scores)
    assert len({raw_class(s) for s in scores}) == 2
    assert set(classes) == {classes[0]}
    assert not [a for a in mon.alerts if a["kind"] == "degraded"]


def test_hysteresis_moves_once_the_score_leaves_the_margin() -> None:
    assert hysteresis_class("Good", 66.0, 5.0) == "Good"  # within 5 points below 70
    assert hysteresis_class("Good", 64.0, 5.0) == "Fair"
    assert hysteresis_class("Fair", 73.0, 5.0) == "Fair"  # within 5 points above 70
    assert hysteresis_class("Fair", 76.0, 5.0) == "Good"
    assert hysteresis_class(None, 90.0, 5.0) == "Excellent"
    assert hysteresis_class("Offline", 90.0, 5.0) == "Excellent"


def test_degradation_raises_alerts_by_severity_and_a_degrading_trend(make_record, make_report) -> None:
    mon = NetworkMonitor(window=1, margin=0.0)
    mon.observe(make_report(1, [make_record(0, down=0.02, up=0.02)]))  # Excellent
    mon.observe(make_report(2, [make_record(0, down=0.3, up=0.3)]))  # falls a class or more
    mon.observe(make_report(3, [make_record(0, down=1.5, up=1.5, up_attempts=4)]))
    alerts = mon.alerts
    kinds = [(a["kind"], a["severity"]) for a in alerts]
    assert ("trend", "info") in kinds
    assert mon.trend(0) == "degrading"
    degraded = [a for a in alerts if a["kind"] == "degraded"]
    assert degraded[0]["from"] == "Excellent"
    assert degraded[-1]["to"] in ("Poor", "Critical") and degraded[-1]["severity"] in ("warning", "critical")


def test_improving_trend(make_record, make_report) -> None:
    mon = NetworkMonitor(window=1)
    for r, lat in enumerate([1.5, 0.8, 0.3, 0.05], start=1):
        mon.observe(make_report(r, [make_record(0, down=lat, up=lat)]))
    assert mon.trend(0) == "improving"


def test_a_trend_expires_when_the_node_is_no_longer_observed(make_record, make_report) -> None:
    mon = NetworkMonitor(window=1, trend_window=3)
    for r, lat in enumerate([0.02, 0.1, 0.3], start=1):
        mon.observe(make_report(r, [make_record(0, down=lat, up=lat), make_record(1)]))
    assert mon.trend(0) == "degrading"
    for r in (4, 5, 6):
        mon.observe(make_report(r, [make_record(1)]))
    assert mon.trend(0) == "degrading"  # 3 rounds old: still current
    mon.observe(make_report(7, [make_record(1)]))
    assert mon.trend(0) == "stable" and mon.quality(0).trend == "stable"


def test_disconnect_marks_a_node_offline_with_a_critical_alert(make_record, make_report) -> None:
    mon = NetworkMonitor()
    mon.observe(make_report(1, [make_record(0)]))
    mon.observe(
        make_report(
            2,
            [make_record(0, "failed", down_attempts=6, up_attempts=0, reason="download disconnected after 6 attempts")],
        )
    )
    assert mon.quality(0).quality == "Offline"
    assert mon.alerts[-1]["severity"] == "critical"


def test_cluster_summary_counts_classes_and_names_problem_and_reliable_nodes(make_record, make_report) -> None:
    mon = NetworkMonitor()
    mon.observe(
        make_report(
            1,
            [
                make_record(0, down=0.02, up=0.02),
                make_record(1, down=0.1, up=0.1),
                make_record(
                    2, "failed", down_attempts=6, up_attempts=0, reason="download partitioned after 6 attempts"
                ),
            ],
        )
    )
    s = mon.summary(nodes=[0, 1, 2, 3])
    assert s["counts"]["Excellent"] + s["counts"]["Good"] == 2
    assert s["counts"]["Offline"] == 1 and s["counts"]["Unobserved"] == 1
    assert s["problematic"] == [2]
    assert s["reliable"] == [0, 1]


def test_state_dict_round_trips(make_record, make_report) -> None:
    a, b = NetworkMonitor(), NetworkMonitor()
    for r in range(1, 4):
        a.observe(make_report(r, [make_record(0, down=0.1 * r, up=0.1)]))
    b.load_state_dict(a.state_dict())
    assert b.quality(0) == a.quality(0) and b.alerts == a.alerts


@pytest.mark.parametrize("option", [{"window": 0}, {"bad_s": 0.001}, {"max_loss": 0}, {"margin": -1}])
def test_bad_options_name_the_field(option: dict) -> None:
    with pytest.raises(ConfigError, match="monitor."):
        NetworkMonitor(**option)


def test_every_link_profile_has_a_prior_quality_from_its_own_numbers() -> None:
    from hypergpu_lab.adaptation import CLASSES
    from hypergpu_lab.network import PROFILES

    monitor = NetworkMonitor()
    priors = {name: monitor.prior_quality(profile) for name, profile in PROFILES.items()}

    assert set(priors.values()) <= set(CLASSES) - {"Offline"}
    # The classes the documented formula gives the seed's profiles (the table the panel used to copy).
    assert priors == {
        "perfect": "Excellent",
        "good": "Excellent",
        "average": "Good",
        "poor": "Fair",
        "unstable": "Fair",
    }
