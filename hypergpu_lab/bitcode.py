"""Prefix codes for the sparse codecs' integers (Elias-gamma, Golomb-Rice), for many messages at once.

Why: a sparse update's positions and small levels cost far fewer bits as variable-length codes than
as fixed-width integers; QSGD's "Elias coding" (Alistarh et al. 2017, Sec. 3.2) sends each nonzero's
gap to the previous one and its level with Elias codes, and gaps of roughly geometric size are
what a Golomb-Rice code (Golomb 1966; Rice 1979) is optimal for.

Every code here is a *unary part* (``u`` zeros, then a one) and a *remainder* of ``w`` bits:

* Elias-gamma of ``x >= 1``: ``u = L - 1`` and ``x - 2**(L-1)`` in ``L - 1`` bits, ``L`` the bit
  length of ``x`` (``2L - 1`` bits in all);
* Golomb-Rice with parameter ``k`` of ``y >= 0``: ``u = y >> k`` and ``y mod 2**k`` in ``k`` bits.

A field of ``m`` codes is written as its ``m`` unary parts, then its ``m`` remainders: the same bits
as interleaving them, but a reader then finds every code's length with one search for ones and reads
the remainders with array operations, not a bit-by-bit loop.

Messages are sequences of *sections* (runs of bit fields written MSB first). :func:`write` lays out
K messages at once, each padded to a whole byte, and :class:`Reader` reads them back section by
section, all K at a time. Rows of codes are given as ``rows`` (the message of each code, ascending).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Section:
    """Bit fields to write: per field its message ``rows``, its ``values`` and its ``widths`` in bits.

    A value is written MSB first in its width (high zeros included); ``values`` None writes the value
    1 in each width: the unary parts ``u`` as ``u + 1`` bits.
    """

    rows: np.ndarray  # int64, ascending
    values: np.ndarray | None  # unsigned (or bool for 1-bit fields) < 2**widths; None: every value 1
    widths: np.ndarray  # int64


_BIT_LENGTH = np.frexp(np.arange(1 << 16, dtype=np.float64))[1].astype(np.int64)  # a table for small values


def bit_length(x: np.ndarray) -> np.ndarray:
    """The bit length of each nonnegative integer (< 2**53), 0 for 0."""
    x = np.asarray(x)
    if x.dtype.kind in "ui" and (not len(x) or x.max() < len(_BIT_LENGTH)):
        return _BIT_LENGTH[x]
    return np.frexp(np.asarray(x, dtype=np.float64))[1].astype(np.int64)


def gamma(rows: np.ndarray, x: np.ndarray) -> list[Section]:
    """Elias-gamma codes of ``x >= 1``: the unary section, then the remainders."""
    x = np.asarray(x, dtype=np.uint64)
    low = bit_length(x) - 1
    return [Section(rows, None, low + 1), Section(rows, x - (np.uint64(1) << low.astype(np.uint64)), low)]


def rice(rows: np.ndarray, y: np.ndarray, k: np.ndarray) -> list[Section]:
    """Golomb-Rice codes of ``y >= 0`` with each row's parameter ``k`` (int64 [K])."""
    y = np.asarray(y, dtype=np.uint64)
    kk = k[rows].astype(np.uint64)
    u = (y >> kk).astype(np.int64)
    return [
        Section(rows, None, u + 1),
        Section(rows, y & ((np.uint64(1) << kk) - np.uint64(1)), kk.astype(np.int64)),
    ]


def fixed(rows: np.ndarray, values: np.ndarray, width: int) -> Section:
    """Each value in ``width`` bits (bool values for 1-bit flags)."""
    values = np.asarray(values)
    return Section(
        rows, values if values.dtype == bool else values.astype(np.uint64), np.full(len(rows), width, dtype=np.int64)
    )


