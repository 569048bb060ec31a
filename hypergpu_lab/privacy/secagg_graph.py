"""SecAgg+'s communication graph: Bell et al., "Secure Single-Server Aggregation with (Poly)Logarithmic
Overhead", CCS 2020.

Each node masks and shares its keys only with its ``k`` neighbours in a Harary graph ``H(k, n)``
whose positions are a random permutation of the cohort (the ring of Flower's ``SecAggPlusWorkflow``,
``num_shares = k + 1``): node at position ``i`` neighbours positions ``i +- 1 .. i +- k/2``. The
permutation comes from a keyed stream (run seed, round), so the graph is public, fresh every round
and the same on every run. With ``k = n - 1`` it is the complete graph: classic SecAgg.

Choosing ``k`` (Bell et al.'s argument, Sec. 3-4: with random labels each node's neighbours are a
random set, so a union bound over the ``n`` nodes of binomial tails gives a failure probability that
falls exponentially in ``k``, hence ``k = O(log n)``). With a dropout rate ``delta``, a rate ``gamma``
of nodes colluding with the server and the Shamir threshold ``t = k/2 + 1`` of ``k + 1`` holders:

* correctness: a dropped node keeps fewer than ``t`` surviving neighbours,
  ``n P[Bin(k, delta) > k - t] <= 2^-eta``;
* privacy of the key shares: ``t`` of a node's neighbours collude, ``n P[Bin(k, gamma) >= t] <= 2^-sigma``;
* privacy of the sum: the honest survivors' graph splits (the server would learn a partial sum);
  the random ring splits only where ``k/2`` consecutive positions are all removed,
  ``n (gamma + delta)^(k/2) <= 2^-sigma``.

:func:`neighbours_for` returns the smallest even ``k`` meeting all three (or ``n - 1``).
"""

from __future__ import annotations

import functools
import math

from ..streams import stream

GRAPH_TAG = 0x5341_4750  # "SAGP": the round's node permutation
DROPOUT = 0.1  # delta: the share of the cohort assumed to drop (the bench's 10% rows)
CORRUPT = 0.1  # gamma: the share assumed to collude with the server
SECURITY_BITS = 40  # sigma (Bell et al.'s statistical security parameter is 40)
CORRECTNESS_BITS = 20  # eta: an aborted round costs a round, not privacy


def _binomial_tail(k: int, p: float, at_least: int) -> float:
    """``P[Bin(k, p) >= at_least]``, summed exactly."""
    return sum(math.comb(k, i) * p**i * (1 - p) ** (k - i) for i in range(max(at_least, 0), k + 1))


def failure_bounds(n: int, k: int, dropout: float = DROPOUT, corrupt: float = CORRUPT) -> tuple[float, float]:
    """(correctness, privacy) failure bounds of one round with ``n`` nodes and ``k`` neighbours each."""
    t = k // 2 + 1
    correctness = n * _binomial_tail(k, dropout, k - t + 1)
    privacy = n * _binomial_tail(k, corrupt, t) + n * (dropout + corrupt) ** (k // 2)
    return min(correctness, 1.0), min(privacy, 1.0)


@functools.lru_cache(maxsize=256)
def neighbours_for(n: int) -> int:
    """The smallest even ``k`` whose failure bounds are below ``2^-20`` and ``2^-40``; ``n - 1`` if none is."""
    for k in range(2, n - 1, 2):
        correctness, privacy = failure_bounds(n, k)
        if correctness <= 2.0**-CORRECTNESS_BITS and privacy <= 2.0**-SECURITY_BITS:
            return k
    return max(n - 1, 1)


def harary(nodes: list[int], k: int, seed: int, round_: int) -> dict[int, frozenset[int]]:
    """Each node's neighbours in ``H(k, n)`` over a seeded permutation of ``nodes`` (complete if ``k >= n - 1``)."""
    n = len(nodes)
    if k >= n - 1:
        return {u: frozenset(nodes) - {u} for u in nodes}
    if k < 2 or k % 2:
        raise ValueError(f"k: {k}; an even number of neighbours from 2 is accepted")
    order = [nodes[i] for i in stream(seed, GRAPH_TAG, round_).permutation(n)]
    half = k // 2
    return {u: frozenset(order[(i + d) % n] for d in range(-half, half + 1) if d) for i, u in enumerate(order)}
