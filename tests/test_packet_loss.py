"""The per-packet loss model (``RetryPolicy(loss_unit="packet")``) against analytic values.

Oracles: with ``n`` packets each lost with probability ``p`` and only the lost ones resent, a
packet needs a geometric number of rounds, so the rounds ``M`` a message needs satisfy
``P(M <= m) = (1 - p**m)**n``; the bytes sent have mean ``nbytes / (1 - p)``; the number lost in
one round is ``Binomial(missing, p)``, written out here with exact fractions.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from network_support import ScriptedRng

from hypergpu_lab import Coordinator, NodePool
from hypergpu_lab.errors import ConfigError
from hypergpu_lab.network import (
    Disconnect,
    Link,
    LinkProfile,
    Network,
    Reconnect,
    RetryPolicy,
    _lost_packets,
    expected_rounds,
)

MTU = 1_000
BW_MBPS = 100.0
LATENCY_MS = 20.0
PACKET = RetryPolicy(loss_unit="packet", mtu_bytes=MTU, max_retries=60)


def one_link(loss: float, retry: RetryPolicy = PACKET, jitter_ms: float = 0.0) -> Network:
    profile = LinkProfile("lossy", (0.0, 0.0), loss, BW_MBPS, jitter_ms)
    return Network({0: Link(0, profile, "local", LATENCY_MS)}, retry=retry)


def survival(n: int, p: Fraction) -> list[Fraction]:
    """P(K > k) for K ~ Binomial(n, p), k = 0..n, in exact arithmetic."""
    pmf = [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
    return [sum(pmf[k + 1 :], Fraction(0)) for k in range(n + 1)]


# --------------------------------------------------------------------------- the binomial draw


@pytest.mark.parametrize(("n", "p"), [(1, "1/10"), (2, "1/2"), (4, "1/2"), (7, "3/10"), (37, "1/10")])
def test_lost_packets_inverts_the_binomial_distribution(n: int, p: str) -> None:
    # Prepare: the draw is k for u in [P(K > k), P(K > k - 1)); probe each interval's midpoint
    tails = [Fraction(1), *survival(n, Fraction(p))]  # tails[k + 1] = P(K > k), P(K > -1) = 1
    probes = [(float((tails[k + 1] + tails[k]) / 2), k) for k in range(n + 1) if tails[k] - tails[k + 1] > 1e-12]

    # Execute
    drawn = [_lost_packets(n, float(Fraction(p)), u) for u, _ in probes]

    # Assert
    assert drawn == [k for _, k in probes]
    assert len(probes) >= min(n + 1, 8)
    assert _lost_packets(n, float(Fraction(p)), 0.0) == n  # u = 0: every packet lost


def test_one_packet_loses_exactly_when_the_message_model_does() -> None:
    for u in np.linspace(0.0, 0.999, 1000):
        assert _lost_packets(1, 0.25, float(u)) == int(u < 0.25)


# --------------------------------------------------------------------------- distributions


def _chi_square(counts: np.ndarray, probs: np.ndarray) -> float:
    expected = probs * counts.sum()
    return float(((counts - expected) ** 2 / expected).sum())


def _bins(attempts: np.ndarray, cdf: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Counts of M = 1 .. len(cdf) and M > len(cdf), and their probabilities from the CDF."""
    counts = [np.sum(attempts == m) for m in range(1, len(cdf) + 1)] + [np.sum(attempts > len(cdf))]
    probs = np.diff([0.0, *cdf, 1.0])
    return np.array(counts, dtype=float), probs


# Chi-square critical value at alpha = 0.001 with 4 degrees of freedom (5 bins): a fixed seed passes
# with margin; the message model's distribution on the same draws is rejected far beyond it.
CHI2_4DF_999 = 18.467


