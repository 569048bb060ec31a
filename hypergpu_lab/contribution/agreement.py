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
_BLOCK_VALUES = 1 << 17  # float64 values per block of rows for norms and dot products (1 MiB, stays in cache)


def robust_agreement(stacked: torch.Tensor, steps: list[int] | None = None) -> dict[int, float]:
    """Each row's agreement with the coordinate-wise median of all rows: cosine x norm ratio², in [-1, 1].

    Why a median and not the applied aggregate: an update that dominates the aggregate (scaled 10x
    under FedAvg) agrees with itself; the median of the round's updates moves by at most one rank per
    attacker whatever the strategy. Why the squared norm ratio ``min(|u|/|m|, |m|/|u|)**2``: cosine
    alone pays a scaled update in full and cannot see a zero one; the ratio takes both to ~0 (a 10x
    update gets 1/100) and leaves an honest update of typical size near its cosine.
    """
    x = stacked.detach().cpu().numpy()  # numpy: no torch thread pool for [N, P] sums
    n = len(x)
    # Per local step, as FedNova normalises: a bigger shard's longer update is not "atypical".
    per = np.ones(n) if steps is None else np.maximum(np.asarray(steps, dtype=np.float64), 1.0)
    if n <= NETWORK_UP_TO:  # a round's few rows: one float64 pass, the selection network on it
        rows = np.divide(x, per[:, None])
        reference = coordinate_median(rows)
        norms, dots = _norms(rows), rows @ reference
    else:
        reference = _scaled_median(x, per)
        norms, dots = _norms_and_dots(x, per, reference)
    # Not np.linalg.norm: its BLAS dot threads above 10,000 values and stalled ~10 ms on a busy core (the CNN).
    ref_norm = math.sqrt(float(np.add.reduce(reference * reference)))
    out = {}
    for i, (norm, dot) in enumerate(zip(norms.tolist(), dots.tolist())):
        if norm <= 0 or ref_norm <= 0 or not math.isfinite(dot):
            out[i] = 0.0
            continue
        out[i] = dot / (norm * ref_norm) * min(norm / ref_norm, ref_norm / norm) ** 2
    return out


def _norms(rows: np.ndarray) -> np.ndarray:
    """Each row's L2 norm: np.linalg.norm's sum of squares, less its copy of ``rows``."""
    return np.sqrt(np.add.reduce(rows * rows, axis=1))


def _scaled_median(x: np.ndarray, per: np.ndarray) -> np.ndarray:
    """The coordinate-wise median of ``x[i] / per[i]`` in float64, for many rows.

    When every row has the same divisor (every node took as many steps), dividing keeps each
    column's order: the middle values are selected among the float32 rows (half the bytes to
    transpose and sort: 36 against 73 ms at 1000 x 6,570) and only they are divided. They are the
    values the float64 rows would give, as float64(v) / s is monotonic in v.
    """
    if not np.all(per == per[0]):
        return coordinate_median(np.divide(x, per[:, None]))
    lo, hi = _middle(x)
    s = per[0]
    if lo is hi:
        return hi.astype(np.float64) / s
    return (lo.astype(np.float64) / s + hi.astype(np.float64) / s) / 2


def _norms_and_dots(x: np.ndarray, per: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each scaled row's norm and dot product with ``reference``, in float64, a cache-sized block of rows
    at a time: a whole float64 copy of 1000 x 6,570 is 52 MB of fresh pages (~40 ms of faults in a round)."""
    n, size = x.shape
    norms, dots = np.empty(n), np.empty(n)
    step = max(1, _BLOCK_VALUES // max(size, 1))
    for i in range(0, n, step):
        block = np.divide(x[i : i + step], per[i : i + step, None])
        norms[i : i + step] = _norms(block)
        dots[i : i + step] = block @ reference
    return norms, dots


def coordinate_median(rows: np.ndarray) -> np.ndarray:
    """The median of each column of ``rows`` [N, P] (the mean of the two middle values when N is even).

    The middle values are selected, never computed: both ways below give np.partition's values (the
    sign of an exact zero aside: min and max of 0.0 and -0.0 may return either). A round's few rows go
    through a selection network (element-wise min and max of whole rows, a few dozen vectorised ops);
    np.partition along the short axis pays a per-column overhead that made it the costliest part of
    the gate. More rows are sorted column by column (:func:`_middle`). Rows with a NaN or an infinity
    take np.partition's order (NaN last).
    """
    n = len(rows)
    if n <= NETWORK_UP_TO and math.isfinite(float(rows.sum())):
        lo_at, hi_at = (n - 1) // 2, n // 2
        lines = list(rows)
        for a, b in _median_network(n):
            lines[a], lines[b] = np.minimum(lines[a], lines[b]), np.maximum(lines[a], lines[b])
        lo, hi = lines[lo_at], lines[hi_at]
    else:
        lo, hi = _middle(rows)
    return hi.copy() if lo is hi else (lo + hi) / 2


def _middle(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two middle values of each column of ``rows`` [N, P] (the same array twice when N is odd).

    The columns are copied out contiguous and sorted in place: numpy's vectorised sort of short
    contiguous rows beats np.partition along the long axis at every size measured (1000 x 6,570
    float32: 36 against 69 ms; 100 rows: 1.2 against 6.8 ms) and does not slow on columns of many
    equal values (digits' zero pixels), where one-kth introselect did ~4x. NaN sorts last, as in
    np.partition.
    """
    n = len(rows)
    cols = np.ascontiguousarray(rows.T)
    cols.sort(axis=1)
    lo_at, hi_at = (n - 1) // 2, n // 2
    hi = cols[:, hi_at]
    return (hi, hi) if lo_at == hi_at else (cols[:, lo_at], hi)


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
