"""Shamir t-of-n sharing over GF(2^31 - 1), against polynomial evaluation in Python integers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hypergpu_lab.privacy import shamir


def test_shares_are_the_polynomial_evaluated_at_each_party() -> None:
    # Prepare: the same coefficient stream the sharing draws
    secret = shamir.to_field(bytes(range(32)))
    xs, t = [1, 2, 5, 9, 12], 3

    shares = shamir.share(secret, xs, t, np.random.default_rng(4))

    coeffs = np.random.default_rng(4).integers(0, shamir.PRIME, size=(t - 1, secret.size), dtype=np.int64)
    for i, x in enumerate(xs):
        for j, s in enumerate(secret.tolist()):
            expected = (s + sum(int(coeffs[d, j]) * x ** (d + 1) for d in range(t - 1))) % shamir.PRIME
            assert int(shares[i, j]) == expected


def test_any_t_shares_give_the_secret_back() -> None:
    secret_bytes = np.random.default_rng(1).bytes(64)
    secret = shamir.to_field(secret_bytes)
    xs = list(range(1, 8))
    shares = shamir.share(secret, xs, 4, np.random.default_rng(2))

    for subset in itertools.combinations(range(7), 4):
        rebuilt = shamir.reconstruct([xs[i] for i in subset], shares[list(subset)])
        assert shamir.from_field(rebuilt) == secret_bytes


def test_fewer_than_t_shares_say_nothing_about_the_secret() -> None:
    # Two extreme secrets: the t - 1 = 2 shares held by parties 1 and 2 have the same (uniform) distribution
    low, high = np.zeros(1, dtype=np.int64), np.full(1, 2**16 - 1, dtype=np.int64)
    draws = {
        name: np.array([shamir.share(s, [1, 2, 3], 3, np.random.default_rng(i))[:2, 0] for i in range(4000)])
        for name, s in (("low", low), ("high", high))
    }

    for name, d in draws.items():
        assert abs(d.mean() / shamir.PRIME - 0.5) < 0.02, name
        counts = np.bincount((d[:, 0] * 16 // shamir.PRIME).astype(int), minlength=16)
        assert ((counts - 250) ** 2 / 250).sum() < 37.7  # chi-square, df 15, 0.1% critical value
    # and two shares rebuild a wrong secret (a degree-2 polynomial needs three)
    shares = shamir.share(high, [1, 2, 3], 3, np.random.default_rng(0))
    assert shamir.reconstruct([1, 2], shares[:2])[0] != high[0]


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="threshold"):
        shamir.share(np.zeros(2, dtype=np.int64), [1, 2], 3, np.random.default_rng(0))
    with pytest.raises(ValueError, match="xs"):
        shamir.share(np.zeros(2, dtype=np.int64), [0, 1], 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="even"):
        shamir.to_field(b"abc")


def test_large_thresholds_stay_exact_across_the_blocked_products() -> None:
    # t = 600: unblocked, the float64 sums would pass 2^53 and round; Python integers are the oracle
    rng = np.random.default_rng(5)
    secret = shamir.to_field(rng.bytes(8))
    xs, t = list(range(2**31 - 701, 2**31 - 1)), 600  # the largest party numbers

    shares = shamir.share(secret, xs, t, np.random.default_rng(6))

    coeffs = np.random.default_rng(6).integers(0, shamir.PRIME, size=(t - 1, secret.size), dtype=np.int64)
    for i in (0, 377, 699):
        x = xs[i]
        for j, s in enumerate(secret.tolist()):
            expected = (s + sum(int(coeffs[d, j]) * pow(x, d + 1, shamir.PRIME) for d in range(t - 1))) % shamir.PRIME
            assert int(shares[i, j]) == expected
    picked = sorted(rng.choice(len(xs), size=t, replace=False).tolist())
    assert shamir.from_field(shamir.reconstruct([xs[i] for i in picked], shares[picked])) == shamir.from_field(secret)
