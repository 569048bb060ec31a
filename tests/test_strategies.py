"""Aggregation against the paper formula, computed directly in numpy."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from hypergpu_lab.config import TrainConfig
from hypergpu_lab.errors import ConfigError
from hypergpu_lab.strategies import STRATEGIES, Clipped, FedAvg, Strategy, get_strategy
from hypergpu_lab.strategies.aggregate import clip_by_norm, trimmed_mean, weighted_mean


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
    assert_within_f32_sum_bound(new.numpy(), expected, np.vstack([w, n[:, None] / n.sum() * deltas]))
    assert new.dtype == torch.float32


def assert_within_f32_sum_bound(actual: np.ndarray, expected: np.ndarray, terms: np.ndarray) -> None:
    """The mean is summed in float32: its error is within the recursive-summation bound (Higham 2002,
    eq. 4.4), |e| <= g(m) Sum_i |t_i| with g(m) = m u / (1 - m u) and u = 2^-24, for the m terms t_i,
    counting one more term for rounding the weights to float32 and one for the final rounding."""
    u, m = 2.0**-24, len(terms) + 2
    bound = m * u / (1 - m * u) * np.abs(terms).sum(0)
    err = np.abs(actual.astype(np.float64) - expected)
    assert np.all(err <= bound), (
        f"max error {err.max():.3g} over the float32 bound (worst ratio {(err / bound).max():.2f})"
    )


def test_weighted_mean_is_within_the_float32_bound_and_equal_weights_give_plain_mean() -> None:
    x = torch.randn(1000, 33, generator=torch.Generator().manual_seed(0))
    n = torch.arange(1, 1001, dtype=torch.float64)
    terms = (n / n.sum())[:, None].numpy() * x.numpy().astype(np.float64)
    assert_within_f32_sum_bound(weighted_mean(x, n).numpy(), terms.sum(0), terms)
    torch.testing.assert_close(weighted_mean(x[:7], torch.ones(7)), x[:7].mean(0), atol=1e-6, rtol=0)


def test_get_strategy() -> None:
    assert isinstance(get_strategy("fedavg"), FedAvg)
    mine = FedAvg()
    assert get_strategy(mine) is mine
    with pytest.raises(ConfigError, match="strategy.*fedavg"):
        get_strategy("fedsgd")
    assert issubclass(FedAvg, Strategy) and FedAvg().state_dict() == {}


# -- every strategy against its paper, written directly in numpy -------------------------------------------------
# The oracles below work on the clients' models w + delta_k in float64, as the papers state them; they share
# no code with hypergpu_lab.strategies.aggregate.

SHAPES = [(5, 3), (8, 64), (13, 301)]
SEEDS = [0, 1]


def _round(rng: np.random.Generator, k: int, p: int, w: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    w = rng.normal(size=p).astype(np.float32) if w is None else w
    deltas = (rng.normal(size=(k, p)) * rng.uniform(0.1, 2.0, size=(k, 1))).astype(np.float32)
    return w, deltas, rng.integers(1, 500, size=k)


def _run(strategy: Strategy, w: np.ndarray, deltas: np.ndarray, n: np.ndarray) -> np.ndarray:
    out = strategy.aggregate(torch.from_numpy(w), torch.from_numpy(deltas), torch.from_numpy(n).to(torch.float64))
    assert out.dtype == torch.float32 and out.shape == (len(w),)
    return out.numpy()


def np_fedavg(w: np.ndarray, deltas: np.ndarray, n: np.ndarray, weighted: bool = True) -> np.ndarray:
    models = w.astype(np.float64) + deltas
    p = n / n.sum() if weighted else np.full(len(n), 1 / len(n))
    return sum(p_k * model for p_k, model in zip(p, models))


def np_median(w: np.ndarray, deltas: np.ndarray) -> np.ndarray:
    return np.median(w.astype(np.float64) + deltas, axis=0)


def np_trimmed_mean(w: np.ndarray, deltas: np.ndarray, beta: float) -> np.ndarray:
    models = w.astype(np.float64) + deltas
    b = int(np.floor(beta * len(models)))
    out = np.empty(models.shape[1])
    for j in range(models.shape[1]):  # Yin et al. 2018, Definition 2, one coordinate at a time
        column = sorted(models[:, j])
        out[j] = np.mean(column[b : len(column) - b])
    return out


def np_multi_krum(w: np.ndarray, deltas: np.ndarray, f: int, m: int) -> np.ndarray:
    models = w.astype(np.float64) + deltas
    k = len(models)
    scores = []
    for i in range(k):  # Blanchard et al. 2017: i -> j over the n - f - 2 closest j != i
        dist = sorted(float(np.sum((models[i] - models[j]) ** 2)) for j in range(k) if j != i)
        scores.append(sum(dist[: k - f - 2]))
    chosen = np.argsort(scores, kind="stable")[:m]
    return models[chosen].mean(axis=0)


def np_clip(deltas: np.ndarray, c: float) -> np.ndarray:
    out = deltas.astype(np.float64).copy()
    for k, d in enumerate(out):
        norm = np.sqrt(np.sum(d * d))
        if norm > c:
            out[k] = d * (c / norm)
    return out


@pytest.mark.parametrize("k, p", SHAPES)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("weighted", [True, False])
def test_fedavg_and_mean_match_formula(k: int, p: int, seed: int, weighted: bool) -> None:
    # Prepare
    w, deltas, n = _round(np.random.default_rng(seed), k, p)
    # Execute
    new = _run(get_strategy("fedavg" if weighted else "mean"), w, deltas, n)
    # Assert
    np.testing.assert_allclose(new, np_fedavg(w, deltas, n, weighted), atol=1e-6, rtol=0)


@pytest.mark.parametrize("k, p", SHAPES)
@pytest.mark.parametrize("seed", SEEDS)
def test_fedavgm_matches_hsu_over_three_rounds(k: int, p: int, seed: int) -> None:
    # Prepare
    rng = np.random.default_rng(seed)
    beta, lr = 0.7, 0.5
    strategy = get_strategy("fedavgm", beta=beta, server_lr=lr)
    w, v = rng.normal(size=p).astype(np.float32), np.zeros(p)
    for _ in range(3):
        _, deltas, n = _round(rng, k, p, w)
        # Execute
        new = _run(strategy, w, deltas, n)
        # Assert: Hsu et al. 2019, Alg. 1 with pseudo-gradient dw = w - avg model; v <- beta v + dw; w <- w - lr v
        dw = w.astype(np.float64) - np_fedavg(w, deltas, n)
        v = beta * v + dw
        expected = w - lr * v
        np.testing.assert_allclose(new, expected, atol=1e-6, rtol=0)
        w = new


def test_fedavgm_without_momentum_is_fedavg() -> None:
    w, deltas, n = _round(np.random.default_rng(3), 6, 40)
    # FedAvgM sums in float64, FedAvg in float32: equal up to float32 rounding.
    np.testing.assert_allclose(
        _run(get_strategy("fedavgm", beta=0.0), w, deltas, n), _run(FedAvg(), w, deltas, n), atol=1e-6, rtol=0
    )


@pytest.mark.parametrize("name", ["fedadagrad", "fedadam", "fedyogi"])
@pytest.mark.parametrize("k, p", SHAPES)
@pytest.mark.parametrize("seed", SEEDS)
def test_fedopt_matches_reddi_over_three_rounds(name: str, k: int, p: int, seed: int) -> None:
    # Prepare
    rng = np.random.default_rng(seed)
    eta, b1, b2, tau = 0.05, 0.8, 0.95, 1e-2
    options = {"eta": eta, "beta1": b1, "tau": tau} | ({} if name == "fedadagrad" else {"beta2": b2})
    strategy = get_strategy(name, **options)
    w = rng.normal(size=p).astype(np.float32)
    m, v = np.zeros(p), np.full(p, tau**2)
    for _ in range(3):
        _, deltas, n = _round(rng, k, p, w)
        # Execute
        new = _run(strategy, w, deltas, n)
        # Assert: Reddi et al. 2021, Algorithm 2
        d = np_fedavg(w, deltas, n) - w
        m = b1 * m + (1 - b1) * d
        if name == "fedadagrad":
            v = v + d**2
        elif name == "fedadam":
            v = b2 * v + (1 - b2) * d**2
        else:
            v = v - (1 - b2) * d**2 * np.sign(v - d**2)
        expected = w + eta * m / (np.sqrt(v) + tau)
        np.testing.assert_allclose(new, expected, atol=1e-6, rtol=0)
        w = new


def test_fedopt_defaults_are_the_papers() -> None:
    adam = get_strategy("fedadam")
    assert (adam.eta, adam.beta1, adam.beta2, adam.tau) == (1e-2, 0.9, 0.99, 1e-3)
    # m0 = 0, v0 = tau^2: the first FedAdam step is eta * 0.1 D / (sqrt(0.99 tau^2 + 0.01 D^2) + tau)
    w, d = torch.zeros(3), torch.tensor([[1e-3, -2.0, 0.0]])
    expected = 1e-2 * 0.1 * d[0].double() / ((0.99e-6 + 0.01 * d[0].double() ** 2).sqrt() + 1e-3)
    torch.testing.assert_close(adam.aggregate(w, d, torch.ones(1)), expected.float(), atol=1e-7, rtol=0)


@pytest.mark.parametrize("k, p", SHAPES + [(4, 10), (1, 7)])
@pytest.mark.parametrize("seed", SEEDS)
def test_median_matches_numpy(k: int, p: int, seed: int) -> None:
    w, deltas, n = _round(np.random.default_rng(seed), k, p)
    np.testing.assert_allclose(_run(get_strategy("median"), w, deltas, n), np_median(w, deltas), atol=1e-6, rtol=0)


@pytest.mark.parametrize("k, p", SHAPES + [(10, 20)])
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("beta", [0.0, 0.1, 0.25, 0.45])
def test_trimmed_mean_matches_yin(k: int, p: int, seed: int, beta: float) -> None:
    w, deltas, n = _round(np.random.default_rng(seed), k, p)
    new = _run(get_strategy("trimmed-mean", beta=beta), w, deltas, n)
    np.testing.assert_allclose(new, np_trimmed_mean(w, deltas, beta), atol=1e-6, rtol=0)


@pytest.mark.parametrize("k, p", [(5, 3), (8, 64), (13, 301)])
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("f", [0, 1])
def test_krum_and_multi_krum_match_blanchard(k: int, p: int, seed: int, f: int) -> None:
    w, deltas, n = _round(np.random.default_rng(seed), k, p)
    np.testing.assert_allclose(
        _run(get_strategy("krum", f=f), w, deltas, n), np_multi_krum(w, deltas, f, 1), atol=1e-6, rtol=0
    )
    for m in (2, k - f):
        np.testing.assert_allclose(
            _run(get_strategy("multi-krum", f=f, m=m), w, deltas, n), np_multi_krum(w, deltas, f, m), atol=1e-6, rtol=0
        )
    np.testing.assert_allclose(
        _run(get_strategy("multi-krum", f=f), w, deltas, n), np_multi_krum(w, deltas, f, k - f), atol=1e-6, rtol=0
    )


@pytest.mark.parametrize("k, p", SHAPES)
@pytest.mark.parametrize("seed", SEEDS)
def test_clipped_fedavg_matches_clip_then_average(k: int, p: int, seed: int) -> None:
    # Prepare: a norm between the smallest and largest update norms, so some rows clip and some do not
    w, deltas, n = _round(np.random.default_rng(seed), k, p)
    c = float(np.median(np.linalg.norm(deltas.astype(np.float64), axis=1)))
    # Execute
    clipped = clip_by_norm(torch.from_numpy(deltas), c).numpy()
    new = _run(get_strategy("clipped-fedavg", max_norm=c), w, deltas, n)
    # Assert
    np.testing.assert_allclose(clipped, np_clip(deltas, c), atol=1e-6, rtol=0)
    small = np.linalg.norm(deltas.astype(np.float64), axis=1) <= c
    np.testing.assert_array_equal(clipped[small], deltas[small])
    np.testing.assert_allclose(new, np_fedavg(w, np_clip(deltas, c), n), atol=1e-6, rtol=0)


# -- robustness -------------------------------------------------------------------------------------------------


def _attacked(honest: int, f: int, p: int = 50, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``honest`` updates near a common direction, then ``f`` attackers sending huge vectors."""
    rng = np.random.default_rng(seed)
    good = 0.5 + 0.1 * rng.normal(size=(honest, p))
    bad = 1e6 * rng.choice([-1.0, 1.0], size=(f, p))
    deltas = np.concatenate([good, bad]).astype(np.float32)
    return np.zeros(p, dtype=np.float32), deltas, np.full(honest + f, 100)


