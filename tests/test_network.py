"""Tests for the simulated network, checked against analytic values."""

from __future__ import annotations

import json
import math
import pickle
from collections import Counter

import numpy as np
import pytest
from network_support import ScriptedRng

from hypergpu_lab.errors import ConfigError
from hypergpu_lab.network import (
    MIXES,
    PROFILES,
    REGIONS,
    Disconnect,
    LatencySpike,
    Link,
    LinkProfile,
    Network,
    Partition,
    ProfileChange,
    Reconnect,
    RetryPolicy,
    Transfer,
)

# A clean link: no jitter, no loss, so every duration is analytic.
CLEAN = LinkProfile("clean", (0.0, 0.0), 0.0, 100.0, 0.0)
NBYTES = 1_250_000  # 10 Mbit -> 0.1 s at 100 Mbps


DEFAULT_RETRY = RetryPolicy()


def one_link(profile: LinkProfile = CLEAN, *, latency_ms: float = 20.0, retry: RetryPolicy = DEFAULT_RETRY) -> Network:
    return Network({0: Link(0, profile, "local", latency_ms)}, retry=retry)


def backoffs(retry: RetryPolicy, n: int) -> list[float]:
    """The formula, written out independently of RetryPolicy.backoff."""
    return [min(retry.backoff_s * retry.backoff_factor**k, retry.max_backoff_s) for k in range(n)]


# --------------------------------------------------------------------------- profiles and mixes


def test_profiles_match_the_project_seed() -> None:
    expected = {  # name: (latency range ms, loss)
        "perfect": ((0.0, 1.0), 0.0),
        "good": ((10.0, 50.0), 0.001),
        "average": ((50.0, 150.0), 0.01),
        "poor": ((150.0, 300.0), 0.05),
        "unstable": ((50.0, 500.0), 0.10),
    }

    assert {n: (p.latency_ms, p.loss) for n, p in PROFILES.items()} == expected
    assert all(p.name == n for n, p in PROFILES.items())


def test_every_mix_names_known_profiles_and_sums_to_one() -> None:
    for fractions in MIXES.values():
        assert set(fractions) <= set(PROFILES)
        assert math.fsum(fractions.values()) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (10, {"good": 4, "average": 3, "poor": 2, "unstable": 1}),
        # quotas 2.8, 2.1, 1.4, 0.7 -> floors 2, 2, 1, 0; the two largest remainders (.8, .7) get one more
        (7, {"good": 3, "average": 2, "poor": 1, "unstable": 1}),
        (100, {"good": 40, "average": 30, "poor": 20, "unstable": 10}),
    ],
)
def test_mix_fractions_produce_exact_counts(n: int, expected: dict[str, int]) -> None:
    network = Network.build(range(n), mix="mixed", seed=3)

    counts = Counter(link.profile.name for link in network.links.values())

    assert counts == expected


def test_single_profile_name_or_link_profile_gives_every_node_that_profile() -> None:
    by_name = Network.build(range(5), mix="poor")
    by_object = Network.build(range(5), mix=CLEAN)

    assert {link.profile for link in by_name.links.values()} == {PROFILES["poor"]}
    assert {link.profile for link in by_object.links.values()} == {CLEAN}


def test_same_seed_gives_same_links_and_another_seed_differs() -> None:
    # Prepare / Execute
    a = Network.build(range(20), mix="mixed", regions=["us-east", "eu-west"], seed=7)
    b = Network.build(range(20), mix="mixed", regions=["us-east", "eu-west"], seed=7)
    c = Network.build(range(20), mix="mixed", regions=["us-east", "eu-west"], seed=8)

    # Assert
    assert a.links == b.links
    assert [link.base_latency_ms for link in a.links.values()] != [link.base_latency_ms for link in c.links.values()]


def test_built_links_draw_latency_in_range_plus_region_round_robin() -> None:
    regions = ["local", "eu-west", "ap-south"]

    network = Network.build(range(9), mix="mixed", regions=regions, seed=1)

    for i, link in network.links.items():
        assert link.region == regions[i % 3]
        low, high = link.profile.latency_ms
        extra = REGIONS[link.region]
        assert low + extra <= link.base_latency_ms <= high + extra


