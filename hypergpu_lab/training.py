"""Local training: every selected node runs E epochs of SGD on its own shard.

Training many small models one after another leaves a CPU idle between tiny
kernels, so nodes whose batch size matches are stacked and trained together
over parameters of shape ``[K, P]``: plain layer chains with the closed-form
gradients of ``layer_stack``, any other module through
``torch.func.functional_call`` under ``vmap``. Nodes with fewer samples are
masked once their epoch is over, so every node sees exactly the batches it
would see alone. A plain per-node loop with ``torch.optim.SGD`` serves modules
that vmap cannot take (BatchNorm, any module with buffers) and is the oracle
both vectorised paths are tested against.

Each node's batch order comes from its own generator, seeded from
(run seed, round, node): which other nodes share a group changes a node's
result only by float32 rounding (batched kernels pick their blocking by
shape; measured <= 3e-8 per round), and a restored run needs no RNG state
beyond the round number.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, vmap

from . import checks
from .buffers import Buffers
from .errors import ConfigError
from .layer_stack import LayerStack
from .models import ParamLayout
from .streams import stream
from .threads import intra_op_threads, threads_for

log = logging.getLogger(__name__)

_SEED_TAG, _ORDER_TAG = 0x5345_4544, 0x4F52_4452  # "SEED", "ORDR": stream tags (see streams.py)


@dataclass(frozen=True)
class Job:
    """One node's local training task: its own data never leaves this record's owner."""

    node: int
    x: torch.Tensor
    y: torch.Tensor
    batch_size: int
    seed: int
    correction: torch.Tensor | None = None  # [P] added to every local gradient (SCAFFOLD's c - c_i)
    max_steps: int | None = None  # partial work: stop after this many local steps (None: all epochs)


@dataclass(frozen=True)
class LocalResult:
    """What a node sends back: the weight delta and what the coordinator needs to weigh it."""

    node: int
    delta: torch.Tensor
    num_samples: int
    loss: float
    steps: int
    update_norm: float


@dataclass(frozen=True)
class SGDConfig:
    """Local optimiser settings, identical in both engines (torch.optim.SGD semantics)."""

    lr: float = 0.05
    momentum: float = 0.0
    weight_decay: float = 0.0
    epochs: int = 1
    prox_mu: float = 0.0  # FedProx: adds mu/2 * ||w - w_global||^2 to every local loss

    def __post_init__(self) -> None:
        checks.number("lr", self.lr, 0, open_low=True)
        checks.number("momentum", self.momentum, 0, 1, open_high=True)
        checks.number("weight_decay", self.weight_decay, 0)
        checks.integer("local_epochs", self.epochs, low=1)
        checks.number("prox_mu", self.prox_mu, 0)


def node_seed(run_seed: int, round_: int, node: int) -> int:
    """A 63-bit seed that depends only on (run, round, node)."""
    return int(stream(run_seed, _SEED_TAG, round_, node).integers(2**63))


def epoch_orders(seed: int, n: int, epochs: int) -> list[np.ndarray]:
    """The node's sample order for each epoch; both engines draw it here, so they see the same batches."""
    rng = stream(seed, _ORDER_TAG)
    return [rng.permutation(n) for _ in range(epochs)]


