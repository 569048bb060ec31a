"""The virtual clock: a heap of ``(time, priority, seq, event)``, as in SimPy.

Time is a float of *simulated* seconds. Nothing here sleeps: the clock jumps
from one event to the next, so a thousand-round run over a slow WAN costs
only the compute it needs. Ties break by priority, then by insertion order
(``seq``), so the same schedule always pops in the same order.

:class:`PacedClock` is the thin real-time wrapper for demos; the core never
uses it.
"""

from __future__ import annotations

import heapq
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from hypergpu_lab.errors import ConfigError

__all__ = ["VirtualClock", "PacedClock"]

logger = logging.getLogger(__name__)


def _time_value(field: str, value: Any) -> float:
    """Return ``value`` as a finite float, or raise a ConfigError naming ``field``.

    NaN would poison the heap order and inf would never be reached, so both
    are refused at the door rather than discovered later.
    """
    if isinstance(value, bool):
        raise ConfigError(field, value, "a finite number of simulated seconds")
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise ConfigError(field, value, "a finite number of simulated seconds") from None
    if not math.isfinite(t):
        raise ConfigError(field, value, "a finite number of simulated seconds")
    return t


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
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise ConfigError("priority", priority, "an int (lower pops first at equal times)")
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
        self._move_to(t)
        return t, event

    def pop_until(self, t: float) -> list[tuple[float, object]]:
        """Pop every event with time ``<= t`` in order, then set ``now = max(now, t)``.

        Time advances event by event so that a paced subclass spends wall time
        between events, not all at once at the end.
        """
        until = _time_value("t", t)
        popped: list[tuple[float, object]] = []
        while self._heap and self._heap[0][0] <= until:
            popped.append(self.step())
        if until > self._now:
            self._move_to(until)
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
        self._move_to(target)

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

    def _move_to(self, t: float) -> None:
        """Set :attr:`now`; the single place time moves, so subclasses can pace it."""
        self._now = t


class PacedClock(VirtualClock):
    """A virtual clock that also spends wall-clock time, for demos only.

    Whenever simulated time advances by ``dt`` it calls ``sleep(dt / speed)``,
    the way a real-time environment wraps a discrete-event core. Results are
    identical to :class:`VirtualClock`; only the wall time differs.

    Parameters
    ----------
    start
        Initial simulated time.
    speed
        Simulated seconds per wall-clock second (10 plays ten times faster).
    sleep
        Function called with the wall seconds to wait; injectable for tests.
    """

    def __init__(
        self,
        start: float = 0.0,
        *,
        speed: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(start)
        self.speed = speed
        self._sleep = sleep

    @property
    def speed(self) -> float:
        """Simulated seconds per wall second; settable, e.g. from a demo slider."""
        return self._speed

    @speed.setter
    def speed(self, value: float) -> None:
        pace = _time_value("speed", value)
        if pace <= 0:
            raise ConfigError("speed", value, "> 0 simulated seconds per wall second")
        self._speed = pace

    def _move_to(self, t: float) -> None:
        dt = t - self.now
        if dt > 0:
            self._sleep(dt / self.speed)
        super()._move_to(t)
