"""Secure aggregation: Bonawitz et al., "Practical Secure Aggregation for Privacy-Preserving Machine
Learning", CCS 2017, the honest-but-curious protocol (their rounds 0, 1, 2 and 4).

0. **AdvertiseKeys**: each node makes two fresh X25519 key pairs (``cryptography``): ``c`` to encrypt
   what it sends to another node, ``s`` to agree pairwise masks. The server broadcasts the cohort's
   public keys (the set U1).
1. **ShareKeys**: each node draws a self-mask seed ``b_u`` and splits ``s_u^SK`` and ``b_u`` into
   Shamir ``t``-of-``|U1|`` shares (``shamir.py``), one per node, each encrypted with AES-GCM under
   the key agreed with its holder; the server only relays the ciphertexts (the senders are U2).
2. **MaskedInputCollection**: node ``u`` uploads
   ``y_u = x_u + PRG(b_u) + sum_{v in U2, u < v} PRG(s_uv) - sum_{v in U2, v < u} PRG(s_uv)``
   in the ring ``Z_(2^bits)`` (the senders are U3). The pairwise masks cancel in the sum over U2.
4. **Unmasking**: each survivor sends, for every node of U2, a share of ``b_u`` if ``u`` is in U3
   and a share of ``s_u^SK`` if it dropped, never both for one node. With ``t`` answers the server
   rebuilds the dropped nodes' mask keys (and so their pairwise masks with the survivors) and the
   survivors' self-masks, and subtracts them. A survivor that does not answer stays in the sum.

The PRG is AES-256-CTR keyed by a 32-byte seed (HKDF-SHA256 of the agreement), its keystream read
as ring words: one call per pair over the whole flat vector. Simulation shortcuts, both exact:
each pair's X25519 agreement is computed once per round and read by both ends (it is the same value
from either side: tested; the cache lives with the simulated nodes, never in :class:`SecAggServer`), and
:func:`mask_inputs` expands each pair's mask once for its two ends. What is left is the primitives'
own cost (``bench/privacy.py``: ``_crypto_floor``), the agreements first.
Private keys and ``b_u`` come from keyed streams, so a run is reproducible and resumable.

**SecAgg+** (Bell et al., CCS 2020) is the same four rounds on a sparse graph: a node gets only its
``k`` neighbours' keys, shares its secrets ``t``-of-``(k + 1)`` among them and masks with them alone
(``SecAggServer.graph``, built by ``secagg_graph.py``; None is the complete graph, classic SecAgg).
A round then costs ``K k`` agreements and ``K k / 2`` mask expansions instead of ``K (K - 1)`` and
``K (K - 1) / 2``; the sum stays exact because every mask still has its two ends in the graph.

:class:`SecAggServer` holds public keys, ciphertexts it cannot read, masked inputs, the unmasking
shares and the sum, never a node's update (``tests/privacy/test_secagg.py`` inspects it).
"""

from __future__ import annotations

import functools
import hmac
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..streams import stream
from . import shamir

KEY_TAG = 0x5345_434B  # "SECK": a node's per-round secrets (word 0: c key, 1: s key, 2: b_u, 3: share coefficients)
PUBLIC_KEY_BYTES = 32
SEED_BYTES = 32
HEADER_BYTES = 16  # node id, round, message kind: what every protocol message carries
NODE_ID_BYTES = 4
PIECES = 2 * SEED_BYTES // 2  # s_u^SK and b_u in the field, 16 bits a piece
SHARE_BYTES = PIECES * 4  # one field element is 4 bytes on the wire
CIPHERTEXT_BYTES = 2 * NODE_ID_BYTES + SHARE_BYTES + 12 + 16  # ids, shares, AES-GCM nonce and tag
UNMASK_SHARE_BYTES = NODE_ID_BYTES + SHARE_BYTES // 2  # one node's share of b_u or of s_u^SK


def threshold_for(cohort: int) -> int:
    """Shamir threshold ``t``: a strict majority of U1 (fewer answers than that abort the round)."""
    return cohort // 2 + 1


