"""Closed-form batched gradients for Linear/ReLU stacks against autograd on each model alone."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from hypergpu_lab.linear_stack import LinearStack
from hypergpu_lab.models import ParamLayout, build_model
from hypergpu_lab.training import SGDConfig, Trainer


def _autograd(model: nn.Module, layout: ParamLayout, flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
              weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One model: load ``flat``, sum_i weight_i * CE_i, backward, gradient in layout order."""
    layout.load_into(model, flat)
    model.zero_grad(set_to_none=True)
    loss = (nn.functional.cross_entropy(model(x), y, reduction="none") * weight).sum()
    loss.backward()
    grads = dict(model.named_parameters())
    return loss.detach(), torch.cat([grads[n].grad.reshape(-1) for n in layout.names])


@pytest.mark.parametrize("model", [
    build_model("mlp", (1, 8, 8), 10, seed=1),
    nn.Sequential(nn.Flatten(), nn.Linear(12, 10)),
    nn.Sequential(nn.Linear(12, 7), nn.ReLU(), nn.Linear(7, 5), nn.ReLU(), nn.Linear(5, 3)),
], ids=["zoo-mlp", "logistic", "sequential-3"])
def test_gradients_equal_autograd_model_by_model(model: nn.Module) -> None:
    # Prepare: K models with different weights, a padded batch (weight 0 on padding).
    layout = ParamLayout.of(model)
    stack = LinearStack.of(model, layout)
    assert stack is not None
    gen = torch.Generator().manual_seed(0)
    k, b = 4, 6
    shape = (1, 8, 8) if layout.shapes[0][1] == 64 else (12,)
    classes = stack.layers[-1].out
    params = layout.flatten(model) + 0.1 * torch.randn(k, layout.size, generator=gen)
    x = torch.randn(k, b, *shape, generator=gen)
    y = torch.randint(0, classes, (k, b), generator=gen)
    mask = torch.ones(k, b)
    mask[1, 4:] = 0
    mask[3, 1:] = 0
    weight = mask / mask.sum(1, keepdim=True)

    # Execute
    loss, grad = stack.loss_and_grad(params, x, y, weight)

    # Assert
    for i in range(k):
        ref_loss, ref_grad = _autograd(model, layout, params[i], x[i], y[i], weight[i])
        torch.testing.assert_close(loss[i], ref_loss, atol=1e-6, rtol=0)
        torch.testing.assert_close(grad[i], ref_grad, atol=1e-6, rtol=1e-5)


class _Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x + 1)


@pytest.mark.parametrize("model", [
    nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2)),
    nn.Sequential(nn.Linear(4, 4), nn.ReLU()),
    nn.Sequential(nn.Linear(4, 4, bias=False), nn.ReLU(), nn.Linear(4, 2)),
    nn.Sequential(nn.Linear(4, 4), nn.ReLU(inplace=True), nn.Linear(4, 2)),
    _Residual(),
    build_model("cnn", (1, 8, 8), 10),
], ids=["tanh", "ends-in-relu", "no-bias", "inplace-relu", "custom-forward", "cnn"])
def test_anything_else_is_left_to_vmap(model: nn.Module) -> None:
    assert LinearStack.of(model, ParamLayout.of(model)) is None
    assert Trainer(model, SGDConfig()).engine == "vmap"


def test_trainer_names_its_engine() -> None:
    mlp = build_model("mlp", (1, 8, 8), 10)
    assert Trainer(mlp, SGDConfig()).engine == "linear-stack"
    assert Trainer(mlp, SGDConfig(), vectorise=False).engine == "loop"
