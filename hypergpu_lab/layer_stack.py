"""Closed-form gradients for K stacked feed-forward networks, written out layer by layer.

For a plain chain of Conv2d, MaxPool2d, ReLU, Flatten and Linear layers (the zoo's MLP and
CNN, or any ``nn.Sequential`` of those) the backward pass is a few batched matmuls per layer,
so the engine writes it out instead of tracing ``vmap(functional_call)`` through autograd:

* no graph is built and walked each step, which dominates when the models are small
  (the 64-32-10 MLP on 10 nodes: ~3x faster steps);
* on a round's first step every node still holds the global weights, so the forward pass and
  the input gradients run as ONE model over all nodes' samples (what a single big batch costs);
  only the weight gradients are per node. Later steps use each node's own weights.

Two layouts, each where it needs no copies:

* image activations are slot-major, ``[b * K, C, H, W]`` (row j * K + k is model k's j-th
  sample): K models' feature maps are then one grouped convolution's input as a plain view,
  and the per-model kernel gradients are that convolution's weight gradient;
* flat activations are model-major, ``[K, b, f]``: each model's rows are one contiguous block,
  so Linear layers are plain batched matmuls and per-model sums (bias gradients, the loss)
  run over contiguous memory, in the same order whatever K is.

``Flatten`` turns one into the other (one copy each way). The vmap path remains the engine for
every other model; both are tested against autograd and the per-node ``torch.optim.SGD`` loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from .models import CNN, MLP, ParamLayout

Saved = tuple[Any, ...]  # what a layer's backward needs from its forward
_NARROW = 16  # classes: below this, log_softmax runs on the transposed logits (see log_softmax)
Bound = Any  # a layer's weights cut from the flat parameters (see LayerStack.bind)


@dataclass(frozen=True)
class _Flatten:
    from_slots: bool  # the input is slot-major images [b * K, C, H, W], not model-major [K, b, ...]

    def bind(self, p: torch.Tensor, k: int) -> Bound:
        return None

    def forward(self, w: Bound, h: torch.Tensor, k: int) -> tuple[torch.Tensor, Saved]:
        if self.from_slots:
            return h.view(-1, k, h[0].numel()).transpose(0, 1).contiguous(), (h.shape,)
        return h.flatten(2), (h.shape,)

    def backward(
        self, w: Bound, d: torch.Tensor, saved: Saved, k: int, need_dx: bool = True
    ) -> tuple[torch.Tensor | None, list[torch.Tensor]]:
        if self.from_slots:
            return d.transpose(0, 1).reshape(saved[0]), []
        return d.view(saved[0]), []


@dataclass(frozen=True)
class _ReLU:
    def bind(self, p: torch.Tensor, k: int) -> Bound:
        return None

    def forward(self, w: Bound, h: torch.Tensor, k: int) -> tuple[torch.Tensor, Saved]:
        out = h.relu()
        return out, (out,)

    def backward(
        self, w: Bound, d: torch.Tensor, saved: Saved, k: int, need_dx: bool = True
    ) -> tuple[torch.Tensor | None, list[torch.Tensor]]:
        return torch.ops.aten.threshold_backward(d, saved[0], 0), []  # what autograd runs for relu


@dataclass(frozen=True)
class _MaxPool:
    size: int

    def bind(self, p: torch.Tensor, k: int) -> Bound:
        return None

    def forward(self, w: Bound, h: torch.Tensor, k: int) -> tuple[torch.Tensor, Saved]:
        # PyTorch's CPU max-pool kernel is ~6x faster on channels-last input here, conversion included;
        # it keeps the first maximum of each window, as the contiguous kernel does.
        x = h.contiguous(memory_format=torch.channels_last)
        out, idx = F.max_pool2d(x, self.size, return_indices=True)
        return out.contiguous(), (idx, h.shape[-2:])

    def backward(
        self, w: Bound, d: torch.Tensor, saved: Saved, k: int, need_dx: bool = True
    ) -> tuple[torch.Tensor | None, list[torch.Tensor]]:
        idx, size = saved  # indices are positions within each channel's plane, whatever the memory format
        return F.max_unpool2d(d, idx.contiguous(), self.size, output_size=size), []

    def values(self, h: torch.Tensor) -> torch.Tensor:
        """The pooled values alone (forward only, no indices): elementwise maxima of each window
        position's strided slice, the values F.max_pool2d gives, without its channels-last round trip
        (the CNN's first pool over 20 digits models' maps, ReLU included: 2.1 against 6.0 ms, 1 thread)."""
        s = self.size
        rows, cols = h.shape[-2] // s * s, h.shape[-1] // s * s  # floor: MaxPool2d drops a ragged edge
        windows = [h[..., i:rows:s, j:cols:s] for i in range(s) for j in range(s)]
        if s == 1:
            return windows[0]
        out = torch.maximum(windows[0], windows[1])
        for w in windows[2:]:
            torch.maximum(out, w, out=out)
        return out


@dataclass(frozen=True)
class _Linear:
    weight: slice
    bias: slice
    out: int
    inp: int

    def bind(self, p: torch.Tensor, k: int) -> Bound:
        """(W, W transposed, bias), as views of ``p``: shared [out, in] or per model [K, out, in]."""
        if p.dim() == 1:
            w = p[self.weight].view(self.out, self.inp)
            return w, w.T, p[self.bias]
        w = p[:, self.weight].view(k, self.out, self.inp)
        return w, w.transpose(1, 2), p[:, self.bias].unsqueeze(1)

    def forward(self, w: Bound, h: torch.Tensor, k: int) -> tuple[torch.Tensor, Saved]:
        weight, wt, bias = w
        if weight.dim() == 2:  # shared weights: one model over all samples
            return torch.addmm(bias, h.reshape(-1, self.inp), wt).view(k, -1, self.out), (h,)
        return torch.baddbmm(bias, h, wt), (h,)  # [K, b, out]

    def backward(
        self, w: Bound, d: torch.Tensor, saved: Saved, k: int, need_dx: bool = True
    ) -> tuple[torch.Tensor | None, list[torch.Tensor]]:
        (h,) = saved
        grads = [torch.bmm(d.transpose(1, 2), h).view(k, -1), d.sum(1)]  # d is [K, b, out], contiguous
        if not need_dx:
            return None, grads
        weight = w[0]
        if weight.dim() == 2:
            return torch.mm(d.view(-1, self.out), weight).view(k, -1, self.inp), grads
        return torch.bmm(d, weight), grads


@dataclass(frozen=True)
class _Conv:
    weight: slice
    bias: slice
    out: int
    inp: int
    kernel: tuple[int, int]
    padding: tuple[int, int]

    def bind(self, p: torch.Tensor, k: int) -> Bound:
        """(kernels, bias): [Cout, Cin, kh, kw], or the K models' kernels as one grouped convolution's
        [K * Cout, Cin, kh, kw] (a copy: the rows of ``p`` are not adjacent)."""
        if p.dim() == 1:
            return p[self.weight].view(self.out, self.inp, *self.kernel), p[self.bias]
        return p[:, self.weight].reshape(-1, self.inp, *self.kernel), p[:, self.bias].reshape(-1)

    def forward(self, w: Bound, h: torch.Tensor, k: int) -> tuple[torch.Tensor, Saved]:
        kernels, bias = w
        if bias.numel() == self.out:
            return F.conv2d(h, kernels, bias, padding=self.padding), (h,)
        # Slot-major rows make the K models one grouped convolution over [b, K * C, H, W]: a view, no copy.
        y = F.conv2d(_grouped(h, k), kernels, bias, padding=self.padding, groups=k)
        return y.view(-1, self.out, *y.shape[-2:]), (h,)

    def forward_shared(self, w: Bound, x: torch.Tensor, k: int) -> torch.Tensor:
        """K models' feature maps for the same images ``x`` [n, C, H, W], forward only: the K models'
        kernels [K * Cout, C * kh * kw] times ``x``'s patches [n, C * kh * kw, positions], one batched
        matmul whose [n, K * Cout, positions] is the slot-major [n * K, Cout, H', W'] as a view.

        Not F.conv2d, grouped over K copies of the images or dense over ``x``: on digits with K = 20
        oneDNN's dense convolution took 3 ms against this matmul's 1.3-1.6 ms, and 18 ms in processes
        where its ~28 MB of buffers page-faulted on every call (1 thread, 2026-12-06)."""
        kernels, bias = w
        patches = F.unfold(x, self.kernel, padding=self.padding)  # [n, C * kh * kw, H' * W']
        rows = kernels.view(1, -1, patches.shape[1]).expand(len(x), -1, -1)
        y = torch.baddbmm(bias.view(1, -1, 1), rows, patches)
        h_out = x.shape[-2] + 2 * self.padding[0] - self.kernel[0] + 1
        return y.view(-1, self.out, h_out, y.shape[-1] // h_out)

    def backward(
        self, w: Bound, d: torch.Tensor, saved: Saved, k: int, need_dx: bool = True
    ) -> tuple[torch.Tensor | None, list[torch.Tensor]]:
        (h,) = saved
        # Per-model kernel gradients are a grouped convolution's weight gradient, whatever the forward shared.
        wshape = (k * self.out, self.inp, *self.kernel)
        dw = torch.nn.grad.conv2d_weight(_grouped(h, k), wshape, _grouped(d, k), padding=self.padding, groups=k)
        grads = [dw.view(k, -1), _sum_by_model(d, k, d.shape[-2] * d.shape[-1])]
        if not need_dx:
            return None, grads
        kernels, bias = w
        if bias.numel() == self.out:
            return torch.nn.grad.conv2d_input(h.shape, kernels, d, padding=self.padding), grads
        dx = torch.nn.grad.conv2d_input(_grouped(h, k).shape, kernels, _grouped(d, k), padding=self.padding, groups=k)
        return dx.view(h.shape), grads


def _sum_by_model(d: torch.Tensor, k: int, positions: int) -> torch.Tensor:
    """Bias gradients [K, C]: sums over each model's samples and positions, as [K, n, C].sum(1).

    Summing the middle axis of a contiguous [K, n, C] vectorises across C within each model, so the
    order of additions, and every rounding, is the same for any K."""
    c = d.shape[1]
    return d.reshape(-1, k, c, positions).permute(1, 0, 3, 2).reshape(k, -1, c).contiguous().sum(1)


def _grouped(h: torch.Tensor, k: int) -> torch.Tensor:
    """Slot-major images [b * K, C, H, W] as [b, K * C, H, W], the input of a K-group convolution."""
    return h.view(-1, k * h.shape[1], *h.shape[2:])


Layer = _Flatten | _ReLU | _MaxPool | _Linear | _Conv


@dataclass(frozen=True)
class LayerStack:
    """A network as a chain of layers whose parameters are slices of the flat vector."""

    layers: tuple[Layer, ...]
    #: Per-sample dimensions the input must have: 3 for image stacks, 1 for a chain that opens with
    #: Linear, None when it opens with Flatten (any shape).
    sample_dims: int | None

    @classmethod
    def of(cls, model: nn.Module, layout: ParamLayout) -> LayerStack | None:
        """The stack for ``model``, or None when its forward is anything else (then vmap trains it)."""
        if type(model) is MLP:
            chain = [("net." + n, m) for n, m in model.net.named_children()]
        elif type(model) is CNN:
            chain = [
                (f"{part}.{n}", m)
                for part in ("features", "classifier")
                for n, m in getattr(model, part).named_children()
            ]
        elif type(model) is nn.Sequential:
            chain = list(_flat_sequential(model, ""))
        else:
            return None
        offsets, start = {}, 0
        for name, numel in zip(layout.names, layout.numels):
            offsets[name] = slice(start, start + numel)
            start += numel
        layers, used = [], []
        for name, m in chain:
            layer = _layer(name, m, offsets)
            if layer is None:
                return None
            layers.append(layer)
            used += [layer.weight, layer.bias] if isinstance(layer, _Linear | _Conv) else []
        # Gradients are assembled by concatenation: the parameters must be exactly W1, b1, W2, b2, ... in order.
        if (
            not layers
            or not isinstance(layers[-1], _Linear)
            or [(s.start, s.stop) for s in used] != [(s.start, s.stop) for s in offsets.values()]
        ):
            return None
        kinds = [type(layer) for layer in layers if not isinstance(layer, _ReLU)]
        if _Conv in kinds or _MaxPool in kinds:
            # Images first (slot-major), then exactly one Flatten, then only Linear layers (model-major).
            cut = kinds.index(_Flatten) if _Flatten in kinds else len(kinds)
            if set(kinds[:cut]) - {_Conv, _MaxPool} or set(kinds[cut + 1 :]) != {_Linear}:
                return None
            at = next(i for i, layer in enumerate(layers) if isinstance(layer, _Flatten))
            layers[at] = _Flatten(from_slots=True)
            return cls(tuple(layers), 3)
        return cls(tuple(layers), None if kinds[0] is _Flatten else 1)

    @cached_property
    def first_weighted(self) -> int:
        """Index of the first Linear or Conv layer: below it nothing needs a gradient."""
        return next(i for i, layer in enumerate(self.layers) if isinstance(layer, _Linear | _Conv))

    @cached_property
    def binds_views(self) -> bool:
        """Whether bind() returns only views, valid for as long as the parameters change in place."""
        return not any(isinstance(layer, _Conv) for layer in self.layers)

    def accepts(self, sample_shape: torch.Size) -> bool:
        """Whether samples of this shape go through the chain as its module's forward would take them."""
        return self.sample_dims is None or len(sample_shape) == self.sample_dims

    def bind(self, params: torch.Tensor, k: int) -> list[Bound]:
        """Each layer's weights cut from ``params`` ([P] shared, or [K, P]); see binds_views for reuse."""
        return [layer.bind(params, k) for layer in self.layers]

    def logits(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """One model's logits [n, C] at flat weights ``params`` [P] for samples ``x`` [n, ...]."""
        h = x if self.sample_dims == 3 else x.unsqueeze(0)  # one model: slot-major and model-major agree
        for layer in self.layers:
            h, _ = layer.forward(layer.bind(params, 1), h, 1)
        return h.view(len(x), -1)

    def batched_logits(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """K models' logits [K, n, C] at flat weights ``params`` [K, P] for the same samples ``x`` [n, ...]."""
        k, n = params.shape[0], len(x)
        if self.sample_dims == 3:  # slot-major: row j * K + k is model k's j-th sample
            h = x.unsqueeze(1).expand(n, k, *x.shape[1:]).reshape(n * k, *x.shape[1:])
        else:
            h = x.unsqueeze(0).expand(k, *x.shape)
        for layer in self.layers:
            h, _ = layer.forward(layer.bind(params, k), h, k)
        return h.view(k, n, -1)

    def coalition_logits(
        self, origin: torch.Tensor, deltas: torch.Tensor, coeff: torch.Tensor, x: torch.Tensor
    ) -> torch.Tensor:
        """Logits [K, n, C] of the K models ``origin + coeff @ deltas`` ([P], [N, P], [K, N]) for samples ``x``.

        Flat stacks: the first weighted layer is linear in its weights, so its output for every model
        is the origin's plus the coeff-weighted outputs of the N deltas: N + 1 layer evaluations
        instead of K (K coalitions of N updates: the first layer, most of an MLP's parameters, costs
        N/in_features); see :meth:`_flat_coalition_logits`. Stacks opening with a convolution take
        :meth:`_shared_image_logits`: there the same split costs more than it saves (a 1-channel 3x3
        kernel is 9 multiply-adds per output, combining N updates N), so the first convolution runs
        once over all K models' kernels.
        """
        first = self.first_weighted
        if isinstance(self.layers[first], _Conv):
            return self._shared_image_logits(torch.addmm(origin.unsqueeze(0), coeff, deltas), x)
        if self.sample_dims == 3:  # images pooled straight into a Linear: the plain batched forward
            return self.batched_logits(torch.addmm(origin.unsqueeze(0), coeff, deltas), x)
        return self._flat_coalition_logits(origin, deltas, coeff, x)

    def _flat_coalition_logits(
        self, origin: torch.Tensor, deltas: torch.Tensor, coeff: torch.Tensor, x: torch.Tensor
    ) -> torch.Tensor:
        """:meth:`coalition_logits` of a flat stack, forward only.

        Where the time went at 10 MLP nodes (20 coalitions, 180 rows, 1 thread), and what this does instead:

        * the last Linear (10 outputs) as batched [K, n, in] x [K, in, C] ran MKL's GEMM at a few
          GFLOP/s; as [K, C, in] x [K, in, n] (rows on the wide side) it takes about a third of the
          time, and the logits are returned as its transposed view (a max over classes is as fast
          on it; argmax is not: take ``.max(-1).indices``);
        * only the layers after the first need each coalition's weights: the coalition models are
          built for those columns alone (the first layer's weights are most of an MLP's);
        * the origin's first-layer output is one more row of the coefficient matmul (weight 1),
          not a pass of its own.

        The logits equal each coalition model's own forward up to float32 summation order
        (tests/test_layer_stack.py), and so do the accuracies the scorer takes from them.
        """
        k, n, rows, first = len(coeff), len(deltas), len(x), self.first_weighted
        start, after = self._after_first
        h = x.unsqueeze(0)
        for layer in self.layers[:first]:  # weightless (a Flatten): a view of x, never written
            h, _ = layer.forward(None, h, 1)
        lin = self.layers[first]
        assert isinstance(lin, _Linear)  # a flat stack's first weights are a Linear's (LayerStack.of)
        parts = torch.empty(n + 1, rows, lin.out, dtype=h.dtype, device=h.device)  # the N updates', then the origin's
        _, wt, bias = lin.bind(deltas, n)
        torch.baddbmm(bias, h.expand(n, *h.shape[1:]), wt, out=parts[:n])
        _, wt, bias = lin.bind(origin, 1)
        torch.addmm(bias, h.reshape(-1, lin.inp), wt, out=parts[n])
        weights = torch.cat([coeff, coeff.new_ones(k, 1)], dim=1)
        h = torch.mm(weights, parts.view(n + 1, -1)).view(k, rows, lin.out)
        if not after:
            return h
        tail = deltas[:, start:]  # the coalition models' weights of the layers after the first
        models = torch.addmm(origin[start:].unsqueeze(0), coeff, tail)
        *middle, last = after
        for layer in middle:
            if isinstance(layer, _ReLU):
                h = h.relu_()  # every tensor past the first layer is this call's own
            else:
                h, _ = layer.forward(layer.bind(models, k), h, k)
        assert isinstance(last, _Linear)  # a stack ends with a Linear (LayerStack.of)
        w, _, bias = last.bind(models, k)
        return torch.baddbmm(bias.transpose(1, 2), w, h.transpose(1, 2)).transpose(1, 2)  # [K, n, C], a view

    @cached_property
    def _after_first(self) -> tuple[int, tuple[Layer, ...]]:
        """Where the first weighted layer's parameters end, and the layers after it with their weight
        slices counted from there (they index the columns of the coalition models built from there on)."""
        first = self.first_weighted
        start = self.layers[first].bias.stop  # parameters are W1, b1, W2, b2, ... in order (LayerStack.of)

        def shifted(layer: Layer) -> Layer:
            if not isinstance(layer, _Linear):
                return layer
            return _Linear(_minus(layer.weight, start), _minus(layer.bias, start), layer.out, layer.inp)

        return start, tuple(shifted(layer) for layer in self.layers[first + 1 :])

    def _shared_image_logits(self, models: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """K image models' logits [K, n, C] for the same images ``x``, forward only (scoring coalitions).

        The values of :meth:`batched_logits` (the oracle in tests/test_layer_stack.py) by a cheaper road:
        what precedes the first convolution runs once on ``x``; the first convolution is one batched
        matmul of ``x``'s patches with the K models' kernels (:meth:`_Conv.forward_shared`); max-pools keep
        values only (:meth:`_MaxPool.values`) and go before a ReLU that precedes them (max commutes with
        the monotone ReLU: size**2 times fewer values to clamp), which then clamps in place.
        """
        k, first = len(models), self.first_weighted
        h = x
        for layer in self.layers[:first]:  # weightless and shared by the K models; never in place on x
            h, _ = layer.forward(None, h, 1)
        conv = self.layers[first]
        assert isinstance(conv, _Conv)  # coalition_logits sends only stacks whose first weights are a Conv
        h = conv.forward_shared(conv.bind(models, k), h, k)
        for layer in _pools_first(self.layers[first + 1 :]):
            if isinstance(layer, _MaxPool):
                h = layer.values(h)
            elif isinstance(layer, _ReLU):
                h = h.relu_()  # every tensor past the first convolution is this call's own
            else:
                h, _ = layer.forward(layer.bind(models, k), h, k)
        return h.view(k, len(x), -1)

    def loss_and_grad(
        self,
        params: torch.Tensor | list[Bound],
        x: torch.Tensor,
        y: torch.Tensor,
        weight: torch.Tensor,
        out: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-model loss sum_i weight[k, i] * CE_i and its gradient [K, P] with respect to the parameters.

        ``params`` is [K, P], or [P] when all K models hold the same weights, or what bind() made of
        either; ``x`` is [K, b, ...], ``y`` [K, b] and ``weight`` [K, b] (zero on padding, so each loss
        is the model's own batch mean). ``out``: a [K, P] tensor to write the gradient into (the
        engine reuses one across steps; writing each layer's gradient straight into its columns was
        measured slower: batched matmuls into strided outputs loop over the batch).
        """
        k, b = y.shape
        bound = self.bind(params, k) if isinstance(params, torch.Tensor) else params
        layers = self.layers
        # Image stacks start slot-major (row j * K + k is model k's j-th sample): one grouped convolution.
        h = x.transpose(0, 1).reshape(k * b, *x.shape[2:]) if self.sample_dims == 3 else x
        saved = []
        for layer, w in zip(layers, bound):
            h, s = layer.forward(w, h, k)
            saved.append(s)
        # Logits are model-major [K, b, C]: each model's loss is a sum over its own contiguous row,
        # in the same order for any K (the batched matmuls still round by shape; see training.py).
        yi = y.unsqueeze(2)
        logp = log_softmax(h)
        loss = torch.mul(logp.gather(2, yi).view(k, b), weight).sum(1).neg_()
        d = logp.exp_()  # d loss / d logits = (softmax - onehot) * w
        d = d.scatter_add_(2, yi, torch.full((k, b, 1), -1.0, device=d.device)).mul_(weight.unsqueeze(2))
        grads: list[torch.Tensor] = []
        first = self.first_weighted
        for i in range(len(layers) - 1, first - 1, -1):
            # Below the first weighted layer nothing needs a gradient: skip its input gradient.
            d, g = layers[i].backward(bound[i], d, saved[i], k, need_dx=i > first)
            grads = g + grads
        return loss, torch.cat(grads, dim=1, out=out)


def log_softmax(h: torch.Tensor) -> torch.Tensor:
    """``torch.log_softmax(h, dim=-1)``, contiguous; for fewer classes than :data:`_NARROW` by the dim-0 kernel.

    Why: torch's last-dim kernel is slow on rows narrower than a vector register (10 digit classes:
    50 us for 10 models x 32 samples, 480 us at 100 models, 1 thread), while the same reduction along
    the first dim of the transposed rows takes 6 and 59 us. For 10 classes both kernels give the same
    bits in every shape tested, for other widths they agree within a few float32 ulps
    (tests/test_layer_stack.py); from 16 classes the last-dim kernel is faster.
    """
    c = h.shape[-1]
    if c >= _NARROW:
        return torch.log_softmax(h, dim=-1)
    return torch.log_softmax(h.reshape(-1, c).T, dim=0).T.contiguous().view(h.shape)


def _minus(s: slice, offset: int) -> slice:
    return slice(s.start - offset, s.stop - offset)


def _pools_first(layers: tuple[Layer, ...]) -> list[Layer]:
    """``layers`` with each ReLU that directly precedes a MaxPool moved after it (the same values)."""
    out = list(layers)
    for i in range(len(out) - 1):
        if isinstance(out[i], _ReLU) and isinstance(out[i + 1], _MaxPool):
            out[i], out[i + 1] = out[i + 1], out[i]
    return out


def _flat_sequential(seq: nn.Sequential, prefix: str) -> Iterator[tuple[str, nn.Module]]:
    for name, m in seq.named_children():
        if type(m) is nn.Sequential:
            yield from _flat_sequential(m, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", m


def _layer(name: str, m: nn.Module, offsets: dict[str, slice]) -> Layer | None:
    """The closed-form layer for module ``m``, or None if it is not one this file can differentiate."""
    if type(m) is nn.ReLU and not m.inplace:
        return _ReLU()
    if type(m) is nn.Flatten and (m.start_dim, m.end_dim) == (1, -1):
        return _Flatten(from_slots=False)  # LayerStack.of sets it for image stacks
    if (
        type(m) is nn.MaxPool2d
        and isinstance(m.kernel_size, int)
        and m.stride == m.kernel_size
        and m.padding == 0
        and m.dilation == 1
        and not m.ceil_mode
        and not m.return_indices
    ):
        return _MaxPool(m.kernel_size)
    if f"{name}.weight" not in offsets or f"{name}.bias" not in offsets:
        return None
    w, b = offsets[f"{name}.weight"], offsets[f"{name}.bias"]
    if type(m) is nn.Linear:
        return _Linear(w, b, m.out_features, m.in_features)
    if (
        type(m) is nn.Conv2d
        and m.stride == (1, 1)
        and m.dilation == (1, 1)
        and m.groups == 1
        and m.padding_mode == "zeros"
        and isinstance(m.padding, tuple)
    ):
        return _Conv(w, b, m.out_channels, m.in_channels, m.kernel_size, m.padding)
    return None
