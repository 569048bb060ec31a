"""Checks an update must pass before it may touch the global model."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def check_updates(
    deltas: Sequence[torch.Tensor], size: int, *, norm_bound: float | None = None
) -> tuple[list[str | None], torch.Tensor]:
    """Why each of ``deltas`` is rejected (None when acceptable), and the accepted ones stacked [M, size].

    Values and norms are checked on the stack, a few kernels for all updates instead of a few per update.
    """
    reasons: list[str | None] = [
        None if d.ndim == 1 and d.numel() == size else f"shape {tuple(d.shape)} != ({size},)" for d in deltas
    ]
    at = [i for i, why in enumerate(reasons) if why is None]  # the deltas in the stack, row by row
    stacked = torch.stack([deltas[i] for i in at]) if at else torch.empty(0, size)
    # A row with a NaN or an infinity sums to NaN or an infinity; a finite row's sum is finite unless it
    # overflows, so only rows whose sum is not finite get the exact (and much slower) element-wise check.
    finite = stacked.sum(1).isfinite().tolist()
    for row in (r for r, ok in enumerate(finite) if not ok):
        finite[row] = bool(torch.isfinite(stacked[row]).all())
    norms = torch.linalg.vector_norm(stacked, dim=1).tolist() if norm_bound is not None else None
    for row, i in enumerate(at):
        if not finite[row]:
            reasons[i] = "non-finite values"
        elif norms is not None and norms[row] > norm_bound:
            reasons[i] = f"norm {norms[row]:.3g} > bound {norm_bound:.3g}"
    ok = [reasons[i] is None for i in at]
    return reasons, stacked if all(ok) else stacked[torch.tensor(ok, dtype=torch.bool)]
