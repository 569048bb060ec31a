"""Checks an update must pass before it may touch the global model."""
from __future__ import annotations

import torch


def check_update(delta: torch.Tensor, size: int, *, norm_bound: float | None = None) -> str | None:
    """Return why ``delta`` is rejected, or None when it is acceptable."""
    if delta.ndim != 1 or delta.numel() != size:
        return f"shape {tuple(delta.shape)} != ({size},)"
    if not bool(torch.isfinite(delta).all()):
        return "non-finite values"
    if norm_bound is not None:
        norm = float(torch.linalg.vector_norm(delta))
        if norm > norm_bound:
            return f"norm {norm:.3g} > bound {norm_bound:.3g}"
    return None
