"""Checks an update must pass before it may touch the global model."""
from __future__ import annotations

from collections.abc import Sequence

import torch


def check_updates(deltas: Sequence[torch.Tensor], size: int, *, norm_bound: float | None = None
                  ) -> tuple[list[str | None], torch.Tensor]:
    """Why each of ``deltas`` is rejected (None when acceptable), and the accepted ones stacked [M, size].

    Values and norms are checked on the stack, a few kernels for all updates instead of a few per update.
    """
    reasons: list[str | None] = [None if d.ndim == 1 and d.numel() == size else f"shape {tuple(d.shape)} != ({size},)"
                                 for d in deltas]
    shaped = [d for d, why in zip(deltas, reasons) if why is None]
    stacked = torch.stack(shaped) if shaped else torch.empty(0, size)
    # A row with a NaN or an infinity sums to NaN or an infinity; a finite row's sum is finite unless it
    # overflows, so only rows whose sum is not finite get the exact (and much slower) element-wise check.
    finite = stacked.sum(1).isfinite().tolist()
    for row in (i for i, ok in enumerate(finite) if not ok):
        finite[row] = bool(torch.isfinite(stacked[row]).all())
    norms = torch.linalg.vector_norm(stacked, dim=1).tolist() if norm_bound is not None else None
    rows = iter(range(len(shaped)))
    for i, why in enumerate(reasons):
        if why is not None:
            continue
        row = next(rows)
        if not finite[row]:
            reasons[i] = "non-finite values"
        elif norms is not None and norms[row] > norm_bound:
            reasons[i] = f"norm {norms[row]:.3g} > bound {norm_bound:.3g}"
    ok = [why is None for d, why in zip(deltas, reasons) if d.ndim == 1 and d.numel() == size]
    return reasons, stacked if all(ok) else stacked[torch.tensor(ok, dtype=torch.bool)]


def check_update(delta: torch.Tensor, size: int, *, norm_bound: float | None = None) -> str | None:
    """Return why ``delta`` is rejected, or None when it is acceptable."""
    return check_updates([delta], size, norm_bound=norm_bound)[0][0]
