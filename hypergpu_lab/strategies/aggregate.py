"""Aggregation rules as pure functions on stacked flat tensors ``[K, P]``.

Each takes float32 rows and returns float32. Means are one matrix-vector product in float32
(weights normalised in float64); distances and server moments are kept in float64. Server state
(momentum, moments) is passed in and returned, never kept here.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import ConfigError


def weighted_mean(stacked: torch.Tensor, weights: torch.Tensor, *, base: torch.Tensor | None = None) -> torch.Tensor:
    """``base`` + Sum_k w_k x_k / Sum_k w_k: one BLAS matrix-vector product over the rows.

    The weights are normalised in float64; the sum runs in the rows' dtype, which reads each
    update once (about one memory copy of the stack). Its rounding depends on the row order,
    so the coordinator stacks updates in a canonical order (round, node) rather than arrival
    order, and the result is bitwise independent of how the network reordered them.
    """
    w = weights.to(torch.float64)
    w = (w / w.sum()).to(stacked.dtype)
    return torch.mv(stacked.T, w) if base is None else torch.addmv(base, stacked.T, w)


def average(
    stacked: torch.Tensor, num_samples: torch.Tensor, *, weighted: bool = True, base: torch.Tensor | None = None
) -> torch.Tensor:
    """The sample-weighted mean of the rows (FedAvg), or their plain mean when ``weighted`` is False."""
    return weighted_mean(stacked, num_samples if weighted else torch.ones(len(stacked), dtype=torch.float64), base=base)


def momentum_step(
    w: torch.Tensor, delta: torch.Tensor, v: torch.Tensor, *, beta: float, lr: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Server momentum (FedAvgM): v = beta v + delta; w = w + lr v. Returns (w, v), v in float64."""
    v = beta * v + delta.to(torch.float64)
    return (w.to(torch.float64) + lr * v).to(w.dtype), v


def fedopt_step(
    w: torch.Tensor,
    delta: torch.Tensor,
    m: torch.Tensor,
    v: torch.Tensor,
    *,
    rule: str,
    eta: float,
    beta1: float,
    beta2: float,
    tau: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One FedAdagrad / FedAdam / FedYogi server step (Reddi et al. 2021, Alg. 2). Returns (w, m, v)."""
    d = delta.to(torch.float64)
    d2 = d * d
    m = beta1 * m + (1 - beta1) * d
    if rule == "adagrad":
        v = v + d2
    elif rule == "adam":
        v = beta2 * v + (1 - beta2) * d2
    elif rule == "yogi":
        v = v - (1 - beta2) * d2 * torch.sign(v - d2)
    else:
        raise ValueError(f"rule: got {rule!r}; accepted: adagrad, adam, yogi")
    return (w.to(torch.float64) + eta * m / (v.sqrt() + tau)).to(w.dtype), m, v


def sort_columns(stacked: torch.Tensor) -> torch.Tensor:
    """Each coordinate's K values in ascending order (numpy's SIMD sort: 5-10x torch's on CPU)."""
    return torch.from_numpy(np.sort(stacked.detach().cpu().numpy(), axis=0)).to(stacked.device)


def coordinate_median(stacked: torch.Tensor) -> torch.Tensor:
    """Coordinate-wise median; with an even count, the mean of the two middle values (as numpy)."""
    k = len(stacked)
    s = sort_columns(stacked)
    return ((s[(k - 1) // 2].to(torch.float64) + s[k // 2].to(torch.float64)) / 2).to(stacked.dtype)


def trimmed_mean(stacked: torch.Tensor, beta: float) -> torch.Tensor:
    """Coordinate-wise mean after dropping the floor(beta K) largest and smallest values."""
    k = len(stacked)
    b = math.floor(round(beta * k, 9))  # round: 0.29 * 100 is 28.999..., and means 29
    if b < 0 or k - 2 * b < 1:
        raise ValueError(f"beta: got {beta!r}; accepted: beta with K - 2 floor(beta K) >= 1 (K={k})")
    kept = sort_columns(stacked)[b : k - b] if b else stacked
    return weighted_mean(kept, torch.ones(len(kept), dtype=torch.float64))


def krum_scores(stacked: torch.Tensor, f: int) -> torch.Tensor:
    """Krum score of each row: the sum of squared distances to its K - f - 2 nearest other rows."""
    k = len(stacked)
    if k < 2 * f + 3:
        raise ConfigError("strategy_options.f", f, f"f with n >= 2f+3 (n={k})")
    x = stacked.to(torch.float64)
    gram = x @ x.T  # |a - b|^2 = |a|^2 + |b|^2 - 2ab: one matmul, float64 against cancellation
    sq = gram.diagonal()
    d = (sq[:, None] + sq[None, :] - 2 * gram).clamp_(min=0)
    d.fill_diagonal_(math.inf)  # an inf or NaN update gives inf / NaN, which topk ranks last
    return d.topk(k - f - 2, dim=1, largest=False).values.sum(dim=1)


def multi_krum(stacked: torch.Tensor, f: int, m: int) -> torch.Tensor:
    """Plain mean of the ``m`` rows with the lowest Krum scores (m = 1 is Krum); ties go to the lower index."""
    scores = krum_scores(stacked, f)
    if not 1 <= m <= len(stacked) - f:
        raise ConfigError("strategy_options.m", m, f"m in [1, n - f] (n={len(stacked)}, f={f})")
    chosen = stacked[torch.argsort(scores, stable=True)[:m]]  # only these rows are read: 0 * inf would be NaN
    return weighted_mean(chosen, torch.ones(m, dtype=torch.float64))


def clip_by_norm(deltas: torch.Tensor, max_norm: float) -> torch.Tensor:
    """Scale each row whose L2 norm exceeds ``max_norm`` down to that norm; others are returned unchanged."""
    norms = torch.linalg.vector_norm(deltas, dim=1).to(torch.float64)
    scale = (max_norm / norms).clamp_(max=1.0)  # a zero row gives inf, clamped to 1
    return deltas if bool((scale == 1.0).all()) else deltas * scale.to(deltas.dtype)[:, None]
