"""Closed-form batched gradients for layer stacks against autograd on each model alone."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hypergpu_lab.layer_stack import LayerStack, log_softmax
from hypergpu_lab.models import ParamLayout, build_model
from hypergpu_lab.training import SGDConfig, Trainer


def _autograd(
    model: nn.Module, layout: ParamLayout, flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One model: load ``flat``, sum_i weight_i * CE_i, backward, gradient in layout order."""
    layout.load_into(model, flat)
    model.zero_grad(set_to_none=True)
    loss = (nn.functional.cross_entropy(model(x), y, reduction="none") * weight).sum()
    loss.backward()
    grads = dict(model.named_parameters())
    return loss.detach(), torch.cat([grads[n].grad.reshape(-1) for n in layout.names])


@pytest.mark.parametrize(
    "model, shape",
    [
        (build_model("mlp", (1, 8, 8), 10, seed=1), (1, 8, 8)),
        (build_model("cnn", (1, 8, 8), 10, seed=1), (1, 8, 8)),
        (build_model("cnn", (3, 12, 12), 10, seed=1), (3, 12, 12)),
        (nn.Sequential(nn.Flatten(), nn.Linear(12, 10)), (12,)),
        (nn.Sequential(nn.Linear(12, 7), nn.ReLU(), nn.Linear(7, 5), nn.ReLU(), nn.Linear(5, 3)), (12,)),
        (
            nn.Sequential(
                nn.Sequential(nn.Conv2d(2, 4, (3, 5), padding=(1, 2)), nn.ReLU(), nn.MaxPool2d(3)),
                nn.Conv2d(4, 3, 1),
                nn.Flatten(),
                nn.Linear(12, 5),
            ),
            (2, 6, 6),
        ),
    ],
    ids=["zoo-mlp", "zoo-cnn", "zoo-cnn-rgb", "logistic", "sequential-3", "nested-conv"],
)
@pytest.mark.parametrize("shared", [False, True], ids=["own-weights", "shared-weights"])
def test_gradients_equal_autograd_model_by_model(model: nn.Module, shape: tuple[int, ...], shared: bool) -> None:
    # Prepare: K models with different weights (or all the same one), a padded batch (weight 0 on padding).
    layout = ParamLayout.of(model)
    stack = LayerStack.of(model, layout)
    assert stack is not None
    gen = torch.Generator().manual_seed(0)
    k, b = 4, 6
    classes = stack.layers[-1].out
    base = layout.flatten(model)
    params = base + 0.1 * torch.randn(k, layout.size, generator=gen)
    x = torch.randn(k, b, *shape, generator=gen)
    y = torch.randint(0, classes, (k, b), generator=gen)
    mask = torch.ones(k, b)
    mask[1, 4:] = 0
    mask[3, 1:] = 0
    weight = mask / mask.sum(1, keepdim=True)

    # Execute
    loss, grad = stack.loss_and_grad(base if shared else params, x, y, weight)

    # Assert
    assert grad.shape == (k, layout.size)
    for i in range(k):
        ref_loss, ref_grad = _autograd(model, layout, base if shared else params[i], x[i], y[i], weight[i])
        torch.testing.assert_close(loss[i], ref_loss, atol=1e-6, rtol=0)
        torch.testing.assert_close(grad[i], ref_grad, atol=1e-6, rtol=1e-5)


class _Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x + 1)


