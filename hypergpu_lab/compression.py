"""Update compression: encoded on the node before upload, decoded on the server; the network carries the encoding.

Four codecs from the communication-efficient FL literature, each an ``encode`` to plain numpy
arrays (what would be written to the wire) and a ``decode`` back to a float32 delta. The bytes a
transfer carries are the sum of those arrays' sizes, so the simulated cost of an upload is
measured from the encoded form, never estimated from a ratio.

==========  ===========================================================================  ==========
kind        what is sent                                                                 paper
==========  ===========================================================================  ==========
``int8``    per bucket of ``bucket`` values: one float32 scale (max |v| / 127) and        (linear
            int8 codes ``round(v / scale)``                                               8-bit)
``qsgd``    per bucket: its L2 norm (float32) and each value's sign and level in          Alistarh
            ``0..levels``, rounded up with probability ``r - floor(r)`` for               et al. 2017
            ``r = levels |v| / norm`` (unbiased), in ``ceil(log2(2s+1))`` bit planes
``topk``    the ``ceil(ratio P)`` largest-magnitude coordinates: their indices (uint16     Stich et al.
            when P <= 65536, else uint32) and float32 values; with ``sign`` only their     2018; Aji &
            signs (1 bit each) and one float32 scale (mean |value|)                      Heafield 2017
``sign``    every coordinate's sign (1 bit) and one scale ``||v||_1 / P``                  Karimireddy
                                                                                         et al. 2019
==========  ===========================================================================  ==========

Error feedback (EF, Seide et al. 2014; Karimireddy et al. 2019) makes the biased codecs
(``topk``, ``sign``) converge: a node adds what it failed to send last time to this update before
encoding, and keeps what it fails to send now: ``v = delta + e``; ``send C(v)``; ``e = v - C(v)``.
The residual ``e`` lives on the node, one per node, and is part of every checkpoint.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from . import checks
from .errors import ConfigError
from .streams import stream

log = logging.getLogger(__name__)

KINDS = ("none", "int8", "qsgd", "topk", "sign")
_BLOCK_VALUES = 1 << 17  # values per block of rows the stacked codecs work on (512 KiB of float32)
_QSGD_TAG = 0x5153_4744  # "QSGD": stream tag of the stochastic rounding (see streams.py)


@dataclass(frozen=True)
class CompressionSpec:
    """One codec and its options (``TrainConfig.compression`` and ``compression_options``).

    Attributes
    ----------
    kind
        ``none``, ``int8``, ``qsgd``, ``topk`` or ``sign``.
    levels
        QSGD's s: quantisation levels per sign, 1..32767 (2 bits per value at s = 1).
    bucket
        Values per scale for ``int8`` and ``qsgd``: smaller buckets cost more scales, lose less.
    ratio
        ``topk``: the share of coordinates sent, in (0, 1].
    sign
        ``topk``: send only the signs of the kept values and one scale.
    error_feedback
        Keep and re-send the residual; None means on for the biased codecs (topk, sign).
    """

    kind: str = "none"
    levels: int = 16
    bucket: int = 512
    ratio: float = 0.01
    sign: bool = False
    error_feedback: bool | None = None

    def __post_init__(self) -> None:
        checks.choice("train.compression", self.kind, KINDS)
        p = "train.compression_options."
        object.__setattr__(self, "levels", checks.integer(p + "levels", self.levels, low=1, high=32767))
        object.__setattr__(self, "bucket", checks.integer(p + "bucket", self.bucket, low=1))
        object.__setattr__(self, "ratio", checks.number(p + "ratio", self.ratio, 0, 1, open_low=True))
        checks.boolean(p + "sign", self.sign)
        checks.optional(checks.boolean, p + "error_feedback", self.error_feedback)

    @classmethod
    def build(
        cls, kind: str, options: dict[str, Any] | None = None, *, field: str = "train.compression"
    ) -> CompressionSpec:
        """A spec from a config's kind and options; an option the codec does not read is refused by name.

        ``field`` names the config field in errors (``train.download_compression`` for the downlink).
        """
        options = checks.mapping_of_str(field + "_options", options or {})
        checks.choice(field, kind, KINDS)
        used = {"none": (), "int8": ("bucket",), "qsgd": ("levels", "bucket"), "topk": ("ratio", "sign")}
        accepted = used.get(kind, ()) + (("error_feedback",) if kind != "none" else ())
        if unknown := sorted(set(options) - set(accepted)):
            raise ConfigError(
                f"{field}_options.{unknown[0]}",
                options[unknown[0]],
                f"options of {kind}: " + (", ".join(accepted) or "none"),
            )
        try:
            return cls(kind=kind, **options)
        except ConfigError as e:  # the checks name the upload's field: name the one being built
            raise ConfigError(e.field.replace("train.compression", field, 1), e.value, e.accepted, e.hint) from None

    @property
    def feedback(self) -> bool:
        """Whether this codec keeps an error-feedback residual."""
        if self.kind == "none":
            return False
        return self.kind in ("topk", "sign") if self.error_feedback is None else self.error_feedback

    @property
    def label(self) -> str:
        """A short name for reports: ``int8``, ``qsgd-s16``, ``topk-1%``, ``topk-1%-sign``, ``sign``."""
        if self.kind == "qsgd":
            return f"qsgd-s{self.levels}"
        if self.kind == "topk":
            return f"topk-{self.ratio * 100:g}%" + ("-sign" if self.sign else "")
        return self.kind


LADDER: dict[str, CompressionSpec] = {
    s.label: s
    for s in (
        CompressionSpec("none"),
        CompressionSpec("int8"),
        CompressionSpec("topk", ratio=0.1),
        CompressionSpec("topk", ratio=0.01),
    )
}
"""The levels a planner may choose per node, lightest compression first (see adaptation's per-link choice)."""


@dataclass(frozen=True)
class Encoded:
    """An update as it crosses the network: the codec and its arrays; ``nbytes`` is their size."""

    kind: str
    size: int  # P: coordinates in the decoded update
    arrays: dict[str, np.ndarray]

    @property
    def nbytes(self) -> int:
        return int(sum(a.nbytes for a in self.arrays.values()))


# -- bit packing -----------------------------------------------------------------------------------
def pack_bits(codes: np.ndarray, bits: int) -> np.ndarray:
    """Unsigned codes < 2**bits as ``bits`` bit planes of ceil(n / 8) bytes each (plane j holds bit j of every code).

    Planes rather than one interleaved stream: each is one vectorised shift and one ``packbits`` over
    contiguous memory, at a cost of at most ``bits - 1`` bytes over the dense stream. ``codes`` [..., n]
    gives planes [..., bits, ceil(n / 8)] (a stack of updates packs in one call).
    """
    c = codes.astype(np.uint16)
    planes = np.empty(c.shape[:-1] + (bits, c.shape[-1]), dtype=np.uint8)
    for j in range(bits):
        np.bitwise_and(c >> j, 1, out=planes[..., j, :], casting="unsafe")
    return np.packbits(planes, axis=-1, bitorder="little")


def unpack_bits(packed: np.ndarray, bits: int, n: int) -> np.ndarray:
    """The inverse of :func:`pack_bits`: ``n`` codes (per leading index) as uint32."""
    planes = np.unpackbits(packed, axis=-1, count=n, bitorder="little")
    codes = np.zeros(packed.shape[:-2] + (n,), dtype=np.uint32)
    for j in range(bits):
        codes |= planes[..., j, :].astype(np.uint32) << j
    return codes


def _buckets(v: np.ndarray, bucket: int) -> np.ndarray:
    """[K, n] as [K, buckets, bucket], zero-padded."""
    k, n = v.shape
    if n % bucket == 0:
        return v.reshape(k, -1, bucket)
    out = np.zeros((k, -(-n // bucket) * bucket), dtype=v.dtype)
    out[:, :n] = v
    return out.reshape(k, -1, bucket)


def qsgd_bits(levels: int) -> int:
    """Bits per value for QSGD with ``levels`` levels per sign: codes -s..s, 2s + 1 of them."""
    return max(1, math.ceil(math.log2(2 * levels + 1)))


# -- codecs: a stack of K updates [K, P] at once (one update is a stack of one) ---------------------
def encode(v: np.ndarray, spec: CompressionSpec, rng: np.random.Generator | None = None) -> Encoded:
    """``v`` (float32 [P]) in ``spec``'s encoding; QSGD draws its rounding from ``rng``."""
    return encode_many(np.asarray(v)[None], spec, None if rng is None else lambda _: rng)[0]


def decode(enc: Encoded, spec: CompressionSpec) -> np.ndarray:
    """The float32 [P] update the server reconstructs from ``enc``."""
    return decode_many([enc], spec)[0]


def encode_many(
    v: np.ndarray, spec: CompressionSpec, rng_for: Callable[[int], np.random.Generator] | None = None
) -> list[Encoded]:
    """Each row of ``v`` (float32 [K, P]) in ``spec``'s encoding, with whole-stack array operations.

    Row i equals ``encode(v[i], spec, rng_for(i))`` byte for byte (QSGD draws row i's rounding from
    ``rng_for(i)`` before asking for row i + 1's: keyed streams share one generator, see streams.py);
    each Encoded holds row views of the stack's arrays, so ``nbytes`` is row i's share.
    """
    v = np.ascontiguousarray(v, dtype=np.float32)
    k, n = v.shape
    kind = spec.kind
    if kind == "none":
        out = v.copy()
        return [Encoded(kind, n, {"values": out[i]}) for i in range(k)]
    if kind == "int8":
        b = _buckets(v, spec.bucket)
        scale = (np.abs(b).max(2) / 127).astype(np.float32)
        safe = np.where(scale > 0, scale, 1).astype(np.float32)
        q = np.clip(np.rint(b / safe[..., None]), -127, 127).astype(np.int8).reshape(k, -1)[:, :n]
        return [Encoded(kind, n, {"scale": scale[i], "codes": q[i]}) for i in range(k)]
    if kind == "qsgd":
        if rng_for is None:
            raise ValueError("qsgd needs a random generator per update for its stochastic rounding")
        s, b = spec.levels, _buckets(v, spec.bucket)
        norm = np.sqrt(np.einsum("kij,kij->ki", b, b, dtype=np.float64)).astype(np.float32)
        safe = np.where(norm > 0, norm, 1).astype(np.float32)
        r = np.abs(b)
        r *= (np.float32(s) / safe)[..., None]
        draws = np.stack([rng_for(i).random(b.shape[1:], dtype=np.float32) for i in range(k)])
        level = np.floor(r)
        r -= level  # r - floor(r): the chance of rounding up
        level += draws < r
        np.minimum(level, s, out=level)
        signed = np.copysign(level, b).astype(np.int32).reshape(k, -1)[:, :n]
        signed += s
        codes = pack_bits(signed, qsgd_bits(s))
        return [Encoded(kind, n, {"norm": norm[i], "codes": codes[i]}) for i in range(k)]
    if kind == "topk":
        m = max(1, math.ceil(spec.ratio * n))
        if m < n:
            # torch.topk along the rows: one call for the stack; indices sorted so the encoding is canonical
            top = torch.topk(torch.from_numpy(v).abs(), m, dim=1, sorted=False).indices
            idx = torch.sort(top, dim=1).values.numpy()
        else:
            idx = np.broadcast_to(np.arange(n), (k, n))
        kept = np.take_along_axis(v, idx, axis=1)
        idx = idx.astype(np.uint16 if n <= 65536 else np.uint32)
        if spec.sign:
            scale = np.abs(kept).mean(1, keepdims=True).astype(np.float32)
            signs = np.packbits(kept >= 0, axis=1, bitorder="little")
            return [Encoded(kind, n, {"index": idx[i], "scale": scale[i], "signs": signs[i]}) for i in range(k)]
        return [Encoded(kind, n, {"index": idx[i], "values": kept[i]}) for i in range(k)]
    if kind == "sign":
        scale = (np.abs(v).astype(np.float64).sum(1, keepdims=True) / max(n, 1)).astype(np.float32)
        signs = np.packbits(v >= 0, axis=1, bitorder="little")
        return [Encoded(kind, n, {"scale": scale[i], "signs": signs[i]}) for i in range(k)]
    raise AssertionError(f"unknown codec {kind}")


def decode_many(encs: list[Encoded], spec: CompressionSpec) -> np.ndarray:
    """The float32 [K, P] updates the server reconstructs from ``encs`` (one codec, one size)."""
    n, kind = encs[0].size, encs[0].kind

    def stacked(name: str) -> np.ndarray:
        return np.stack([e.arrays[name] for e in encs])

    if kind == "none":
        return stacked("values")
    if kind == "int8":
        scale = np.repeat(stacked("scale"), spec.bucket, axis=1)[:, :n]
        return stacked("codes").astype(np.float32) * scale
    if kind == "qsgd":
        s = spec.levels
        levels = unpack_bits(stacked("codes"), qsgd_bits(s), n).astype(np.float32)
        levels -= np.float32(s)
        levels *= np.repeat(stacked("norm") / np.float32(s), spec.bucket, axis=1)[:, :n]
        return levels
    if kind == "topk":
        out = np.zeros((len(encs), n), dtype=np.float32)
        idx = stacked("index").astype(np.int64)
        if "signs" in encs[0].arrays:
            signs = np.unpackbits(stacked("signs"), axis=1, count=idx.shape[1], bitorder="little")
            values = (signs.astype(np.float32) * 2 - 1) * stacked("scale")
        else:
            values = stacked("values")
        np.put_along_axis(out, idx, values, axis=1)
        return out
    if kind == "sign":
        signs = np.unpackbits(stacked("signs"), axis=1, count=n, bitorder="little").astype(np.float32) * 2 - 1
        return signs * stacked("scale")
    raise AssertionError(f"unknown codec {kind}")


def encoded_nbytes(spec: CompressionSpec, size: int) -> int:
    """The bytes :func:`encode` produces for ``size`` coordinates: every codec here has a fixed size.

    Planners use it to price a level before choosing it; the network still carries ``Encoded.nbytes``
    (a test pins the two equal).
    """
    buckets = math.ceil(size / spec.bucket)
    if spec.kind == "none":
        return 4 * size
    if spec.kind == "int8":
        return size + 4 * buckets
    if spec.kind == "qsgd":
        return qsgd_bits(spec.levels) * math.ceil(size / 8) + 4 * buckets
    if spec.kind == "topk":
        k, index = max(1, math.ceil(spec.ratio * size)), 2 if size <= 65536 else 4
        return k * index + (math.ceil(k / 8) + 4 if spec.sign else 4 * k)
    return math.ceil(size / 8) + 4  # sign


# -- the node side: codecs plus error-feedback memory -----------------------------------------------
class UpdateCompressor:
    """Each node's encoder and its error-feedback residual; the server's decoder.

    The residuals are node state the simulation keeps here (the nodes are simulated in this
    process); :meth:`state_dict` carries them through checkpoints, so a resumed run sends the same
    bytes as an uninterrupted one. ``wall_s`` accumulates the real seconds spent encoding and
    decoding (a benchmark figure; no decision reads it).
    """

    def __init__(self, spec: CompressionSpec, *, seed: int) -> None:
        self.spec, self.seed = spec, seed
        self.residual: dict[int, torch.Tensor] = {}  # node -> float32 [P]
        self.wall_s = 0.0

    def compress(
        self, node: int, round_: int, delta: torch.Tensor, spec: CompressionSpec | None = None
    ) -> tuple[Encoded, torch.Tensor]:
        """Encode ``delta`` as node ``node`` would (adding and updating its residual) and decode it.

        Returns the encoding (its ``nbytes`` is what the upload carries) and the decoded update the
        server applies.
        """
        spec = spec or self.spec
        t = time.perf_counter()
        v = delta.detach().to(torch.float32)
        if node in self.residual:  # also when this round's codec keeps none: what was owed is sent now
            v = v + self.residual.pop(node)
        rng = stream(self.seed, _QSGD_TAG, round_, node) if spec.kind == "qsgd" else None
        enc = encode(v.numpy(), spec, rng)
        decoded = torch.from_numpy(decode(enc, spec))
        if spec.feedback:
            self.residual[node] = v - decoded
        self.wall_s += time.perf_counter() - t
        return enc, decoded

    def compress_many(
        self, nodes: list[int], round_: int, deltas: torch.Tensor, spec: CompressionSpec | None = None
    ) -> tuple[list[Encoded], torch.Tensor]:
        """:meth:`compress` for a stack of updates ``deltas`` [K, P] (row i is node ``nodes[i]``'s).

        The same encodings, decodings and residuals as K calls of :meth:`compress`, with array
        operations over blocks of rows instead of a loop over nodes. Blocks of about 512 KiB of
        float32, not the whole stack: a codec makes ~10 passes over its input, and a block that stays
        in cache makes them at cache speed (on a 2-core VM, 100 CNN updates: whole stack as slow as
        the loop for QSGD, blocks 1.5x faster; see BENCHMARKS.md).
        """
        spec = spec or self.spec
        t = time.perf_counter()
        v = deltas.detach().to(torch.float32)
        owed = [i for i, n in enumerate(nodes) if n in self.residual]
        if owed:
            v = v.clone()
            v[owed] += torch.stack([self.residual.pop(nodes[i]) for i in owed])
        rows = max(1, _BLOCK_VALUES // max(v.shape[1], 1))
        encs: list[Encoded] = []
        decoded = torch.empty_like(v)
        for lo in range(0, len(nodes), rows):
            hi = min(lo + rows, len(nodes))
            block = nodes[lo:hi]
            encs += encode_many(v[lo:hi].numpy(), spec, lambda i, b=block: stream(self.seed, _QSGD_TAG, round_, b[i]))
            decoded[lo:hi] = torch.from_numpy(decode_many(encs[lo:hi], spec))
        if spec.feedback:
            self.residual.update(zip(nodes, (v - decoded).unbind()))
        self.wall_s += time.perf_counter() - t
        return encs, decoded

    def undelivered(self, node: int, decoded: torch.Tensor) -> None:
        """The node's upload failed (it gave up, or went offline): what it tried to send is owed again.

        Only a codec with error feedback keeps a residual to add it to; without one the update is lost,
        as an uncompressed one would be.
        """
        if node in self.residual:
            self.residual[node] = self.residual[node] + decoded

    def state_dict(self) -> dict[str, Any]:
        return {"residual": {int(n): r.clone() for n, r in sorted(self.residual.items())}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.residual = {int(n): r.clone() for n, r in state.get("residual", {}).items()}


def spec_dict(spec: CompressionSpec) -> dict[str, Any]:
    """The spec as plain data (for logs and notebooks)."""
    return dataclasses.asdict(spec)