def resolve_device(device: str) -> torch.device:
    """ "auto" is CUDA when present, else the CPU; a node's GPU spec still drives simulated time."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ConfigError("device", device, "auto, cpu, cuda or cuda:N")
    if device != "cpu" and not torch.cuda.is_available():
        raise ConfigError("device", device, "auto or cpu", hint="no CUDA device is visible to torch")
    return torch.device(device)


def can_vectorise(model: nn.Module) -> bool:
    """vmap needs a pure function of the parameters: no buffers, no BatchNorm running statistics."""
    return not any(True for _ in model.buffers())


def _leading(active: np.ndarray) -> int | None:
    """r when exactly the first r entries of ``active`` are True (and r >= 1), else None."""
    r = int(active.sum())
    return r if r and active[:r].all() else None


class Trainer:
    """Runs local SGD for a list of jobs, vectorised where it can, looping where it must."""

    def __init__(
        self,
        model: nn.Module,
        sgd: SGDConfig,
        *,
        vectorise: bool | None = None,
        memory_budget_bytes: float = 512 * 2**20,
        activation_bytes_per_sample: float = 4096.0,
        train_flops_per_sample: float | None = None,
        device: str = "cpu",
    ) -> None:
        import copy

        self.device = resolve_device(device)
        # On an accelerator the engine trains its own copy; the caller's model stays where it is.
        self.model = model if self.device.type == "cpu" else copy.deepcopy(model).to(self.device)
        self.layout = ParamLayout.of(model)
        self.sgd = sgd
        self.vectorise = can_vectorise(model) if vectorise is None else vectorise
        if self.vectorise and not can_vectorise(model):
            raise ConfigError("vectorise", True, "False for models with buffers (e.g. BatchNorm)")
        # Plain Conv/Pool/ReLU/Linear chains get closed-form batched gradients; everything else goes through vmap.
        self._stack = LayerStack.of(model, self.layout) if self.vectorise else None
        self._buffers = Buffers(self.device)  # scratch [K, P] tensors kept from call to call
        self._budget = memory_budget_bytes
        self._act_bytes = max(activation_bytes_per_sample, 1.0)
        # Forward + backward cost per sample, for the thread policy; ~6 FLOPs per parameter if unknown.
        self._flops = train_flops_per_sample if train_flops_per_sample else 6.0 * self.layout.size

    def train(self, global_flat: torch.Tensor, jobs: Sequence[Job]) -> list[LocalResult]:
        """Train every job from ``global_flat``; results come back in job order, on the CPU."""
        step = len(jobs) * max((j.batch_size for j in jobs), default=0) * self._flops if self.vectorise else 0.0
        with intra_op_threads(threads_for(step)):
            return self._train(global_flat, jobs)

    def _train(self, global_flat: torch.Tensor, jobs: Sequence[Job]) -> list[LocalResult]:
        global_flat = global_flat.to(self.device)
        if not self.vectorise:
            return [self._train_one(global_flat, job) for job in jobs]
        results: dict[int, LocalResult] = {}
        by_batch = sorted(jobs, key=lambda j: (j.batch_size, j.node))
        for batch_size, same in groupby(by_batch, key=lambda j: j.batch_size):
            group = list(same)
            # Bound the stacked activations (x3 for the backward pass) by the memory budget.
            size = max(1, int(self._budget // (3 * batch_size * self._act_bytes)))
            for i in range(0, len(group), size):
                for r in self._train_group(global_flat, group[i : i + size]):
                    results[r.node] = r
        return [results[j.node] for j in jobs]

    def _train_one(self, global_flat: torch.Tensor, job: Job) -> LocalResult:
        """The reference engine: one model, torch.optim.SGD, the same batch order."""
        model = self.model
        self.layout.load_into(model, global_flat)
        x, y = job.x.to(self.device), job.y.to(self.device)
        model.train()
        opt = torch.optim.SGD(
            model.parameters(), lr=self.sgd.lr, momentum=self.sgd.momentum, weight_decay=self.sgd.weight_decay
        )
        anchor = {n: v for n, v in self.layout.unflatten(global_flat).items() if n in self.layout.param_names}
        mu = self.sgd.prox_mu
        corr = None
        if job.correction is not None:
            corr = {n: v for n, v in self.layout.unflatten(job.correction.to(self.device)).items() if n in anchor}
        n, b = len(job.y), job.batch_size
        limit = job.max_steps if job.max_steps is not None else math.inf
        total, steps = 0.0, 0
        for order in epoch_orders(job.seed, n, self.sgd.epochs):
            perm = torch.from_numpy(order).to(self.device)
            for s in range(0, n, b):
                if steps >= limit:
                    break
                idx = perm[s : s + b]
                opt.zero_grad(set_to_none=True)
                loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
                objective = loss
                if mu:
                    objective = loss + mu / 2 * sum(((p - anchor[n]) ** 2).sum() for n, p in model.named_parameters())
                objective.backward()
                if corr is not None:
                    for name, p in model.named_parameters():
                        p.grad.add_(corr[name])
                opt.step()
                total, steps = total + loss.item(), steps + 1
        delta = (self.layout.flatten(model) - global_flat).cpu()
        return LocalResult(job.node, delta, n, total / max(steps, 1), steps, float(torch.linalg.vector_norm(delta)))

    def _train_group(self, global_flat: torch.Tensor, jobs: Sequence[Job]) -> list[LocalResult]:
        """K nodes with one batch size, as one stacked model with parameters [K, P]."""
        jobs = sorted(jobs, key=lambda j: -len(j.y))  # longest first (stable): finished nodes trail
        k, lr = len(jobs), self.sgd.lr
        mu, wd = self.sgd.momentum, self.sgd.weight_decay
        stack = self._stack if self._stack is not None and self._stack.accepts(jobs[0].x.shape[1:]) else None
        sizes = np.array([len(j.y) for j in jobs])
        # Pad batches only as wide as the largest shard needs: 1000 nodes of 2 samples use width 2, not B.
        b = min(jobs[0].batch_size, int(sizes.max()))
        n_steps = int(math.ceil(int(sizes.max()) / b))
        offsets = np.cumsum(sizes) - sizes
        rows = np.repeat(np.arange(k), sizes)
        cols = np.arange(int(sizes.sum())) - np.repeat(offsets, sizes)
        dev = self.device
        x_all = torch.cat([j.x for j in jobs]).to(dev)
        y_all = torch.cat([j.y for j in jobs]).to(dev)
        orders = [epoch_orders(j.seed, int(n), self.sgd.epochs) for j, n in zip(jobs, sizes)]
        # Per step and node: how many real samples (the rest of the window is padding), as weights 1/count.
        mask = np.zeros((k, n_steps * b), dtype=bool)
        mask[rows, cols] = True
        count = mask.reshape(k, n_steps, b).sum(2)  # [K, steps]
        weights = torch.from_numpy(
            (mask.reshape(k, n_steps, b) / np.maximum(count, 1)[..., None]).astype(np.float32).reshape(k, -1)
        ).to(dev)
        active = count > 0
        # Per epoch, which nodes take each step: all with a batch, unless partial work stops a node early.
        per_epoch = [active] * self.sgd.epochs
        if any(j.max_steps is not None for j in jobs):
            limit = np.array([j.max_steps if j.max_steps is not None else np.iinfo(np.int64).max for j in jobs])
            taken = active.sum(1, keepdims=True) * np.arange(self.sgd.epochs)[:, None, None] + np.arange(n_steps)
            per_epoch = list(active & (taken < limit[:, None]))
        everyone = [a.all(0).tolist() for a in per_epoch]  # per epoch and step: no node is done yet
        firsts = [[_leading(a[:, s]) for s in range(n_steps)] for a in per_epoch]
        keep = [torch.from_numpy(a.T.copy()).to(dev) for a in per_epoch]  # per epoch: [steps, K]
        corrections = None
        if any(j.correction is not None for j in jobs):
            zero = torch.zeros_like(global_flat)
            corrections = torch.stack([zero if j.correction is None else j.correction.to(dev) for j in jobs])
        longest = int(sizes.max())
        # Until the first step every node holds global_flat: no [K, P] copy is made before it is needed.
        params: torch.Tensor | None = None
        buf: torch.Tensor | None = None
        losses: list[torch.Tensor] = []
        if stack is None:
            self.model.train()
        # The closed form's weights, cut once: the shared origin's for the first step, then each model's,
        # re-cut only when the stack's cuts are copies (grouped kernels) or the parameters are a new tensor.
        bound: tuple[torch.Tensor | None, list, int] = (
            None,
            stack.bind(global_flat, k) if stack is not None else [],
            k,
        )
        for epoch in range(self.sgd.epochs):
            idx_np = np.zeros((k, n_steps * b), dtype=np.int64)
            idx_np[rows, cols] = np.concatenate([o[epoch] for o in orders]) + np.repeat(offsets, sizes)
            idx = torch.from_numpy(idx_np).to(dev)
            for s in range(n_steps):
                # Each node's step-s batch fills the first columns of its window: pad only to the widest one.
                width = min(b, longest - s * b)
                # Nodes run longest first: once only the first r still have batches, step those r alone
                # (views of the parameters, no copies) instead of all K with the rest masked.
                r = k if params is None or firsts[epoch][s] is None else firsts[epoch][s]
                ib = idx[:r, s * b : s * b + width]
                wb = weights[:r, s * b : s * b + width]
                p_rows = None if params is None else params[:r]
                if stack is not None:
                    if p_rows is not None and (bound[0] is not params or bound[2] != r or not stack.binds_views):
                        bound = (params, stack.bind(p_rows, r), r)
                    # The gradient goes into a buffer reused across steps and calls: no fresh [K, P] each step.
                    grad_out = self._buffers.get("grad", (r, global_flat.numel()))
                    per_node, grad = stack.loss_and_grad(bound[1], x_all[ib], y_all[ib], wb, out=grad_out)
                else:
                    per_node, grad = self._vmap_loss_and_grad(p_rows, global_flat, x_all[ib], y_all[ib], wb)
                with torch.no_grad():
                    if self.sgd.prox_mu and p_rows is not None:  # the proximal term is zero at the global model
                        grad = grad.add_(p_rows - global_flat, alpha=self.sgd.prox_mu)
                    if corrections is not None:
                        grad = grad.add_(corrections[:r])
                    last = epoch == self.sgd.epochs - 1 and s == n_steps - 1
                    act = None if everyone[epoch][s] or r < k else keep[epoch][s]
                    scratch = self._buffers.get("momentum", tuple(grad.shape)) if mu and buf is None else None
                    new, new_buf = self._sgd_step(
                        p_rows, global_flat, grad, None if buf is None else buf[:r], act, lr, mu, wd, last, scratch
                    )
                    if r == k:  # otherwise the first r rows of params and buf changed in place
                        params, buf = new, new_buf
                losses.append(per_node if r == k else torch.cat([per_node, per_node.new_zeros(k - r)]))
        assert params is not None  # every node has at least one sample, so at least one step ran
        deltas = params.sub_(global_flat).cpu()
        norms = torch.linalg.vector_norm(deltas, dim=1).tolist()
        # A node's loss is the mean over the steps it took (padding steps of finished nodes count zero).
        took = np.concatenate([a.T for a in per_epoch])  # [epochs * steps, K]
        steps = took.sum(0)
        totals = np.where(took, torch.stack(losses).cpu().numpy().astype(np.float64), 0.0).sum(0)
        mean_loss = (totals / np.maximum(steps, 1)).tolist()
        return [
            LocalResult(j.node, d, n, loss, st, norm)
            for j, d, n, loss, st, norm in zip(jobs, deltas.unbind(), sizes.tolist(), mean_loss, steps.tolist(), norms)
        ]

    def logits(self, flat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The model's logits at weights ``flat`` for samples ``x``, on the CPU; the module's state is
        loaded only when no closed form covers the model (loading costs more than the forward here)."""
        flat, x = flat.to(self.device), x.to(self.device)
        with torch.no_grad(), intra_op_threads(threads_for(len(x) * self._flops / 3)):
            if self._stack is not None and self._stack.accepts(x.shape[1:]):
                return self._stack.logits(flat, x).cpu()
            self.layout.load_into(self.model, flat)
            self.model.eval()
            return self.model(x).cpu()

    def batched_logits(self, flats: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """K models' logits [K, n, C] at weights ``flats`` [K, P] for the same samples ``x``, on the CPU:
        one batched forward where the closed form covers the model (scoring coalition models), else a loop."""
        if self._stack is not None and self._stack.accepts(x.shape[1:]):
            flats, x = flats.to(self.device), x.to(self.device)
            with torch.no_grad(), intra_op_threads(threads_for(len(flats) * len(x) * self._flops / 3)):
                return self._stack.batched_logits(flats, x).cpu()
        return torch.stack([self.logits(f, x) for f in flats])

    def coalition_logits(
        self, origin: torch.Tensor, deltas: torch.Tensor, coeff: torch.Tensor, x: torch.Tensor
    ) -> torch.Tensor:
        """Logits [K, n, C] of the models ``origin + coeff @ deltas`` for samples ``x`` (scoring coalitions)."""
        if self._stack is not None and self._stack.accepts(x.shape[1:]):
            args = [t.to(self.device) for t in (origin, deltas, coeff, x)]
            with torch.no_grad(), intra_op_threads(threads_for(len(coeff) * len(x) * self._flops / 3)):
                return self._stack.coalition_logits(*args).cpu()
        return self.batched_logits(torch.addmm(origin.unsqueeze(0), coeff, deltas), x)

    @property
    def engine(self) -> str:
        """Which engine trains: "layer-stack" (closed-form batched gradients), "vmap" or "loop"."""
        return "loop" if not self.vectorise else "vmap" if self._stack is None else "layer-stack"

    def _vmap_loss_and_grad(
        self, params: torch.Tensor | None, origin: torch.Tensor, x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each model's weighted batch loss [K] and its gradient [K, P]; ``params`` None means all hold ``origin``."""
        p = (origin.expand(len(y), -1) if params is None else params).detach().requires_grad_(True)
        logits = vmap(lambda q, xb: functional_call(self.model, q, (xb,)))(self.layout.unflatten(p), x)
        ce = nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
        per_node = (ce.view(weight.shape) * weight).sum(1)
        (grad,) = torch.autograd.grad(per_node.sum(), p)
        return per_node.detach(), grad

    @staticmethod
    def _sgd_step(
        params: torch.Tensor | None,
        origin: torch.Tensor,
        grad: torch.Tensor,
        buf: torch.Tensor | None,
        active: torch.Tensor | None,
        lr: float,
        mu: float,
        wd: float,
        last: bool = False,
        scratch: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """torch.optim.SGD's update, applied only to nodes that had a batch this step; returns (params, buf).

        ``grad`` is the engine's own (it is changed in place). ``active`` [K] bool, or None when every
        node had one. ``params`` None means every node still holds ``origin`` (the first step): the new
        [K, P] parameters are then written once, as origin - lr * step, into fresh memory (they are
        what the call returns), with no copy of the origin first. The momentum buffer starts in
        ``scratch`` (a reused buffer shaped like ``grad``), or is skipped on a run's only step (``last``).
        """
        if wd:
            grad = grad.add_(origin if params is None else params, alpha=wd)
        keep = None if active is None else active.unsqueeze(1)  # finished nodes keep weights and momentum
        if mu:
            if buf is None:  # torch.optim.SGD's first step: the buffer is the gradient itself
                if keep is not None:
                    grad = grad.masked_fill_(~keep, 0.0)
                buf = None if last else grad if scratch is None else scratch.copy_(grad)
            elif keep is None:
                buf.mul_(mu).add_(grad)
                grad = buf
            else:
                buf.copy_(torch.where(keep, buf.mul(mu).add_(grad), buf))
                grad = buf
        if keep is not None:
            grad = torch.where(keep, grad, 0.0)
        if params is None:
            return torch.add(origin, grad, alpha=-lr), buf
        return params.sub_(grad, alpha=lr), buf