class SecAggAbort(RuntimeError):
    """Fewer than ``t`` nodes are left: the round's sum cannot be unmasked (nothing is released)."""


@dataclass(frozen=True)
class FixedPoint:
    """Signed fixed point in ``Z_(2^bits)``: ``x -> round(x * 2^frac) mod 2^bits`` (uint32 or uint64 wraps)."""

    bits: int = 32
    frac: int = 16

    @property
    def dtype(self) -> type:
        return np.uint32 if self.bits == 32 else np.uint64

    @property
    def modulus_mask(self) -> np.uint64:
        return np.uint64(2**self.bits - 1)

    def limit(self, summands: int) -> float:
        """Largest |value| one of ``summands`` inputs may hold so that their sum cannot wrap."""
        return (2 ** (self.bits - 1) - 1) / max(summands, 1) / 2**self.frac

    def encode(self, x: np.ndarray, summands: int) -> tuple[np.ndarray, bool]:
        """``x`` (float) in the ring, clamped to :meth:`limit`; also whether anything was clamped."""
        bound = self.limit(summands)
        clamped = bool(np.any(np.abs(x) > bound))
        q = np.rint(np.clip(x.astype(np.float64), -bound, bound) * 2.0**self.frac).astype(np.int64)
        return q.astype(np.int32 if self.bits == 32 else np.int64).view(self.dtype), clamped

    def decode(self, v: np.ndarray) -> np.ndarray:
        """Ring elements back to floats, reading the top half of the ring as negative."""
        signed = np.asarray(v, dtype=self.dtype).view(np.int32 if self.bits == 32 else np.int64)
        return signed.astype(np.float64) / 2.0**self.frac

    def to_wire(self, v: np.ndarray) -> np.ndarray:
        """Ring elements as int64 (the tensor that travels as the node's update)."""
        return v.astype(np.uint64).view(np.int64)

    def from_wire(self, w: np.ndarray) -> np.ndarray:
        return w.view(np.uint64).astype(self.dtype)


@functools.cache
def _crypto() -> Any:  # imported when SecAgg runs: a run without it never loads cryptography
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return {
        "serialization": serialization,
        "Private": X25519PrivateKey,
        "Public": X25519PublicKey,
        "Cipher": Cipher,
        "algorithms": algorithms,
        "modes": modes,
        "AESGCM": AESGCM,
    }


def expand(seed: bytes, size: int, ring: FixedPoint) -> np.ndarray:
    """The PRG: ``size`` ring elements from a 32-byte seed (the AES-256-CTR keystream, one call written
    straight into the array's memory)."""
    c = _crypto()
    nbytes = size * ring.bits // 8
    out = np.empty(nbytes + _SLACK, dtype=np.uint8)  # update_into asks for a block's slack past the data
    cipher = c["Cipher"](c["algorithms"].AES(seed), _ctr())
    cipher.encryptor().update_into(_zeros(nbytes), out)
    return out[:nbytes].view(ring.dtype)


_SLACK = 15  # AES block size - 1


@functools.cache
def _ctr() -> Any:
    """The CTR mode with the all-zero initial counter (one key per seed, so the counter never repeats)."""
    return _crypto()["modes"].CTR(b"\0" * 16)


@functools.lru_cache(maxsize=8)
def _zeros(nbytes: int) -> bytes:
    """The plaintext the keystream is read from, made once per vector size (a round expands it K k times)."""
    return bytes(nbytes)


def derive(shared: bytes, purpose: str, round_: int, u: int, v: int) -> bytes:
    """A 32-byte key for ``purpose`` ("mask" or "channel") of the pair {u, v}: HKDF-SHA256 of their agreement.

    RFC 5869 with no salt and one output block, as two HMAC-SHA256 calls of the standard library: the
    same bytes as ``cryptography``'s HKDF (tested) at a tenth of its per-call cost, K k times a round.
    """
    lo, hi = sorted((u, v))
    info = f"hypergpu-lab secagg {purpose} round {round_} pair {lo}-{hi}".encode()
    prk = hmac.digest(bytes(32), shared, "sha256")  # extract, salt = HashLen zero bytes
    return hmac.digest(prk, info + b"\x01", "sha256")  # expand, T(1): SEED_BYTES = 32 = HashLen


