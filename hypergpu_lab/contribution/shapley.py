"""Per-round Shapley values of the updates (GTG-Shapley, Liu et al. 2022), and leave-one-out as its cheap cousin.

Each round, every accepted update's Shapley value of the validation metric over the coalitions of the
round's updates (:class:`~hypergpu_lab.contribution.coalitions.CoalitionValue`). Small rounds are exact
(all 2^N coalitions); larger ones average marginal contributions over seeded random permutations, in
antithetic pairs (a permutation and its reverse: each node is as often early as late), as GTG-Shapley
samples them. GTG's between-round truncation is kept: with ``round_tolerance`` > 0 the empty and the
full coalition are evaluated first, and a round whose full coalition moves the metric by no more than
the tolerance stops there (two coalition models) and gets no values (None), as does a round where no
update's value is positive; the chain then pays that round by the robust agreement (samples x median
agreement), not by value. At the default 0 the check needs no call of its own (see ``__call__``). Off
by default because it did not pay (``python -m bench contribution``): at 1 validation row in 180 it held
every goal but the skipped coalitions of a third of the rounds only paid for the extra call in the
others; at 2 rows it saved ~11% of the measure and lowered rho on the unseen half (+0.60 to +0.56). Its
within-round truncation is not: all prefixes are evaluated in one batch, so stopping early would take
a second batched call and bias the tail for little. Measured on 10 digits nodes (seed 0, 15 rounds),
the first prefix whose value equals the full coalition's came after 7.2 of 10 nodes on average;
truncating there would have skipped 19% of the prefixes.

Why Shapley: it splits a round's improvement so that the values sum to it, pays substitutes alike
and gives a harmful update a negative value (sign flips, scaled and noisy updates, flipped labels).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from ..streams import stream
from .coalitions import CoalitionValue

_TAG = 0x5348_4150  # "SHAP": the stream of a round's permutations


def _masks(n: int) -> torch.Tensor:
    """All 2^n coalitions as bool masks [2^n, n]; row m holds node i iff bit i of m is set."""
    bits = torch.arange(2**n).unsqueeze(1) >> torch.arange(n)
    return (bits & 1).bool()


def exact_shapley(values: torch.Tensor, n: int) -> list[float]:
    """phi_i = sum over S without i of |S|! (n - |S| - 1)! / n! (v(S + i) - v(S)), from v over all masks."""
    index = torch.arange(2**n)
    sizes = _masks(n).sum(1)
    weight = torch.tensor(
        [math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n) for k in range(n)], dtype=torch.float64
    )
    out = []
    for i in range(n):
        without = index[(index >> i) & 1 == 0]
        gain = values[without | (1 << i)] - values[without]
        out.append(float((weight[sizes[without]] * gain.to(torch.float64)).sum()))
    return out


def informative(values: list[float]) -> list[float] | None:
    """``values``, or None when none is positive: the round moved the validation metric by too little (or
    the wrong way) to tell who helped, and the caller falls back to the robust agreement rather than pay
    nobody for the round."""
    return values if any(v > 0 for v in values) else None


def _prefix_masks(perms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Masks [K, n] of the empty and full coalitions (rows 0, 1), then every permutation's proper prefixes once
    each, in order of first appearance; and the row of each permutation's first j nodes, j = 0..n [P, n + 1]."""
    p, n = perms.shape
    owner, size, rows = _prefix_layout(p, n)
    rank = np.argsort(perms, axis=1)  # rank[q, node]: the node's place in permutation q (a permutation's inverse)
    every = rank[owner] < size[:, None]  # row r holds the first size[r] nodes of permutation owner[r]
    if p <= 2:  # one antithetic pair (the default): no mask repeats, see _prefix_layout
        return every, rows
    packed = np.packbits(every, axis=1)
    _, first, inverse = np.unique(packed.view(f"V{packed.shape[1]}").ravel(), return_index=True, return_inverse=True)
    order = np.argsort(first)  # distinct masks in order of first appearance
    place = np.empty_like(order)
    place[order] = np.arange(len(order))
    return every[first[order]], place[inverse.ravel()][rows]


