"""The adaptive policy chooses each node's update compression from its link, and logs why."""

from __future__ import annotations

import pytest

from hypergpu_lab import Coordinator, NodePool
from hypergpu_lab.adaptation import AdaptivePolicy
from hypergpu_lab.compression import LADDER, encoded_nbytes
from hypergpu_lab.errors import ConfigError
from hypergpu_lab.network import PROFILES


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
