"""Local training: every selected node runs E epochs of SGD on its own shard.

Training many small models one after another leaves a CPU idle between tiny
kernels, so nodes whose batch size matches are stacked and trained together:
``torch.func.functional_call`` under ``vmap`` over parameters of shape
``[K, ...]``. Nodes with fewer samples are masked once their epoch is over, so
every node sees exactly the batches it would see alone. A plain per-node loop
with ``torch.optim.SGD`` serves modules that vmap cannot take (BatchNorm, any
module with buffers) and is the oracle the vectorised path is tested against.

Each node's batch order comes from its own generator, seeded from
(run seed, round, node): results never depend on which other nodes shared a
group, and a restored run needs no RNG state beyond the round number.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby

import torch
from torch import nn
from torch.func import functional_call, vmap

from .errors import ConfigError
from .models import ParamLayout

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """One node's local training task: its own data never leaves this record's owner."""

    node: int
    x: torch.Tensor
    y: torch.Tensor
    batch_size: int
    seed: int


@dataclass(frozen=True)
class LocalResult:
    """What a node sends back: the weight delta and what the coordinator needs to weigh it."""

    node: int
    delta: torch.Tensor
    num_samples: int
    loss: float
    steps: int

    @property
    def update_norm(self) -> float:
        return float(torch.linalg.vector_norm(self.delta))


@dataclass(frozen=True)
class SGDConfig:
    """Local optimiser settings, identical in both engines (torch.optim.SGD semantics)."""

    lr: float = 0.05
    momentum: float = 0.0
    weight_decay: float = 0.0
    epochs: int = 1

    def __post_init__(self) -> None:
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError("lr", self.lr, "a finite number > 0")
        if not 0 <= self.momentum < 1:
            raise ConfigError("momentum", self.momentum, "a number in [0, 1)")
        if not self.weight_decay >= 0:
            raise ConfigError("weight_decay", self.weight_decay, "a number >= 0")
        if not (isinstance(self.epochs, int) and self.epochs >= 1):
            raise ConfigError("local_epochs", self.epochs, "an integer >= 1")


def node_seed(run_seed: int, round_: int, node: int) -> int:
    """A 63-bit seed that depends only on (run, round, node)."""
    import numpy as np

    return int(np.random.SeedSequence([run_seed, round_, node]).generate_state(2, dtype=np.uint64)[0] >> 1)


def can_vectorise(model: nn.Module) -> bool:
    """vmap needs a pure function of the parameters: no buffers, no BatchNorm running statistics."""
    return not any(True for _ in model.buffers())


class Trainer:
    """Runs local SGD for a list of jobs, vectorised where it can, looping where it must."""

    def __init__(self, model: nn.Module, sgd: SGDConfig, *, vectorise: bool | None = None,
                 memory_budget_bytes: float = 512 * 2**20, activation_bytes_per_sample: float = 4096.0) -> None:
        self.model = model
        self.layout = ParamLayout.of(model)
        self.sgd = sgd
        self.vectorise = can_vectorise(model) if vectorise is None else vectorise
        if self.vectorise and not can_vectorise(model):
            raise ConfigError("vectorise", True, "False for models with buffers (e.g. BatchNorm)")
        self._budget = memory_budget_bytes
        self._act_bytes = max(activation_bytes_per_sample, 1.0)

    def train(self, global_flat: torch.Tensor, jobs: Sequence[Job]) -> list[LocalResult]:
        """Train every job from ``global_flat``; results come back in job order."""
        if not self.vectorise:
            return [self._train_one(global_flat, job) for job in jobs]
        results: dict[int, LocalResult] = {}
        by_batch = sorted(jobs, key=lambda j: (j.batch_size, j.node))
        for batch_size, same in groupby(by_batch, key=lambda j: j.batch_size):
            group = list(same)
            # Bound the stacked activations (x3 for the backward pass) by the memory budget.
            size = max(1, int(self._budget // (3 * batch_size * self._act_bytes)))
            for i in range(0, len(group), size):
                for r in self._train_group(global_flat, group[i:i + size]):
                    results[r.node] = r
        return [results[j.node] for j in jobs]

    def _train_one(self, global_flat: torch.Tensor, job: Job) -> LocalResult:
        """The reference engine: one model, torch.optim.SGD, the same batch order."""
        model = self.model
        self.layout.load_into(model, global_flat)
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=self.sgd.lr, momentum=self.sgd.momentum,
                              weight_decay=self.sgd.weight_decay)
        gen = torch.Generator().manual_seed(job.seed)
        n, b = len(job.y), job.batch_size
        total, steps = 0.0, 0
        for _ in range(self.sgd.epochs):
            perm = torch.randperm(n, generator=gen)
            for s in range(0, n, b):
                idx = perm[s:s + b]
                opt.zero_grad(set_to_none=True)
                loss = nn.functional.cross_entropy(model(job.x[idx]), job.y[idx])
                loss.backward()
                opt.step()
                total, steps = total + loss.item(), steps + 1
        delta = self.layout.flatten(model) - global_flat
        return LocalResult(job.node, delta, n, total / max(steps, 1), steps)

    def _train_group(self, global_flat: torch.Tensor, jobs: Sequence[Job]) -> list[LocalResult]:
        """K nodes with one batch size, as one vmapped model with stacked parameters."""
        k, b, lr = len(jobs), jobs[0].batch_size, self.sgd.lr
        mu, wd = self.sgd.momentum, self.sgd.weight_decay
        sizes = torch.tensor([len(j.y) for j in jobs])
        offsets = torch.cumsum(sizes, 0) - sizes
        x_all = torch.cat([j.x for j in jobs])
        y_all = torch.cat([j.y for j in jobs])
        gens = [torch.Generator().manual_seed(j.seed) for j in jobs]
        params = global_flat.expand(k, -1).clone()
        buf = torch.zeros_like(params) if mu else None
        loss_sum = torch.zeros(k, dtype=torch.float64)
        steps = torch.zeros(k, dtype=torch.long)
        forward = vmap(lambda p, x: functional_call(self.model, p, (x,)))
        self.model.train()
        for _ in range(self.sgd.epochs):
            n_steps = int(math.ceil(int(sizes.max()) / b))
            idx = torch.zeros(k, n_steps * b, dtype=torch.long)
            mask = torch.zeros(k, n_steps * b, dtype=torch.bool)
            for i, gen in enumerate(gens):
                n = int(sizes[i])
                idx[i, :n] = torch.randperm(n, generator=gen) + offsets[i]
                mask[i, :n] = True
            for s in range(n_steps):
                ib, mb = idx[:, s * b:(s + 1) * b], mask[:, s * b:(s + 1) * b]
                count = mb.sum(1)
                active = (count > 0).unsqueeze(1)
                p = params.detach().requires_grad_(True)
                logits = forward(self.layout.unflatten(p), x_all[ib])
                ce = nn.functional.cross_entropy(logits.flatten(0, 1), y_all[ib].flatten(), reduction="none")
                per_node = (ce.view(k, -1) * mb).sum(1) / count.clamp(min=1)
                (grad,) = torch.autograd.grad(per_node.sum(), p)
                with torch.no_grad():
                    if wd:
                        grad = grad + wd * params
                    if buf is not None:
                        buf = torch.where(active, mu * buf + grad, buf)
                        grad = buf
                    params = torch.where(active, params - lr * grad, params)
                loss_sum += torch.where(active.squeeze(1), per_node.detach().double(), 0.0)
                steps += active.squeeze(1).long()
        deltas = params - global_flat
        return [LocalResult(j.node, deltas[i].clone(), int(sizes[i]), float(loss_sum[i] / max(int(steps[i]), 1)),
                            int(steps[i])) for i, j in enumerate(jobs)]
