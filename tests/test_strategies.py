"""Aggregation against the paper formula, computed directly in numpy."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hypergpu_lab.errors import ConfigError
from hypergpu_lab.strategies import FedAvg, Strategy, get_strategy
from hypergpu_lab.strategies.aggregate import weighted_mean


@pytest.mark.parametrize("k, p", [(1, 5), (3, 17), (10, 1000), (100, 257)])
def test_fedavg_matches_mcmahan_formula(k: int, p: int) -> None:
    # Prepare
    rng = np.random.default_rng(k * 1000 + p)
    w = rng.normal(size=p).astype(np.float32)
    deltas = rng.normal(size=(k, p)).astype(np.float32)
    n = rng.integers(1, 500, size=k)

    # Execute
    new = FedAvg().aggregate(torch.from_numpy(w), torch.from_numpy(deltas), torch.from_numpy(n))

    # Assert: w_{t+1} = sum_k n_k/n * w_k with w_k = w + delta_k   (McMahan et al. 2017, Algorithm 1)
    client_models = w[None, :].astype(np.float64) + deltas
    expected = (n[:, None] / n.sum() * client_models).sum(0)
    np.testing.assert_allclose(new.numpy(), expected, atol=1e-6, rtol=0)
    assert new.dtype == torch.float32


def test_weighted_mean_is_order_independent_and_equal_weights_give_plain_mean() -> None:
    x = torch.randn(7, 33)
    w = torch.arange(1, 8, dtype=torch.float64)
    perm = torch.randperm(7)
    torch.testing.assert_close(weighted_mean(x, w), weighted_mean(x[perm], w[perm]), atol=1e-7, rtol=0)
    torch.testing.assert_close(weighted_mean(x, torch.ones(7)), x.mean(0), atol=1e-6, rtol=0)


def test_get_strategy() -> None:
    assert isinstance(get_strategy("fedavg"), FedAvg)
    mine = FedAvg()
    assert get_strategy(mine) is mine
    with pytest.raises(ConfigError, match="strategy.*fedavg"):
        get_strategy("fedsgd")
    assert issubclass(FedAvg, Strategy) and FedAvg().state_dict() == {}