def test_krum_picks_an_honest_update_and_multi_krum_averages_only_honest_ones() -> None:
    # Prepare
    w, deltas, n = _attacked(honest=7, f=2)
    honest = deltas[:7]
    # Execute
    krum = _run(get_strategy("krum", f=2), w, deltas, n)
    multi = _run(get_strategy("multi-krum", f=2), w, deltas, n)
    # Assert
    assert any(np.array_equal(krum, h) for h in honest)
    np.testing.assert_allclose(multi, honest.astype(np.float64).mean(axis=0), atol=1e-6, rtol=0)
    assert np.abs(_run(FedAvg(), w, deltas, n)).max() > 1e4  # the attack does move plain FedAvg


def test_krum_degrades_with_fewer_than_2f_plus_3_updates_and_says_so() -> None:
    # Prepare: f=2 needs 7 updates; rounds with 6, 5, 3, 2 and 1 arrive
    w, deltas, n = _round(np.random.default_rng(0), 7, 10)
    full = get_strategy("krum", f=2)
    _run(full, w, deltas, n)  # n = 2f + 3 is enough
    assert full.take_notes() == ()

    for name in ("krum", "multi-krum"):
        for k, f_used in ((6, 1), (5, 1), (3, 0)):
            # Execute
            strategy = get_strategy(name, f=2)
            got = _run(strategy, w, deltas[:k], n[:k])

            # Assert: Krum with the largest f the round supports, and a note naming it
            m = 1 if name == "krum" else k - f_used
            np.testing.assert_allclose(got, np_multi_krum(w, deltas[:k], f_used, m), atol=1e-6, rtol=0)
            (note,) = strategy.take_notes()
            assert f"{k} updates < 2f+3=7; used f={f_used}" in note
            assert strategy.take_notes() == ()  # each note lands in one round
        for k in (1, 2):
            strategy = get_strategy(name, f=2)
            got = _run(strategy, w, deltas[:k], n[:k])
            np.testing.assert_allclose(got, np_median(w, deltas[:k]), atol=1e-6, rtol=0)
            assert "coordinate-wise median" in strategy.take_notes()[0]
    clamped = get_strategy("multi-krum", f=2, m=5)
    np.testing.assert_allclose(
        _run(clamped, w, deltas[:6], n[:6]), np_multi_krum(w, deltas[:6], 1, 5), atol=1e-6, rtol=0
    )
    clamped.take_notes()
    np.testing.assert_allclose(
        _run(clamped, w, deltas[:5], n[:5]), np_multi_krum(w, deltas[:5], 1, 4), atol=1e-6, rtol=0
    )
    assert any("m=5 > n - f=4" in t for t in clamped.take_notes())


