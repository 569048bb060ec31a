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
``topk``    the ``ceil(ratio P)`` largest-magnitude coordinates (ties to the lowest        Stich et al.
            index): their indices (uint16 when P <= 65536, else uint32) and float32        2018; Aji &
            values; with ``sign`` only their signs (1 bit each) and one float32 scale      Heafield 2017
            (mean |value|)
``sign``    every coordinate's sign (1 bit) and one scale ``||v||_1 / P``                  Karimireddy
                                                                                         et al. 2019
==========  ===========================================================================  ==========

Error feedback (EF, Seide et al. 2014; Karimireddy et al. 2019) makes the biased codecs
(``topk``, ``sign``) converge: a node adds what it failed to send last time to this update before
encoding, and keeps what it fails to send now: ``v = delta + e``; ``send C(v)``; ``e = v - C(v)``.
The residual ``e`` lives on the node, one per node, and is part of every checkpoint.

Coding (``coding``, QSGD and top-k only; default ``fixed``, the widths above): ``elias`` or ``rice``
send the nonzero positions as gaps to the previous one in variable-length codes instead (QSGD as its
paper's "Elias coding", Alistarh et al. 2017 Sec. 3.2: per nonzero its gap, sign bit and level; see
:mod:`~hypergpu_lab.bitcode`). Only the wire format changes: the same values are chosen (same
stochastic rounding), and the decoding equals the fixed-width one bit for bit.

==========  ==========================================================================================
coding      a message's bit stream (each padded to a byte; the float32 norms, values, scale and
            sign bits of the fixed format stay as they are beside it, except QSGD's signs)
==========  ==========================================================================================
``elias``   qsgd: gamma(m + 1) nonzeros; m gaps, Elias-gamma; m sign bits; m levels, Elias-gamma
            (none at s = 1, where every nonzero level is 1). topk: its m gaps, Elias-gamma
``rice``    the same with the gaps Golomb-Rice coded, ``g - 1`` with the message's best parameter
            (5 bits, before the gaps): fewer bits than gamma for the near-geometric gaps of a sparse update
==========  ==========================================================================================
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

from . import bitcode, checks
from .errors import ConfigError
from .streams import stream

log = logging.getLogger(__name__)

