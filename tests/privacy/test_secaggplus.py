"""SecAgg+ (Bell et al. 2020): masks and key shares among k neighbours of a seeded Harary graph; the sum
stays exact, dropouts are recovered among neighbours, the graph is k-regular and reproducible, and the
protocol's bytes are priced from its messages."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

pytest.importorskip("cryptography")

from hypergpu_lab import Coordinator, NodePool, TrainConfig
from hypergpu_lab.errors import ConfigError
from hypergpu_lab.privacy import parse
from hypergpu_lab.privacy.secagg import (
    CIPHERTEXT_BYTES,
    HEADER_BYTES,
    UNMASK_SHARE_BYTES,
    FixedPoint,
    SecAggAbort,
    SecAggClient,
    mask_inputs,
)
from hypergpu_lab.privacy.secagg_graph import (
    CORRECTNESS_BITS,
    SECURITY_BITS,
    failure_bounds,
    harary,
    neighbours_for,
)

from .secagg_support import plain_sum, run_protocol


def test_the_graph_is_k_regular_symmetric_and_fixed_by_its_seed() -> None:
    nodes = list(range(3, 43))

    graph = harary(nodes, 6, seed=11, round_=2)

    assert sorted(graph) == nodes
    assert all(len(nb) == 6 and u not in nb for u, nb in graph.items())
    assert all(u in graph[v] for u, nb in graph.items() for v in nb)  # undirected
    assert graph == harary(nodes, 6, seed=11, round_=2)  # same seed and round: same graph
    assert graph != harary(nodes, 6, seed=11, round_=3) != harary(nodes, 6, seed=12, round_=2)
    assert harary(nodes[:5], 6, seed=11, round_=2) == {u: frozenset(nodes[:5]) - {u} for u in nodes[:5]}
    with pytest.raises(ValueError, match="even number"):
        harary(nodes, 5, seed=11, round_=2)


def test_the_chosen_k_meets_the_bounds_grows_like_log_n_and_is_minimal() -> None:
    for n in (100, 1000, 10_000):
        k = neighbours_for(n)
        t = k // 2 + 1
        # oracle: scipy's binomial survival functions for the three failure events
        correctness = n * stats.binom.sf(k - t, k, 0.1)
        privacy = n * stats.binom.sf(t - 1, k, 0.1) + n * 0.2 ** (k // 2)
        assert correctness <= 2.0**-CORRECTNESS_BITS and privacy <= 2.0**-SECURITY_BITS
        np.testing.assert_allclose(failure_bounds(n, k), (correctness, privacy), rtol=1e-9)
        before = failure_bounds(n, k - 2)
        assert before[0] > 2.0**-CORRECTNESS_BITS or before[1] > 2.0**-SECURITY_BITS
    assert neighbours_for(100) < neighbours_for(10_000) <= neighbours_for(100) + 10  # O(log n), far below n
    assert neighbours_for(20) == 19  # too few nodes for the bound: the complete graph, classic SecAgg


@pytest.mark.parametrize("bits", [32, 64])
def test_the_unmasked_sum_equals_the_plain_sum_exactly_with_only_neighbour_masks(bits: int) -> None:
    ring = FixedPoint(bits, bits // 2)
    updates = {n: np.random.default_rng(bits + n).normal(size=700) for n in range(12)}

    server, inputs, agreements = run_protocol(updates, ring, k=4)
    total = server.unmask()

    assert np.array_equal(total, plain_sum(inputs, ring))
    assert len([a for a in agreements if a[0] == "s"]) == 12 * 4 // 2  # mask keys for the graph's edges only
    assert all(len(server.inbox(n)) == 4 for n in updates)  # a share from each neighbour


def test_the_batched_masking_equals_each_node_masking_with_its_neighbours() -> None:
    ring = FixedPoint(32, 16)
    clients = {n: SecAggClient(7, 1, n) for n in range(9)}
    graph = harary(list(clients), 4, seed=3, round_=1)
    publics = {n: c.public_keys[1] for n, c in clients.items()}
    inputs = {n: ring.encode(np.random.default_rng(n).normal(size=200), 9)[0] for n in clients if n != 5}

    batched = mask_inputs(clients, inputs, publics, ring, graph)

    for n, x in inputs.items():
        assert np.array_equal(batched[n], clients[n].mask(x, {v: publics[v] for v in graph[n]}, ring))


def test_a_node_dropping_before_its_masked_input_is_recovered_by_its_neighbours() -> None:
    ring = FixedPoint(32, 16)
    updates = {n: np.random.default_rng(n).normal(size=500) for n in range(12)}

    server, inputs, _ = run_protocol(updates, ring, k=4, no_input=(6,))
    total = server.unmask()

    assert server.dropped() == [6]
    assert np.array_equal(total, plain_sum(inputs, ring))
    answered = {r for r, shares in server.responses.items() if 6 in shares}
    assert answered == set(server.graph[6])  # only its neighbours hold (and reveal) shares of its mask key
    assert {server.responses[r][6][0] for r in answered} == {"s"}


def test_a_node_dropping_after_sending_its_masked_input_stays_in_the_sum() -> None:
    ring = FixedPoint(32, 16)
    updates = {n: np.random.default_rng(n).normal(size=500) for n in range(12)}

    server, inputs, _ = run_protocol(updates, ring, k=4, no_answer=(2,))  # sent y_2, then never answered

    assert 2 in server.masked and 2 not in server.responses
    assert np.array_equal(server.unmask(), plain_sum(inputs, ring))  # b_2 rebuilt from 3 of its 4 neighbours


def test_a_node_with_fewer_than_t_answering_neighbours_aborts_the_round() -> None:
    ring = FixedPoint(32, 16)
    updates = {n: np.random.default_rng(n).normal(size=50) for n in range(12)}
    graph = harary(sorted(updates), 4, seed=7, round_=1)
    silent = tuple(sorted(graph[0]))[:3]  # t = 3 of node 0's 5 holders; 3 silent leave 2

    server, _, _ = run_protocol(updates, ring, k=4, no_answer=silent)

    with pytest.raises(SecAggAbort, match="node 0: 2 unmasking answers .* t = 3"):
        server.unmask()


def _run(privacy: dict, network: str = "lan", rounds: int = 2, **kw) -> Coordinator:
    pool = NodePool.simulated(12, dataset="digits", network=network, seed=4)
    coord = Coordinator(pool=pool, model="mlp", clients_per_round=10, privacy=privacy, **kw)
    coord.reports = []
    coord.bus.subscribe(coord.reports.append)
    coord.run(rounds=rounds, progress=False)
    return coord


def test_secaggplus_fedavg_equals_plain_fedavg_up_to_fixed_point() -> None:
    plain = _run({}, rounds=1)
    masked = _run({"secagg": "plus", "secagg_neighbours": 4}, rounds=1)

    assert masked.privacy.server.graph is not None
    assert {len(nb) for nb in masked.privacy.server.graph.values()} == {4}
    torch.testing.assert_close(masked.weights, plain.weights, atol=10 * 2.0**-17, rtol=0)


def test_every_secaggplus_message_is_priced_byte_for_byte() -> None:
    plain, masked = _run({}, rounds=1), _run({"secagg": "plus", "secagg_neighbours": 4}, rounds=1)
    n, k, h, c = 10, 4, HEADER_BYTES, CIPHERTEXT_BYTES

    # keys up; k + 1 keys down; k shares up and k relayed; which of k + 1 holders survived; k + 1 unmasking shares
    per_node = (64 + h) + ((k + 1) * 68 + h) + 2 * (k * c + h) + (4 * (k + 1) + h) + ((k + 1) * UNMASK_SHARE_BYTES + h)
    assert masked.history.rounds[0]["accepted"] == plain.history.rounds[0]["accepted"] == n
    assert masked.history.rounds[0]["bytes_moved"] - plain.history.rounds[0]["bytes_moved"] == n * per_node


def test_dropouts_are_recovered_among_neighbours_in_a_run() -> None:
    coord = _run({"secagg": "plus", "secagg_neighbours": 6}, network="unstable-wan", rounds=2, deadline_s=4.0)

    recovered = [r for r in coord.reports if any(e.startswith("SecAgg recovery") for e in r.events)]
    assert recovered and all(1 <= r.accepted < r.selected for r in recovered)
    assert any("SecAgg+: k = 6 neighbours" in e for r in recovered for e in r.events)


@pytest.mark.parametrize(
    "privacy, field",
    [
        ({"secagg": "plus+"}, "train.privacy.secagg"),
        ({"secagg": "plus", "secagg_neighbours": 5}, "train.privacy.secagg_neighbours"),
        ({"secagg": "plus", "secagg_neighbours": 0}, "train.privacy.secagg_neighbours"),
        ({"secagg": True, "secagg_neighbours": 4}, "train.privacy.secagg_neighbours"),
    ],
)
def test_bad_secaggplus_options_name_their_field(privacy: dict, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        TrainConfig(privacy=privacy)
    assert err.value.field == field


def test_classic_is_an_alias_of_true() -> None:
    assert parse({"secagg": "classic"}) == parse({"secagg": True})
    assert parse({"secagg": "plus"}).secagg_plus and not parse({"secagg": True}).secagg_plus


def test_the_key_derivation_is_rfc5869_hkdf_sha256() -> None:
    # oracle: cryptography's own HKDF (no salt, 32 bytes) on the same agreement and info
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    from hypergpu_lab.privacy.secagg import derive

    shared = bytes(range(32))
    info = b"hypergpu-lab secagg mask round 3 pair 2-9"
    expected = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(shared)

    assert derive(shared, "mask", 3, 9, 2) == expected
    assert derive(shared, "channel", 3, 9, 2) != expected


def test_a_secaggplus_run_resumes_bit_identically(tmp_path) -> None:
    privacy = {"secagg": "plus", "secagg_neighbours": 4}
    straight = _run(privacy, network="unstable-wan", rounds=4)
    first = _run(privacy, network="unstable-wan", rounds=2)
    first.save_checkpoint(tmp_path / "r2.ckpt")

    resumed = Coordinator.restore(tmp_path / "r2.ckpt")
    resumed.run(rounds=2, progress=False)

    assert torch.equal(resumed.weights, straight.weights)
    assert resumed.privacy.server.graph == straight.privacy.server.graph  # the last round's graph, from the seed