@functools.lru_cache(maxsize=4096)
def _public(raw: bytes) -> Any:
    """A public key parsed once per round and node, not once per pair."""
    return _crypto()["Public"].from_public_bytes(raw)


def _raw(key: Any) -> bytes:
    s = _crypto()["serialization"]
    return key.public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)


def _nonce(sender: int) -> bytes:
    return struct.pack(">I8x", sender)  # one key per pair and round, so (key, sender) never repeats


class SecAggClient:
    """One node's side of a round: its two key pairs, ``b_u``, the shares it holds, its masked input.

    ``agreements`` is the round's cache of pairwise X25519 results, shared by the simulated nodes:
    ``(kind, lo, hi) -> derived secret``, filled by whichever end computes it first.
    """

    def __init__(self, seed: int, round_: int, node: int, agreements: dict | None = None) -> None:
        Private = _crypto()["Private"]
        self.round, self.node = round_, node
        self._c = Private.from_private_bytes(stream(seed, KEY_TAG, round_, node, 0).bytes(32))
        self._s = Private.from_private_bytes(stream(seed, KEY_TAG, round_, node, 1).bytes(32))
        self.self_seed = stream(seed, KEY_TAG, round_, node, 2).bytes(SEED_BYTES)  # b_u
        self._coeffs = stream(seed, KEY_TAG, round_, node, 3)
        self._agreements = agreements if agreements is not None else {}
        self._inbox: dict[int, bytes] = {}
        self._own: np.ndarray | None = None

    @property
    def public_keys(self) -> tuple[bytes, bytes]:
        """Round 0: ``(c_u^PK, s_u^PK)``."""
        return _raw(self._c), _raw(self._s)

    def _agree(self, kind: str, other: int, public: bytes) -> Any:
        """The pair's derived secret: the mask seed (kind "s") or the AES-GCM channel (kind "c"), once per pair."""
        lo, hi = (self.node, other) if self.node < other else (other, self.node)
        got = self._agreements.get((kind, lo, hi))
        if got is None:
            shared = (self._c if kind == "c" else self._s).exchange(_public(public))
            if kind == "s":
                got = derive(shared, "mask", self.round, lo, hi)
            else:
                got = _crypto()["AESGCM"](derive(shared, "channel", self.round, lo, hi))
            self._agreements[kind, lo, hi] = got
        return got

    def mask_seed(self, other: int, s_public: bytes) -> bytes:
        """The PRG seed of the pairwise mask with ``other``: the same at both ends."""
        return self._agree("s", other, s_public)

    def _channel(self, other: int, c_public: bytes) -> Any:
        return self._agree("c", other, c_public)

    def share_keys(self, publics: dict[int, tuple[bytes, bytes]], threshold: int) -> dict[int, bytes]:
        """Round 1: Shamir shares of ``s_u^SK`` and ``b_u`` for every node of U1, encrypted to each holder."""
        s = _crypto()["serialization"]
        sk = self._s.private_bytes(s.Encoding.Raw, s.PrivateFormat.Raw, s.NoEncryption())
        nodes = sorted(publics)
        shares = shamir.share(shamir.to_field(sk + self.self_seed), [v + 1 for v in nodes], threshold, self._coeffs)
        wire = shares.astype(">u4")  # every holder's row in wire order, converted once
        out, nonce = {}, _nonce(self.node)
        for i, v in enumerate(nodes):
            if v == self.node:
                self._own = shares[i]
                continue
            payload = struct.pack(">II", self.node, v) + wire[i].tobytes()
            out[v] = self._channel(v, publics[v][0]).encrypt(nonce, payload, None)
        return out

    def receive(self, ciphertexts: dict[int, bytes]) -> None:
        """Round 1, second half: the ciphertexts the server relays to this node (sender -> ciphertext)."""
        self._inbox = dict(ciphertexts)

    def mask(self, x: np.ndarray, s_publics: dict[int, bytes], ring: FixedPoint) -> np.ndarray:
        """Round 2 as one node computes it alone: ``x`` (in the ring) plus ``PRG(b_u)`` and the pairwise masks with U2."""
        y = x + expand(self.self_seed, x.size, ring)
        for v, pk in s_publics.items():
            if v != self.node:
                m = expand(self.mask_seed(v, pk), x.size, ring)
                y = y + m if self.node < v else y - m
        return y

    def unmasking_shares(
        self, survivors: set[int], cohort: list[int], publics: dict[int, tuple[bytes, bytes]]
    ) -> dict[int, tuple[str, np.ndarray]]:
        """Round 4: for each node of U2 a share of ``b_u`` ("b") if it sent its input, else of ``s_u^SK`` ("s")."""
        rows = []
        for u in cohort:
            if u == self.node:
                rows.append(self._own.astype(">u4").tobytes())
                continue
            plain = self._channel(u, publics[u][0]).decrypt(_nonce(u), self._inbox[u], None)
            if len(plain) != 2 * NODE_ID_BYTES + SHARE_BYTES or struct.unpack(">II", plain[:8]) != (u, self.node):
                raise ValueError(f"SecAgg: a share from node {u} was addressed to another node or malformed")
            rows.append(plain[8:])
        shares = np.frombuffer(b"".join(rows), dtype=">u4").astype(np.int64).reshape(len(cohort), PIECES)
        half = PIECES // 2
        return {u: ("b", shares[i, half:]) if u in survivors else ("s", shares[i, :half]) for i, u in enumerate(cohort)}


