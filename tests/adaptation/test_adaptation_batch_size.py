"""Batch-size controller: strategies point the right way; bounds, powers of two, steps and memory always hold."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hypergpu_lab import ConfigError
from hypergpu_lab.adaptation import BatchSizeController, NetworkMonitor


def _monitor(make_record, make_report, links: dict[int, float], compute: dict[int, float]) -> NetworkMonitor:
    mon = NetworkMonitor()
    mon.observe(
        make_report(1, [make_record(n, down=links[n], up=links[n], compute=compute[n], samples=100) for n in links])
    )
    return mon


def test_every_proposal_respects_bounds_powers_of_two_step_and_memory() -> None:
    # Prepare: many random (desired, current, memory) triples.
    ctl = BatchSizeController(min_batch=8, max_batch=256, max_step=2.0, powers_of_two=True)
    rng = np.random.default_rng(0)
    for _ in range(2000):
        desired = float(np.exp(rng.uniform(-1, 8)))
        current = int(2 ** rng.integers(3, 9))
        memory = int(rng.choice([3, 5, 12, 100, 10_000]))
        # Execute
        wanted = ctl.bounded(desired, current)
        b = ctl.ceiling(wanted, memory)
        # Assert
        assert wanted & (wanted - 1) == 0 and b & (b - 1) == 0 and b >= 1  # powers of two
        assert 8 <= wanted <= 256  # bounds
        assert current / 2 <= wanted <= current * 2  # one doubling at most
        assert b <= memory and (b == wanted or wanted > memory)  # memory: a hard ceiling


def test_without_powers_of_two_any_integer_within_bounds() -> None:
    ctl = BatchSizeController(min_batch=5, max_batch=50, base=20, powers_of_two=False, max_step=1.5)
    assert ctl.bounded(27.0, 20) == 27
    assert ctl.bounded(1000.0, 20) == 30  # step bound 1.5x
    assert ctl.bounded(1000.0, 40) == 50  # max bound
    assert ctl.bounded(1.0, 6) == 5  # min bound
    assert ctl.ceiling(30, 17) == 17


def test_memory_ceiling_overrides_the_minimum_and_zero_when_nothing_fits() -> None:
    ctl = BatchSizeController(min_batch=8, max_batch=256)
    assert ctl.ceiling(64, 6) == 4
    assert ctl.ceiling(64, 0) == 0


def test_latency_strategy_gives_the_slow_link_a_larger_batch(make_record, make_report) -> None:
    mon = _monitor(make_record, make_report, {0: 0.02, 1: 0.1, 2: 0.5}, {0: 1.0, 1: 1.0, 2: 1.0})
    ctl = BatchSizeController(strategy="latency", base=32, max_step=16.0)
    out = ctl.plan([0, 1, 2], mon, {0: 10_000, 1: 10_000, 2: 10_000}, 2)
    assert out[0][0] < out[1][0] == 32 < out[2][0]
    assert "link" in out[2][1]
    assert ctl.history[2] == [(2, out[2][0])]


def test_throughput_strategy_follows_samples_per_second(make_record, make_report) -> None:
    mon = _monitor(make_record, make_report, {0: 0.1, 1: 0.1, 2: 0.1}, {0: 4.0, 1: 1.0, 2: 0.25})
    ctl = BatchSizeController(strategy="throughput", base=32, max_step=16.0)
    out = ctl.plan([0, 1, 2], mon, {0: 10_000, 1: 10_000, 2: 10_000}, 2)
    assert out[0][0] < out[1][0] == 32 < out[2][0]  # node 2: 400 samples/s, node 0: 25


def test_hybrid_is_60_percent_latency_40_percent_throughput(make_record, make_report) -> None:
    mon = _monitor(make_record, make_report, {0: 0.05, 1: 0.1, 2: 0.4}, {0: 1.0, 1: 0.5, 2: 2.0})
    lat = BatchSizeController(strategy="latency").targets([0, 1, 2], mon)
    thr = BatchSizeController(strategy="throughput").targets([0, 1, 2], mon)
    hyb = BatchSizeController(strategy="hybrid").targets([0, 1, 2], mon)
    for n in (0, 1, 2):
        assert hyb[n][0] == pytest.approx(0.6 * lat[n][0] + 0.4 * thr[n][0])


def test_fixed_strategy_stays_at_base_and_memory_caps_it(make_record, make_report) -> None:
    mon = _monitor(make_record, make_report, {0: 0.02, 1: 2.0}, {0: 1.0, 1: 1.0})
    ctl = BatchSizeController(strategy="fixed", base=32)
    out = ctl.plan([0, 1], mon, {0: 10_000, 1: 20}, 1)
    assert out[0] == (32, None)
    assert out[1][0] == 16 and "memory" in out[1][1]


def test_gradual_change_reaches_the_target_one_doubling_per_round(make_record, make_report) -> None:
    mon = _monitor(make_record, make_report, {0: 0.01, 1: 0.64, 2: 0.02}, {0: 1.0, 1: 1.0, 2: 1.0})
    ctl = BatchSizeController(strategy="latency", base=32, max_batch=256)  # node 1: target 32 x 32
    sizes = [ctl.plan([0, 1, 2], mon, {0: 10_000, 1: 10_000, 2: 10_000}, r)[1][0] for r in range(1, 6)]
    assert sizes == [64, 128, 256, 256, 256]
    assert all(math.log2(b) == int(math.log2(b)) for b in sizes)


def test_dead_band_keeps_the_current_size_for_small_target_moves(make_record, make_report) -> None:
    mon = _monitor(make_record, make_report, {0: 0.1, 1: 0.15, 2: 0.1}, {0: 1.0, 1: 1.0, 2: 1.0})
    ctl = BatchSizeController(strategy="latency", base=32, tolerance=0.5)
    assert ctl.plan([1], mon, {1: 10_000}, 1)[1] == (32, None)  # target 48 <= 1.5 x 32
    eager = BatchSizeController(strategy="latency", base=32, tolerance=0.0)
    assert eager.plan([1], mon, {1: 10_000}, 1)[1][0] == 64  # nearest power of two in log scale


@pytest.mark.parametrize(
    "option",
    [
        {"strategy": "bogus"},
        {"min_batch": 0},
        {"base": 24},
        {"max_step": 1.5},
        {"min_batch": 65, "max_batch": 100, "base": 70},
        {"base": 512},
    ],
)
def test_bad_options_raise_config_error(option: dict) -> None:
    with pytest.raises(ConfigError, match="batch."):
        BatchSizeController(**option)