def test_a_node_latency_does_not_depend_on_the_other_nodes() -> None:
    small = Network.build([5], mix="good", seed=2)
    large = Network.build([0, 1, 5, 9], mix="good", seed=2)

    assert small.links[5] == large.links[5]


# --------------------------------------------------------------------------- transfers


@pytest.mark.parametrize("nbytes", [0, 1, 1_000, 1_000_000, 123_456_789])
def test_clean_transfer_time_is_latency_plus_size_over_bandwidth_exactly(nbytes: int) -> None:
    # Prepare
    network = one_link(latency_ms=37.0)

    # Execute
    transfer = network.transfer(0, nbytes, 0.0, np.random.default_rng(0))

    # Assert
    assert transfer == Transfer(node=0, nbytes=nbytes, start=0.0, end=0.037 + nbytes * 8 / 100e6, ok=True, attempts=1)
    assert transfer.retries == 0 and transfer.reason is None


def test_an_asymmetric_link_uploads_at_its_uplink_rate_and_downloads_at_its_bandwidth() -> None:
    home = LinkProfile("home", (0.0, 0.0), 0.0, 100.0, 0.0, upload_mbps=10.0)
    network = one_link(home, latency_ms=20.0)

    down = network.transfer(0, NBYTES, 0.0, np.random.default_rng(0))
    up = network.transfer(0, NBYTES, 0.0, np.random.default_rng(0), upload=True)
    same = one_link(CLEAN, latency_ms=20.0).transfer(0, NBYTES, 0.0, np.random.default_rng(0), upload=True)

    assert down.duration == pytest.approx(0.020 + NBYTES * 8 / 100e6, abs=1e-12)  # 0.12 s
    assert up.duration == pytest.approx(0.020 + NBYTES * 8 / 10e6, abs=1e-12)  # 1.02 s
    assert same.duration == down.duration, "a symmetric link uploads at its bandwidth"
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ConfigError, match="upload_mbps"):
            LinkProfile("bad", (0.0, 0.0), 0.0, 100.0, 0.0, upload_mbps=bad)
    restored = Network({})
    restored.load_state_dict(json.loads(json.dumps(network.state_dict())))
    assert restored.links[0].profile == home


def test_500_ms_link_takes_exactly_half_a_second_longer_than_a_0_ms_link() -> None:
    fast, slow = one_link(latency_ms=0.0), one_link(latency_ms=500.0)

    d_fast = fast.transfer(0, NBYTES, 10.0, np.random.default_rng(1)).duration
    d_slow = slow.transfer(0, NBYTES, 10.0, np.random.default_rng(1)).duration

    assert d_slow - d_fast == pytest.approx(0.5, abs=1e-12)


@pytest.mark.parametrize("loss", [0.01, 0.1, 0.3])
def test_mean_attempts_match_geometric_mean(loss: float) -> None:
    # Prepare: retries effectively unbounded so every message gets through
    profile = LinkProfile("lossy", (0.0, 0.0), loss, 100.0)
    network = one_link(profile, retry=RetryPolicy(max_retries=1_000))
    rng = np.random.default_rng(42)

    # Execute
    attempts = [network.transfer(0, 1_000, 0.0, rng).attempts for _ in range(10_000)]

    # Assert
    assert np.mean(attempts) == pytest.approx(1 / (1 - loss), rel=0.02)


def test_jitter_mean_matches_half_normal_mean() -> None:
    # Prepare: zero latency and size so the duration is the jitter alone
    sigma_ms = 20.0
    network = one_link(LinkProfile("jittery", (0.0, 0.0), 0.0, 100.0, sigma_ms), latency_ms=0.0)
    rng = np.random.default_rng(5)

    # Execute
    durations = [network.transfer(0, 0, 0.0, rng).duration for _ in range(20_000)]

    # Assert
    assert min(durations) >= 0.0
    assert np.mean(durations) == pytest.approx(sigma_ms / 1e3 * math.sqrt(2 / math.pi), rel=0.03)