def mask_inputs(
    clients: dict[int, SecAggClient],
    inputs: dict[int, np.ndarray],
    s_publics: dict[int, bytes],
    ring: FixedPoint,
    graph: dict[int, frozenset[int]] | None = None,
) -> dict[int, np.ndarray]:
    """Round 2 for all simulated nodes at once: each pair's mask is expanded once and added to both its ends.

    ``graph`` (SecAgg+) limits the pairs to neighbours; None is the complete graph. Equal to
    :meth:`SecAggClient.mask` node by node (tested); pairs of two nodes without an input are skipped.
    """
    if not inputs:
        return {}
    size = next(iter(inputs.values())).size
    y = {u: x + expand(clients[u].self_seed, size, ring) for u, x in inputs.items()}
    for u, v in pairs(sorted(s_publics), graph):
        if u in y or v in y:
            end, other = (u, v) if u in y else (v, u)
            m = expand(clients[end].mask_seed(other, s_publics[other]), size, ring)
            if u in y:
                y[u] += m
            if v in y:
                y[v] -= m
    return y


def pairs(cohort: list[int], graph: dict[int, frozenset[int]] | None) -> list[tuple[int, int]]:
    """The masked pairs ``(u, v)``, ``u < v``, of ``cohort``: all of them, or the graph's edges within it."""
    if graph is None:
        return [(u, v) for i, u in enumerate(cohort) for v in cohort[i + 1 :]]
    inside = set(cohort)
    return [(u, v) for u in cohort for v in sorted(graph[u] & inside) if u < v]


