"""Helpers for the UI tests: small pools, a hand-driven clock, waiting on an event instead of sleeping.

A module with its own name (not conftest), so ``from ui_support import ...`` cannot pick up another.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("anywidget")

from hypergpu_lab import Coordinator, NodePool
from hypergpu_lab.runs import RunFolder

WAIT_S = 60.0  # upper bound on any wait; a passing test waits for an event, never this long


def pool(num_nodes: int = 4, **options: Any) -> NodePool:
    opts = {"dataset": "digits", "partition": "iid", "network": "lan", "seed": 0, **options}
    return NodePool.simulated(num_nodes, **opts)


def coordinator(
    num_nodes: int = 4, *, run_dir: Path | None = None, name: str = "run", pool_options: Any = None, **options: Any
) -> Coordinator:
    """An MLP coordinator on a small LAN pool; with ``run_dir``, in a fresh run folder ``run_dir/name``."""
    p = pool(num_nodes, **(pool_options or {}))
    folder = RunFolder.create(run_dir, name, {"name": name, "pool": {"num_nodes": num_nodes}}) if run_dir else None
    return Coordinator(pool=p, model="mlp", run_dir=folder, run_id=name, **options)


class FakeClock:
    """A wall clock that moves only when told to."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def at_boundary(runner: Any) -> None:
    """Block until the coordinator is between rounds (a no-op action has run there)."""
    done = threading.Event()
    runner.act(lambda coord: done.set(), "probe")
    assert done.wait(WAIT_S), "no round boundary reached"


def until(predicate: Any, event: threading.Event | None = None, timeout: float = WAIT_S) -> None:
    """Wait for ``predicate()`` in short waits on ``event`` (set by a listener), never a bare sleep loop."""
    event = event or threading.Event()
    waited = 0.0
    while not predicate():
        assert waited < timeout, "condition not reached"
        event.wait(0.05)
        event.clear()
        waited += 0.05
