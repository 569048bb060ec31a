"""Shamir t-of-n secret sharing (Shamir 1979) over the prime field GF(2^31 - 1), vectorised in numpy.

A secret is a vector of field elements (SecAgg splits its 32-byte keys into 16-bit pieces, see
:func:`to_field`); every element gets its own random polynomial of degree ``t - 1`` whose constant
term is the element, and the share of party ``x`` is the polynomials' values at ``x``. Any ``t``
shares give the secret back by Lagrange interpolation at 0; fewer than ``t`` say nothing about it.

The modulus is below 2^31, so a product of two elements fits in int64. Sharing and reconstruction
are each one matrix product mod PRIME (:func:`_matmul_mod`: the right operand split into 16-bit
halves and float64 BLAS products over blocks of 64, all exact), not a Python loop over the coefficients.
"""

from __future__ import annotations

import functools

import numpy as np

PRIME = 2**31 - 1  # a Mersenne prime
PIECE_BITS = 16  # a secret's bytes go into the field 16 bits at a time (each piece < PRIME)
EXACT_BLOCK = 64  # 64 products of a field element (< 2^31) and a 16-bit half sum below 2^53


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
    powers = np.ones((len(xs), threshold), dtype=np.int64)  # x^0 .. x^(t-1) mod PRIME: the Vandermonde matrix
    for j in range(1, threshold):
        powers[:, j] = powers[:, j - 1] * x[:, 0] % PRIME
    return _matmul_mod(powers, np.vstack([secret[None], coeffs]))  # coeffs[i] goes with x^(i+1)


def _matmul_mod(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b mod PRIME`` for field elements, exact: ``b`` split into 16-bit halves and the inner dimension
    into blocks of :data:`EXACT_BLOCK`, so every product (< 2^47) and every partial sum (< 2^53) is an
    integer float64 holds exactly; the blocks are float64 BLAS products (numpy's int64 matmul has no BLAS)."""
    hi, lo = (b >> 16).astype(np.float64), (b & 0xFFFF).astype(np.float64)
    out = np.zeros((a.shape[0], b.shape[1]), dtype=np.int64)
    for i in range(0, a.shape[1], EXACT_BLOCK):
        block = a[:, i : i + EXACT_BLOCK].astype(np.float64)
        h = (block @ hi[i : i + EXACT_BLOCK]).astype(np.int64) % PRIME
        low = (block @ lo[i : i + EXACT_BLOCK]).astype(np.int64) % PRIME
        out = (out + h * 2**16 + low) % PRIME  # < 2^31 + 2^47 + 2^31: int64
    return out


@functools.lru_cache(maxsize=64)
def lagrange_at_zero(xs: tuple[int, ...]) -> np.ndarray:
    """The weights ``l_i = prod_{j != i} x_j / (x_j - x_i)`` (mod PRIME) that interpolate at 0 (cached:
    a round rebuilds every secret from the same ``t`` parties)."""
    x = np.asarray(xs, dtype=np.int64)
    diff = (x[None, :] - x[:, None]) % PRIME  # row i: x_j - x_i
    np.fill_diagonal(diff, 1)
    top = np.where(np.eye(len(xs), dtype=bool), 1, x[None, :])  # row i: x_j, j != i
    num, den = np.ones(len(xs), dtype=np.int64), np.ones(len(xs), dtype=np.int64)
    for j in range(len(xs)):  # products along the rows, reduced at every step
        num, den = num * top[:, j] % PRIME, den * diff[:, j] % PRIME
    return np.asarray([int(n) * pow(int(d), -1, PRIME) % PRIME for n, d in zip(num, den, strict=True)], dtype=np.int64)


def reconstruct(xs: list[int], shares: np.ndarray) -> np.ndarray:
    """The secret from the shares (rows) of the parties ``xs``; right only with ``threshold`` or more."""
    if len(set(xs)) != len(xs) or shares.shape[0] != len(xs):
        raise ValueError("xs: one distinct party number per row of shares is accepted")
    return _matmul_mod(lagrange_at_zero(tuple(xs))[None], shares.astype(np.int64))[0]
