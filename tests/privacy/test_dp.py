"""DP-FedAvg (McMahan et al. 2018), adaptive clipping (Andrew et al. 2021) and local DP, against numpy."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from hypergpu_lab.config import TrainConfig
from hypergpu_lab.errors import ConfigError
from hypergpu_lab.privacy import PrivacyPipeline, dp, parse
from hypergpu_lab.privacy.pipeline import DP_TAG, LOCAL_TAG
from hypergpu_lab.streams import stream
from hypergpu_lab.training import LocalResult

SEED = 11


def _pipeline(size: int, k: int = 5, nodes: int = 20, **options) -> PrivacyPipeline:
    return PrivacyPipeline(parse(options), seed=SEED, num_nodes=nodes, expected_clients=k, size=size)


def _round(number: int, k: int, applied: int) -> SimpleNamespace:
    msgs = [(SimpleNamespace(node=i, result=SimpleNamespace(num_samples=10)), 1.0) for i in range(applied)]
    return SimpleNamespace(number=number, plan=SimpleNamespace(nodes=tuple(range(k))), applied=msgs, notes=())


def _numpy_clip(rows: np.ndarray, c: float) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows * np.minimum(1.0, c / np.maximum(norms, 1e-30))


@pytest.mark.parametrize("z, clip", [(0.0, 0.5), (1.0, 0.5), (2.0, 3.0)])
def test_central_dp_fedavg_matches_the_paper_formula_in_numpy(z: float, clip: float) -> None:
    # Prepare
    rng = np.random.default_rng(0)
    k, p = 5, 301
    deltas = rng.normal(size=(4, p)).astype(np.float32) * rng.uniform(0.1, 3, size=(4, 1)).astype(np.float32)
    pipe = _pipeline(p, k, mode="central", noise_multiplier=z, clip=clip)

    # Execute
    rows, weights = pipe.aggregate_input(_round(3, k, 4), torch.from_numpy(deltas), torch.ones(4), network=None)

    # Assert: (sum_k clip(delta_k) + N(0, z^2 C^2)) / K, one row of weight 1 (the fixed denominator K = 5)
    noise = stream(SEED, DP_TAG, 3, 0).standard_normal(p)
    expected = (_numpy_clip(deltas.astype(np.float64), clip).sum(0) + z * clip * noise) / k
    np.testing.assert_allclose(rows[0].numpy(), expected, rtol=1e-5, atol=1e-6)
    assert weights.tolist() == [1.0]


def test_clipping_bounds_every_contribution() -> None:
    rng = np.random.default_rng(1)
    deltas = torch.from_numpy(rng.normal(size=(50, 40)) * rng.uniform(0, 10, size=(50, 1)))
    from hypergpu_lab.privacy.dp import clip_rows

    clipped, norms = clip_rows(deltas, 2.0)

    assert float(torch.linalg.vector_norm(clipped, dim=1).max()) <= 2.0 + 1e-9
    small = norms <= 2.0
    assert torch.equal(clipped[small], deltas[small])  # updates within the bound pass unchanged


def test_noise_has_the_stated_standard_deviation() -> None:
    # Prepare: zero updates, so the released mean is the noise alone: std z * C / K per coordinate
    k, p, z, clip = 4, 200_000, 1.5, 0.8
    pipe = _pipeline(p, k, mode="central", noise_multiplier=z, clip=clip)

    # Execute
    rows, _ = pipe.aggregate_input(_round(1, k, 2), torch.zeros(2, p), torch.ones(2), network=None)

    # Assert: sample std within 1% (standard error of the std at n = 2e5 is 0.16%), mean near 0
    sample = rows[0].numpy().astype(np.float64)
    assert abs(sample.std() / (z * clip / k) - 1) < 0.01
    assert abs(sample.mean()) < 5 * z * clip / k / math.sqrt(p)


def test_adaptive_clipping_follows_andrew_et_al() -> None:
    # Prepare: 6 updates of norms 0.5 .. 3, clip 1: two within the bound
    k, p, z, sigma_b, gamma, eta = 6, 50, 1.0, 2.0, 0.5, 0.2
    norms = np.array([0.5, 0.9, 1.5, 2.0, 2.5, 3.0])
    rng = np.random.default_rng(2)
    directions = rng.normal(size=(k, p))
    deltas = directions / np.linalg.norm(directions, axis=1, keepdims=True) * norms[:, None]
    pipe = _pipeline(
        p,
        k,
        mode="central",
        noise_multiplier=z,
        clip=1.0,
        adaptive_quantile=gamma,
        clip_lr=eta,
        clip_count_stddev=sigma_b,
    )

    # Execute
    rows, _ = pipe.aggregate_input(_round(4, k, k), torch.from_numpy(deltas), torch.ones(k), network=None)

    # Assert: z_delta = (z^-2 - (2 sigma_b)^-2)^-1/2 on the updates; C <- C exp(-eta (b~ - gamma)),
    # b~ = (sum (b_k - 1/2) + N(0, sigma_b^2)) / K + 1/2 (centred bits: sensitivity 1/2)
    z_delta = (z**-2 - (2 * sigma_b) ** -2) ** -0.5
    noise = stream(SEED, DP_TAG, 4, 0).standard_normal(p)
    expected = (_numpy_clip(deltas, 1.0).sum(0) + z_delta * 1.0 * noise) / k
    np.testing.assert_allclose(rows[0].numpy(), expected, rtol=1e-5, atol=1e-6)
    count_noise = stream(SEED, DP_TAG, 4, 1).standard_normal() * sigma_b
    assert pipe.clip == pytest.approx(math.exp(-eta * ((2 - k / 2 + count_noise) / k + 0.5 - gamma)))


def test_local_dp_noises_the_clipped_update_on_the_node() -> None:
    p, z, clip = 100_000, 2.0, 0.5
    pipe = _pipeline(p, mode="local", noise_multiplier=z, clip=clip)
    delta = torch.ones(p) * 0.1  # norm 31.6: clipped to 0.5
    rnd = SimpleNamespace(number=2, results={7: LocalResult(7, delta, 10, 0.0, 1, 31.6)}, notes=())

    pipe.on_nodes(rnd)

    noised = rnd.results[7].delta.numpy().astype(np.float64)
    clipped = 0.1 * clip / math.sqrt(p * 0.01)
    expected_noise = stream(SEED, LOCAL_TAG, 2, 7).standard_normal(p) * z * clip
    np.testing.assert_allclose(noised, clipped + expected_noise, rtol=1e-5, atol=1e-6)
    assert abs((noised - clipped).std() / (z * clip) - 1) < 0.01
    assert pipe.releases == {7: 1}


@pytest.mark.parametrize(
    "privacy, field",
    [
        ({"mode": "global"}, "train.privacy.mode"),
        ({"mode": "central", "noise_multiplier": -1}, "train.privacy.noise_multiplier"),
        ({"mode": "central", "clip": 0}, "train.privacy.clip"),
        ({"mode": "central", "adaptive_quantile": 1.0}, "train.privacy.adaptive_quantile"),
        ({"mode": "central", "delta": 1.0}, "train.privacy.delta"),
        ({"budget": 3.0}, "train.privacy.budget"),
        ({"secagg": "yes"}, "train.privacy.secagg"),
        ({"secagg": True, "secagg_bits": 16}, "train.privacy.secagg_bits"),
        ({"noise": 1.0}, "train.privacy.noise"),
        ("central", "train.privacy"),
    ],
)
def test_bad_privacy_options_name_their_field(privacy, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        TrainConfig(privacy=privacy)
    assert err.value.field == field


def test_adaptive_count_noise_that_would_use_the_whole_budget_is_refused() -> None:
    from hypergpu_lab.config import check_against_pool

    cfg = TrainConfig(
        privacy={"mode": "central", "noise_multiplier": 1.0, "adaptive_quantile": 0.5}, clients_per_round=10
    )
    with pytest.raises(ConfigError) as err:  # sigma_b = 10 / 20 = 0.5 = z / 2: nothing left for the updates
        check_against_pool(cfg, 20)
    assert err.value.field == "train.privacy.clip_count_stddev"


def test_the_adaptive_rule_over_many_rounds_matches_a_numpy_reference() -> None:
    # Prepare: Andrew et al.'s Algorithm 1, written directly in numpy (centred bits, geometric step)
    rng = np.random.default_rng(5)
    k, gamma, eta, sigma_b, z = 20, 0.5, 0.2, 1.5, 1.0
    norms = rng.lognormal(0.0, 0.5, size=(30, k))
    noise = rng.normal(size=30) * sigma_b

    c_ref, c_lab = 0.1, 0.1
    for t in range(30):
        b = (norms[t] <= c_ref).astype(np.float64)
        c_ref = c_ref * np.exp(-eta * ((np.sum(b - 0.5) + noise[t]) / k + 0.5 - gamma))
        c_lab = dp.adapt_clip(c_lab, int((norms[t] <= c_lab).sum()), k, float(noise[t]), k, gamma, eta)

        assert c_lab == pytest.approx(c_ref, rel=1e-12)
    # the bound reaches the median of the norms (1.0): within a few noisy steps of it
    assert 0.7 < c_lab < 1.4
    # the split of the multiplier: updates and count together are a Gaussian mechanism of multiplier z
    z_delta = dp.update_noise_multiplier(z, sigma_b)
    assert (z_delta**-2 + (2 * sigma_b) ** -2) ** -0.5 == pytest.approx(z)