def test_krum_refuses_an_f_no_round_on_the_pool_can_satisfy() -> None:
    get_strategy("krum", f=1).check_pool(5)
    with pytest.raises(ConfigError, match=r"train\.strategy_options\.f: got 100; accepted: an integer in \[0, 1\]"):
        get_strategy("krum", f=100).check_pool(5)
    with pytest.raises(ConfigError, match=r"Krum needs at least 3 nodes"):
        get_strategy("krum", f=0).check_pool(2)
    with pytest.raises(ConfigError, match=r"train\.strategy_options\.m: got 6"):
        get_strategy("multi-krum", f=1, m=6).check_pool(5)


@pytest.mark.parametrize("name, options", [("median", {}), ("trimmed-mean", {"beta": 0.2})])
def test_median_and_trimmed_mean_ignore_f_outliers(name: str, options: dict) -> None:
    # Prepare: 9 honest, 2 attackers; trimming floor(0.2 * 11) = 2 from each end removes them
    w, deltas, n = _attacked(honest=9, f=2)
    honest = deltas[:9]
    # Execute
    new = _run(get_strategy(name, **options), w, deltas, n)
    # Assert: every coordinate stays within the honest updates' range
    assert np.all(new >= honest.min(axis=0)) and np.all(new <= honest.max(axis=0))
    assert np.abs(_run(FedAvg(), w, deltas, n)).max() > 1e4