KINDS = ("none", "int8", "qsgd", "topk", "sign")
CODINGS = ("fixed", "elias", "rice")  # how qsgd and topk write positions (see the module docstring)
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
    coding
        ``qsgd`` and ``topk``: ``fixed`` widths, or the positions as ``elias`` (gamma) or ``rice``
        coded gaps (module docstring); the same decoded values, fewer bytes for sparse messages.
    """

    kind: str = "none"
    levels: int = 16
    bucket: int = 512
    ratio: float = 0.01
    sign: bool = False
    error_feedback: bool | None = None
    coding: str = "fixed"

    def __post_init__(self) -> None:
        checks.choice("train.compression", self.kind, KINDS)
        p = "train.compression_options."
        object.__setattr__(self, "levels", checks.integer(p + "levels", self.levels, low=1, high=32767))
        object.__setattr__(self, "bucket", checks.integer(p + "bucket", self.bucket, low=1))
        object.__setattr__(self, "ratio", checks.number(p + "ratio", self.ratio, 0, 1, open_low=True))
        checks.boolean(p + "sign", self.sign)
        checks.optional(checks.boolean, p + "error_feedback", self.error_feedback)
        checks.choice(p + "coding", self.coding, CODINGS)
        if self.coding != "fixed" and self.kind not in ("qsgd", "topk"):
            raise ConfigError(p + "coding", self.coding, "fixed (only qsgd and topk have a variable-length coding)")

    @classmethod
    def build(
        cls, kind: str, options: dict[str, Any] | None = None, *, field: str = "train.compression"
    ) -> CompressionSpec:
        """A spec from a config's kind and options; an option the codec does not read is refused by name.

        ``field`` names the config field in errors (``train.download_compression`` for the downlink).
        """
        options = checks.mapping_of_str(field + "_options", options or {})
        checks.choice(field, kind, KINDS)
        used = {
            "none": (),
            "int8": ("bucket",),
            "qsgd": ("levels", "bucket", "coding"),
            "topk": ("ratio", "sign", "coding"),
        }
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
        """A short name for reports: ``int8``, ``qsgd-s16``, ``topk-1%``, ``topk-1%-sign``, ``sign``; a
        coding other than fixed is appended (``qsgd-s2-rice``)."""
        coded = "" if self.coding == "fixed" else f"-{self.coding}"
        if self.kind == "qsgd":
            return f"qsgd-s{self.levels}{coded}"
        if self.kind == "topk":
            return f"topk-{self.ratio * 100:g}%" + ("-sign" if self.sign else "") + coded
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
def _code_type(bits: int) -> type[np.unsignedinteger]:
    """The smallest unsigned type that holds ``bits``-bit codes: one byte per code up to 8 bits."""
    return np.uint8 if bits <= 8 else np.uint16


def pack_bits(codes: np.ndarray, bits: int) -> np.ndarray:
    """Unsigned codes < 2**bits as ``bits`` bit planes of ceil(n / 8) bytes each (plane j holds bit j of every code).

    Planes rather than one interleaved stream: each is one vectorised mask and one ``packbits`` over
    contiguous memory, at a cost of at most ``bits - 1`` bytes over the dense stream. ``codes`` [..., n]
    gives planes [..., bits, ceil(n / 8)] (a stack of updates packs in one call).
    """
    c = codes.astype(_code_type(bits), copy=False)
    planes = np.empty(c.shape[:-1] + (bits, c.shape[-1]), dtype=c.dtype)
    for j in range(bits):
        np.bitwise_and(c, c.dtype.type(1 << j), out=planes[..., j, :])  # packbits packs nonzero as 1
    return np.packbits(planes, axis=-1, bitorder="little")


def unpack_bits(packed: np.ndarray, bits: int, n: int) -> np.ndarray:
    """The inverse of :func:`pack_bits`: ``n`` codes (per leading index), uint8 up to 8 bits, else uint16.

    The planes' bits are OR-ed together in 64-bit words, 8 (or 4) codes per shift: a shift per code
    would cost 5x more for QSGD's 6 planes.
    """
    lane = _code_type(bits)
    planes = np.unpackbits(packed, axis=-1, bitorder="little")  # [..., bits, 8 ceil(n / 8)], a whole word per 8
    planes = planes.astype(lane, copy=False).view(np.uint64)
    codes = planes[..., 0, :].copy()
    shifted = np.empty_like(codes)
    for j in range(1, bits):
        np.left_shift(planes[..., j, :], np.uint64(j), out=shifted)
        codes |= shifted
    return codes.view(lane)[..., :n]


def _buckets(v: np.ndarray, bucket: int) -> np.ndarray:
    """[K, n] as [K, buckets, bucket], zero-padded."""
    k, n = v.shape
    if n % bucket == 0:
        return v.reshape(k, -1, bucket)
    out = np.empty((k, -(-n // bucket) * bucket), dtype=v.dtype)
    out[:, :n], out[:, n:] = v, 0
    return out.reshape(k, -1, bucket)


def qsgd_bits(levels: int) -> int:
    """Bits per value for QSGD with ``levels`` levels per sign: codes -s..s, 2s + 1 of them."""
    return max(1, math.ceil(math.log2(2 * levels + 1)))


# -- top-k selection ---------------------------------------------------------------------------------
_SAMPLE_STRIDE = 16  # top-k's threshold comes from every 16th coordinate of a row


def top_indices(a: np.ndarray, m: int) -> np.ndarray:
    """Per row of ``a`` ([K, P], magnitudes), the columns of its ``m`` largest values in ascending order.

    Ties at the m-th largest value go to the lowest columns; NaN counts as the largest magnitude (as
    ``torch.topk`` orders it). Why not a top-k over each whole row: a threshold read from a strided
    sample keeps about 3 m candidates per row in one compare pass, and the exact selection then
    runs over those only (3-4x faster than ``torch.topk`` for 100 CNN updates, m = 1% of P). A row
    whose sample misjudges it (fewer than m candidates) takes every coordinate as a candidate.
    """
    k, n = a.shape
    a = np.where(np.isnan(a), np.float32(np.inf), a) if np.isnan(a.max(initial=0.0)) else a
    sample = a[:, ::_SAMPLE_STRIDE]
    w = sample.shape[1]
    j = min(w, 3 * m // _SAMPLE_STRIDE + 1)  # the sample's j-th largest has about 3 m of the row above it
    threshold = np.partition(sample, w - j, axis=1)[:, w - j]
    mask = a >= threshold[:, None]
    counts = np.count_nonzero(mask, axis=1)
    if (short := counts < m).any():
        mask[short], counts[short] = True, n
    flat = np.flatnonzero(mask)  # row by row, columns ascending
    rows = flat // n
    pos = np.arange(len(flat)) - np.repeat(np.cumsum(counts) - counts, counts)  # place within its row
    cand = np.full((k, int(counts.max())), -1.0, dtype=np.float32)  # padding below every magnitude
    col = np.zeros(cand.shape, dtype=np.int64)
    cand[rows, pos], col[rows, pos] = a.reshape(-1)[flat], flat - rows * n
    mth = np.partition(cand, cand.shape[1] - m, axis=1)[:, cand.shape[1] - m, None]  # the m-th largest value
    above, tied = cand > mth, cand == mth
    need = m - np.count_nonzero(above, axis=1)  # ties to take, lowest columns first
    keep = above | (tied & (np.cumsum(tied, axis=1) <= need[:, None]))
    return col[keep].reshape(k, m)


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
    if spec.coding != "fixed":
        return [Encoded(spec.kind, v.shape[1], w) for w in _encode_coded(v, spec, rng_for)]
    return _rows(spec.kind, v.shape[1], _encode_stack(v, spec, rng_for))


def decode_many(encs: list[Encoded], spec: CompressionSpec) -> np.ndarray:
    """The float32 [K, P] updates the server reconstructs from ``encs`` (one codec, one size)."""
    out = np.empty((len(encs), encs[0].size), dtype=np.float32)
    if spec.coding != "fixed":
        _decode_coded([e.arrays for e in encs], spec, out)
        return out
    arrays = {name: np.stack([e.arrays[name] for e in encs]) for name in encs[0].arrays}
    _decode_stack(encs[0].kind, arrays, spec, out)
    return out


def _rows(kind: str, n: int, arrays: dict[str, np.ndarray]) -> list[Encoded]:
    """One Encoded per row of the stacked wire arrays (row views, no copies)."""
    k = len(next(iter(arrays.values())))
    return [Encoded(kind, n, {name: a[i] for name, a in arrays.items()}) for i in range(k)]


def _encode_stack(
    v: np.ndarray, spec: CompressionSpec, rng_for: Callable[[int], np.random.Generator] | None
) -> dict[str, np.ndarray]:
    """The wire arrays of a contiguous float32 stack [K, P], each [K, ...]: row i is update i's."""
    k, n = v.shape
    kind = spec.kind
    if kind == "none":
        return {"values": v.copy()}
    if kind == "int8":
        b = _buckets(v, spec.bucket)
        scale = (np.abs(b).max(2) / 127).astype(np.float32)
        safe = np.where(scale > 0, scale, 1).astype(np.float32)
        q = np.clip(np.rint(b / safe[..., None]), -127, 127).astype(np.int8).reshape(k, -1)[:, :n]
        return {"scale": scale, "codes": q}
    if kind == "qsgd":
        if rng_for is None:
            raise ValueError("qsgd needs a random generator per update for its stochastic rounding")
        return _encode_qsgd(v, spec.levels, spec.bucket, rng_for)
    if kind == "topk":
        return _encode_topk(v, spec)
    if kind == "sign":
        scale = (np.abs(v).astype(np.float64).sum(1, keepdims=True) / max(n, 1)).astype(np.float32)
        return {"scale": scale, "signs": np.packbits(v >= 0, axis=1, bitorder="little")}
    raise AssertionError(f"unknown codec {kind}")


