"""A small model zoo sized for 2-core laptops, plus the bookkeeping the simulator needs.

The simulator moves a model around as one flat float32 vector (what crosses the
simulated network and what strategies aggregate), so this module also owns the
mapping between a module's state and that vector, and the per-sample FLOP and
activation-memory figures that drive simulated compute time and batch limits.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .errors import ConfigError

log = logging.getLogger(__name__)

MODELS: tuple[str, ...] = ("mlp", "cnn")


class MLP(nn.Module):
    """Fully connected network; the 64-32-10 shape is the benchmark's reference model."""

    def __init__(self, input_shape: Sequence[int], num_classes: int, hidden: Sequence[int] = (64, 32)) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CNN(nn.Module):
    """Two conv blocks and a classifier, after McMahan et al.'s CNN but narrower for CPUs."""

    def __init__(
        self, input_shape: Sequence[int], num_classes: int, channels: Sequence[int] = (16, 32), hidden: int = 64
    ) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ConfigError(
                "model",
                "cnn",
                "an image dataset (digits, mnist, fashion-mnist, cifar10)",
                hint=f"input shape {tuple(input_shape)} is not [C, H, W]; use model='mlp'",
            )
        c, h, w = input_shape
        blocks: list[nn.Module] = []
        for out in channels:
            blocks += [nn.Conv2d(c, out, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            c, h, w = out, h // 2, w // 2
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(c * h * w, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def build_model(model: str | nn.Module, input_shape: Sequence[int], num_classes: int, *, seed: int = 0) -> nn.Module:
    """Build a zoo model with seeded initial weights, or accept any ``nn.Module`` as is.

    Initialisation runs under a forked RNG so that it never disturbs the caller's
    global torch random state.
    """
    if isinstance(model, nn.Module):
        dtypes = sorted(
            {str(t.dtype) for t in model.state_dict().values() if t.is_floating_point()} - {"torch.float32"}
        )
        if dtypes:
            # The flat weight vector, aggregation, update hashes and checkpoints are float32; a float64
            # module used to fail inside measure_cost ("mat1 and mat2 must have the same dtype").
            raise ConfigError(
                "model",
                f"{type(model).__name__} with {', '.join(dtypes)} tensors",
                "a module whose floating-point parameters and buffers are float32",
                hint="pass model.float(); the lab trains in float32",
            )
        return model
    builders: dict[str, Callable[[], nn.Module]] = {
        "mlp": lambda: MLP(input_shape, num_classes),
        "cnn": lambda: CNN(input_shape, num_classes),
    }
    if model not in builders:
        raise ConfigError("model", model, "one of " + ", ".join(MODELS) + " or a torch.nn.Module")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return builders[model]()


@dataclass(frozen=True)
class ParamLayout:
    """Where each floating-point state entry of a module lives in the flat vector."""

    names: tuple[str, ...]
    shapes: tuple[torch.Size, ...]
    numels: tuple[int, ...]
    param_names: frozenset[str]

    @classmethod
    def of(cls, module: nn.Module) -> ParamLayout:
        state = module.state_dict()
        names = tuple(k for k, v in state.items() if v.is_floating_point())
        return cls(
            names=names,
            shapes=tuple(state[k].shape for k in names),
            numels=tuple(state[k].numel() for k in names),
            param_names=frozenset(n for n, _ in module.named_parameters()),
        )

    @property
    def size(self) -> int:
        return sum(self.numels)

    @property
    def nbytes(self) -> int:
        """Bytes on the wire for one model or one update (float32)."""
        return 4 * self.size

    def flatten(self, module: nn.Module) -> torch.Tensor:
        state = module.state_dict()
        return torch.cat([state[n].detach().reshape(-1).float() for n in self.names])

    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Views of ``flat`` ([P] or stacked [K, P]) shaped like the module's state entries."""
        lead = flat.shape[:-1]
        pieces = torch.split(flat, self.numels, dim=-1)
        return {n: p.reshape(*lead, *s) for n, p, s in zip(self.names, pieces, self.shapes)}

    def load_into(self, module: nn.Module, flat: torch.Tensor) -> None:
        """Copy a flat vector into the module's state (integer buffers are left as they are)."""
        with torch.no_grad():
            state = module.state_dict()
            for name, value in self.unflatten(flat).items():
                state[name].copy_(value)


@dataclass(frozen=True)
class ModelCost:
    """Per-sample figures that turn a batch into simulated seconds and bytes of GPU memory."""

    train_flops_per_sample: float
    activation_bytes_per_sample: float
    param_bytes: int


def measure_cost(module: nn.Module, input_shape: Sequence[int], num_classes: int) -> ModelCost:
    """Training FLOPs per sample (forward + backward) and activation bytes per sample.

    Linear and Conv2d layers are counted directly from their shapes, as torch's
    FLOP counter counts them: forward 2*MACs, weight gradient 2*MACs, input
    gradient 2*MACs unless the layer reads the raw input. Other layers with
    parameters fall back to ``torch.utils.flop_counter`` (slow to import, hence
    not the default). Activation memory is the bytes of every leaf module's output,
    which is what autograd keeps alive for the backward pass.
    """
    probe = _clone(module)
    counted = (nn.Linear, nn.Conv2d)
    leaves = [m for m in probe.modules() if not list(m.children())]
    direct = all(isinstance(m, counted) or not list(m.parameters(recurse=False)) for m in leaves)
    flops = [0.0]
    outputs: list[int] = []

    def hook(m: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        outputs.append(out.numel())
        if isinstance(m, nn.Linear):
            macs = out.numel() * m.in_features
        elif isinstance(m, nn.Conv2d):
            macs = out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        else:
            return
        flops[0] += 2 * macs * (2 + int(inputs[0].requires_grad))

    hooks = [m.register_forward_hook(hook) for m in leaves]
    x = torch.zeros(2, *input_shape)
    y = torch.zeros(2, dtype=torch.long)
    if direct:
        nn.functional.cross_entropy(probe(x), y).backward()
        total = flops[0]
    else:
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with counter:
            nn.functional.cross_entropy(probe(x), y).backward()
        total = float(counter.get_total_flops())
    for h in hooks:
        h.remove()
    per_sample = total / 2
    if per_sample == 0:  # modules nobody can count: fall back to 6 x params per sample
        per_sample = 6.0 * sum(p.numel() for p in probe.parameters())
    return ModelCost(
        train_flops_per_sample=float(per_sample),
        activation_bytes_per_sample=4.0 * sum(outputs) / 2,
        param_bytes=4 * sum(p.numel() for p in probe.parameters()),
    )


def _clone(module: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(module)