@dataclass
class SecAggServer:
    """Everything the server holds in one round: public keys, relayed ciphertexts, masked inputs,
    unmasking shares, the rebuilt secrets of the masks and the sum. Never a node's update."""

    ring: FixedPoint
    size: int
    round: int = 0
    threshold: int = 1
    publics: dict[int, tuple[bytes, bytes]] = field(default_factory=dict)  # U1: (c^PK, s^PK)
    relayed: dict[int, dict[int, bytes]] = field(default_factory=dict)  # U2: sender -> receiver -> ciphertext
    masked: dict[int, np.ndarray] = field(default_factory=dict)  # U3: masked inputs
    responses: dict[int, dict[int, tuple[str, np.ndarray]]] = field(default_factory=dict)  # responder -> shares
    graph: dict[int, frozenset[int]] | None = None  # SecAgg+: each node's neighbours; None = complete (classic)
    total: np.ndarray | None = None

    def neighbours(self, node: int) -> frozenset[int]:
        """The nodes ``node`` shares masks and keys with (every other node of U1 in classic SecAgg)."""
        if self.graph is None:
            return frozenset(self.publics) - {node}
        return self.graph[node] & self.publics.keys()

    def holders(self, node: int) -> list[int]:
        """Who holds a Shamir share of ``node``'s secrets: the node and its neighbours in U1."""
        return sorted(self.neighbours(node) | {node})

    @property
    def cohort(self) -> list[int]:
        """U2: the nodes whose shares went out; every masked input holds masks with each of them."""
        return sorted(self.relayed)

    def inbox(self, receiver: int) -> dict[int, bytes]:
        """What the server relays to ``receiver``: the ciphertexts addressed to it."""
        return {u: cts[receiver] for u, cts in self.relayed.items() if receiver in cts}

    def inboxes(self) -> dict[int, dict[int, bytes]]:
        """:meth:`inbox` of every receiver, in one pass over the relayed ciphertexts."""
        out: dict[int, dict[int, bytes]] = {}
        for u, cts in self.relayed.items():
            for v, ct in cts.items():
                out.setdefault(v, {})[u] = ct
        return out

    def dropped(self) -> list[int]:
        """Nodes of U2 without a masked input (their pairwise masks stay in the others' inputs)."""
        return sorted(set(self.cohort) - set(self.masked))

    def _secret(self, node: int, kind: str) -> bytes:
        """``b_u`` or ``s_u^SK`` of ``node`` from ``t`` responders' shares (refusing a mix of kinds)."""
        held = {r: shares[node] for r, shares in self.responses.items() if node in shares}
        if len(held) < self.threshold:
            raise SecAggAbort(
                f"node {node}: {len(held)} unmasking answers hold its shares, t = {self.threshold} needed"
            )
        if {k for k, _ in held.values()} != {kind}:
            raise ValueError(
                f"SecAgg: node {node} needs only {kind!r} shares, got {sorted({k for k, _ in held.values()})}"
            )
        xs = sorted(held)[: self.threshold]
        return shamir.from_field(shamir.reconstruct([r + 1 for r in xs], np.stack([held[r][1] for r in xs])))

    def unmask(self) -> np.ndarray:
        """The sum of the masked inputs without their self-masks and the dropped nodes' pairwise masks."""
        if len(self.responses) < self.threshold:
            raise SecAggAbort(f"{len(self.responses)} unmasking answers, t = {self.threshold} needed")
        c = _crypto()
        plus, minus = [self.masked[v] for v in sorted(self.masked)], []  # summed once each (wrapping in the ring)
        minus += [expand(self._secret(v, "b"), self.size, self.ring) for v in sorted(self.masked)]
        for u in self.dropped():
            sk = c["Private"].from_private_bytes(self._secret(u, "s"))
            for v in sorted(self.neighbours(u) & self.masked.keys()):
                shared = sk.exchange(_public(self.publics[v][1]))
                m = expand(derive(shared, "mask", self.round, u, v), self.size, self.ring)
                (minus if v < u else plus).append(m)  # v's input holds +m_vu if v < u, else -m_uv
        total = _ring_sum(plus, self.size, self.ring) - _ring_sum(minus, self.size, self.ring)
        self.total = total
        return total


def _ring_sum(rows: list[np.ndarray], size: int, ring: FixedPoint) -> np.ndarray:
    """The sum of ``rows`` in the ring, one numpy reduction (unsigned sums wrap mod 2^bits)."""
    if not rows:
        return np.zeros(size, dtype=ring.dtype)
    return np.sum(np.stack(rows), axis=0, dtype=ring.dtype)
