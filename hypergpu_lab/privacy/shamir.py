"""Shamir t-of-n secret sharing (Shamir 1979) over the prime field GF(2^31 - 1), vectorised in numpy.

A secret is a vector of field elements (SecAgg splits its 32-byte keys into 16-bit pieces, see
:func:`to_field`); every element gets its own random polynomial of degree ``t - 1`` whose constant
term is the element, and the share of party ``x`` is the polynomials' values at ``x``. Any ``t``
shares give the secret back by Lagrange interpolation at 0; fewer than ``t`` say nothing about it.

The modulus is below 2^31, so a product of two elements fits in int64 and every step is one numpy
operation over all elements and parties at once (Horner's rule for the sharing).
"""

from __future__ import annotations

import functools

import numpy as np

PRIME = 2**31 - 1  # a Mersenne prime
PIECE_BITS = 16  # a secret's bytes go into the field 16 bits at a time (each piece < PRIME)


def to_field(secret: bytes) -> np.ndarray:
    """Bytes as field elements (16 bits each, big-endian); the length must be even."""
    if len(secret) % 2:
        raise ValueError(f"secret: {len(secret)} bytes; an even number is accepted")
    return np.frombuffer(secret, dtype=">u2").astype(np.int64)


def from_field(elements: np.ndarray) -> bytes:
    """The bytes :func:`to_field` came from."""
    if np.any((elements < 0) | (elements >= 2**PIECE_BITS)):
        raise ValueError("elements: not a secret of 16-bit pieces (too few or inconsistent shares?)")
    return elements.astype(">u2").tobytes()


def share(secret: np.ndarray, xs: list[int], threshold: int, rng: np.random.Generator) -> np.ndarray:
    """Shares of ``secret`` (field elements) for the parties ``xs`` (distinct, in 1..PRIME-1): shape (len(xs), len(secret))."""
    if not 1 <= threshold <= len(xs):
        raise ValueError(f"threshold: {threshold}; 1 to the number of parties ({len(xs)}) is accepted")
    if len(set(xs)) != len(xs) or min(xs) < 1 or max(xs) >= PRIME:
        raise ValueError("xs: distinct party numbers in 1 .. 2^31 - 2 are accepted")
    coeffs = rng.integers(0, PRIME, size=(threshold - 1, secret.size), dtype=np.int64)
    x = np.asarray(xs, dtype=np.int64)[:, None]
    acc = np.zeros((len(xs), secret.size), dtype=np.int64)
    for c in coeffs[::-1]:  # Horner, highest degree first; the constant term is the secret
        acc = (acc * x + c) % PRIME
    return (acc * x + secret) % PRIME


@functools.lru_cache(maxsize=64)
def lagrange_at_zero(xs: tuple[int, ...]) -> np.ndarray:
    """The weights ``l_i = prod_{j != i} x_j / (x_j - x_i)`` (mod PRIME) that interpolate at 0 (cached:
    a round rebuilds every secret from the same ``t`` parties)."""
    weights = []
    for i, xi in enumerate(xs):
        num = den = 1
        for j, xj in enumerate(xs):
            if j != i:
                num, den = num * xj % PRIME, den * (xj - xi) % PRIME
        weights.append(num * pow(den, -1, PRIME) % PRIME)
    return np.asarray(weights, dtype=np.int64)


def reconstruct(xs: list[int], shares: np.ndarray) -> np.ndarray:
    """The secret from the shares (rows) of the parties ``xs``; right only with ``threshold`` or more."""
    if len(set(xs)) != len(xs) or shares.shape[0] != len(xs):
        raise ValueError("xs: one distinct party number per row of shares is accepted")
    out = np.zeros(shares.shape[1], dtype=np.int64)
    for w, row in zip(lagrange_at_zero(tuple(xs)), shares, strict=True):
        out = (out + w * row % PRIME) % PRIME
    return out