def test_trimmed_mean_refuses_beta_outside_range_and_pure_function_refuses_empty() -> None:
    for beta in (0.5, -0.1, 1.0, float("nan"), "0.1", False):
        with pytest.raises(ConfigError, match=r"strategy_options\.beta"):
            get_strategy("trimmed-mean", beta=beta)
    with pytest.raises(ValueError, match="beta"):
        trimmed_mean(torch.zeros(2, 3), 0.5)
    assert torch.equal(trimmed_mean(torch.tensor([[1.0], [2.0], [30.0]]), 0.34), torch.tensor([2.0]))


def test_clipping_bounds_each_update_and_passes_inner_state() -> None:
    # Prepare
    deltas = torch.tensor([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]])
    clipped = Clipped(inner=get_strategy("fedavgm"), max_norm=1.0)
    # Execute
    out = clip_by_norm(deltas, 1.0)
    clipped.aggregate(torch.zeros(2), deltas, torch.ones(3))
    # Assert
    torch.testing.assert_close(out, torch.tensor([[0.6, 0.8], [0.3, 0.4], [0.0, 0.0]]), atol=1e-7, rtol=0)
    assert set(clipped.state_dict()) == {"v"} and clipped.name == "clipped-fedavgm"
    with pytest.raises(ConfigError, match=r"strategy_options\.max_norm"):
        Clipped(inner=FedAvg(), max_norm=0.0)