@pytest.mark.parametrize(
    "model",
    [
        nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2)),
        nn.Sequential(nn.Linear(4, 4), nn.ReLU()),
        nn.Sequential(nn.Linear(4, 4, bias=False), nn.ReLU(), nn.Linear(4, 2)),
        nn.Sequential(nn.Linear(4, 4), nn.ReLU(inplace=True), nn.Linear(4, 2)),
        nn.Sequential(nn.Conv2d(1, 2, 3, stride=2), nn.Flatten(), nn.Linear(8, 2)),
        nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2, stride=1), nn.Flatten(), nn.Linear(8, 2)),
        nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 2)),
        _Residual(),
    ],
    ids=[
        "tanh",
        "ends-in-relu",
        "no-bias",
        "inplace-relu",
        "strided-conv",
        "overlapping-pool",
        "batchnorm",
        "custom-forward",
    ],
)
def test_anything_else_is_left_to_vmap(model: nn.Module) -> None:
    assert LayerStack.of(model, ParamLayout.of(model)) is None
    assert Trainer(model, SGDConfig(), vectorise=None).engine in ("vmap", "loop")


def test_trainer_names_its_engine() -> None:
    mlp = build_model("mlp", (1, 8, 8), 10)
    assert Trainer(mlp, SGDConfig()).engine == "layer-stack"
    assert Trainer(build_model("cnn", (1, 8, 8), 10), SGDConfig()).engine == "layer-stack"
    assert Trainer(mlp, SGDConfig(), vectorise=False).engine == "loop"


@pytest.mark.parametrize(
    "model",
    [
        nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 4), nn.Conv2d(4, 2, 1)),
        nn.Sequential(nn.Conv2d(1, 2, 3), nn.Linear(2, 2), nn.Flatten(), nn.Linear(8, 2)),
        nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Linear(2, 2)),
        nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Flatten(), nn.Linear(8, 2)),
    ],
    ids=["conv-after-linear", "linear-on-images", "no-flatten", "two-flattens"],
)
def test_image_chains_need_convs_then_one_flatten_then_linears(model: nn.Module) -> None:
    # Assert: anything else would need a layout change this file does not make; vmap trains it instead.
    assert LayerStack.of(model, ParamLayout.of(model)) is None


def test_a_chain_opening_with_linear_takes_only_flat_samples() -> None:
    # Prepare
    flat = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2))
    images = build_model("cnn", (1, 8, 8), 10)
    flattening = build_model("mlp", (1, 8, 8), 10)
    # Execute
    stacks = [LayerStack.of(m, ParamLayout.of(m)) for m in (flat, images, flattening)]
    # Assert: a Linear applied to images acts on their last axis, which the closed form does not model.
    assert [s.accepts(torch.Size(shape)) for s in stacks for shape in ((8,), (1, 8, 8))] == [
        True,
        False,
        False,
        True,
        True,
        True,
    ]


def test_samples_the_stack_does_not_take_fail_as_they_do_in_the_loop() -> None:
    # Prepare: a Linear-first chain fed [2, 3] samples. Its logits are [b, 2, 2], which cross-entropy
    # cannot pair with one label per sample; the stack must not train on them silently.
    from hypergpu_lab.training import Job

    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    jobs = [Job(i, torch.randn(5, 2, 3), torch.randint(0, 2, (5,)), 5, i) for i in range(3)]
    start = ParamLayout.of(model).flatten(model)
    # Execute and assert
    for vectorise in (True, False):
        with pytest.raises((RuntimeError, ValueError)):
            Trainer(model, SGDConfig(lr=0.1), vectorise=vectorise).train(start, jobs)