def test_rounds_needed_follow_one_minus_p_to_the_m_to_the_n() -> None:
    # Prepare: 8 packets, 30% loss, no jitter, retries effectively unbounded
    n, p = 8, 0.3
    network = one_link(p)
    rng = np.random.default_rng(2026)

    # Execute
    transfers = [network.transfer(0, n * MTU, 0.0, rng) for _ in range(20_000)]
    attempts = np.array([t.attempts for t in transfers])

    # Assert: the packet formula fits; the whole-message one (1 - p**m) does not
    assert all(t.ok for t in transfers)
    packet_cdf = [(1 - p**m) ** n for m in range(1, 5)]
    message_cdf = [1 - p**m for m in range(1, 5)]
    counts, probs = _bins(attempts, packet_cdf)
    assert _chi_square(counts, probs) < CHI2_4DF_999
    counts, probs = _bins(attempts, message_cdf)
    assert _chi_square(counts, probs) > 100 * CHI2_4DF_999
    sent = np.array([t.bytes_sent for t in transfers])
    assert sent.mean() == pytest.approx(n * MTU / (1 - p), rel=0.01)


def test_one_packet_messages_take_the_message_models_path_exactly() -> None:
    # Prepare: a jittery lossy link with a disconnect; messages of up to one MTU
    message = one_link(0.3, RetryPolicy(max_retries=4), jitter_ms=30.0)
    packet = one_link(0.3, RetryPolicy(max_retries=4, loss_unit="packet", mtu_bytes=MTU), jitter_ms=30.0)
    for net in (message, packet):
        net.schedule(Disconnect(nodes=(0,), start=0.5))
        net.schedule(Reconnect(nodes=(0,), at=0.7))

    # Execute / Assert
    for seed in range(300):
        for nbytes in (0, 1, MTU):
            a = message.transfer(0, nbytes, seed / 300, np.random.default_rng(seed))
            b = packet.transfer(0, nbytes, seed / 300, np.random.default_rng(seed))
            assert (a.end, a.ok, a.attempts, a.reason, a.bytes_sent) == (
                b.end,
                b.ok,
                b.attempts,
                b.reason,
                b.bytes_sent,
            )
            assert a.sent_bytes is None and b.sent_bytes == nbytes * b.attempts


def expected_rounds_inclusion_exclusion(n: int, p: Fraction) -> Fraction:
    """E[M] for M the max of n i.i.d. Geometric(1 - p) rounds, by inclusion-exclusion over the packets:
    P(M > m) = sum_k (-1)**(k+1) C(n, k) p**(k m), summed over m >= 0 as geometric series."""
    return sum(((-1) ** (k + 1) * math.comb(n, k) / (1 - p**k) for k in range(1, n + 1)), Fraction(0))


@pytest.mark.parametrize(("n", "p"), [(1, "1/10"), (2, "1/2"), (10, "1/20"), (37, "1/10"), (37, "3/10"), (5, "0")])
def test_expected_rounds_matches_the_inclusion_exclusion_closed_form(n: int, p: str) -> None:
    exact = expected_rounds_inclusion_exclusion(n, Fraction(p))
    assert expected_rounds(n, float(Fraction(p))) == pytest.approx(float(exact), rel=1e-12)


def test_expected_rounds_of_one_packet_is_geometric_and_a_cap_truncates_the_sum() -> None:
    assert expected_rounds(1, 0.25) == pytest.approx(1 / 0.75, rel=1e-14)
    # capped at 3 rounds: P(M > 0) + P(M > 1) + P(M > 2) with P(M > m) = 1 - (1 - p**m)**n, exactly
    n, p = 4, Fraction(1, 2)
    capped = sum((1 - (1 - p**m) ** n for m in range(3)), Fraction(0))
    assert expected_rounds(n, 0.5, max_rounds=3) == pytest.approx(float(capped), rel=1e-14)
    assert expected_rounds(3, 1.0, max_rounds=4) == 4.0  # every packet lost: the sender tries 4 times
    with pytest.raises(ConfigError, match="^loss: "):
        expected_rounds(3, 1.0)
    with pytest.raises(ConfigError, match="^packets: "):
        expected_rounds(0, 0.1)