# -- server state -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_state_dict_round_trip_mid_sequence_continues_bitwise(name: str) -> None:
    # Prepare: three rounds of updates, and a strategy that ran the first two
    rng = np.random.default_rng(7)
    rounds = [tuple(torch.from_numpy(a) for a in _round(rng, 7, 30)) for _ in range(3)]
    first = get_strategy(name)
    w = rounds[0][0]
    for _, deltas, n in rounds[:2]:
        w = first.aggregate(w, deltas, n.double())
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    # Execute: a fresh instance loads the state the way a checkpoint does
    second = get_strategy(name)
    second.load_state_dict(torch.load(buffer, weights_only=True))
    _, deltas, n = rounds[2]
    # Assert
    assert torch.equal(first.aggregate(w, deltas, n.double()), second.aggregate(w, deltas, n.double()))


@pytest.mark.parametrize(
    "name, keys", [("fedavgm", {"v"}), ("fedadagrad", {"m", "v"}), ("fedadam", {"m", "v"}), ("fedyogi", {"m", "v"})]
)
def test_stateful_strategies_carry_their_moments(name: str, keys: set[str]) -> None:
    # Prepare
    strategy = get_strategy(name)
    assert strategy.state_dict() == {}
    # Execute
    w = strategy.aggregate(torch.zeros(4), torch.ones(3, 4), torch.ones(3))
    # Assert: the state is what the next round reads; dropping it changes the continuation
    assert set(strategy.state_dict()) == keys
    fresh = get_strategy(name)
    assert not torch.equal(
        strategy.aggregate(w, torch.ones(3, 4), torch.ones(3)), fresh.aggregate(w, torch.ones(3, 4), torch.ones(3))
    )
    with pytest.raises(ValueError, match="keys"):
        fresh.load_state_dict({"momentum": torch.zeros(4)})


# -- registry and options ---------------------------------------------------------------------------------------


def test_registry_builds_every_name_with_default_options() -> None:
    rng = np.random.default_rng(0)
    w, deltas, n = _round(rng, 6, 20)
    for name in STRATEGIES:
        strategy = get_strategy(name)
        assert isinstance(strategy, Strategy) and strategy.name == name
        assert np.all(np.isfinite(_run(strategy, w, deltas, n)))
        assert TrainConfig(strategy=name).strategy == name