def _encode_qsgd(
    v: np.ndarray, s: int, bucket: int, rng_for: Callable[[int], np.random.Generator]
) -> dict[str, np.ndarray]:
    """QSGD's norms and bit planes."""
    norm, codes = _qsgd_codes(v, s, bucket, rng_for)
    return {"norm": norm, "codes": pack_bits(codes, qsgd_bits(s))}


def _qsgd_codes(
    v: np.ndarray, s: int, bucket: int, rng_for: Callable[[int], np.random.Generator]
) -> tuple[np.ndarray, np.ndarray]:
    """QSGD's norms [K, buckets] and codes ``s + sign x level`` [K, P]; in-place passes over a few
    bucket-shaped buffers (the stack stays in cache)."""
    k, n = v.shape
    b = _buckets(v, bucket)
    b64 = b.astype(np.float64)  # cast once: einsum's own cast per buffer costs 40% more, for the same sums
    norm = np.sqrt(np.einsum("kij,kij->ki", b64, b64)).astype(np.float32)
    safe = np.where(norm > 0, norm, 1).astype(np.float32)
    r = np.abs(b)
    r *= (np.float32(s) / safe)[..., None]
    draws = np.empty_like(r)
    for i in range(k):  # each update's own stream, drawn straight into its row
        rng_for(i).random(out=draws[i], dtype=np.float32)
    level = np.floor(r)
    r -= level  # r - floor(r): the chance of rounding up
    level += draws < r
    np.minimum(level, s, out=level)
    np.copysign(level, b, out=level)
    level += s  # the code: s + sign x level, in 0..2s
    return norm, level.reshape(k, -1)[:, :n].astype(_code_type(qsgd_bits(s)))


