"""Scratch tensors the training engine reuses from call to call instead of allocating afresh.

Why: a [K, P] gradient of 1000 CNN nodes is 55 MB; a fresh one at every step of a long call is
memory the allocator must map again and the OS must fault in again. A buffer here is scratch
only: the engine overwrites all of it before reading it, and nothing it returns points into it,
so no state crosses calls (tests/test_training.py checks both).
"""

from __future__ import annotations

import math

import torch


class Buffers:
    """Named scratch tensors on one device, each grown to the largest size asked for and then kept."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._flat: dict[str, torch.Tensor] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """A contiguous tensor of ``shape`` whose values are whatever was left there (overwrite it)."""
        n = math.prod(shape)
        flat = self._flat.get(name)
        if flat is None or flat.numel() < n or flat.dtype != dtype:
            flat = torch.empty(n, dtype=dtype, device=self.device)
            self._flat[name] = flat
        return flat[:n].view(shape)
