"""Agreement with a robust reference: each update against the coordinate-wise median of the round's updates.

The robust gate of the contribution measure (and the whole measure when no validation set is at hand):
a cheap, model-free test of whether an update points where the round's majority points.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def robust_agreement(stacked: torch.Tensor, steps: list[int] | None = None) -> dict[int, float]:
    """Each row's agreement with the coordinate-wise median of all rows: cosine x norm ratio², in [-1, 1].

    Why a median and not the applied aggregate: an update that dominates the aggregate (scaled 10x
    under FedAvg) agrees with itself; the median of the round's updates moves by at most one rank per
    attacker whatever the strategy. Why the squared norm ratio ``min(|u|/|m|, |m|/|u|)**2``: cosine
    alone pays a scaled update in full and cannot see a zero one; the ratio takes both to ~0 (a 10x
    update gets 1/100) and leaves an honest update of typical size near its cosine.
    """
    rows = stacked.detach().cpu().numpy().astype(np.float64)  # numpy: no torch thread pool for [N, P] sums
    if steps is not None:  # per local step, as FedNova normalises: a bigger shard's longer update is not "atypical"
        rows = rows / np.maximum(np.asarray(steps, dtype=np.float64), 1.0)[:, None]
    n = rows.shape[0]
    middle = sorted({(n - 1) // 2, n // 2})  # the middle order statistics per column, not a full sort
    part = np.partition(rows, middle, axis=0)
    reference = part[n // 2] if n % 2 else (part[n // 2 - 1] + part[n // 2]) / 2
    ref_norm = float(np.linalg.norm(reference))
    norms = np.linalg.norm(rows, axis=1).tolist()
    dots = (rows @ reference).tolist()
    out = {}
    for i, (norm, dot) in enumerate(zip(norms, dots)):
        if norm <= 0 or ref_norm <= 0 or not math.isfinite(dot):
            out[i] = 0.0
            continue
        out[i] = dot / (norm * ref_norm) * min(norm / ref_norm, ref_norm / norm) ** 2
    return out