def test_the_simulated_mean_rounds_and_retry_time_match_the_formulas() -> None:
    # Prepare: 12 packets at 20% loss on a latency-bound link (an attempt takes ~the latency whatever
    # its size), no jitter: a transfer's duration is its first attempt plus its retries' timeouts + backoffs
    n, p = 12, 0.2
    retry = RetryPolicy(loss_unit="packet", mtu_bytes=MTU, max_retries=60, backoff_s=0.05, max_backoff_s=0.4)
    network = one_link(p, retry)
    attempt_s = LATENCY_MS / 1e3 + n * MTU * 8 / (BW_MBPS * 1e6)
    rng = np.random.default_rng(7)

    # Execute
    transfers = [network.transfer(0, n * MTU, 0.0, rng) for _ in range(20_000)]
    attempts = np.array([t.attempts for t in transfers], dtype=float)
    extra = np.array([t.duration for t in transfers]) - attempt_s

    # Assert: the means within 4 standard errors; retries of fewer packets are a little shorter than
    # a whole attempt, so the priced retry time is an upper bound, within 2% here
    mean_rounds = expected_rounds(n, p)
    assert abs(attempts.mean() - mean_rounds) < 4 * attempts.std() / math.sqrt(len(attempts))
    priced = retry.expected_retry_s(n * MTU, p, attempt_s)
    assert priced >= extra.mean() - 4 * extra.std() / math.sqrt(len(extra))
    assert extra.mean() == pytest.approx(priced, rel=0.02)
    # one packet: retry m happens with probability p**m, so the price is a closed sum
    closed = sum(p**m * (retry.timeout_factor * attempt_s + retry.backoff(m)) for m in range(1, 61))
    assert retry.expected_retry_s(MTU, p, attempt_s) == pytest.approx(closed, rel=1e-12)


# --------------------------------------------------------------------------- timelines


def test_delivered_time_for_a_scripted_draw_resends_only_the_lost_packets() -> None:
    # Prepare: 4 packets at 50% loss. u = 0.5 loses 2 of 4 (P(K > 2) = 5/16 <= 0.5 < P(K > 1) = 11/16),
    # then 1 of 2 (1/4 <= 0.5 < 3/4), then 0 of 1 (0.9 >= 0.5).
    retry = RetryPolicy(loss_unit="packet", mtu_bytes=MTU, timeout_factor=3.0, backoff_s=0.1, backoff_factor=2.0)
    network = one_link(0.5, retry)
    rng = ScriptedRng([0.5, 0.5, 0.9])

    def d(packets: int) -> float:
        return LATENCY_MS / 1e3 + packets * MTU * 8 / (BW_MBPS * 1e6)

    # Execute
    transfer = network.transfer(0, 4 * MTU, 2.0, rng)  # type: ignore[arg-type]

    # Assert
    expected = 2.0 + 3.0 * d(4) + 0.1 + 3.0 * d(2) + 0.2 + d(1)
    assert transfer.ok and transfer.attempts == 3 and transfer.reason is None
    assert transfer.end == pytest.approx(expected, abs=1e-12)
    assert transfer.bytes_sent == 7 * MTU
    assert rng.calls == ["normal", "uniform"] * 3


def test_a_partial_last_packet_and_a_disconnect_resend_every_missing_byte() -> None:
    # Prepare: 2,500 bytes = 3 packets of equal size; disconnected for the first attempt (all lost),
    # then u = 0.0 loses all 3 (P(K > 2) = 0.001 > 0), then 0.95 loses none
    network = one_link(0.1, RetryPolicy(loss_unit="packet", mtu_bytes=MTU, timeout_factor=2.0, backoff_s=0.0))
    network.schedule(Disconnect(nodes=(0,), start=0.0, duration=0.01))
    d = LATENCY_MS / 1e3 + 2_500 * 8 / (BW_MBPS * 1e6)

    # Execute
    transfer = network.transfer(0, 2_500, 0.0, ScriptedRng([0.99, 0.0, 0.95]))  # type: ignore[arg-type]

    # Assert
    assert (transfer.ok, transfer.attempts) == (True, 3)
    assert transfer.end == pytest.approx(5 * d, abs=1e-12)
    assert transfer.bytes_sent == 3 * 2_500


