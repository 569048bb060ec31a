"""Closed-form gradients for K stacked fully connected networks, one batched matmul per layer.

For a plain stack of Linear and ReLU layers (the MLP of the zoo, or any ``nn.Sequential`` of
that shape) the backward pass is three lines per layer, so the engine writes it out with
``baddbmm``/``bmm`` instead of tracing ``vmap(functional_call)`` through autograd. The
arithmetic is the same; what goes away is the per-step cost of building and walking the graph,
which dominates when the models are small (the 64-32-10 MLP on 10 nodes: ~3x faster steps).
The vmap path remains the engine for every other model, and both are tested against the
per-node ``torch.optim.SGD`` loop.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .models import MLP, ParamLayout


@dataclass(frozen=True)
class _Dense:
    weight: slice    # where W [out, in] sits in the flat parameter vector
    bias: slice
    out: int
    inp: int


@dataclass(frozen=True)
class LinearStack:
    """The layers of a Flatten? -> (Linear -> ReLU)* -> Linear network, as slices of the flat vector."""

    layers: tuple[_Dense, ...]

    @classmethod
    def of(cls, model: nn.Module, layout: ParamLayout) -> LinearStack | None:
        """The stack for ``model``, or None when its forward is anything else (then vmap trains it)."""
        if type(model) is MLP:
            seq, prefix = model.net, "net."
        elif type(model) is nn.Sequential:
            seq, prefix = model, ""
        else:
            return None
        mods = list(seq.named_children())
        if mods and type(mods[0][1]) is nn.Flatten and (mods[0][1].start_dim, mods[0][1].end_dim) == (1, -1):
            mods = mods[1:]
        linears = mods[0::2]
        if not linears or len(mods) % 2 != 1 or any(type(m) is not nn.ReLU or m.inplace for _, m in mods[1::2]):
            return None
        if any(type(m) is not nn.Linear or m.bias is None for _, m in linears):
            return None
        start, offsets = 0, {}
        for name, numel in zip(layout.names, layout.numels):
            offsets[name] = slice(start, start + numel)
            start += numel
        if set(offsets) != {f"{prefix}{n}.{p}" for n, _ in linears for p in ("weight", "bias")}:
            return None
        layers = tuple(_Dense(offsets[f"{prefix}{n}.weight"], offsets[f"{prefix}{n}.bias"], m.out_features,
                              m.in_features) for n, m in linears)
        # The gradient is assembled by concatenation, so the flat vector must hold W1, b1, W2, b2, ... in order.
        ends = [0] + [s.stop for d in layers for s in (d.weight, d.bias)]
        if any(s.start != e for s, e in zip((s for d in layers for s in (d.weight, d.bias)), ends)):
            return None
        return cls(layers)

    def loss_and_grad(self, params: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                      weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-model loss sum_i weight[k, i] * CE_i and its gradient [K, P] with respect to ``params``.

        ``x`` is [K, b, ...], ``y`` [K, b] and ``weight`` [K, b] (the padding mask over each
        model's batch size, so the loss is each model's own batch mean).
        """
        k = params.shape[0]
        h = x.reshape(k, x.shape[1], -1)
        inputs = []
        for i, layer in enumerate(self.layers):
            w = params[:, layer.weight].view(k, layer.out, layer.inp)
            inputs.append(h)
            h = torch.baddbmm(params[:, layer.bias].unsqueeze(1), h, w.transpose(1, 2))
            if i < len(self.layers) - 1:
                h = h.relu()
        logp = torch.log_softmax(h, dim=-1)
        nll = -logp.gather(2, y.unsqueeze(2)).squeeze(2)
        loss = (nll * weight).sum(1)
        # d loss / d logits = (softmax - onehot) * weight
        dz = logp.exp_()
        dz.scatter_add_(2, y.unsqueeze(2), torch.full_like(dz[..., :1], -1.0)).mul_(weight.unsqueeze(2))
        grads: list[torch.Tensor] = []
        for i in range(len(self.layers) - 1, -1, -1):
            layer, h_in = self.layers[i], inputs[i]
            grads.append(dz.sum(1))
            grads.append(torch.bmm(dz.transpose(1, 2), h_in).view(k, -1))
            if i:
                w = params[:, layer.weight].view(k, layer.out, layer.inp)
                dz = torch.bmm(dz, w).mul_(h_in > 0)
        # The layout's order is weight, bias per layer, first layer first: the reverse of the walk.
        return loss, torch.cat(grads[::-1], dim=1)