@pytest.mark.parametrize(
    "name, options, field",
    [
        ("krum", {"g": 1}, "g"),
        ("fedadagrad", {"beta2": 0.9}, "beta2"),
        ("median", {"beta": 0.1}, "beta"),
        ("fedavg", {"weighted": "no"}, "weighted"),
        ("mean", {"weighted": 1}, "weighted"),
        ("fedavgm", {"beta": 1.0}, "beta"),
        ("fedavgm", {"server_lr": 0}, "server_lr"),
        ("fedadam", {"eta": 0.0}, "eta"),
        ("fedyogi", {"beta2": -0.1}, "beta2"),
        ("fedadam", {"tau": -1e-3}, "tau"),
        ("krum", {"f": -1}, "f"),
        ("krum", {"f": 1.0}, "f"),
        ("krum", {"f": True}, "f"),
        ("multi-krum", {"m": 0}, "m"),
        ("clipped-fedavg", {"max_norm": float("inf")}, "max_norm"),
        ("clipped-fedavg", {"inner": "median"}, "inner"),
    ],
)
def test_bad_or_unknown_option_raises_config_error_naming_it(name: str, options: dict, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        get_strategy(name, **options)
    assert info.value.field == f"strategy_options.{field}"


def test_trimmed_mean_counts_decimal_beta_as_written() -> None:
    # 0.29 * 100 is 28.999... in floating point; beta = 0.29 of 100 updates still trims 29 from each end
    x = (torch.arange(100, dtype=torch.float64) ** 2).float()[:, None]
    assert trimmed_mean(x, 0.29).item() == pytest.approx(float(np.mean(np.arange(29, 71) ** 2)), abs=1e-3)


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_robust_rules_ignore_f_non_finite_updates(bad: float) -> None:
    # Prepare: 9 honest updates and 2 that are inf or NaN in every coordinate
    w, deltas, n = _attacked(honest=9, f=2)
    deltas[9:] = bad
    honest = deltas[:9]
    robust = [("krum", {"f": 2}), ("multi-krum", {"f": 2}), ("median", {}), ("trimmed-mean", {"beta": 0.2})]
    for name, options in robust:
        # Execute
        new = _run(get_strategy(name, **options), w, deltas, n)
        # Assert
        assert np.all(new >= honest.min(axis=0)) and np.all(new <= honest.max(axis=0)), name


def test_fedprox_aggregates_as_fedavg_and_sets_the_clients_proximal_term() -> None:
    # Prepare
    from hypergpu_lab import Coordinator, NodePool

    rng = np.random.default_rng(0)
    w, d = (
        torch.from_numpy(rng.normal(size=9).astype(np.float32)),
        torch.from_numpy(rng.normal(size=(3, 9)).astype(np.float32)),
    )
    n = torch.tensor([1.0, 2.0, 3.0])
    pool = NodePool.simulated(4, dataset="digits", network="lan", seed=0)

    # Execute
    prox = get_strategy("fedprox", mu=0.3)
    coord = Coordinator(pool=pool, model="mlp", strategy="fedprox", strategy_options={"mu": 0.3})

    # Assert
    torch.testing.assert_close(prox.aggregate(w, d, n), FedAvg().aggregate(w, d, n), atol=0, rtol=0)
    assert coord.trainer.sgd.prox_mu == 0.3
    with pytest.raises(ConfigError, match="mu"):
        get_strategy("fedprox", mu=-1.0)


def test_a_new_strategy_is_one_new_file_found_by_name(tmp_path, monkeypatch) -> None:
    """Prepare a strategy module outside the package, on its search path; the registry finds it by name."""
    import sys

    from hypergpu_lab import strategies

    (tmp_path / "halfstep.py").write_text(
        "from hypergpu_lab.strategies.fedavg import FedAvg\n\n\n"
        "class HalfStep(FedAvg):\n"
        "    name = 'halfstep'\n\n"
        "    def aggregate(self, global_weights, deltas, num_samples):\n"
        "        return global_weights + 0.5 * (super().aggregate(global_weights, deltas, num_samples) - global_weights)\n\n\n"
        "NAMES = {'halfstep': HalfStep}\n"
    )
    monkeypatch.setattr(strategies, "__path__", [*strategies.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, "hypergpu_lab.strategies.halfstep", raising=False)

    found = strategies._discover()

    assert found["halfstep"]().name == "halfstep" and "fedavg" in found