def test_giving_up_reports_the_reason_and_what_was_sent() -> None:
    network = one_link(0.5, RetryPolicy(loss_unit="packet", mtu_bytes=MTU, max_retries=1))

    # u = 0.0 loses all 4 packets each time
    transfer = network.transfer(0, 4 * MTU, 0.0, ScriptedRng([0.0, 0.0]))  # type: ignore[arg-type]

    assert (transfer.ok, transfer.attempts, transfer.reason) == (False, 2, "lost")
    assert transfer.bytes_sent == 8 * MTU


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"loss_unit": "packets"}, "loss_unit"),
        ({"loss_unit": None}, "loss_unit"),
        ({"mtu_bytes": 0}, "mtu_bytes"),
        ({"mtu_bytes": 1500.0}, "mtu_bytes"),
        ({"mtu_bytes": True}, "mtu_bytes"),
    ],
)
def test_bad_packet_options_name_the_field(options: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{field}: ") as info:
        RetryPolicy(**options)
    assert info.value.field == field
    with pytest.raises(ConfigError) as info:
        NodePool.simulated(2, **options)
    assert info.value.field == "pool." + field


def test_state_dict_round_trip_keeps_the_packet_model_and_old_checkpoints_load_as_messages() -> None:
    # Prepare
    original = Network.build(range(4), mix="unstable-wan", seed=3, retry=RetryPolicy(loss_unit="packet", mtu_bytes=576))
    state = json.loads(json.dumps(original.state_dict()))
    old = json.loads(json.dumps(state))
    del old["retry"]["loss_unit"], old["retry"]["mtu_bytes"]

    # Execute
    restored, legacy = Network({}), Network({})
    restored.load_state_dict(state)
    legacy.load_state_dict(old)

    # Assert
    assert restored.retry == original.retry and legacy.retry == RetryPolicy()
    for node in range(4):
        assert restored.transfer(node, 54_824, 1.0, np.random.default_rng(node)) == original.transfer(
            node, 54_824, 1.0, np.random.default_rng(node)
        )


def test_pool_config_reaches_the_network_and_the_default_stays_the_message_model() -> None:
    assert NodePool.simulated(2).network.retry == RetryPolicy()
    pool = NodePool.simulated(2, loss_unit="packet", mtu_bytes=9000)
    assert pool.network.retry == RetryPolicy(loss_unit="packet", mtu_bytes=9000)


def _packet_coordinator() -> Coordinator:
    pool = NodePool.simulated(
        6, dataset="digits", partition="iid", network="unstable-wan", loss_unit="packet", seed=1, max_train=600
    )
    return Coordinator(pool=pool, model="mlp", batch_size=32, seed=1)


def test_checkpoint_resume_equals_an_uninterrupted_packet_loss_run(tmp_path) -> None:
    # Prepare
    whole = _packet_coordinator()
    whole.run(rounds=4, progress=False)
    half = _packet_coordinator()
    half.run(rounds=2, progress=False)
    path = half.save_checkpoint(tmp_path / "c.ckpt")

    # Execute: the pool is rebuilt from the checkpoint's config, its retry policy from the state
    resumed = Coordinator.restore(path)
    resumed.run(rounds=2, progress=False)

    # Assert
    assert resumed.pool.network.retry.loss_unit == "packet"
    assert torch.equal(resumed.weights, whole.weights)
    assert resumed.clock.now == whole.clock.now
    keys = ("round", "t_end", "bytes_moved", "test_accuracy")
    after = [[r[k] for k in keys] for r in resumed.history]
    assert after == [[r[k] for k in keys] for r in whole.history][-len(after) :] and after[-1][0] == 4
    # resent packets, not whole messages: some transfer needed a retry yet moved less than nbytes per attempt
    nbytes = whole.layout.nbytes
    assert any(r["bytes_moved"] % nbytes for r in whole.history)
