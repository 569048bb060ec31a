"""FedAvg: McMahan et al., "Communication-Efficient Learning of Deep Networks from
Decentralized Data", AISTATS 2017. The new model is the sample-weighted mean of the
clients' models, i.e. w + Sum_k (n_k / n) delta_k."""

from __future__ import annotations

import functools

import torch

from .. import checks
from .aggregate import average
from .base import Strategy


class FedAvg(Strategy):
    """Sample-weighted model averaging (Algorithm 1, server learning rate 1).

    Parameters
    ----------
    weighted : bool
        Weight each update by its sample count (the paper); False gives the plain mean.
    """

    name = "fedavg"

    def __init__(self, *, weighted: bool = True) -> None:
        self.weighted = checks.boolean("strategy_options.weighted", weighted)
        if not weighted:
            self.name = "mean"

    def aggregate(self, global_weights: torch.Tensor, deltas: torch.Tensor, num_samples: torch.Tensor) -> torch.Tensor:
        return average(deltas, num_samples, weighted=self.weighted, base=global_weights)


# Registry names this module provides (found by strategies/__init__.py; no other file lists them).
NAMES = {"fedavg": FedAvg, "mean": functools.partial(FedAvg, weighted=False)}
