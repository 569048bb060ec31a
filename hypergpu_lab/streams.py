"""Keyed random streams: a counter-based generator (Philox) addressed by what the draws are for.

Hot paths draw from a stream named by (key, tag, words): a transfer's by (run seed, transfer
tag, round, node, direction), a node's batch order by (its seed, order tag). A result then never depends on what else was drawn
before it, and a restored run needs no RNG state. ``np.random.default_rng([seed, round, ...])``
gives the same guarantee, but hashing its seed sequence costs ~30 us per stream, more than the
simulated transfer it drives (20 transfers a round). Philox (Salmon et al., SC'11) takes the key
and counter words as they are: re-keying one generator costs ~2 us.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

_MASK = 2**64 - 1
_local = threading.local()


def stream(key: int, tag: int, *words: int) -> np.random.Generator:
    """The generator for stream (key, tag, words), positioned at its start.

    Philox's 128-bit key is (key, tag and the number of words), where the tag names what the draws
    are for, and its 256-bit counter is (0, *words): distinct streams never share a block while each
    draws < 2**64 blocks.
    The generator is shared within a thread and re-keyed by the next call: use it before asking
    for another stream.
    """
    if len(words) > 3:
        raise ValueError(f"a stream takes at most 3 words after its key, got {len(words)}")
    gen, state = _thread_generator()
    counter, keys = state["state"]["counter"], state["state"]["key"]
    counter[:] = 0
    counter[1 : 1 + len(words)] = [w & _MASK for w in words]
    keys[0], keys[1] = key & _MASK, ((tag << 2) | len(words)) & _MASK
    gen.bit_generator.state = state  # buffer_pos 4: no buffered output carries over between streams
    return gen


def _thread_generator() -> tuple[np.random.Generator, dict[str, Any]]:
    cached = getattr(_local, "cached", None)
    if cached is None:
        bits = np.random.Philox(key=0)
        cached = _local.cached = (np.random.Generator(bits), bits.state)
    return cached
