"""Secure aggregation (Bonawitz et al. 2017): masks cancel exactly, dropouts are recovered, the
server holds only masked inputs and the sum, the protocol's bytes and time show in the round."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("cryptography")

from hypergpu_lab import Coordinator, NodePool
from hypergpu_lab.errors import ConfigError
from hypergpu_lab.privacy.secagg import FixedPoint, SecAggClient, SecAggServer


def _cohort(nodes: list[int], round_: int = 1) -> tuple[dict[int, SecAggClient], dict[int, bytes]]:
    clients = {n: SecAggClient(7, round_, n) for n in nodes}
    return clients, {n: c.public_key for n, c in clients.items()}


def test_x25519_pair_seeds_agree_on_both_sides_and_differ_between_pairs() -> None:
    clients, publics = _cohort([0, 1, 2])

    assert clients[0].pair_seed(1, publics[1]) == clients[1].pair_seed(0, publics[0])
    assert clients[0].pair_seed(1, publics[1]) != clients[0].pair_seed(2, publics[2])


@pytest.mark.parametrize("bits", [32, 64])
def test_masks_cancel_exactly_in_the_ring(bits: int) -> None:
    # Prepare
    ring = FixedPoint(bits, bits // 2)
    rng = np.random.default_rng(bits)
    updates = {n: rng.normal(size=1000) for n in range(6)}
    clients, publics = _cohort(list(updates))
    encoded = {n: ring.encode(x, 6)[0] for n, x in updates.items()}

    # Execute
    server = SecAggServer(ring, 1000, publics=publics)
    for n, x in encoded.items():
        server.masked[n] = clients[n].mask(x, publics, ring)
    total = server.unmask(list(updates))

    # Assert: the unmasked sum is the plain ring sum, bit for bit, and decodes to the float sum
    plain = np.zeros(1000, dtype=np.uint64)
    for x in encoded.values():
        plain = plain + x
    assert np.array_equal(total, plain & ring.modulus_mask)
    np.testing.assert_allclose(ring.decode(total), sum(updates.values()), atol=6 * 2.0**-ring.frac)


def test_a_masked_update_is_indistinguishable_from_uniform() -> None:
    # Prepare: a zero update, the worst case for leaking structure
    ring = FixedPoint(32, 16)
    clients, publics = _cohort([0, 1, 2])

    # Execute
    masked = clients[1].mask(ring.encode(np.zeros(64_000), 3)[0], publics, ring)

    # Assert: chi-square of the top 6 bits over 64 bins (df 63; 0.1% critical value 103.4)
    counts = np.bincount((masked >> np.uint64(26)).astype(np.int64), minlength=64)
    chi2 = ((counts - 1000) ** 2 / 1000).sum()
    assert chi2 < 103.4
    assert abs(float(masked.mean()) / 2**31 - 1) < 0.01


def test_a_dropped_node_is_recovered_from_the_survivors_seeds() -> None:
    # Prepare: five nodes advertise keys and mask with each other; node 3 never sends its input
    ring = FixedPoint(32, 16)
    rng = np.random.default_rng(3)
    updates = {n: rng.normal(size=500) for n in range(5)}
    clients, publics = _cohort(list(updates))
    server = SecAggServer(ring, 500, publics=publics)
    survivors = [0, 1, 2, 4]
    for n in survivors:
        server.masked[n] = clients[n].mask(ring.encode(updates[n], 5)[0], publics, ring)

    # Execute: the recovery step, then the sum
    for n in survivors:
        server.revealed.update(clients[n].reveal(server.dropped(survivors), publics))
    total = ring.decode(server.unmask(survivors))

    # Assert
    np.testing.assert_allclose(total, sum(updates[n] for n in survivors), atol=5 * 2.0**-16)
    assert server.dropped(survivors) == [3]


def _run(privacy: dict, network: str = "lan", rounds: int = 2, **kw) -> Coordinator:
    pool = NodePool.simulated(12, dataset="digits", network=network, seed=4)
    coord = Coordinator(pool=pool, model="mlp", clients_per_round=6, privacy=privacy, **kw)
    coord.reports = []
    coord.bus.subscribe(coord.reports.append)
    coord.run(rounds=rounds, progress=False)
    return coord


@pytest.mark.parametrize("bits, rounds, atol", [(32, 1, 6 * 2.0**-17), (64, 2, 1e-6)])
def test_secagg_fedavg_equals_plain_fedavg_up_to_fixed_point(bits: int, rounds: int, atol: float) -> None:
    plain = _run({}, rounds=rounds)
    masked = _run({"secagg": True, "secagg_bits": bits}, rounds=rounds)

    assert [r["accepted"] for r in masked.history.rounds] == [r["accepted"] for r in plain.history.rounds]
    # each of 6 nodes rounds its weighted update to 2^-(frac + 1): the sum is within 6 such steps
    torch.testing.assert_close(masked.weights, plain.weights, atol=atol, rtol=0)


def test_the_server_holds_only_masked_updates_and_the_sum() -> None:
    # Prepare: a spy on the node side keeps each clear update before the node masks it
    clear: dict[int, torch.Tensor] = {}
    seen: list = []
    pool = NodePool.simulated(12, dataset="digits", network="lan", seed=4)
    coord = Coordinator(pool=pool, model="mlp", clients_per_round=6, privacy={"secagg": True})
    coord.bus.subscribe(seen.append)
    on_nodes = coord.privacy.on_nodes

    def spy(rnd):
        clear.update({n: r.delta.clone() for n, r in rnd.results.items()})
        on_nodes(rnd)

    coord.privacy.on_nodes = spy

    # Execute
    coord.step()

    # Assert: every input the server holds is a ring vector far from any clear update
    server = coord.privacy.server
    ring = server.ring
    assert set(server.masked) == {n.node for n in seen[0].nodes if n.status == "accepted"}
    for node, masked in server.masked.items():
        as_update = ring.decode(masked)[: coord.layout.size]
        assert np.abs(as_update - clear[node].numpy()).max() > 100  # uniform in the ring, not the update
    assert all(rec.update_norm is None and rec.agreement is None for rec in seen[0].nodes)
    assert server.total is not None  # the sum, which is all it learns


def test_protocol_bytes_and_time_are_priced_by_the_network() -> None:
    plain, masked = _run({}, network="mixed", rounds=1), _run({"secagg": True}, network="mixed", rounds=1)

    p, m = plain.history.rounds[0], masked.history.rounds[0]
    assert m["bytes_moved"] > p["bytes_moved"]  # keys, broadcast
    assert m["duration"] > p["duration"]  # a round trip for the keys before training


@pytest.mark.parametrize("strategy", ["median", "trimmed-mean", "krum", "multi-krum"])
def test_robust_aggregation_is_refused_with_secagg_and_says_why(strategy: str) -> None:
    with pytest.raises(ConfigError) as err:
        _run({"secagg": True}, rounds=1, strategy=strategy)
    assert err.value.field == "train.strategy"
    assert "needs every update in the clear" in str(err.value) and "sum of the masked updates" in str(err.value)


def test_dropouts_after_key_exchange_are_recovered_in_a_run() -> None:
    # A deadline on an unstable network: nodes that advertised keys miss the close; survivors reveal seeds.
    coord = _run({"secagg": True}, network="unstable-wan", rounds=4, deadline_s=2.5)

    events = [e for r in coord.reports for e in r.events]
    assert any(e.startswith("SecAgg recovery") for e in events)
    assert all(r.accepted >= 1 for r in coord.reports)


def test_a_secagg_dp_run_resumes_bit_identically(tmp_path) -> None:
    privacy = {"secagg": True, "mode": "central", "noise_multiplier": 0.7, "clip": 1.0, "adaptive_quantile": 0.5}
    options = {"privacy": {**privacy, "clip_count_stddev": 1.0}}
    straight = _run(options["privacy"], network="unstable-wan", rounds=4)
    first = _run(options["privacy"], network="unstable-wan", rounds=2)
    first.save_checkpoint(tmp_path / "r2.ckpt")

    resumed = Coordinator.restore(tmp_path / "r2.ckpt")
    resumed.run(rounds=2, progress=False)

    assert torch.equal(resumed.weights, straight.weights)
    assert resumed.privacy.clip == straight.privacy.clip
    assert resumed.privacy.rounds_accounted == straight.privacy.rounds_accounted == 4
