"""The protocol driver shared by the SecAgg and SecAgg+ tests: Bonawitz et al.'s rounds 0-4 run by hand."""

from __future__ import annotations

import numpy as np

from hypergpu_lab.privacy.secagg import FixedPoint, SecAggClient, SecAggServer, mask_inputs, threshold_for
from hypergpu_lab.privacy.secagg_graph import harary


def run_protocol(
    updates: dict[int, np.ndarray],
    ring: FixedPoint,
    k: int | None = None,
    *,
    no_shares: tuple[int, ...] = (),
    no_input: tuple[int, ...] = (),
    no_answer: tuple[int, ...] = (),
) -> tuple[SecAggServer, dict[int, np.ndarray], dict]:
    """Rounds 0-4 for ``updates``, classic (``k`` None: everyone is everyone's neighbour) or on a Harary
    graph of degree ``k``, with nodes leaving before rounds 1, 2 or 4. Returns the server, the encoded
    inputs that were sent, and the pairwise-agreement cache the simulated nodes shared."""
    size, agreements = next(iter(updates.values())).size, {}
    clients = {n: SecAggClient(7, 1, n, agreements) for n in updates}
    server = SecAggServer(ring, size, round=1, threshold=threshold_for(len(updates) if k is None else k + 1))
    server.publics = {n: c.public_keys for n, c in clients.items()}  # round 0
    if k is not None:
        server.graph = harary(sorted(updates), k, seed=7, round_=1)
    for n in set(updates) - set(no_shares):  # round 1: shares to the node's neighbours (and itself)
        server.relayed[n] = clients[n].share_keys({v: server.publics[v] for v in server.holders(n)}, server.threshold)
    for n in server.cohort:
        clients[n].receive(server.inbox(n))
    inputs = {n: ring.encode(updates[n], len(updates))[0] for n in server.cohort if n not in no_input}
    s_publics = {n: server.publics[n][1] for n in server.cohort}
    server.masked = mask_inputs(clients, inputs, s_publics, ring, server.graph)  # round 2
    for n in set(server.masked) - set(no_answer):  # round 4: answers about the holders that shared
        holders = [v for v in server.holders(n) if v in server.relayed]
        server.responses[n] = clients[n].unmasking_shares(set(server.masked), holders, server.publics)
    return server, inputs, agreements


def plain_sum(inputs: dict[int, np.ndarray], ring: FixedPoint) -> np.ndarray:
    """The inputs' sum in the ring, computed in the clear (the oracle the unmasked sum must equal)."""
    total = np.zeros(next(iter(inputs.values())).size, dtype=np.uint64)
    for x in inputs.values():
        total = total + x.astype(np.uint64)
    return (total & ring.modulus_mask).astype(ring.dtype)
