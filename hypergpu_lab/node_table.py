"""The node pool's columns: one row per registered node, in arrays instead of per-node objects.

Why: a pool of a million registered nodes must cost memory per node selected, not per node
registered. A row holds only what a registered node is (id, GPU, state, heartbeat, failure
counts, shard size); its shard is a slice of one shared tensor or is generated from its seed
(:class:`Shards`) when it is read, and a :class:`~hypergpu_lab.nodes.Node` is a view of a row.
Rows are in registration order; ids ``0..n-1`` registered in order need no id index.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

Shard = tuple[torch.Tensor, torch.Tensor]


class Shards(Protocol):
    """Where rows ``0..len-1`` find their training samples."""

    def load(self, row: int) -> Shard:
        """Row ``row``'s ``(x, y)``."""
        ...


class SliceShards:
    """Rows' shards as contiguous slices ``bounds[i]:bounds[i + 1]`` of one shared ``x``, ``y``."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, bounds: np.ndarray) -> None:
        self.x, self.y, self.bounds = x, y, bounds

    def load(self, row: int) -> Shard:
        a, b = int(self.bounds[row]), int(self.bounds[row + 1])
        return self.x[a:b], self.y[a:b]


class NodeTable:
    """Growable columns of node rows; ``shards`` serves the first rows, ``own`` any row given its own data."""

    _COLUMNS = (
        ("ids", np.int64),
        ("present", np.bool_),
        ("held", np.bool_),  # the shard is here (False once a backend took it elsewhere)
        ("gpu", np.int16),  # index into self.gpus
        ("state", np.int8),  # index into the states tuple of nodes.NodeState
        ("heartbeat", np.float64),
        ("consecutive_failures", np.int64),
        ("total_failures", np.int64),
        ("rounds_selected", np.int64),
        ("samples", np.int64),
    )

    def __init__(self, capacity: int = 0) -> None:
        self.size = 0
        for name, dtype in self._COLUMNS:
            setattr(self, name, np.zeros(capacity, dtype=dtype))
        self.gpus: list = []  # GPUSpec objects, shared by the rows that name them
        self.shards: Shards | None = None
        self.own: dict[int, Shard] = {}
        self._index: dict[int, int] | None = None  # id -> row, only once ids stop being 0..n-1 in order

    # -- rows -----------------------------------------------------------------------------------
    def gpu_index(self, gpu: object) -> int:
        for i, g in enumerate(self.gpus):
            if g is gpu or g == gpu:
                return i
        self.gpus.append(gpu)
        return len(self.gpus) - 1

    def append(self, ids: np.ndarray, gpu: np.ndarray, samples: np.ndarray) -> np.ndarray:
        """Add rows (online, never heard from); returns their row numbers."""
        n = len(ids)
        self._reserve(self.size + n)
        rows = np.arange(self.size, self.size + n)
        identity = self._index is None and np.array_equal(ids, rows)
        self.ids[rows], self.gpu[rows], self.samples[rows] = ids, gpu, samples
        self.present[rows], self.held[rows] = True, True
        for name in ("state", "heartbeat", "consecutive_failures", "total_failures", "rounds_selected"):
            getattr(self, name)[rows] = 0
        self.size += n
        if not identity:
            if self._index is None:
                self._index = {i: i for i in range(self.size - n)}
            self._index.update(zip(ids.tolist(), rows.tolist()))
        return rows

    def _reserve(self, n: int) -> None:
        cap = len(self.ids)
        if n <= cap:
            return
        new = max(n, 2 * cap)
        for name, _ in self._COLUMNS:
            old = getattr(self, name)
            grown = np.zeros(new, dtype=old.dtype)
            grown[: self.size] = old[: self.size]
            setattr(self, name, grown)

    @property
    def indexed(self) -> bool:
        """Whether rows need the id index (ids are not 0..n-1 in registration order)."""
        return self._index is not None

    def row(self, node_id: int) -> int | None:
        """The row of a registered id, or None."""
        if self._index is None:
            r = node_id if isinstance(node_id, (int, np.integer)) and 0 <= node_id < self.size else None
        else:
            r = self._index.get(node_id)
        return r if r is not None and self.present[r] else None

    def remove(self, row: int) -> None:
        self.present[row] = False
        self.own.pop(row, None)
        if self._index is None:  # ids stay unique: a removed id is free to register again
            self._index = {i: i for i in range(self.size)}
        del self._index[int(self.ids[row])]

    def live(self) -> np.ndarray:
        """Rows of registered nodes, in registration order."""
        return np.flatnonzero(self.present[: self.size])

    # -- shards ---------------------------------------------------------------------------------
    def forget_released(self) -> None:
        """Drop the shared shards once no row reads them (a backend took every shard elsewhere)."""
        held = np.flatnonzero(self.held[: self.size] & self.present[: self.size])
        if all(int(r) in self.own for r in held):
            self.shards = None

    def shard(self, row: int) -> Shard | None:
        if not self.held[row]:
            return None
        if row in self.own:
            return self.own[row]
        assert self.shards is not None, "a row without its own data is served by the table's shards"
        return self.shards.load(row)