@pytest.mark.parametrize(
    "model, shape",
    [
        (build_model("mlp", (1, 8, 8), 10, seed=1), (1, 8, 8)),
        (build_model("cnn", (1, 8, 8), 10, seed=1), (1, 8, 8)),
        (build_model("cnn", (3, 12, 12), 10, seed=1), (3, 12, 12)),
        (  # a ragged pool (7 -> 2, edge dropped), a pool before the first conv, ReLU after a pool
            nn.Sequential(
                nn.MaxPool2d(1),
                nn.Conv2d(2, 4, (3, 5), padding=(1, 2)),
                nn.ReLU(),
                nn.MaxPool2d(3),
                nn.ReLU(),
                nn.Conv2d(4, 3, 1),
                nn.Flatten(),
                nn.Linear(12, 5),
            ),
            (2, 7, 7),
        ),
        (nn.Sequential(nn.MaxPool2d(2), nn.Flatten(), nn.Linear(9, 3)), (1, 6, 6)),
        (nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Flatten(), nn.Linear(6, 4), nn.Linear(4, 3)), (5,)),
        (nn.Sequential(nn.Flatten(), nn.Linear(12, 3)), (3, 4)),
    ],
    ids=["zoo-mlp", "zoo-cnn", "zoo-cnn-rgb", "ragged-pool", "pool-into-linear", "linear-first", "one-linear"],
)
@pytest.mark.parametrize("k", [1, 3, 20])
def test_coalition_logits_equal_the_coalition_models_forward(model: nn.Module, shape: tuple[int, ...], k: int) -> None:
    # Prepare: N updates and K coalitions' coefficients, among them all zeros (the origin), a single
    # update at 1, the full FedAvg mean and random weights; the oracle builds each model's weights.
    layout = ParamLayout.of(model)
    stack = LayerStack.of(model, layout)
    assert stack is not None
    gen = torch.Generator().manual_seed(k)
    n_updates, rows = 10, 37
    origin = layout.flatten(model)
    deltas = 0.1 * torch.randn(n_updates, layout.size, generator=gen)
    coeff = torch.rand(k, n_updates, generator=gen) * (torch.rand(k, n_updates, generator=gen) < 0.5)
    coeff = coeff / coeff.sum(1, keepdim=True).clamp(min=1e-12)
    if k > 1:
        coeff[0], coeff[1], coeff[2] = 0.0, torch.eye(n_updates)[3], 1.0 / n_updates
    x = torch.randn(rows, *shape, generator=gen)
    before = x.clone()
    # Execute
    with torch.no_grad():
        got = stack.coalition_logits(origin, deltas, coeff, x)
        expected = stack.batched_logits(torch.addmm(origin.unsqueeze(0), coeff, deltas), x)
        one_by_one = torch.stack([stack.logits(origin + c @ deltas, x) for c in coeff])
    # Assert: the same logits up to summation order; x untouched (the path clamps in place after the first layer).
    assert got.shape == (k, rows, stack.layers[-1].out)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got, one_by_one, rtol=1e-5, atol=1e-5)
    assert torch.equal(x, before)


@pytest.mark.parametrize("size, shape", [(2, (5, 3, 8, 8)), (3, (4, 2, 7, 11)), (1, (2, 1, 3, 3))])
def test_pool_values_are_max_pool2d_values(size: int, shape: tuple[int, ...]) -> None:
    # Prepare: ties (rounded values) and a NaN, which F.max_pool2d propagates.
    from hypergpu_lab.layer_stack import _MaxPool

    h = torch.round(torch.randn(shape, generator=torch.Generator().manual_seed(size)) * 2) / 2
    h[0, 0, 0, 0] = float("nan")
    # Execute and assert: the same values, bit for bit, NaN included.
    expected = torch.nn.functional.max_pool2d(h, size)
    assert torch.equal(_MaxPool(size).values(h).nan_to_num(7.0), expected.nan_to_num(7.0))


@pytest.mark.parametrize("classes", [1, 2, 7, 10, 13, 15, 16, 62])
def test_log_softmax_matches_torchs_last_dim_kernel(classes: int) -> None:
    # The narrow-class path runs the dim-0 kernel on transposed logits: the same values (bit for bit at
    # 10 classes, the digits and CIFAR case), contiguous, for every batch shape the engine makes.
    torch.manual_seed(classes)
    for shape in [(1, 1), (1, 7), (10, 32), (100, 32), (1000, 2), (20, 180)]:
        h = torch.randn(*shape, classes) * 7
        got, want = log_softmax(h), torch.log_softmax(h, dim=-1)
        assert got.is_contiguous() and got.shape == want.shape
        if classes == 10:
            assert torch.equal(got, want)
        else:
            torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
