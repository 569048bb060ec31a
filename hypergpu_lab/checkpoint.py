"""Checkpoints that are either whole and verified or refused.

File format: an 8-byte magic, the SHA-256 of the payload (32 bytes), then the
payload (``torch.save`` of a dict of tensors and plain values). Files are
written atomically, so a kill leaves the previous checkpoint intact; a file
that is truncated or altered fails its checksum and :func:`latest_valid`
falls back to the newest good one with a warning.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError
from .runs import atomic_write_bytes

log = logging.getLogger(__name__)

MAGIC = b"HGLCKPT1"
# round-000000001234.ckpt: twelve digits, so names sort by round (ls, glob, a file manager) up to a
# trillion rounds. The six-digit names of earlier versions (round-001234.ckpt, and round-1234567.ckpt
# past 999,999) are still found; a name is matched only in one of those two spellings, so a stray
# round-0000009.ckpt is not taken for round 9.
WIDTH = 12
_NAME = re.compile(r"^round-(\d{6,})\.ckpt$")


def save(path: str | os.PathLike, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    payload = buf.getvalue()
    atomic_write_bytes(path, MAGIC + hashlib.sha256(payload).digest() + payload)


def load(path: str | os.PathLike) -> dict[str, Any]:
    """Read and verify; only tensors and plain Python values are unpickled (``weights_only``)."""
    path = Path(path)
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    if len(blob) < 40 or blob[:8] != MAGIC:
        raise CheckpointError(f"{path} is not a HyperGPU Lab checkpoint or is truncated")
    digest, payload = blob[8:40], blob[40:]
    if hashlib.sha256(payload).digest() != digest:
        raise CheckpointError(f"{path} fails its SHA-256 checksum (truncated or corrupted)")
    try:
        return torch.load(io.BytesIO(payload), weights_only=True)
    except Exception as exc:  # intact bytes torch refuses (objects beyond tensors and plain values): refused too
        raise CheckpointError(f"{path} passes its checksum but cannot be loaded: {exc}") from exc


def path_for(folder: str | os.PathLike, round_: int) -> Path:
    return Path(folder) / f"round-{round_:0{WIDTH}d}.ckpt"


def round_of(name: str) -> int | None:
    """The round a checkpoint file name stands for, or None if it is not one (either spelling)."""
    m = _NAME.match(name)
    if m is None:
        return None
    digits = m.group(1)
    n = int(digits)
    return n if digits in (f"{n:0{WIDTH}d}", f"{n:06d}") else None


def list_checkpoints(folder: str | os.PathLike) -> list[tuple[int, Path]]:
    """(round, path) pairs, oldest first (by round number, whatever the spelling)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(n, p) for p in folder.iterdir() if (n := round_of(p.name)) is not None]
    return sorted(found)


def latest_valid(folder: str | os.PathLike) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint that verifies; broken newer ones are reported and skipped."""
    for _, path in reversed(list_checkpoints(folder)):
        try:
            return path, load(path)
        except CheckpointError as exc:
            log.warning("skipping checkpoint: %s; falling back to the previous one", exc)
    return None
