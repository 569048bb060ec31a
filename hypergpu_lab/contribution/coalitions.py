"""The value of a coalition of a round's updates: how well the model they would have made does on validation data.

GTG-Shapley's reconstruction (Liu et al. 2022): no retraining; a coalition S's model is the round's
starting weights plus the sample-weighted mean of S's updates (FedAvg over S), whatever strategy the
run aggregates with, so the value means the same under every strategy. All coalition models of a
round are evaluated in one batched forward (``Trainer.coalition_logits``), in chunks to bound memory.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

# (origin [P], deltas [N, P], coeff [K, N], x [n, ...]) -> logits [K, n, C] of the models origin + coeff @ deltas
Logits = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
METRICS = ("accuracy", "loss")


class CoalitionValue:
    """v(S) for masks of one round's updates; v(empty) is the round's starting model."""

    def __init__(
        self,
        logits: Logits,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        metric: str = "accuracy",
        chunk: int = 64,
    ) -> None:
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        self.logits, self.x, self.y, self.metric, self.chunk = logits, x, y, metric, chunk
        self.labels = y.cpu().numpy()

    def __call__(
        self,
        origin: torch.Tensor,
        deltas: torch.Tensor,
        samples: torch.Tensor | np.ndarray,
        masks: torch.Tensor | np.ndarray,
    ) -> torch.Tensor:
        """Values [K] (float64) of coalitions ``masks`` [K, N] (bool) over ``deltas`` [N, P] weighted by the
        sample counts ``samples`` [N]."""
        weights = fedavg_weights(np.asarray(masks, dtype=bool), np.asarray(samples, dtype=np.float64))
        coeff = torch.from_numpy(weights.astype(np.float32)).to(deltas.dtype)  # rounded as torch rounds
        if len(coeff) <= self.chunk:  # one call, as for every coalition set of 10 nodes
            return self._score(self.logits(origin, deltas, coeff, self.x))
        chunks = coeff.split(self.chunk)
        return torch.cat([self._score(self.logits(origin, deltas, c, self.x)) for c in chunks])

    def _score(self, logits: torch.Tensor) -> torch.Tensor:
        """Per model: accuracy, or minus the mean cross-entropy (higher is better either way)."""
        if self.metric == "accuracy":
            # max's indices are argmax's (the first maximum, NaN first), but fast on a transposed view too
            # (LayerStack._flat_coalition_logits); hits / rows in float64 is what the mean of 0.0 and 1.0 gives.
            hits = (logits.max(-1).indices.numpy() == self.labels).sum(1)
            return torch.from_numpy(hits / logits.shape[1])
        k, n, c = logits.shape
        ce = nn.functional.cross_entropy(logits.reshape(k * n, c), self.y.repeat(k), reduction="none")
        return -ce.view(k, n).to(torch.float64).mean(1)


def fedavg_weights(masks: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Each coalition's FedAvg weights [K, N] (float64): its members' sample counts over their sum (none for
    the empty coalition). In numpy: a round's few small arrays cost less there than in torch ops; counts
    are whole numbers, so their sums are exact in any order and the weights are those torch gave."""
    weights = masks * samples
    total = weights.sum(1, keepdims=True)
    return np.divide(weights, total, out=np.zeros_like(weights), where=total > 0)
