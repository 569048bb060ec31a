"""Gaussian mechanisms for federated learning, as small pure functions on stacked updates.

* Central DP-FedAvg: McMahan, Ramage, Talwar and Zhang, "Learning Differentially Private Recurrent
  Language Models", ICLR 2018. Each node's update is clipped to L2 norm ``C``; the server sums the
  clipped updates, adds ``N(0, (z C)^2 I)`` and divides by the expected number of participants
  (the fixed-denominator estimator, so one node's influence on the mean is at most ``C / K``).
* Adaptive clipping: Andrew, Thakkar, McMahan and Ramaswamy, "Differentially Private Learning with
  Adaptive Clipping", NeurIPS 2021. Each node also reports whether its update was within the
  bound (centred, ``b_i - 1/2``); the noisy fraction ``b~`` moves the bound geometrically toward the
  ``gamma`` quantile: ``C <- C exp(-eta (b~ - gamma))``. The count's noise ``sigma_b`` takes a share of the privacy, so
  the updates get ``z_delta = (z^-2 - (2 sigma_b)^-2)^-1/2`` and the pair together is a Gaussian
  mechanism of multiplier ``z`` (their Theorem 1): the accountant uses ``z``.
* Local DP: the node clips and adds ``N(0, (z C)^2 I)`` itself before upload.

Noise comes from keyed streams (``streams.py``): a round's noise depends only on (seed, round),
so a restored run adds the same noise.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import ConfigError


def clip_rows(deltas: torch.Tensor, clip: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row scaled to L2 norm at most ``clip``; also the rows' norms before clipping."""
    norms = torch.linalg.vector_norm(deltas.to(torch.float64), dim=1)
    scale = torch.clamp(clip / torch.clamp(norms, min=1e-30), max=1.0)
    return (deltas.to(torch.float64) * scale[:, None]).to(deltas.dtype), norms


def noisy_mean(clipped_sum: torch.Tensor, noise: torch.Tensor, std: float, expected: int) -> torch.Tensor:
    """DP-FedAvg's estimate: ``(sum of clipped updates + std * noise) / expected`` (``noise`` ~ N(0, I))."""
    return ((clipped_sum.to(torch.float64) + std * noise.to(torch.float64)) / expected).to(clipped_sum.dtype)


def update_noise_multiplier(z: float, count_stddev: float | None) -> float:
    """The updates' share ``z_delta = (z^-2 - (2 sigma_b)^-2)^-1/2`` (``z`` itself with fixed clipping)."""
    if count_stddev is None or z == 0:
        return z
    rest = z**-2 - (2 * count_stddev) ** -2
    if rest <= 0:
        raise ConfigError(
            "train.privacy.clip_count_stddev",
            count_stddev,
            f"> noise_multiplier / 2 = {z / 2:g}",
            hint="the clipped count's noise would use the whole privacy budget (Andrew et al. 2021, Thm 1)",
        )
    return rest**-0.5


def adapt_clip(
    clip: float, within: int, summed: int, count_noise: float, expected: int, quantile: float, lr: float
) -> float:
    """Andrew et al.'s geometric update ``C <- C exp(-eta (b~ - gamma))`` from the noisy fraction ``b~``.

    Each of the ``summed`` nodes contributes ``b_i - 1/2`` (``b_i = 1`` when its update was within
    the bound): sensitivity 1/2, which is where their ``(2 sigma_b)^-2`` comes from. So
    ``b~ = (sum (b_i - 1/2) + N(0, sigma_b^2)) / K + 1/2`` with the expected count ``K``.
    """
    fraction = (within - summed / 2 + count_noise) / expected + 0.5
    return clip * math.exp(-lr * (fraction - quantile))


def gaussian(rng: np.random.Generator, size: int) -> torch.Tensor:
    """``size`` standard normal draws (float64) from a keyed stream."""
    return torch.from_numpy(rng.standard_normal(size))
