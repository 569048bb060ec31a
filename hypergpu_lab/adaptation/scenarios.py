"""Named, seeded network scenarios: a NodePool with chosen links and scheduled network events.

Events tied to a *round* cannot be given a virtual time in advance (how long
rounds take depends on the policy), so a :class:`RoundEvent` holds an event
whose ``start``/``at`` is relative to the end of round ``after_round``;
:meth:`Scenario.attach` subscribes to the coordinator's bus and schedules it
then. The bus delivers a report before the round's checkpoint is written, so
the scheduled event is part of that checkpoint's network state and a restored
run sees it too. Churn (``mobile-edge``) is scheduled in virtual time up front.

Scenarios
---------
``demo``
    The seed's demo: 5 nodes from a perfect to an unstable link, 25 rounds; a
    latency spike after round 9, degradation after round 14, improvement after 19.
``hospitals``
    10 hospitals, Dirichlet(0.5) label skew, cloud GPUs, mixed links over
    regions (3 good, 3 average, 2 poor, 2 unstable); a spike on two sites after round 10.
``mobile-edge``
    100 phones and laptops on an unstable WAN, Dirichlet(0.5); 30% of them
    drop off (Disconnect) and come back (Reconnect) at seeded random times.
``wan``
    20 nodes on the unstable-wan mix with mixed GPUs, Dirichlet(0.5), no events.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hypergpu_lab.errors import ConfigError
from hypergpu_lab.events import RoundReport
from hypergpu_lab.network import Disconnect, LatencySpike, NetworkEvent, ProfileChange, Reconnect
from hypergpu_lab.nodes import NodePool

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoundEvent:
    """``event`` (times relative to the end of round ``after_round``) scheduled when that round ends."""

    after_round: int
    event: NetworkEvent

    def at(self, t_end: float) -> NetworkEvent:
        """The event shifted to absolute virtual time."""
        e = self.event
        if isinstance(e, (ProfileChange, Reconnect)):
            return dataclasses.replace(e, at=t_end + e.at)
        return dataclasses.replace(e, start=t_end + e.start)


@dataclass
class Scenario:
    """A ready pool, the rounds it is meant to run, and its round-triggered events."""

    name: str
    description: str
    pool: NodePool
    rounds: int
    round_events: tuple[RoundEvent, ...] = ()

    def attach(self, coord: Any) -> Callable[[], None]:
        """Schedule each round event when its round's report is emitted; returns the unsubscribe function.

        Events go to ``coord.pool`` (a restored coordinator may have rebuilt its pool).
        """
        network = coord.pool.network

        def on_report(report: RoundReport) -> None:
            for re in self.round_events:
                if re.after_round == report.round:
                    event = re.at(report.t_end)
                    if event not in network.events:
                        network.schedule(event)
                        log.info("scenario %s: after round %d scheduled %r", self.name, report.round, event)

        return coord.bus.subscribe(on_report)


def set_links(pool: NodePool, profiles: Sequence[str], *, regions: Sequence[str] | None = None, seed: int = 0) -> None:
    """Give node ``i`` the link profile ``profiles[i]`` (and region), keeping the draw seeded."""
    for i, profile in zip(sorted(pool.nodes), profiles):
        pool.network.remove_link(i)
        region = regions[i % len(regions)] if regions else "local"
        pool.network.add_link(i, profile, region=region, seed=seed)


def demo(seed: int = 0, **options: Any) -> Scenario:
    pool = NodePool.simulated(5, **{"dataset": "digits", "partition": "iid", "gpus": "mixed", "seed": seed, **options})
    set_links(pool, ["perfect", "good", "average", "poor", "unstable"], seed=seed)
    events = (
        RoundEvent(9, LatencySpike((1, 2), start=0.0, duration=3.0, extra_ms=800.0)),
        RoundEvent(14, ProfileChange((0, 1), at=0.0, profile="poor")),
        RoundEvent(19, ProfileChange((0, 1), at=0.0, profile="good")),
        RoundEvent(19, ProfileChange((4,), at=0.0, profile="average")),
    )
    return Scenario(
        "demo",
        "5 nodes, perfect to unstable links; spike at 10, degradation at 15, improvement at 20",
        pool,
        25,
        events,
    )


def hospitals(seed: int = 0, **options: Any) -> Scenario:
    pool = NodePool.simulated(
        10, **{"dataset": "digits", "partition": "dirichlet", "alpha": 0.5, "gpus": "cloud", "seed": seed, **options}
    )
    profiles = ["good"] * 3 + ["average"] * 3 + ["poor"] * 2 + ["unstable"] * 2
    np.random.default_rng([seed, 0x405]).shuffle(profiles)
    set_links(pool, profiles, regions=["us-east", "us-west", "eu-west", "sa-east", "ap-south"], seed=seed)
    events = (RoundEvent(10, LatencySpike((0, 1), start=0.0, duration=5.0, extra_ms=500.0)),)
    return Scenario("hospitals", "10 hospitals, Dirichlet(0.5), mixed links over 5 regions", pool, 40, events)


def mobile_edge(
    seed: int = 0, *, churn: float = 0.3, horizon_s: float = 120.0, mean_off_s: float = 20.0, **options: Any
) -> Scenario:
    pool = NodePool.simulated(
        100,
        **{
            "dataset": "digits",
            "partition": "dirichlet",
            "alpha": 0.5,
            "gpus": "consumer",
            "network": "unstable-wan",
            "seed": seed,
            **options,
        },
    )
    rng = np.random.default_rng([seed, 0xED6E])
    for n in sorted(pool.nodes):
        if rng.random() < churn:
            start = float(rng.uniform(0.0, horizon_s))
            pool.network.schedule(Disconnect((n,), start=start))
            pool.network.schedule(Reconnect((n,), at=start + float(rng.exponential(mean_off_s))))
    return Scenario("mobile-edge", f"100 edge nodes on an unstable WAN, {churn:.0%} churn", pool, 60)


def wan(seed: int = 0, **options: Any) -> Scenario:
    pool = NodePool.simulated(
        20,
        **{
            "dataset": "digits",
            "partition": "dirichlet",
            "alpha": 0.5,
            "gpus": "mixed",
            "network": "unstable-wan",
            "seed": seed,
            **options,
        },
    )
    return Scenario("wan", "20 nodes on the unstable-wan mix, Dirichlet(0.5)", pool, 40)


SCENARIOS: dict[str, Callable[..., Scenario]] = {
    "demo": demo,
    "hospitals": hospitals,
    "mobile-edge": mobile_edge,
    "wan": wan,
}


def build_scenario(name: str, *, seed: int = 0, **options: Any) -> Scenario:
    """Build a named scenario; ``options`` go to its builder (pool fields, or churn settings)."""
    if name not in SCENARIOS:
        raise ConfigError("scenario", name, "one of " + ", ".join(SCENARIOS))
    return SCENARIOS[name](seed, **options)
