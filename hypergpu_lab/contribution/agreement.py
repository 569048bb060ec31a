"""Agreement with a robust reference: each update against the coordinate-wise median of the round's updates.

The robust gate of the contribution measure (and the whole measure when no validation set is at hand):
a cheap, model-free test of whether an update points where the round's majority points.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

NETWORK_UP_TO = 16  # rows: up to here a selection network beats np.partition (0.3 ms against 0.8 ms at 10 x 6,570)
# Rows from which np.partition beats a full sort: 66 ms against 91 ms at 1000 x 6,570, while at 100 rows a sort
# takes 2-12 ms and a partition 3-10 ms, both depending on the data.
PARTITION_FROM = 400


def robust_agreement(stacked: torch.Tensor, steps: list[int] | None = None) -> dict[int, float]:
    """Each row's agreement with the coordinate-wise median of all rows: cosine x norm ratio², in [-1, 1].

    Why a median and not the applied aggregate: an update that dominates the aggregate (scaled 10x
    under FedAvg) agrees with itself; the median of the round's updates moves by at most one rank per
    attacker whatever the strategy. Why the squared norm ratio ``min(|u|/|m|, |m|/|u|)**2``: cosine
    alone pays a scaled update in full and cannot see a zero one; the ratio takes both to ~0 (a 10x
    update gets 1/100) and leaves an honest update of typical size near its cosine.
    """
    values = stacked.detach().cpu().numpy()  # numpy: no torch thread pool for [N, P] sums
    if steps is None:
        rows = values.astype(np.float64)
    else:  # per local step, as FedNova normalises: a bigger shard's longer update is not "atypical"
        rows = np.divide(values, np.maximum(np.asarray(steps, dtype=np.float64), 1.0)[:, None])  # one pass, in float64
    reference = coordinate_median(rows)
    # Not np.linalg.norm: its BLAS dot threads above 10,000 values and stalled ~10 ms on a busy core (the CNN).
    ref_norm = math.sqrt(float(np.add.reduce(reference * reference)))
    norms = np.sqrt(np.add.reduce(rows * rows, axis=1)).tolist()  # np.linalg.norm's sum, less its copy of rows
    dots = (rows @ reference).tolist()
    out = {}
    for i, (norm, dot) in enumerate(zip(norms, dots)):
        if norm <= 0 or ref_norm <= 0 or not math.isfinite(dot):
            out[i] = 0.0
            continue
        out[i] = dot / (norm * ref_norm) * min(norm / ref_norm, ref_norm / norm) ** 2
    return out


def coordinate_median(rows: np.ndarray) -> np.ndarray:
    """The median of each column of ``rows`` [N, P] (the mean of the two middle values when N is even).

    The middle values are selected, never computed: both ways below give np.partition's values (the
    sign of an exact zero aside: min and max of 0.0 and -0.0 may return either). A round's few rows go
    through a selection network (element-wise min and max of whole rows, a few dozen vectorised ops);
    np.partition along the short axis pays a per-column overhead that made it the costliest part of
    the gate. More rows are sorted, or partitioned when there are many. Rows with a NaN or an infinity
    take np.partition's order (NaN last).
    """
    n = len(rows)
    lo_at, hi_at = (n - 1) // 2, n // 2
    if n <= NETWORK_UP_TO and math.isfinite(float(rows.sum())):
        lines = list(rows)
        for a, b in _median_network(n):
            lines[a], lines[b] = np.minimum(lines[a], lines[b]), np.maximum(lines[a], lines[b])
        lo, hi = lines[lo_at], lines[hi_at]
    elif n < PARTITION_FROM:
        part = np.sort(rows, axis=0)
        lo, hi = part[lo_at], part[hi_at]
    else:  # two kth: numpy's one-kth introselect slows ~4x on columns of many equal values (zero pixels)
        part = np.partition(rows, [hi_at - 1, hi_at], axis=0)
        lo, hi = part[lo_at], part[hi_at]
    return hi.copy() if lo_at == hi_at else (lo + hi) / 2


@functools.lru_cache(maxsize=64)
def _median_network(n: int) -> tuple[tuple[int, int], ...]:
    """Batcher's odd-even merge sort for ``n`` lines (compare-exchange pairs, low line first), less every
    pair that the two middle lines do not depend on. Lines beyond ``n`` of the power-of-two network
    would hold +inf, so pairs reaching them exchange nothing and are left out."""
    size = 1 << max(0, (n - 1).bit_length())
    pairs = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    a, b = i + j, i + j + k
                    if a // (2 * p) == b // (2 * p) and b < n:
                        pairs.append((a, b))
            k //= 2
        p *= 2
    needed, kept = {(n - 1) // 2, n // 2}, []
    for a, b in reversed(pairs):
        if a in needed or b in needed:
            needed |= {a, b}
            kept.append((a, b))
    return tuple(reversed(kept))
