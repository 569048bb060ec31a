"""Secure aggregation in simulation: Bonawitz et al., "Practical Secure Aggregation for
Privacy-Preserving Machine Learning", CCS 2017, with pairwise masks only.

Each round every node of the cohort makes a fresh X25519 key pair (``cryptography``; the private
bytes come from a keyed stream so a run is reproducible). Nodes ``u < v`` agree on a shared secret,
derive a seed with HKDF-SHA256 and expand it with AES-256-CTR (the PRG) into a mask over the ring
``Z_(2^bits)``. Node ``u`` uploads ``y_u = x_u + sum_{v>u} m_uv - sum_{v<u} m_uv`` where ``x_u`` is
its update in fixed point; in the sum over the cohort the masks cancel exactly (integer
arithmetic mod ``2^bits``, no rounding), so the server learns the sum and nothing else.

Dropouts: a node of the cohort whose masked input is missing leaves its masks in the others'
inputs. In the recovery step each surviving node reveals its pairwise seeds with the dropped
nodes and the server removes those masks; a survivor that fails to answer is dropped too and the
step repeats. Simplification against the paper, said plainly: there are no self-masks and no
Shamir shares of the keys (a survivor reveals the pair's seed itself rather than ``t`` survivors
reconstructing the dropped node's key), which is equivalent for an honest-but-curious server that
does not lie about who dropped.

The server side, :class:`SecAggServer`, holds public keys, masked inputs, revealed seeds and the
sum, never a node's update: ``tests/test_secagg.py`` inspects it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from ..streams import stream

KEY_TAG = 0x5345_434B  # "SECK": a node's per-round X25519 private key
PUBLIC_KEY_BYTES = 32
SEED_BYTES = 32
HEADER_BYTES = 16  # node id, round, message kind: what every protocol message carries


@dataclass(frozen=True)
class FixedPoint:
    """Signed fixed point in ``Z_(2^bits)``: ``x -> round(x * 2^frac) mod 2^bits``."""

    bits: int = 32
    frac: int = 16

    @property
    def modulus_mask(self) -> np.uint64:
        return np.uint64(2**self.bits - 1) if self.bits < 64 else np.uint64(2**64 - 1)

    def limit(self, summands: int) -> float:
        """Largest |value| one of ``summands`` inputs may hold so that their sum cannot wrap."""
        return (2 ** (self.bits - 1) - 1) / max(summands, 1) / 2**self.frac

    def encode(self, x: np.ndarray, summands: int) -> tuple[np.ndarray, bool]:
        """``x`` (float) in the ring, clamped to :meth:`limit`; also whether anything was clamped."""
        bound = self.limit(summands)
        clamped = bool(np.any(np.abs(x) > bound))
        q = np.rint(np.clip(x.astype(np.float64), -bound, bound) * 2.0**self.frac).astype(np.int64)
        return q.view(np.uint64) & self.modulus_mask, clamped

    def decode(self, v: np.ndarray) -> np.ndarray:
        """Ring elements back to floats, reading the top half of the ring as negative."""
        v = v & self.modulus_mask
        signed = (
            v.view(np.int64)
            if self.bits == 64
            else np.where(v >= 2 ** (self.bits - 1), v.astype(np.int64) - 2**self.bits, v.astype(np.int64))
        )
        return signed.astype(np.float64) / 2.0**self.frac


@functools.cache
def _crypto():  # imported when SecAgg runs: a run without it never loads cryptography
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return hashes, X25519PrivateKey, X25519PublicKey, Cipher, algorithms, modes, HKDF


def expand(seed: bytes, size: int, ring: FixedPoint) -> np.ndarray:
    """The PRG: ``size`` ring elements from a 32-byte seed (the AES-256-CTR keystream)."""
    _, _, _, Cipher, algorithms, modes, _ = _crypto()
    width = ring.bits // 8
    stream_bytes = Cipher(algorithms.AES(seed), modes.CTR(b"\0" * 16)).encryptor().update(b"\0" * (size * width))
    words = np.frombuffer(stream_bytes, dtype=np.uint32 if width == 4 else np.uint64)
    return words.astype(np.uint64)


class SecAggClient:
    """One node's side of a round: its key pair, its pairwise seeds and its masked input."""

    def __init__(self, seed: int, round_: int, node: int) -> None:
        _, X25519PrivateKey, _, _, _, _, _ = _crypto()
        self.round, self.node = round_, node
        secret = stream(seed, KEY_TAG, round_, node).bytes(32)
        self._key = X25519PrivateKey.from_private_bytes(secret)

    @property
    def public_key(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        raw = serialization.Encoding.Raw
        return self._key.public_key().public_bytes(raw, serialization.PublicFormat.Raw)

    def pair_seed(self, other: int, other_public: bytes) -> bytes:
        """The seed this node shares with ``other``: HKDF-SHA256 of their X25519 shared secret."""
        hashes, _, X25519PublicKey, _, _, _, HKDF = _crypto()
        shared = self._key.exchange(X25519PublicKey.from_public_bytes(other_public))
        lo, hi = sorted((self.node, other))
        info = f"hypergpu-lab secagg round {self.round} pair {lo}-{hi}".encode()
        return HKDF(algorithm=hashes.SHA256(), length=SEED_BYTES, salt=None, info=info).derive(shared)

    def mask(self, x: np.ndarray, publics: dict[int, bytes], ring: FixedPoint) -> np.ndarray:
        """``x`` (already in the ring) plus the masks shared with every other node of ``publics``."""
        y = x.copy()
        for v, pk in publics.items():
            if v == self.node:
                continue
            m = expand(self.pair_seed(v, pk), x.size, ring)
            y = y + m if self.node < v else y - m  # uint64 arithmetic wraps: exact mod 2^64
        return y & ring.modulus_mask

    def reveal(self, dropped: list[int], publics: dict[int, bytes]) -> dict[tuple[int, int], bytes]:
        """The recovery step: this node's seeds with the nodes the server says dropped out."""
        return {(self.node, v): self.pair_seed(v, publics[v]) for v in dropped}


@dataclass
class SecAggServer:
    """Everything the server holds in one round: public keys, masked inputs, revealed seeds, the sum."""

    ring: FixedPoint
    size: int
    publics: dict[int, bytes] = field(default_factory=dict)
    masked: dict[int, np.ndarray] = field(default_factory=dict)
    revealed: dict[tuple[int, int], bytes] = field(default_factory=dict)
    total: np.ndarray | None = None

    def dropped(self, included: list[int]) -> list[int]:
        """Nodes of the cohort (whose public keys went out) without an input in the sum."""
        return sorted(set(self.publics) - set(included))

    def unmask(self, included: list[int]) -> np.ndarray:
        """The sum of the included inputs with the dropped nodes' masks removed (needs their seeds)."""
        total = np.zeros(self.size, dtype=np.uint64)
        for w in included:
            total = total + self.masked[w]
        for w in included:
            for v in self.dropped(included):
                m = expand(self.revealed[(w, v)], self.size, self.ring)
                total = total - m if w < v else total + m  # w's input held +m_wv when w < v
        self.total = total & self.ring.modulus_mask
        return self.total
