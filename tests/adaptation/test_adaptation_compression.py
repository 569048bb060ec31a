"""The adaptive policy chooses each node's update compression from its link, and logs why."""

from __future__ import annotations

import numpy as np
import pytest

from hypergpu_lab import Coordinator, NodePool
from hypergpu_lab.adaptation import AdaptivePolicy
from hypergpu_lab.compression import LADDER, encoded_nbytes
from hypergpu_lab.errors import ConfigError
from hypergpu_lab.network import PROFILES, LinkProfile, RetryPolicy


def _coord(target_s: float = 0.01) -> Coordinator:
    pool = NodePool.simulated(5, dataset="digits", partition="iid", network="perfect", seed=2)
    for node, profile in zip(range(5), ("perfect", "good", "average", "poor", "unstable")):
        pool.network.links[node].profile = PROFILES[profile]
    opts = {"compression_by_link": True, "compression_target_s": target_s}
    return Coordinator(pool=pool, model="cnn", policy="adaptive", policy_options=opts)


def test_slower_links_get_at_least_as_much_compression_and_each_change_is_a_decision() -> None:
    # Prepare
    coord = _coord()
    order = list(LADDER)

    # Execute
    rep = coord.step()

    # Assert: compression level is non-decreasing as the profile's bandwidth falls (node 0 fastest)
    levels = {r.node: r.compression or "none" for r in rep.nodes}
    ranks = [order.index(levels[n]) for n in range(5)]
    assert ranks == sorted(ranks) and ranks[0] == 0 and ranks[-1] > 0
    changes = [d for d in coord.policy.decisions if d.action == "compression"]
    assert {d.node for d in changes} == {n for n in range(5) if levels[n] != "none"}
    for d in changes:
        assert d.before == "none" and d.after == levels[d.node] and "Mbps" in d.reason and "target" in d.reason
    # Assert: what the network carried is the chosen level's encoded size
    size = coord.layout.size
    for r in rep.nodes:
        assert r.upload_bytes == encoded_nbytes(LADDER[levels[r.node]], size)


def test_a_looser_target_compresses_less_and_the_choice_survives_a_checkpoint() -> None:
    tight, loose = _coord(0.005), _coord(5.0)
    tight.step()
    loose.step()
    assert all(level == "none" for level in loose.policy.codec_level.values())
    assert any(level != "none" for level in tight.policy.codec_level.values())
    again = _coord(0.005)
    again.policy.load_state_dict(tight.policy.state_dict())
    assert again.policy.codec_level == tight.policy.codec_level


def test_bad_options_name_the_field() -> None:
    with pytest.raises(ConfigError, match="compression_by_link"):
        AdaptivePolicy(compression_by_link="yes")
    with pytest.raises(ConfigError, match="compression_target_s"):
        AdaptivePolicy(compression_target_s=0)


def _price(profile: LinkProfile, latency_s: float, nbytes: int, retry: RetryPolicy) -> float:
    """Oracle, in numpy: transmission + sum over retries m of P(M > m) (timeout + backoff(m)),
    P(M > m) = 1 - (1 - p**m)**n for n = ceil(nbytes / mtu) packets each lost with p."""
    tx = nbytes * 8 / (profile.mbps(upload=True) * 1e6)
    n, m = max(1, -(-nbytes // retry.mtu_bytes)), np.arange(1, retry.max_retries + 1)
    tail = 1 - (1 - profile.loss**m) ** n
    backoff = np.minimum(retry.backoff_s * retry.backoff_factor ** (m - 1), retry.max_backoff_s)
    return float(tx + np.sum(tail * (retry.timeout_factor * (latency_s + tx) + backoff)))


@pytest.mark.parametrize("profile", ["poor", "unstable"])
def test_per_packet_loss_prices_the_retries_and_compresses_a_lossy_link_more(profile: str) -> None:
    # Prepare: the same links under both loss models; a target every level's transmission fits
    coords = {}
    for unit in ("message", "packet"):
        pool = NodePool.simulated(3, dataset="digits", partition="iid", network=profile, loss_unit=unit, seed=4)
        opts = {"compression_by_link": True, "compression_target_s": 0.25}
        coords[unit] = Coordinator(pool=pool, model="cnn", policy="adaptive", policy_options=opts)

    # Execute
    for coord in coords.values():
        coord.step()

    # Assert: per-message, transmission alone fits 0.25 s, so no compression; per-packet, each node gets
    # the first level whose oracle price fits (or the heaviest), and the reason names the packet loss
    assert set(coords["message"].policy.codec_level.values()) == {"none"}
    coord = coords["packet"]
    net, size = coord.pool.network, coord.layout.size
    for node, level in coord.policy.codec_level.items():
        cond = net.conditions(node, 0.0)
        prices = {
            k: _price(cond.profile, cond.latency_s, encoded_nbytes(s, size), net.retry) for k, s in LADDER.items()
        }
        fits = [k for k, t in prices.items() if t <= 0.25]
        assert level == (fits[0] if fits else list(LADDER)[-1])
        assert level != "none" and prices["none"] > 0.25
    for d in (d for d in coord.policy.decisions if d.action == "compression"):
        assert f"{PROFILES[profile].loss:g} packet loss over 1500-byte packets" in d.reason
