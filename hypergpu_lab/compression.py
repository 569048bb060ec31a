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
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from . import checks
from .errors import ConfigError
from .streams import stream

log = logging.getLogger(__name__)

KINDS = ("none", "int8", "qsgd", "topk", "sign")
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
    contiguous memory, at a cost of at most ``bits - 1`` bytes over the dense stream.
    """
    c = codes.astype(np.uint16)
    planes = np.empty((bits, len(c)), dtype=np.uint8)
    for j in range(bits):
        np.bitwise_and(c >> j, 1, out=planes[j], casting="unsafe")
    return np.packbits(planes, axis=1, bitorder="little")


def unpack_bits(packed: np.ndarray, bits: int, n: int) -> np.ndarray:
    """The inverse of :func:`pack_bits`: ``n`` codes as uint32."""
    planes = np.unpackbits(packed, axis=1, count=n, bitorder="little")
    codes = np.zeros(n, dtype=np.uint32)
    for j in range(bits):
        codes |= planes[j].astype(np.uint32) << j
    return codes


def _buckets(v: np.ndarray, bucket: int) -> np.ndarray:
    out = np.zeros(-(-len(v) // bucket) * bucket, dtype=v.dtype)
    out[: len(v)] = v
    return out.reshape(-1, bucket)


def qsgd_bits(levels: int) -> int:
    """Bits per value for QSGD with ``levels`` levels per sign: codes -s..s, 2s + 1 of them."""
    return max(1, math.ceil(math.log2(2 * levels + 1)))


# -- codecs ------------------------------------------------------------------------------------------
def encode(v: np.ndarray, spec: CompressionSpec, rng: np.random.Generator | None = None) -> Encoded:
    """``v`` (float32 [P]) in ``spec``'s encoding; QSGD draws its rounding from ``rng``."""
    v = np.ascontiguousarray(v, dtype=np.float32)
    n, kind = len(v), spec.kind
    if kind == "none":
        return Encoded(kind, n, {"values": v.copy()})
    if kind == "int8":
        b = _buckets(v, spec.bucket)
        scale = (np.abs(b).max(1) / 127).astype(np.float32)
        safe = np.where(scale > 0, scale, 1).astype(np.float32)
        q = np.clip(np.rint(b / safe[:, None]), -127, 127).astype(np.int8).ravel()[:n]
        return Encoded(kind, n, {"scale": scale, "codes": q})
    if kind == "qsgd":
        if rng is None:
            raise ValueError("qsgd needs a random generator for its stochastic rounding")
        s, b = spec.levels, _buckets(v, spec.bucket)
        norm = np.sqrt(np.einsum("ij,ij->i", b, b, dtype=np.float64)).astype(np.float32)
        safe = np.where(norm > 0, norm, 1).astype(np.float32)
        r = np.abs(b) * (np.float32(s) / safe)[:, None]
        low = np.floor(r)
        level = low + (rng.random(r.shape, dtype=np.float32) < (r - low))
        signed = (np.copysign(np.minimum(level, s), b)).astype(np.int32).ravel()[:n]
        return Encoded(kind, n, {"norm": norm, "codes": pack_bits(signed + s, qsgd_bits(s))})
    if kind == "topk":
        k = max(1, math.ceil(spec.ratio * n))
        # torch.topk: about twice as fast as np.argpartition at this size; indices sorted so the encoding is canonical
        top = torch.topk(torch.from_numpy(np.abs(v)), k, sorted=False).indices.numpy() if k < n else np.arange(n)
        idx = np.sort(top)
        idx = idx.astype(np.uint16 if n <= 65536 else np.uint32)
        kept = v[idx.astype(np.int64)]
        if spec.sign:
            scale = np.array([np.abs(kept).mean()], dtype=np.float32)
            return Encoded(kind, n, {"index": idx, "scale": scale, "signs": np.packbits(kept >= 0, bitorder="little")})
        return Encoded(kind, n, {"index": idx, "values": kept})
    if kind == "sign":
        scale = np.array([np.abs(v).astype(np.float64).sum() / max(n, 1)], dtype=np.float32)
        return Encoded(kind, n, {"scale": scale, "signs": np.packbits(v >= 0, bitorder="little")})
    raise AssertionError(f"unknown codec {kind}")


def decode(enc: Encoded, spec: CompressionSpec) -> np.ndarray:
    """The float32 [P] update the server reconstructs from ``enc``."""
    n, a = enc.size, enc.arrays
    if enc.kind == "none":
        return a["values"].copy()
    if enc.kind == "int8":
        scale = np.repeat(a["scale"], spec.bucket)[:n]
        return (a["codes"].astype(np.float32) * scale).astype(np.float32)
    if enc.kind == "qsgd":
        s = spec.levels
        signed = unpack_bits(a["codes"], qsgd_bits(s), n).astype(np.int64) - s
        norm = np.repeat(a["norm"], spec.bucket)[:n]
        return (norm * (signed.astype(np.float32) / np.float32(s))).astype(np.float32)
    if enc.kind == "topk":
        out = np.zeros(n, dtype=np.float32)
        idx = a["index"].astype(np.int64)
        if "signs" in a:
            signs = np.unpackbits(a["signs"], count=len(idx), bitorder="little").astype(np.float32) * 2 - 1
            out[idx] = signs * a["scale"][0]
        else:
            out[idx] = a["values"]
        return out
    if enc.kind == "sign":
        signs = np.unpackbits(a["signs"], count=n, bitorder="little").astype(np.float32) * 2 - 1
        return (signs * a["scale"][0]).astype(np.float32)
    raise AssertionError(f"unknown codec {enc.kind}")


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
