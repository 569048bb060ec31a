"""Epsilon from dp-accounting: the lab's numbers equal the library called directly, and the exact
Gaussian-mechanism curve (Balle and Wang, ICML 2018) computed here independently."""

from __future__ import annotations

import math

import pytest

dp_accounting = pytest.importorskip("dp_accounting")

from hypergpu_lab import Coordinator, NodePool  # noqa: E402
from hypergpu_lab.privacy.accountant import central_epsilon, local_epsilon  # noqa: E402


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2))


def exact_gaussian_epsilon(sigma: float, delta: float) -> float:
    """Smallest epsilon with delta(epsilon) <= delta for the Gaussian mechanism of sensitivity 1 (Balle & Wang, Thm 8)."""

    def delta_of(eps: float) -> float:
        return _phi(1 / (2 * sigma) - eps * sigma) - math.exp(eps) * _phi(-1 / (2 * sigma) - eps * sigma)

    lo, hi = 0.0, 100.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if delta_of(mid) <= delta else (mid, hi)
    return hi


@pytest.mark.parametrize("z, q, rounds", [(1.0, 0.1, 50), (0.5, 0.2, 10), (2.0, 0.01, 1000)])
@pytest.mark.parametrize("kind", ["rdp", "pld"])
def test_central_epsilon_equals_dp_accounting_called_directly(z: float, q: float, rounds: int, kind: str) -> None:
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(z)), rounds
    )
    acc = (
        dp_accounting.rdp.RdpAccountant()
        if kind == "rdp"
        else dp_accounting.pld.PLDAccountant(value_discretization_interval=1e-3)
    )
    expected = acc.compose(event).get_epsilon(1e-5)

    assert central_epsilon(z, q, rounds, 1e-5, kind) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("z, rounds", [(1.0, 1), (2.0, 10), (5.0, 100)])
def test_pld_matches_the_exact_gaussian_curve_within_one_percent(z: float, rounds: int) -> None:
    # Without sampling, T Gaussian releases of multiplier z are one Gaussian of multiplier z / sqrt(T).
    exact = exact_gaussian_epsilon(z / math.sqrt(rounds), 1e-5)

    pld = central_epsilon(z, 1.0, rounds, 1e-5, "pld")
    rdp = central_epsilon(z, 1.0, rounds, 1e-5, "rdp")

    assert pld == pytest.approx(exact, rel=0.01)
    assert exact <= rdp <= 1.3 * exact  # RDP is an upper bound, and not a loose one here


def test_local_epsilon_uses_sensitivity_two_c() -> None:
    # A node's release: clipped to C, noise z C; replace-one sensitivity 2C, i.e. multiplier z / 2.
    assert local_epsilon(4.0, 1, 1e-5, "pld") == pytest.approx(exact_gaussian_epsilon(2.0, 1e-5), rel=0.01)
    assert local_epsilon(4.0, 0, 1e-5) == 0.0


def test_every_report_carries_epsilon_with_q_clients_over_nodes() -> None:
    # Prepare
    pool = NodePool.simulated(20, dataset="digits", network="lan", seed=0)
    coord = Coordinator(
        pool=pool, model="mlp", clients_per_round=5, privacy={"mode": "central", "noise_multiplier": 1.2, "clip": 1.0}
    )

    # Execute
    coord.run(rounds=3, progress=False)

    # Assert: q = 5 / 20, one release per round
    eps = [row["epsilon"] for row in coord.history.rounds]
    assert eps == [pytest.approx(central_epsilon(1.2, 0.25, r, 1e-5)) for r in (1, 2, 3)]
    assert eps[0] < eps[1] < eps[2]


def test_budget_stops_the_run_cleanly_before_epsilon_would_exceed_it() -> None:
    # Prepare: epsilon after round 3 is below 4.0, after round 4 above it
    budget = (central_epsilon(1.0, 0.25, 3, 1e-5) + central_epsilon(1.0, 0.25, 4, 1e-5)) / 2
    pool = NodePool.simulated(20, dataset="digits", network="lan", seed=0)
    privacy = {"mode": "central", "noise_multiplier": 1.0, "clip": 1.0, "budget": budget}
    coord = Coordinator(pool=pool, model="mlp", clients_per_round=5, privacy=privacy)

    # Execute
    coord.run(rounds=10, progress=False)

    # Assert
    assert coord.round == 3 and coord.status == "stopped"
    assert "privacy budget" in coord.control.detail and "next round would reach" in coord.control.detail
    assert max(r["epsilon"] for r in coord.history.rounds) <= budget
