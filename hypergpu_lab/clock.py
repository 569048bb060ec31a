"""The virtual clock: a heap of ``(time, priority, seq, event)``, as in SimPy.

Time is a float of *simulated* seconds. Nothing here sleeps: the clock jumps
from one event to the next, so a thousand-round run over a slow WAN costs
only the compute it needs. Ties break by priority, then by insertion order
(``seq``), so the same schedule always pops in the same order.

Pacing a run to wall time is the UI runner's job (it sleeps between rounds);
the clock itself never sleeps.
"""

from __future__ import annotations

import heapq
import logging
from typing import Any

from hypergpu_lab import checks
from hypergpu_lab.errors import ConfigError

__all__ = ["VirtualClock"]

logger = logging.getLogger(__name__)


def _time_value(field: str, value: Any) -> float:
    """``value`` as a finite float of simulated seconds.

    NaN would poison the heap order and inf would never be reached, so both
    are refused at the door (by :func:`checks.number`) rather than discovered later.
    """
    return checks.number(field, value, accepted="a finite number of simulated seconds")


class VirtualClock:
    """A discrete-event clock over simulated seconds.

    Events are arbitrary objects kept in a heap of ``(time, priority, seq,
    event)``. A lower ``priority`` pops first among events at the same time,
    then the one scheduled first; the event itself is never compared, so it
    need not be orderable.

    Invariant: ``now`` never exceeds the time of a pending event, so popping
    never moves time backwards.

    Parameters
    ----------
    start
        Initial value of :attr:`now` in simulated seconds.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = _time_value("start", start)
        self._heap: list[tuple[float, int, int, object]] = []
        self._seq = 0

    @property
    def now(self) -> float:
        """Current simulated time in seconds."""
        return self._now

    def __len__(self) -> int:
        return len(self._heap)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(now={self._now!r}, pending={len(self._heap)})"

    def schedule(self, at: float, event: object, *, priority: int = 0) -> None:
        """Schedule ``event`` at simulated time ``at`` (``at >= now``).

        Scheduling in the past is refused: it would silently reorder history.
        """
        t = _time_value("at", at)
        if t < self._now:
            raise ConfigError("at", at, f">= now ({self._now!r})", "cannot schedule in the past")
        priority = checks.integer("priority", priority, accepted="an int (lower pops first at equal times)")
        heapq.heappush(self._heap, (t, priority, self._seq, event))
        self._seq += 1

    def peek(self) -> float | None:
        """Time of the next event, or None when nothing is pending."""
        return self._heap[0][0] if self._heap else None

    def step(self) -> tuple[float, object]:
        """Pop the next event and advance :attr:`now` to its time."""
        if not self._heap:
            raise IndexError("step: the clock has no pending events (check len(clock) or peek() first)")
        t, _, _, event = heapq.heappop(self._heap)
        self._now = t
        return t, event

    def pop_until(self, t: float) -> list[tuple[float, object]]:
        """Pop every event with time ``<= t`` in order, then set ``now = max(now, t)``."""
        until = _time_value("t", t)
        popped: list[tuple[float, object]] = []
        while self._heap and self._heap[0][0] <= until:
            popped.append(self.step())
        if until > self._now:
            self._now = until
        return popped

    def advance_to(self, t: float) -> None:
        """Move :attr:`now` forward to ``t`` without popping.

        Moving past a pending event is refused (use :meth:`pop_until`): the
        event would otherwise fire in the past.
        """
        target = _time_value("t", t)
        if target < self._now:
            raise ConfigError("t", t, f">= now ({self._now!r})", "time only moves forward")
        if self._heap and self._heap[0][0] < target:
            raise ConfigError(
                "t",
                t,
                f"<= the next pending event ({self._heap[0][0]!r})",
                "use pop_until(t) to process the events on the way",
            )
        self._now = target

    def clear(self) -> None:
        """Drop every pending event; :attr:`now` is kept."""
        self._heap.clear()

    def drain(self) -> list[tuple[float, object]]:
        """Remove and return every pending (time, event) in pop order, without moving time."""
        out = [(t, event) for t, _, _, event in sorted(self._heap, key=lambda e: e[:3])]
        self._heap.clear()
        return out

    def state_dict(self) -> dict[str, Any]:
        """Snapshot for checkpoints: ``now``, the next ``seq`` and the pending events.

        Events are referenced, not copied; they must be picklable for the
        snapshot to be saved.
        """
        return {"now": self._now, "seq": self._seq, "pending": sorted(self._heap, key=lambda e: e[:3])}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` snapshot; the run continues identically."""
        now = _time_value("now", state["now"])
        pending = [(_time_value("pending.time", t), int(p), int(s), ev) for t, p, s, ev in state["pending"]]
        if any(t < now for t, _, _, _ in pending):
            raise ConfigError("pending", "an event before now", f"event times >= now ({now!r})")
        seq = int(state["seq"])
        if pending and seq <= max(s for _, _, s, _ in pending):
            raise ConfigError("seq", seq, "greater than every pending event's seq")
        heapq.heapify(pending)
        self._now, self._heap, self._seq = now, pending, seq