@functools.lru_cache(maxsize=64)
def _prefix_layout(p: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows of :func:`_prefix_masks` before repeats are merged: the empty and full coalitions, then each of
    the ``p`` permutations' first 1..n-1 nodes. Per row: its permutation and its size; and the row of each
    permutation's first j nodes [p, n + 1]. With one antithetic pair no two rows are equal: a prefix of a
    permutation holds its first node and no prefix of the reverse does, and one permutation's prefixes
    differ in size. Read-only: shared by every round with this shape."""
    owner = np.concatenate([[0, 0], np.repeat(np.arange(p), n - 1)])
    size = np.concatenate([[0, n], np.tile(np.arange(1, n), p)])
    rows = np.empty((p, n + 1), dtype=np.int64)
    rows[:, 0], rows[:, n] = 0, 1
    rows[:, 1:n] = 2 + np.arange(p * (n - 1)).reshape(p, n - 1)
    for a in (owner, size, rows):
        a.flags.writeable = False
    return owner, size, rows


class ShapleyScorer:
    """Per-round Shapley values of the accepted updates on the coordinator's validation set."""

    name = "shapley"

    def __init__(
        self,
        value: CoalitionValue,
        *,
        seed: int = 0,
        permutations: int = 2,
        exact_up_to: int = 6,
        round_tolerance: float = 0.0,
    ) -> None:
        self.value, self.seed = value, seed
        self.permutations, self.exact_up_to, self.round_tolerance = permutations, exact_up_to, round_tolerance

    def __call__(
        self, round_: int, origin: torch.Tensor, deltas: torch.Tensor, samples: list[int]
    ) -> list[float] | None:
        """Each update's value, or None when the round is truncated or singles out no helper (:func:`informative`).

        With ``round_tolerance`` > 0 the empty and full coalitions go first, in a call of their own, and
        the other coalitions only when the round moved the metric by more than the tolerance. That second
        call evaluates every coalition the round needs, the two ends again (two rows of ~20 at 10 nodes):
        a 2-row batch rounds float32 differently from a larger one, and this way a round that is not
        truncated gets exactly the values of one batched call. At tolerance 0 only a round that left the
        metric exactly unchanged could stop, so the check is made on that one call, as before.
        """
        n = len(samples)
        weights = np.asarray(samples, dtype=np.float64)
        exact = n <= self.exact_up_to
        if exact:
            masks = _masks(n)
        else:
            perms = self._permutations(round_, n)
            masks, rows = _prefix_masks(perms)
        if self.round_tolerance > 0 and self._moved_within_tolerance(origin, deltas, weights):
            return None
        values = self.value(origin, deltas, weights, masks)
        if exact:
            if abs(float(values[-1] - values[0])) <= self.round_tolerance:
                return None
            return informative(exact_shapley(values, n))
        v = values.numpy()
        if abs(v[1] - v[0]) <= self.round_tolerance:
            return None
        phi = np.zeros(n)
        for perm, chain in zip(perms, v[rows]):  # each node's marginal contributions, summed in permutation order
            phi[perm] += np.diff(chain)
        return informative((phi / len(perms)).tolist())

    def _moved_within_tolerance(self, origin: torch.Tensor, deltas: torch.Tensor, weights: np.ndarray) -> bool:
        """GTG's between-round truncation: |v(full) - v(empty)| <= round_tolerance, from two coalition models.

        The full coalition is passed as its one FedAvg update, so the call's first layer costs two
        evaluations, not one per update (``Trainer.coalition_logits``)."""
        full = (torch.from_numpy(weights / weights.sum()).to(deltas.dtype) @ deltas).unsqueeze(0)
        ends = self.value(origin, full, torch.ones(1, dtype=torch.float64), torch.tensor([[False], [True]]))
        return abs(float(ends[1] - ends[0])) <= self.round_tolerance

    def _permutations(self, round_: int, n: int) -> np.ndarray:
        """Seeded by (seed, round), in antithetic pairs: a permutation and its reverse [P, n]."""
        rng = stream(self.seed, _TAG, round_)
        perms = []
        for _ in range(max(1, self.permutations // 2)):
            p = rng.permutation(n)
            perms += [p, p[::-1]]
        return np.stack(perms)


class LeaveOneOutScorer:
    """v(all) - v(all but i) on the validation set (Wang et al. 2019's deletion method, per round)."""

    name = "loo"

    def __init__(self, value: CoalitionValue, **_: object) -> None:
        self.value = value

    def __call__(
        self, round_: int, origin: torch.Tensor, deltas: torch.Tensor, samples: list[int]
    ) -> list[float] | None:
        n = len(samples)
        masks = torch.ones(n + 1, n, dtype=torch.bool)
        masks[1:].fill_diagonal_(False)
        v = self.value(origin, deltas, torch.tensor(samples, dtype=torch.float64), masks).tolist()
        return informative([v[0] - v[1 + i] for i in range(n)])