def test_backoff_timeline_for_forced_losses_matches_the_formula() -> None:
    # Prepare: three lost attempts, then a delivered one; backoff capped on the third
    retry = RetryPolicy(max_retries=5, timeout_factor=3.0, backoff_s=0.1, backoff_factor=3.0, max_backoff_s=0.5)
    network = one_link(LinkProfile("lossy", (0.0, 0.0), 0.5, 100.0), retry=retry)
    rng = ScriptedRng([0.1, 0.2, 0.3, 0.9])
    d = 0.020 + NBYTES * 8 / 100e6
    b = backoffs(retry, 3)

    # Execute
    transfer = network.transfer(0, NBYTES, 1.0, rng)  # type: ignore[arg-type]

    # Assert
    assert b == pytest.approx([0.1, 0.3, 0.5])
    assert transfer.ok and transfer.attempts == 4 and transfer.reason is None
    assert transfer.end == pytest.approx(1.0 + 3 * (3.0 * d) + sum(b) + d, abs=1e-12)
    assert rng.calls == ["normal", "uniform"] * 4


def test_all_attempts_lost_gives_up_after_last_timeout() -> None:
    retry = RetryPolicy(max_retries=2)
    network = one_link(LinkProfile("lossy", (0.0, 0.0), 0.5, 100.0), retry=retry)
    d = 0.020 + NBYTES * 8 / 100e6

    transfer = network.transfer(0, NBYTES, 0.0, ScriptedRng([0.0, 0.0, 0.0]))  # type: ignore[arg-type]

    assert (transfer.ok, transfer.attempts, transfer.reason) == (False, 3, "lost")
    assert transfer.end == pytest.approx(3 * 2.0 * d + sum(backoffs(retry, 2)), abs=1e-12)


def test_disconnected_for_the_whole_window_fails_after_every_attempt() -> None:
    # Prepare
    retry = RetryPolicy(max_retries=4)
    network = one_link(retry=retry)
    network.schedule(Disconnect(nodes=(0,), start=0.0, duration=None))
    d = 0.020 + NBYTES * 8 / 100e6
    rng = ScriptedRng([0.5] * 5)

    # Execute
    transfer = network.transfer(0, NBYTES, 0.0, rng)  # type: ignore[arg-type]

    # Assert
    assert (transfer.ok, transfer.attempts, transfer.reason) == (False, 5, "disconnected")
    assert transfer.end == pytest.approx(5 * 2.0 * d + sum(backoffs(retry, 4)), abs=1e-12)
    assert rng.calls == ["normal", "uniform"] * 5  # same draws whatever the outcome


def attempt_starts(retry: RetryPolicy, d: float, n: int) -> list[float]:
    """Start times of attempts 1..n when every earlier attempt fails."""
    starts, t = [0.0], 0.0
    for b in backoffs(retry, n - 1):
        t += retry.timeout_factor * d + b
        starts.append(t)
    return starts


@pytest.mark.parametrize("ending", ["duration", "reconnect"])
def test_disconnect_ending_during_retries_succeeds_on_the_next_attempt(ending: str) -> None:
    # Prepare: the link comes back between attempt 2 and attempt 3
    retry = RetryPolicy()
    network = one_link(retry=retry)
    d = 0.020 + NBYTES * 8 / 100e6
    t1, t2, t3 = attempt_starts(retry, d, 3)
    back = (t2 + t3) / 2
    if ending == "duration":
        network.schedule(Disconnect(nodes=(0,), start=0.0, duration=back))
    else:
        network.schedule(Disconnect(nodes=(0,), start=0.0))
        network.schedule(Reconnect(nodes=(0,), at=back))

    # Execute
    transfer = network.transfer(0, NBYTES, 0.0, np.random.default_rng(0))

    # Assert
    assert transfer.ok and transfer.attempts == 3
    assert transfer.end == pytest.approx(t3 + d, abs=1e-12)


