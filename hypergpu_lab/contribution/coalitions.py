"""The value of a coalition of a round's updates: how well the model they would have made does on validation data.

GTG-Shapley's reconstruction (Liu et al. 2022): no retraining; a coalition S's model is the round's
starting weights plus the sample-weighted mean of S's updates (FedAvg over S), whatever strategy the
run aggregates with, so the value means the same under every strategy. All coalition models of a
round are evaluated in one batched forward (``Trainer.coalition_logits``), in chunks to bound memory.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..buffers import Buffers

# (origin [P], deltas [N, P], coeff [K, N], x [n, ...], buffers=) -> logits [K, n, C] of the models
# origin + coeff @ deltas; ``buffers`` is the value's scratch (Trainer.coalition_logits), which the logits may live in
Logits = Callable[..., torch.Tensor]
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
        self.buffers = Buffers(torch.device("cpu"))  # reused every round: see LayerStack.coalition_logits

    def __call__(
        self, origin: torch.Tensor, deltas: torch.Tensor, samples: torch.Tensor, masks: torch.Tensor
    ) -> torch.Tensor:
        """Values [K] (float64) of coalitions ``masks`` [K, N] (bool) over ``deltas`` [N, P] weighted by ``samples`` [N]."""
        weights = masks.to(torch.float64) * samples.to(torch.float64)
        total = weights.sum(1, keepdim=True)
        coeff = torch.where(total > 0, weights / total.clamp(min=1e-300), 0.0).to(deltas.dtype)
        out = []
        for lo in range(0, len(coeff), self.chunk):
            logits = self.logits(origin, deltas, coeff[lo : lo + self.chunk], self.x, buffers=self.buffers)
            out.append(self._score(logits))  # before the next chunk's call overwrites the buffers
        return torch.cat(out)

    def _score(self, logits: torch.Tensor) -> torch.Tensor:
        """Per model: accuracy, or minus the mean cross-entropy (higher is better either way)."""
        if self.metric == "accuracy":
            return (logits.argmax(-1) == self.y).to(torch.float64).mean(1)
        k, n, c = logits.shape
        ce = nn.functional.cross_entropy(logits.reshape(k * n, c), self.y.repeat(k), reduction="none")
        return -ce.view(k, n).to(torch.float64).mean(1)
