"""Epsilon at a given delta from Google's ``dp-accounting`` (RDP or PLD), never from hand-written maths.

Central DP-FedAvg, per round: a Gaussian mechanism of multiplier ``z`` on a Poisson sample of the
nodes with probability ``q = clients per round / nodes``, composed over the rounds that released a
model (``PoissonSampledDpEvent(q, GaussianDpEvent(z))``, add-or-remove-one neighbouring, i.e.
node-level DP). The lab samples a fixed number of nodes without replacement; the Poisson event at
the same ``q`` is the standard approximation (as in TensorFlow Federated's DP-FedAvg).

Local DP: each release of a node is the Gaussian mechanism on its own clipped update. Any two
updates of one node differ by at most ``2C`` (replace-one), so the per-release multiplier is
``z / 2``; no amplification by sampling, since the server knows who was selected. The reported
epsilon is the worst node's (the most releases).

``dp_accounting`` is imported when an accountant is built, so a run without privacy never loads it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

ACCOUNTANTS = ("rdp", "pld")


def _library() -> Any:
    try:
        import dp_accounting
    except ImportError as exc:  # pragma: no cover - the dev and privacy extras install it
        raise ImportError("privacy accounting needs dp-accounting: pip install 'hypergpu-lab[privacy]'") from exc
    return dp_accounting


def _accountant(kind: str) -> Any:
    dpa = _library()
    if kind == "rdp":
        return dpa.rdp.RdpAccountant()
    return dpa.pld.PLDAccountant(value_discretization_interval=1e-3)


@lru_cache(maxsize=64)
def _one_round_rdp(z: float, q: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The RDP curve (orders, values) of one round: the library's ~0.1 s computation, done once per (z, q)."""
    acc = _accountant("rdp").compose(_library().PoissonSampledDpEvent(q, _library().GaussianDpEvent(z)))
    return tuple(acc.orders), tuple(acc.rdp)


@lru_cache(maxsize=512)
def central_epsilon(z: float, q: float, rounds: int, delta: float, kind: str = "rdp") -> float:
    """Epsilon after ``rounds`` Poisson-sampled Gaussian releases (inf when ``z == 0`` and ``rounds > 0``).

    RDP composes by addition (what the library's ``SelfComposedDpEvent`` does), so the one-round
    curve times ``rounds`` goes to the library's own conversion to (epsilon, delta).
    """
    if rounds == 0:
        return 0.0
    if z == 0:
        return float("inf")
    dpa = _library()
    if kind == "rdp":
        orders, rdp = _one_round_rdp(z, q)
        eps, _ = dpa.rdp.rdp_privacy_accountant.compute_epsilon(orders, [rounds * r for r in rdp], delta)
        return float(eps)
    event = dpa.SelfComposedDpEvent(dpa.PoissonSampledDpEvent(q, dpa.GaussianDpEvent(z)), rounds)
    return float(_accountant(kind).compose(event).get_epsilon(delta))


@lru_cache(maxsize=512)
def local_epsilon(z: float, releases: int, delta: float, kind: str = "rdp") -> float:
    """Epsilon of one node after ``releases`` locally noised updates (sensitivity ``2C``: multiplier ``z/2``)."""
    if releases == 0:
        return 0.0
    if z == 0:
        return float("inf")
    dpa = _library()
    event = dpa.SelfComposedDpEvent(dpa.GaussianDpEvent(z / 2), releases)
    return float(_accountant(kind).compose(event).get_epsilon(delta))