def _encode_topk(v: np.ndarray, spec: CompressionSpec) -> dict[str, np.ndarray]:
    """Top-k's sorted indices and values (or signs and a scale)."""
    k, n = v.shape
    m = _topk_count(spec.ratio, n)
    idx = top_indices(np.abs(v), m) if m < n else np.broadcast_to(np.arange(n), (k, n))
    kept = np.take_along_axis(v, idx, axis=1)
    idx = idx.astype(np.uint16 if n <= 65536 else np.uint32)
    if spec.sign:
        scale = np.abs(kept).mean(1, keepdims=True).astype(np.float32)
        return {"index": idx, "scale": scale, "signs": np.packbits(kept >= 0, axis=1, bitorder="little")}
    return {"index": idx, "values": kept}


def _decode_stack(kind: str, arrays: dict[str, np.ndarray], spec: CompressionSpec, out: np.ndarray) -> None:
    """Decode stacked wire arrays (as :func:`_encode_stack` gives them) into ``out`` (float32 [K, P])."""
    k, n = out.shape
    if kind == "none":
        out[...] = arrays["values"]
    elif kind == "int8":
        np.multiply(arrays["codes"], np.repeat(arrays["scale"], spec.bucket, axis=1)[:, :n], out=out)
    elif kind == "qsgd":
        s = spec.levels
        np.subtract(unpack_bits(arrays["codes"], qsgd_bits(s), n), np.float32(s), out=out)  # the signed levels
        _qsgd_scale(out, arrays["norm"], s, spec.bucket)
    elif kind == "topk":
        idx = arrays["index"].astype(np.int64)
        if "signs" in arrays:
            signs = np.unpackbits(arrays["signs"], axis=1, count=idx.shape[1], bitorder="little")
            values = (signs.astype(np.float32) * 2 - 1) * arrays["scale"]
        else:
            values = arrays["values"]
        out[...] = 0
        np.put_along_axis(out, idx, values, axis=1)
    elif kind == "sign":
        signs = np.unpackbits(arrays["signs"], axis=1, count=n, bitorder="little").astype(np.float32) * 2 - 1
        np.multiply(signs, arrays["scale"], out=out)
    else:
        raise AssertionError(f"unknown codec {kind}")