def test_partition_fails_attempts_with_reason_partitioned() -> None:
    # Prepare
    network = one_link(retry=RetryPolicy(max_retries=1))
    network.schedule(Partition(nodes=(0,), start=5.0, duration=100.0))

    # Execute
    during = network.transfer(0, NBYTES, 10.0, np.random.default_rng(0))
    after = network.transfer(0, NBYTES, 105.0, np.random.default_rng(0))

    # Assert
    assert (during.ok, during.attempts, during.reason) == (False, 2, "partitioned")
    assert after.ok and after.attempts == 1
    assert network.conditions(0, 4.999).connected and not network.conditions(0, 5.0).connected


def test_disconnect_takes_precedence_over_partition_in_the_reason() -> None:
    network = one_link()
    network.schedule(Partition(nodes=0, start=0.0, duration=10.0))
    network.schedule(Disconnect(nodes=0, start=0.0, duration=10.0))

    assert network.conditions(0, 1.0).reason == "disconnected"


def test_latency_spike_is_active_only_in_its_window_and_spikes_add() -> None:
    # Prepare
    network = one_link(latency_ms=20.0)
    network.schedule(LatencySpike(nodes=(0,), start=10.0, duration=5.0, extra_ms=300.0))
    network.schedule(LatencySpike(nodes=(0,), start=12.0, duration=10.0, extra_ms=50.0))

    # Execute
    latency = {t: network.conditions(0, t).latency_s for t in (9.999, 10.0, 12.0, 15.0, 22.0)}
    during = network.transfer(0, NBYTES, 11.0, np.random.default_rng(0))

    # Assert
    assert latency == pytest.approx({9.999: 0.020, 10.0: 0.320, 12.0: 0.370, 15.0: 0.070, 22.0: 0.020})
    assert during.duration == pytest.approx(0.320 + NBYTES * 8 / 100e6, abs=1e-12)


def test_profile_change_applies_from_its_time_and_keeps_the_latency_quantile() -> None:
    # Prepare: a "good" link a quarter of the way up its 10-50 ms range
    good, poor = PROFILES["good"], PROFILES["poor"]
    network = Network({3: Link(3, good, "local", 20.0)})
    network.schedule(ProfileChange(nodes=(3,), at=50.0, profile="poor"))

    # Execute
    before, after = network.conditions(3, 49.9), network.conditions(3, 50.0)

    # Assert
    assert before.profile == good and before.latency_s == pytest.approx(0.020)
    assert after.profile == poor and after.latency_s == pytest.approx((150.0 + 0.25 * 150.0) / 1e3)


def test_latest_profile_change_wins() -> None:
    network = one_link()
    network.schedule(ProfileChange(nodes=0, at=20.0, profile="unstable"))
    network.schedule(ProfileChange(nodes=0, at=10.0, profile="poor"))

    assert [network.conditions(0, t).profile.name for t in (5.0, 15.0, 25.0)] == ["clean", "poor", "unstable"]


def test_events_between_is_half_open_and_time_ordered() -> None:
    # Prepare
    network = one_link()
    late = Reconnect(nodes=0, at=30.0)
    early = Disconnect(nodes=0, start=10.0)
    edge = LatencySpike(nodes=0, start=20.0, duration=1.0, extra_ms=5.0)
    for event in (late, early, edge):
        network.schedule(event)

    # Execute / Assert
    assert network.events_between(0.0, 30.0) == [early, edge, late]
    assert network.events_between(10.0, 20.0) == [edge]


def test_removed_node_raises_key_error() -> None:
    network = Network.build(range(3), mix="good")

    network.remove_link(1)

    with pytest.raises(KeyError, match="node 1 has no link"):
        network.transfer(1, 10, 0.0, np.random.default_rng(0))


