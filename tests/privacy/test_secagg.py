"""Secure aggregation (Bonawitz et al. 2017): masks cancel exactly, dropouts are recovered, the
server holds only masked inputs and the sum, the protocol's bytes and time show in the round."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

pytest.importorskip("cryptography")

from hypergpu_lab import Coordinator, NodePool
from hypergpu_lab.errors import ConfigError
from hypergpu_lab.privacy.secagg import (
    CIPHERTEXT_BYTES,
    HEADER_BYTES,
    UNMASK_SHARE_BYTES,
    FixedPoint,
    SecAggAbort,
    SecAggClient,
    mask_inputs,
)

from .secagg_support import plain_sum, run_protocol


def test_x25519_agreements_are_equal_at_both_ends_and_differ_between_pairs() -> None:
    a, b, c = (SecAggClient(7, 1, n) for n in range(3))  # separate caches: each end computes its own
    pub = {n: k.public_keys[1] for n, k in enumerate((a, b, c))}

    assert a.mask_seed(1, pub[1]) == b.mask_seed(0, pub[0])
    assert a.mask_seed(1, pub[1]) != a.mask_seed(2, pub[2])
    assert SecAggClient(7, 2, 0).public_keys != a.public_keys  # fresh keys every round


def test_a_share_addressed_to_another_node_or_of_the_wrong_length_is_refused() -> None:
    # Node 0 encrypts, under its real channel key with node 1, a share labelled for node 2, then a short one
    clients = {n: SecAggClient(7, 1, n) for n in range(3)}
    publics = {n: c.public_keys for n, c in clients.items()}
    out = {n: c.share_keys(publics, 2) for n, c in clients.items()}
    nonce = struct.pack(">I8x", 0)
    channel = clients[0]._channel(1, publics[1][0])
    right = channel.decrypt(nonce, out[0][1], None)
    for forged in (struct.pack(">II", 0, 2) + right[8:], right[:-4]):
        clients[1].receive({0: channel.encrypt(nonce, forged, None), 2: out[2][1]})
        with pytest.raises(ValueError, match="addressed to another node or malformed"):
            clients[1].unmasking_shares({0, 1, 2}, [0, 1, 2], publics)
    clients[1].receive({0: out[0][1], 2: out[2][1]})  # the honest inbox answers
    assert set(clients[1].unmasking_shares({0, 1, 2}, [0, 1, 2], publics)) == {0, 1, 2}


def test_the_batched_masking_equals_each_node_masking_alone() -> None:
    ring = FixedPoint(32, 16)
    updates = {n: np.random.default_rng(n).normal(size=300) for n in range(5)}
    clients = {n: SecAggClient(7, 1, n) for n in updates}
    s_publics = {n: c.public_keys[1] for n, c in clients.items()}
    inputs = {n: ring.encode(x, 5)[0] for n, x in updates.items() if n != 2}  # node 2: in U2, no input

    batched = mask_inputs(clients, inputs, s_publics, ring)

    for n, x in inputs.items():
        assert np.array_equal(batched[n], clients[n].mask(x, s_publics, ring))


@pytest.mark.parametrize("bits", [32, 64])
def test_the_unmasked_sum_equals_the_plain_sum_exactly(bits: int) -> None:
    ring = FixedPoint(bits, bits // 2)
    updates = {n: np.random.default_rng(bits + n).normal(size=1000) for n in range(6)}

    server, inputs, _ = run_protocol(updates, ring)
    total = server.unmask()

    assert total.dtype == ring.dtype
    assert np.array_equal(total, plain_sum(inputs, ring))
    np.testing.assert_allclose(ring.decode(total), sum(updates.values()), atol=6 * 2.0**-ring.frac)


def test_a_masked_update_is_indistinguishable_from_uniform() -> None:
    # Prepare: a zero update, the worst case for leaking structure
    ring = FixedPoint(32, 16)
    server, _, _ = run_protocol({n: np.zeros(64_000) for n in range(3)}, ring)

    masked = server.masked[1]

    # Assert: chi-square of the top 6 bits over 64 bins (df 63; 0.1% critical value 103.4), mean mid-ring
    counts = np.bincount((masked >> np.uint32(26)).astype(np.int64), minlength=64)
    assert ((counts - 1000) ** 2 / 1000).sum() < 103.4
    assert abs(float(masked.mean()) / 2**31 - 1) < 0.01


def test_a_node_dropping_before_its_masked_input_is_recovered_from_shares_of_its_mask_key() -> None:
    ring = FixedPoint(32, 16)
    updates = {n: np.random.default_rng(n).normal(size=500) for n in range(5)}

    server, inputs, _ = run_protocol(updates, ring, no_input=(3,))  # 3 shared its keys, then dropped
    total = server.unmask()

    assert server.dropped() == [3] and sorted(inputs) == [0, 1, 2, 4]
    assert np.array_equal(total, plain_sum(inputs, ring))
    # never both for one node: survivors reveal b_u, the dropped node only its mask key
    kinds = {u: {r[u][0] for r in server.responses.values()} for u in server.cohort}
    assert kinds == {0: {"b"}, 1: {"b"}, 2: {"b"}, 3: {"s"}, 4: {"b"}}


def test_a_node_dropping_after_its_masked_input_stays_in_the_sum() -> None:
    ring = FixedPoint(32, 16)
    updates = {n: np.random.default_rng(n).normal(size=500) for n in range(5)}

    server, inputs, _ = run_protocol(updates, ring, no_answer=(1, 4))  # sent y_u, then never answered round 4

    assert sorted(server.responses) == [0, 2, 3] and server.threshold == 3
    assert np.array_equal(server.unmask(), plain_sum(inputs, ring))  # b_1, b_4 rebuilt from the others


def test_a_node_dropping_before_sharing_its_keys_is_left_out_of_every_mask() -> None:
    ring = FixedPoint(32, 16)
    updates = {n: np.random.default_rng(n).normal(size=500) for n in range(5)}

    server, inputs, _ = run_protocol(updates, ring, no_shares=(2,), no_input=(4,))

    assert server.cohort == [0, 1, 3, 4] and sorted(inputs) == [0, 1, 3]
    assert np.array_equal(server.unmask(), plain_sum(inputs, ring))


def test_fewer_than_t_answers_abort_and_mixed_shares_are_refused() -> None:
    ring = FixedPoint(32, 16)
    updates = {n: np.random.default_rng(n).normal(size=50) for n in range(5)}
    server, _, _ = run_protocol(updates, ring, no_answer=(0, 1, 2))
    with pytest.raises(SecAggAbort, match="t = 3"):
        server.unmask()

    server, _, _ = run_protocol(updates, ring, no_input=(3,))
    kind, share = server.responses[0][3]
    server.responses[0][3] = ("b", share)  # a survivor (wrongly) revealing b_3 of a dropped node
    with pytest.raises(ValueError, match="node 3 needs only 's' shares"):
        server.unmask()


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


def test_every_protocol_message_is_priced_byte_for_byte() -> None:
    # Prepare: a lossless lan, so every message goes through on its first attempt
    plain, masked = _run({}, rounds=1), _run({"secagg": True}, rounds=1)
    n, h, c = 6, HEADER_BYTES, CIPHERTEXT_BYTES

    # Assert: keys up (2 x 32 B), the key list down, shares up and relayed, the unmasking request and answer
    expected = n * ((64 + h) + (n * 68 + h) + 2 * ((n - 1) * c + h) + (4 * n + h) + (n * UNMASK_SHARE_BYTES + h))
    assert masked.history.rounds[0]["accepted"] == plain.history.rounds[0]["accepted"] == n
    assert masked.history.rounds[0]["bytes_moved"] - plain.history.rounds[0]["bytes_moved"] == expected


@pytest.mark.parametrize("strategy", ["median", "trimmed-mean", "krum", "multi-krum"])
def test_robust_aggregation_is_refused_with_secagg_and_says_why(strategy: str) -> None:
    with pytest.raises(ConfigError) as err:
        _run({"secagg": True}, rounds=1, strategy=strategy)
    assert err.value.field == "train.strategy"
    assert "needs every update in the clear" in str(err.value) and "sum of the masked updates" in str(err.value)


def test_dropouts_after_key_exchange_are_recovered_in_a_run() -> None:
    # A deadline on an unstable network: nodes that shared their keys miss the close; t survivors unmask.
    coord = _run({"secagg": True}, network="unstable-wan", rounds=2, deadline_s=4.0)

    recovered = [r for r in coord.reports if any(e.startswith("SecAgg recovery") for e in r.events)]
    assert recovered and all(1 <= r.accepted < r.selected for r in recovered)


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
