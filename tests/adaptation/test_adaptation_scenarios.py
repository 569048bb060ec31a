"""Named scenarios: the links and events they promise, seeded, with round events scheduled on time."""

from __future__ import annotations

import pytest

from hypergpu_lab import ConfigError
from hypergpu_lab.adaptation import build_scenario
from hypergpu_lab.events import EventBus
from hypergpu_lab.network import Disconnect, LatencySpike, ProfileChange, Reconnect


class _FakeCoordinator:
    """Just what Scenario.attach uses: a pool and a bus."""

    def __init__(self, pool) -> None:
        self.pool, self.bus = pool, EventBus()


def test_demo_has_five_links_from_perfect_to_unstable_and_events_at_rounds_10_15_20(make_report) -> None:
    sc = build_scenario("demo", seed=0)
    assert sc.rounds == 25 and len(sc.pool) == 5
    assert [sc.pool.network.links[i].profile.name for i in range(5)] == [
        "perfect",
        "good",
        "average",
        "poor",
        "unstable",
    ]
    coord = _FakeCoordinator(sc.pool)
    sc.attach(coord)
    t = 0.0
    for r in range(1, 21):
        coord.bus.emit(make_report(r, [], t_start=t, duration=1.5))
        t += 1.5
    events = sc.pool.network.events
    spike = [e for e in events if isinstance(e, LatencySpike)]
    changes = [e for e in events if isinstance(e, ProfileChange)]
    assert len(spike) == 1 and spike[0].start == pytest.approx(9 * 1.5)  # end of round 9
    assert [(c.at, c.profile) for c in changes] == [
        (pytest.approx(14 * 1.5), "poor"),
        (pytest.approx(19 * 1.5), "good"),
        (pytest.approx(19 * 1.5), "average"),
    ]
    assert coord.bus.errors == 0
    # The spike is in force during round 10: node 1's latency is 800 ms higher.
    before = sc.pool.network.conditions(1, 9 * 1.5 - 0.1).latency_s
    assert sc.pool.network.conditions(1, 9 * 1.5 + 0.1).latency_s == pytest.approx(before + 0.8)


def test_hospitals_mix_links_and_regions() -> None:
    sc = build_scenario("hospitals", seed=1)
    names = sorted(link.profile.name for link in sc.pool.network.links.values())
    assert names == sorted(["good"] * 3 + ["average"] * 3 + ["poor"] * 2 + ["unstable"] * 2)
    assert len({link.region for link in sc.pool.network.links.values()}) == 5


def test_mobile_edge_churn_is_seeded() -> None:
    a, b = build_scenario("mobile-edge", seed=3), build_scenario("mobile-edge", seed=3)
    c = build_scenario("mobile-edge", seed=4)
    assert len(a.pool) == 100
    dis = [e for e in a.pool.network.events if isinstance(e, Disconnect)]
    rec = [e for e in a.pool.network.events if isinstance(e, Reconnect)]
    assert 15 <= len(dis) == len(rec) <= 45
    assert all(r.at >= d.start for d, r in zip(dis, rec))
    assert a.pool.network.events == b.pool.network.events != c.pool.network.events


def test_unknown_scenario() -> None:
    with pytest.raises(ConfigError, match="scenario"):
        build_scenario("moon-base")