def test_add_link_rejects_an_existing_node_and_draws_like_build() -> None:
    network = Network.build(range(2), mix="average", regions=["sa-east"], seed=4)

    with pytest.raises(ConfigError, match=r"^node: "):
        network.add_link(1, "average", region="sa-east", seed=4)
    network.remove_link(1)
    readded = network.add_link(1, "average", region="sa-east", seed=4)

    assert readded == Network.build(range(2), mix="average", regions=["sa-east"], seed=4).links[1]


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: Network.build(range(3), mix="bogus"), "network"),
        (lambda: Network.build(range(3), mix={"good": 0.5, "bogus": 0.5}), "network"),
        (lambda: Network.build(range(3), mix={"good": 0.5, "poor": 0.4}), "network"),
        (lambda: Network.build(range(3), regions=["mars"]), "region"),
        (lambda: Network.build([1, 1]), "node_ids"),
        (lambda: LinkProfile("x", (0.0, 1.0), 1.0, 10.0), "loss"),
        (lambda: LinkProfile("x", (0.0, 1.0), -0.1, 10.0), "loss"),
        (lambda: LinkProfile("x", (5.0, 1.0), 0.0, 10.0), "latency_ms"),
        (lambda: LinkProfile("x", (0.0, 1.0), 0.0, 0.0), "bandwidth_mbps"),
        (lambda: LinkProfile("x", (0.0, 1.0), 0.0, 10.0, math.nan), "jitter_ms"),
        (lambda: RetryPolicy(max_retries=-1), "max_retries"),
        (lambda: RetryPolicy(timeout_factor=0.5), "timeout_factor"),
        (lambda: Disconnect(nodes=(0,), start=0.0, duration=0.0), "duration"),
        (lambda: Partition(nodes=(), start=0.0, duration=1.0), "nodes"),
        (lambda: LatencySpike(nodes=(0,), start=math.inf, duration=1.0, extra_ms=1.0), "start"),
        (lambda: ProfileChange(nodes=(0,), at=1.0, profile="bogus"), "profile"),
        (lambda: one_link().schedule(Disconnect(nodes=(0, 9), start=0.0)), "nodes"),
    ],
)
def test_bad_values_raise_config_error_naming_the_field(make, field: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{field}: ") as info:
        make()

    assert info.value.field == field


def test_unknown_mix_error_lists_the_accepted_names() -> None:
    with pytest.raises(ConfigError) as info:
        Network.build(range(3), mix="bogus")

    assert all(name in str(info.value) for name in [*MIXES, *PROFILES])


# --------------------------------------------------------------------------- checkpoints


def test_state_dict_round_trip_through_json_reproduces_transfers() -> None:
    # Prepare
    original = Network.build(
        range(6),
        mix="unstable-wan",
        regions=["us-west", "ap-south"],
        seed=9,
        retry=RetryPolicy(max_retries=3, backoff_s=0.2),
    )
    original.schedule(LatencySpike(nodes=(0, 1, 5), start=1.0, duration=5.0, extra_ms=100.0))
    original.schedule(Disconnect(nodes=(2,), start=0.0))
    original.schedule(Reconnect(nodes=(2,), at=3.0))
    original.schedule(Partition(nodes=(3,), start=2.0, duration=1.0))
    original.schedule(ProfileChange(nodes=(4,), at=1.5, profile="perfect"))
    original.remove_link(5)  # its spike stays in the record
    restored = Network({})

    # Execute
    restored.load_state_dict(json.loads(json.dumps(original.state_dict())))

    # Assert
    assert restored.links == original.links
    assert restored.events == original.events
    assert restored.retry == original.retry
    for node in range(5):
        for start in (0.0, 1.7, 2.5):
            assert restored.transfer(node, NBYTES, start, np.random.default_rng([node, 1])) == original.transfer(
                node, NBYTES, start, np.random.default_rng([node, 1])
            )


def test_records_are_picklable() -> None:
    records = [
        PROFILES["good"],
        RetryPolicy(),
        Link(0, CLEAN, "local", 1.0),
        Transfer(0, 1, 0.0, 1.0, True, 1),
        Disconnect(nodes=(0,), start=0.0),
        ProfileChange(nodes=(0,), at=0.0, profile="poor"),
        one_link().conditions(0, 0.0),
    ]

    assert pickle.loads(pickle.dumps(records)) == records
