"""Agreement with a robust reference: each update against the coordinate-wise median of the round's updates.

The robust gate of the contribution measure (and the whole measure when no validation set is at hand):
a cheap, model-free test of whether an update points where the round's majority points.
"""

from __future__ import annotations

import math

import torch


def robust_agreement(stacked: torch.Tensor, steps: list[int] | None = None) -> dict[int, float]:
    """Each row's agreement with the coordinate-wise median of all rows: cosine x norm ratio², in [-1, 1].

    Why a median and not the applied aggregate: an update that dominates the aggregate (scaled 10x
    under FedAvg) agrees with itself; the median of the round's updates moves by at most one rank per
    attacker whatever the strategy. Why the squared norm ratio ``min(|u|/|m|, |m|/|u|)**2``: cosine
    alone pays a scaled update in full and cannot see a zero one; the ratio takes both to ~0 (a 10x
    update gets 1/100) and leaves an honest update of typical size near its cosine.
    """
    rows = stacked.to(torch.float64)
    if steps is not None:  # per local step, as FedNova normalises: a bigger shard's longer update is not "atypical"
        rows = rows / torch.tensor(steps, dtype=torch.float64).clamp(min=1).unsqueeze(1)
    n = rows.shape[0]
    ordered = rows.sort(dim=0).values
    reference = ordered[(n - 1) // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2
    ref_norm = float(torch.linalg.vector_norm(reference))
    norms = torch.linalg.vector_norm(rows, dim=1).tolist()
    dots = (rows @ reference).tolist()
    out = {}
    for i, (norm, dot) in enumerate(zip(norms, dots)):
        if norm <= 0 or ref_norm <= 0 or not math.isfinite(dot):
            out[i] = 0.0
            continue
        out[i] = dot / (norm * ref_norm) * min(norm / ref_norm, ref_norm / norm) ** 2
    return out