def rice_parameter(rows: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """Per row, the Rice parameter in 0..31 that codes its ``y`` in the fewest bits.

    A row's cost ``sum(y >> p) + m (p + 1)`` is convex in ``p`` (its decrease from ``p`` to ``p + 1``,
    ``sum(ceil((y >> p) / 2)) - m``, only shrinks), so a walk from the mean's bit length to the first
    local minimum finds the global one.
    """
    y = np.asarray(y, dtype=np.uint64)
    ends = _row_ends(rows, k)
    m = np.diff(ends, prepend=0)
    mean = _row_sums(y, ends) // np.maximum(m, 1).astype(np.uint64)
    low = np.clip(bit_length(mean) - 2, 0, 29)  # floor(log2(mean)) - 1: the optimum is near log2(mean ln 2)
    shifted = y >> low[rows].astype(np.uint64)  # one gather, then the three candidates low, low + 1, low + 2
    costs = np.stack([_row_sums(shifted >> np.uint64(j), ends) + m * (low + j) for j in range(3)])
    best = costs.argmin(axis=0)
    p, here = low + best, costs.min(axis=0)
    if not ((best == 0) & (low > 0)).any() and not ((best == 2) & (p < 31)).any():
        return p

    def cost(q: np.ndarray) -> np.ndarray:
        return _row_sums(y >> q[rows].astype(np.uint64), ends) + m * q

    for step in (-1, 1):  # walk down, then up, while it pays (rows far from geometric)
        while True:
            q = np.clip(p + step, 0, 31)
            there = cost(q)
            better = there < here
            if not better.any():
                break
            p, here = np.where(better, q, p), np.where(better, there, here)
    return p


def write(k: int, sections: list[Section]) -> list[np.ndarray]:
    """K messages, each its fields of every section in order, as K uint8 arrays (views of one buffer)."""
    if k == 0:
        return []
    ends = [_row_ends(s.rows, k) for s in sections]
    done = [np.cumsum(s.widths) for s in sections]  # bits up to and including each field, section-wide
    per_row = [np.diff(_take0(c, e)) for c, e in zip(done, ends)]
    total = np.sum(per_row, axis=0) if per_row else np.zeros(k, dtype=np.int64)
    nbytes = (total + 7) // 8
    base = 8 * (np.cumsum(nbytes) - nbytes)  # each message's first bit, then each section's
    bits = np.zeros(8 * int(nbytes.sum()), dtype=np.uint8)
    for s, c, e, bits_of_row in zip(sections, done, ends, per_row):
        if len(s.rows):
            last = c - 1 + (base - _take0(c, e)[:-1])[s.rows]  # where each value's lowest bit goes
            _scatter(bits, last, s.values, s.widths)
        base += bits_of_row
    packed = np.packbits(bits)
    return np.split(packed, np.cumsum(nbytes)[:-1])


def _row_ends(rows: np.ndarray, k: int) -> np.ndarray:
    """Per message r, the index after its last field in ``rows`` (ascending): [k]."""
    return np.searchsorted(rows, np.arange(k), side="right")


def _row_sums(x: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Per message, the sum of its fields' ``x`` (rows ascending, ``ends`` from :func:`_row_ends`): int64 [k]."""
    return np.diff(_take0(np.cumsum(x, dtype=np.int64), ends))


def _take0(cum: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """``cum`` (a cumulative sum) before the first field and at each row's end: [k + 1], from 0."""
    return np.concatenate([[0], cum[ends - 1] * (ends > 0)]) if len(cum) else np.zeros(len(ends) + 1, np.int64)


def _scatter(bits: np.ndarray, last: np.ndarray, values: np.ndarray | None, widths: np.ndarray) -> None:
    """Set the one bits of ``values`` (None: each the value 1), bit j of each at ``last - j``."""
    if values is None:
        bits[last] = 1
        return
    if values.dtype == bool:
        bits[last[values]] = 1
        return
    if len(widths) and widths.min() == 0:  # a 0-bit field's ``last`` is its neighbour's: no duplicate indices below
        keep = widths > 0
        values, last = values[keep], last[keep]
    width = int(values.max(initial=0)).bit_length()
    column = np.empty(len(values), dtype=np.uint64)
    for j in range(width):  # bit j of every value; OR, so a field narrower than j + 1 leaves its neighbour's bit
        np.right_shift(values, np.uint64(j), out=column)
        column &= np.uint64(1)
        bits[last - j] |= column.astype(np.uint8)


class Reader:
    """K messages (as :func:`write` made them) read back section by section, all K at a time."""

    def __init__(self, messages: list[np.ndarray]) -> None:
        sizes = np.array([len(m) for m in messages], dtype=np.int64)
        self.k = len(messages)
        joined = np.concatenate(messages) if self.k else np.zeros(0, dtype=np.uint8)
        self.bits = np.concatenate([np.unpackbits(joined), np.zeros(64, dtype=np.uint8)])
        self.ones = np.flatnonzero(self.bits.view(bool))  # where every unary part ends
        # window[i]: the 8 bytes from byte i as one big-endian word, so a field of <= 56 bits is one
        # shift and mask of the word at its first byte
        words = -(-len(joined) // 8) + 1  # a word of zeros past the end: a 0-bit field may start there
        padded = np.zeros(8 * words + 8, dtype=np.uint8)
        padded[: len(joined)] = joined
        self.window = np.empty((words, 8), dtype=np.uint64)
        for r in range(8):
            self.window[:, r] = padded[r : r + 8 * words].view(">u8")
        self.window = self.window.reshape(-1)
        self.end = 8 * np.cumsum(sizes)
        self.cursor = self.end - 8 * sizes  # each message's next unread bit

    def unary(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``counts[r]`` unary parts of each message r: (rows, u) of every code, row-major."""
        counts = np.asarray(counts, dtype=np.int64)
        rows = np.repeat(np.arange(self.k), counts)
        if not len(rows):
            return rows, np.zeros(0, dtype=np.int64)
        first = np.searchsorted(self.ones, self.cursor)
        lead = np.cumsum(counts) - counts  # each row's first code in the flat order
        idx = np.arange(len(rows)) - lead[rows] + first[rows]
        if idx.max() >= len(self.ones) or (self.ones[idx] >= self.end[rows]).any():
            raise ValueError("a message ends inside its unary codes: truncated or not this codec's")
        at = self.ones[idx]
        prev = np.empty_like(at)
        prev[1:] = at[:-1]
        has = counts > 0
        prev[lead[has]] = self.cursor[has] - 1
        self.cursor[has] = at[lead[has] + counts[has] - 1] + 1
        return rows, at - prev - 1

    def fields(self, rows: np.ndarray, widths: np.ndarray) -> np.ndarray:
        """Fields of the given widths (MSB first), each row's in order from its cursor: uint64 values."""
        widths = np.asarray(widths, dtype=np.int64)
        done = np.cumsum(widths)
        before = _take0(done, _row_ends(rows, self.k))  # the section's bits before each row, and in all
        at = done - widths
        at += (self.cursor - before[:-1])[rows]
        self.cursor += np.diff(before)
        if (self.cursor > self.end).any():
            raise ValueError("a message ends inside its fields: truncated or not this codec's")
        return self._read(at, widths)

    def runs(self, counts: np.ndarray, width: np.ndarray) -> np.ndarray:
        """``counts[r]`` fields of ``width[r]`` bits each in message r, cheaper than :meth:`fields` (uint64; uint8
        when every width is 1)."""
        rows = np.repeat(np.arange(self.k), counts)
        lead = np.cumsum(counts) - counts
        at = np.arange(len(rows)) - lead[rows]
        at *= width[rows]
        at += self.cursor[rows]
        self.cursor += counts * width
        if (self.cursor > self.end).any():
            raise ValueError("a message ends inside its fields: truncated or not this codec's")
        if (width == 1).all():
            return self.bits[at]
        return self._read(at, width[rows])

    def _read(self, at: np.ndarray, widths: np.ndarray) -> np.ndarray:
        """The fields of ``widths`` bits (<= 56) starting at bits ``at``, MSB first: uint64."""
        if not len(at):
            return np.zeros(0, dtype=np.uint64)
        if widths.max() > 56:
            raise ValueError("a field wider than 56 bits")
        word = self.window[at >> 3]
        word >>= (63 - (at & 7) - widths).astype(np.uint64)  # two shifts: a field of 0 bits would need 64
        word >>= np.uint64(1)
        word &= (np.uint64(1) << widths.astype(np.uint64)) - np.uint64(1)
        return word

    def gamma(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``counts[r]`` Elias-gamma codes of each message r: (rows, x)."""
        rows, low = self.unary(counts)
        return rows, (np.uint64(1) << low.astype(np.uint64)) | self.fields(rows, low)

    def rice(self, counts: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``counts[r]`` Golomb-Rice codes of each message r with its parameter ``k[r]``: (rows, y)."""
        rows, u = self.unary(counts)
        return rows, (u.astype(np.uint64) << k[rows].astype(np.uint64)) | self.runs(counts, k)
