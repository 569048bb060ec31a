"""FedAdagrad, FedAdam, FedYogi: Reddi et al., "Adaptive Federated Optimization", ICLR 2021
(Algorithm 2). The averaged update is a pseudo-gradient for an adaptive server optimiser:
m = b1 m + (1 - b1) D; v by the rule; w = w + eta m / (sqrt(v) + tau); m0 = 0, v0 = tau^2.
As in the paper there is no bias correction. Defaults are the paper's (eta 1e-2, b1 0.9,
b2 0.99, tau 1e-3); eta and tau are the ones the paper tunes per task."""

from __future__ import annotations

from typing import Any

import torch

from .. import checks
from .aggregate import average, fedopt_step
from .base import Strategy, state_keys


class FedOpt(Strategy):
    """Adaptive server optimiser over the averaged update; subclasses name the second-moment rule.

    Parameters
    ----------
    eta : float
        Server learning rate, > 0.
    beta1, beta2 : float
        First- and second-moment decay in [0, 1) (FedAdagrad has no beta2).
    tau : float
        Adaptivity: added to sqrt(v), > 0; v starts at tau^2.
    weighted : bool
        Sample-weighted mean of the updates (True) or plain mean (the paper's Algorithm 2).
    """

    rule = "adam"

    def __init__(
        self, *, eta: float = 1e-2, beta1: float = 0.9, beta2: float = 0.99, tau: float = 1e-3, weighted: bool = True
    ) -> None:
        self.eta = checks.number("strategy_options.eta", eta, 0.0, open_low=True)
        self.beta1 = checks.number("strategy_options.beta1", beta1, 0.0, 1.0, open_high=True)
        self.beta2 = checks.number("strategy_options.beta2", beta2, 0.0, 1.0, open_high=True)
        self.tau = checks.number("strategy_options.tau", tau, 0.0, open_low=True)
        self.weighted = checks.boolean("strategy_options.weighted", weighted)
        self.m: torch.Tensor | None = None  # float64 [P]; created on the first round
        self.v: torch.Tensor | None = None

    def aggregate(self, global_weights: torch.Tensor, deltas: torch.Tensor, num_samples: torch.Tensor) -> torch.Tensor:
        if self.m is None or self.v is None:
            self.m = torch.zeros(global_weights.shape, dtype=torch.float64)
            self.v = torch.full(global_weights.shape, self.tau**2, dtype=torch.float64)
        w, self.m, self.v = fedopt_step(
            global_weights,
            average(deltas, num_samples, weighted=self.weighted),
            self.m,
            self.v,
            rule=self.rule,
            eta=self.eta,
            beta1=self.beta1,
            beta2=self.beta2,
            tau=self.tau,
        )
        return w

    def state_dict(self) -> dict[str, Any]:
        return {} if self.m is None or self.v is None else {"m": self.m.clone(), "v": self.v.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state_keys(self.name, state, ("m", "v"))
        self.m, self.v = state.get("m"), state.get("v")


class FedAdagrad(FedOpt):
    """v = v + D^2."""

    name, rule = "fedadagrad", "adagrad"

    def __init__(self, *, eta: float = 1e-2, beta1: float = 0.9, tau: float = 1e-3, weighted: bool = True) -> None:
        super().__init__(eta=eta, beta1=beta1, tau=tau, weighted=weighted)


class FedAdam(FedOpt):
    """v = b2 v + (1 - b2) D^2."""

    name, rule = "fedadam", "adam"


class FedYogi(FedOpt):
    """v = v - (1 - b2) D^2 sign(v - D^2): v moves towards D^2 by an additive, not multiplicative, step."""

    name, rule = "fedyogi", "yogi"


# Registry names this module provides (found by strategies/__init__.py; no other file lists them).
NAMES = {"fedadagrad": FedAdagrad, "fedadam": FedAdam, "fedyogi": FedYogi}