def _qsgd_scale(out: np.ndarray, norm: np.ndarray, s: int, bucket: int) -> None:
    """Signed levels [K, P] (in ``out``) times their bucket's norm / s, in place."""
    k, n = out.shape
    scale = norm / np.float32(s)
    full = n - n % bucket
    head = out[:, :full].reshape(k, -1, bucket)  # a view: whole buckets, each times its scale
    head *= scale[:, : full // bucket, None]
    out[:, full:] *= scale[:, full // bucket :]  # the last, partial bucket (if any)


def _topk_count(ratio: float, n: int) -> int:
    """The coordinates top-k keeps of ``n``."""
    return max(1, math.ceil(ratio * n))


# -- variable-length coding of the positions (coding "elias" or "rice") ---------------------------
_RICE_BITS = 5  # a message's Rice parameter, 0..31


def _gap_sections(rows: np.ndarray, pos: np.ndarray, k: int, coding: str) -> list[bitcode.Section]:
    """Sorted positions (per row, ascending) as gaps to the previous one (the first: to -1), coded."""
    gaps = np.diff(pos, prepend=-1)
    starts = np.searchsorted(rows, np.arange(k))  # each row's first position (where it has one) ...
    starts = starts[starts < len(rows)]
    gaps[starts] = pos[starts] + 1  # ... counts from -1
    if coding == "elias":
        return bitcode.gamma(rows, gaps)
    param = bitcode.rice_parameter(rows, gaps - 1, k)
    return [bitcode.fixed(np.arange(k), param, _RICE_BITS), *bitcode.rice(rows, gaps - 1, param)]


def _read_positions(reader: bitcode.Reader, counts: np.ndarray, coding: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of :func:`_gap_sections`: (rows, flat positions ``row * n + position``) of ``counts[r]``
    gaps per message."""
    if coding == "elias":
        rows, gaps = reader.gamma(counts)
    else:
        param = reader.runs(np.ones(reader.k, dtype=np.int64), np.full(reader.k, _RICE_BITS)).astype(np.int64)
        rows, gaps = reader.rice(counts, param)
        gaps += np.uint64(1)
    flat = np.cumsum(gaps.astype(np.int64))  # running sum over all rows ...
    before = np.concatenate([[0], flat[np.cumsum(counts) - 1]]) if len(flat) else np.zeros(len(counts) + 1, np.int64)
    before[1:][counts == 0] = 0
    before = np.maximum.accumulate(before)  # ... before each row
    if (np.diff(before) > n).any():  # gaps are >= 1, so only a row's last position can pass n - 1
        raise ValueError(f"a position past {n - 1}: the message is not this codec's")
    flat += (np.arange(len(counts)) * n - before[:-1] - 1)[rows]
    return rows, flat


def _encode_coded(
    v: np.ndarray, spec: CompressionSpec, rng_for: Callable[[int], np.random.Generator] | None
) -> list[dict[str, np.ndarray]]:
    """Each row's wire arrays with variable-length positions (QSGD: norms and one bit stream; top-k:
    the gap stream as ``index`` beside the fixed format's values, or scale and signs)."""
    k, n = v.shape
    step = max(1, _BLOCK_VALUES // max(n, 1))  # blocks of rows that stay in cache, as compress_many's
    if spec.kind == "topk":
        blocks = [_encode_topk(v[lo : lo + step], spec) for lo in range(0, k, step)]
        arrays = {name: np.concatenate([b[name] for b in blocks]) for name in blocks[0]}
        idx = arrays.pop("index").astype(np.int64)
        rows = np.repeat(np.arange(k), idx.shape[1])
        streams = bitcode.write(k, _gap_sections(rows, idx.reshape(-1), k, spec.coding))
        return [{"index": streams[i], **{name: a[i] for name, a in arrays.items()}} for i in range(k)]
    if rng_for is None:
        raise ValueError("qsgd needs a random generator per update for its stochastic rounding")
    s = spec.levels
    norms, flats, signs = [], [], []
    for lo in range(0, k, step):
        norm, codes = _qsgd_codes(v[lo : lo + step], s, spec.bucket, lambda i, lo=lo: rng_for(lo + i))
        flat = np.flatnonzero(codes != s)
        norms.append(norm)
        flats.append(flat + lo * n)
        signs.append(codes.reshape(-1)[flat].astype(np.int64) - s)
    norm, flat, signed = np.concatenate(norms), np.concatenate(flats), np.concatenate(signs)
    rows, pos = np.divmod(flat, n)
    sections = bitcode.gamma(np.arange(k), np.bincount(rows, minlength=k) + 1)
    sections += _gap_sections(rows, pos, k, spec.coding)
    sections.append(bitcode.fixed(rows, signed < 0, 1))
    if s > 1:
        sections += bitcode.gamma(rows, np.abs(signed))
    streams = bitcode.write(k, sections)
    return [{"norm": norm[i], "stream": streams[i]} for i in range(k)]


def _decode_coded(wire: list[dict[str, np.ndarray]], spec: CompressionSpec, out: np.ndarray) -> None:
    """Decode :func:`_encode_coded`'s rows into ``out`` (float32 [K, P]), equal to the fixed decoding."""
    k, n = out.shape
    if spec.kind == "topk":
        reader = bitcode.Reader([w["index"] for w in wire])
        m = _topk_count(spec.ratio, n)
        _, flat = _read_positions(reader, np.full(k, m), spec.coding, n)
        index = flat.reshape(k, m) - (np.arange(k) * n)[:, None]
        arrays = {name: np.stack([w[name] for w in wire]) for name in wire[0] if name != "index"}
        _decode_stack("topk", {"index": index, **arrays}, spec, out)
        return
    s = spec.levels
    reader = bitcode.Reader([w["stream"] for w in wire])
    counts = reader.gamma(np.ones(k, dtype=np.int64))[1].astype(np.int64) - 1
    rows, flat = _read_positions(reader, counts, spec.coding, n)
    negative = reader.runs(counts, np.ones(k, dtype=np.int64)).view(bool)
    level = reader.gamma(counts)[1].astype(np.float32) if s > 1 else np.ones(len(rows), dtype=np.float32)
    out[...] = 0
    np.negative(level, out=level, where=negative)
    out.reshape(-1)[flat] = level
    _qsgd_scale(out, np.stack([w["norm"] for w in wire]), s, spec.bucket)


def encoded_nbytes(spec: CompressionSpec, size: int) -> int:
    """The bytes :func:`encode` produces for ``size`` coordinates: exact for the fixed coding, an upper
    bound for ``elias`` and ``rice`` (whose size depends on the positions).

    Planners use it to price a level before choosing it; the network still carries ``Encoded.nbytes``
    (a test pins the two equal, or the bound above the encoding). The bounds: top-k's m gaps sum to at
    most P, so Elias-gamma's ``2 log2(g) + 1`` bits each sum to at most ``m (2 log2(P / m) + 1)``
    (Jensen), and Rice's to at most ``m (p + 1) + (P - m) / 2**p`` for the best p; QSGD may have
    every coordinate nonzero, so its bound (1 gap bit, 1 sign bit and the level's gamma bits per
    coordinate) is above the fixed size: a planner that must fit a budget should price it fixed.
    """
    if spec.coding != "fixed":
        return _coded_bound(spec, size)
    buckets = math.ceil(size / spec.bucket)
    if spec.kind == "none":
        return 4 * size
    if spec.kind == "int8":
        return size + 4 * buckets
    if spec.kind == "qsgd":
        return qsgd_bits(spec.levels) * math.ceil(size / 8) + 4 * buckets
    if spec.kind == "topk":
        k, index = _topk_count(spec.ratio, size), 2 if size <= 65536 else 4
        return k * index + (math.ceil(k / 8) + 4 if spec.sign else 4 * k)
    return math.ceil(size / 8) + 4  # sign


def _coded_bound(spec: CompressionSpec, size: int) -> int:
    """:func:`encoded_nbytes` for a variable-length coding: the most any update of ``size`` values takes."""

    if spec.kind == "topk":
        m = _topk_count(spec.ratio, size)
        if spec.coding == "elias":
            bits = math.ceil(m * (2 * math.log2(size / m) + 1) + 1e-6)
        else:
            bits = _RICE_BITS + min(m * (p + 1) + (size - m) // 2**p for p in range(2**_RICE_BITS))
        return math.ceil(bits / 8) + (math.ceil(m / 8) + 4 if spec.sign else 4 * m)
    # QSGD, m nonzeros of unknown number: c bits each for sign and level beside the gap
    c = 1 + (2 * int(spec.levels).bit_length() - 1 if spec.levels > 1 else 0)
    if spec.coding == "elias":  # max over m of m (2 log2(P/m) + 1 + c), at P/m = x below (>= 1)
        x = max(1.0, 2 ** ((2 / math.log(2) - 1 - c) / 2))
        bits = math.ceil(size * (2 * math.log2(x) + 1 + c) / x + 1e-6)
    else:  # Rice at p = 0 takes m + (P - m) = P bits for the gaps, whatever m
        bits = _RICE_BITS + size + size * c
    count = 2 * (size + 1).bit_length() - 1
    return math.ceil((count + bits) / 8) + 4 * math.ceil(size / spec.bucket)


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
        self,
        nodes: list[int],
        round_: int,
        deltas: torch.Tensor,
        spec: CompressionSpec | None = None,
        *,
        out: torch.Tensor | None = None,
    ) -> tuple[list[Encoded], torch.Tensor]:
        """:meth:`compress` for a stack of updates ``deltas`` [K, P] (row i is node ``nodes[i]``'s).

        The same encodings, decodings and residuals as K calls of :meth:`compress`, with array
        operations over blocks of rows instead of a loop over nodes. Blocks of about 512 KiB of
        float32, not the whole stack: a codec makes ~10 passes over its input, and a block that stays
        in cache makes them at cache speed (on a 2-core VM, 100 CNN updates: whole stack as slow as
        the loop for QSGD, blocks 1.5x faster, when the stacked codecs came in). Each block is summed with its
        residuals, encoded, decoded from its wire arrays and (with error feedback) turned into the
        new residuals in place, while it is in cache.

        ``out`` (float32, contiguous, [K, P]) receives the decoded updates and is returned; it may be
        ``deltas`` itself when the caller no longer needs them (each block is read before it is
        overwritten). A fresh [K, P] buffer costs a page fault per 4 KiB on first touch, about 2 ms
        for 100 CNN updates, as much as a codec's arithmetic.
        """
        spec = spec or self.spec
        t = time.perf_counter()
        deltas = deltas.detach().to(torch.float32)
        k, n = deltas.shape
        if out is None:
            out = torch.empty((k, n))
        elif out.dtype != torch.float32 or out.shape != (k, n) or not out.is_contiguous():
            raise ValueError(f"out must be a contiguous float32 tensor of shape {(k, n)}, got {out.dtype} {out.shape}")
        owed = [self.residual.pop(node, None) for node in nodes]
        # with error feedback v becomes the residuals, so it must be a buffer of our own
        fresh = spec.feedback or any(r is not None for r in owed)
        v = torch.empty((k, n)) if fresh else deltas.contiguous()
        given, vn, dn = deltas.numpy(), v.numpy(), out.numpy()
        # coded: one block, so the bit coding runs once over all rows (its cost is per call, not per value)
        rows = max(1, _BLOCK_VALUES // max(n, 1)) if spec.coding == "fixed" else k
        encs: list[Encoded] = []
        for lo in range(0, k, rows):
            block = slice(lo, min(lo + rows, k))
            if fresh:
                for i in range(block.start, block.stop):
                    np.add(given[i], owed[i].numpy(), out=vn[i]) if owed[i] is not None else np.copyto(vn[i], given[i])
            rng_for = lambda i, lo=lo: stream(self.seed, _QSGD_TAG, round_, nodes[lo + i])  # noqa: E731
            if spec.coding == "fixed":
                arrays = _encode_stack(vn[block], spec, rng_for)
                encs += _rows(spec.kind, n, arrays)
                _decode_stack(spec.kind, arrays, spec, dn[block])
            else:  # the server decodes the bit streams themselves
                wire = _encode_coded(vn[block], spec, rng_for)
                encs += [Encoded(spec.kind, n, w) for w in wire]
                _decode_coded(wire, spec, dn[block])
            if spec.feedback:
                np.subtract(vn[block], dn[block], out=vn[block])  # e = v - C(v), in v's place
        if spec.feedback:
            self.residual.update(zip(nodes, v.unbind()))
        self.wall_s += time.perf_counter() - t
        return encs, out

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
