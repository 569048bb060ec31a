"""The runner between a coordinator and its panels: a background run, throttled updates, pacing, a watchdog.

::

    round loop thread (coord.control)        flusher thread (one per runner, alive while there is work)
    step() -> bus.emit -> Runner._on_report:     every 1/rate s at most: Throttle.poll() -> listeners(batch)
                 queue the report (that is all)  status changes, the stuck-run watchdog,
    control.between -> Runner._between: pacing   and always a final flush when the run ends

The runner keeps no run state of its own: start, pause, resume, stop and the status are the
coordinator's :class:`~hypergpu_lab.run_control.RunControl`; the runner adds what only a UI needs
(throttled delivery, the "stuck" watchdog, pacing, an action log).

The round loop never waits for a widget: a subscriber that only appends to a list costs microseconds.
Pacing (simulated seconds per wall second, for demos) is the one place a round waits on purpose,
and it is a wrapper here, not part of the core: after each round, in the run control's ``between``
hook (the round lock free, so node actions land meanwhile), the runner sleeps ``round duration /
speed`` minus the round's own wall time. Pause, stop and a speed change cut the sleep short.

Node actions run *at a round boundary* (``RunControl.at_boundary``): at once when no round is in
progress, else right after the round in progress, so a round never sees the network change half-way.
This module needs no widget library.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import checkpoint, checks
from ..events import RoundReport
from ..run_control import RunState
from .driver import Listeners
from .view import RunView

log = logging.getLogger(__name__)

Clock = Callable[[], float]


class Throttle:
    """Queue items from any thread; hand them over in batches, at most ``rate`` batches per second.

    ``poll()`` applies the queue only when ``1 / rate`` seconds have passed since the last batch;
    ``due()`` says how long until it may; ``force()`` applies now. The flusher that stops polling
    (a run has ended) waits ``due()`` and forces once more, so the final state always arrives.
    Memory is bounded: past ``max_queue`` items (a UI stalled for a long run) the oldest are
    dropped; the run folder and the coordinator's History still hold them.
    """

    def __init__(
        self,
        apply: Callable[[list[Any]], None],
        *,
        rate: float = 4.0,
        clock: Clock = time.monotonic,
        max_queue: int = 100_000,
    ) -> None:
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"rate must be a finite number > 0 updates per second, got {rate!r}")
        self.apply, self.interval, self.clock = apply, 1.0 / rate, clock
        self._queue: deque[Any] = deque(maxlen=max_queue)
        self._lock = threading.Lock()
        self._apply_lock = threading.RLock()  # re-entrant: a listener may flush
        self._last = -math.inf
        self.batches = 0  # how many times ``apply`` ran
        self.items = 0  # how many items it was given in all

    def push(self, item: Any) -> None:
        with self._lock:
            self._queue.append(item)

    @property
    def pending(self) -> int:
        return len(self._queue)

    def due(self) -> float:
        """Seconds until the next batch may be applied (0 when it may now)."""
        return max(0.0, self._last + self.interval - self.clock())

    def poll(self) -> bool:
        """Apply the queued items if any and if the rate allows; True if a batch was applied."""
        if not self._queue or self.due() > 0:
            return False
        return self._apply()

    def force(self) -> bool:
        """Apply what is queued now, whatever the rate (an explicit request, e.g. after a manual step).

        Also waits for a batch another thread is delivering, so what was queued before this call
        has reached the listeners when it returns.
        """
        return self._apply()

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    def _apply(self) -> bool:
        with self._apply_lock:
            with self._lock:
                batch = list(self._queue)
                self._queue.clear()
            if not batch:
                return False
            self._last = self.clock()
            self.batches += 1
            self.items += len(batch)
            self.apply(batch)
            return True


class Watchdog:
    """Flags a run that has made no progress for ``timeout_s`` wall seconds while it should be running."""

    def __init__(self, timeout_s: float = 120.0, *, clock: Clock = time.monotonic) -> None:
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0 seconds, got {timeout_s!r}")
        self.timeout_s, self.clock = float(timeout_s), clock
        self._last = clock()
        self.stuck = False

    def progress(self) -> None:
        """A round finished (or the run was started or resumed): the clock starts again."""
        self._last = self.clock()
        self.stuck = False

    def idle_for(self) -> float:
        return self.clock() - self._last

    def check(self, active: bool) -> bool:
        """True when ``active`` and nothing happened for ``timeout_s``; an inactive run restarts the clock."""
        if not active:
            self._last = self.clock()
            self.stuck = False
        elif self.idle_for() >= self.timeout_s:
            self.stuck = True
        return self.stuck


class Runner(Listeners):
    """Drives one coordinator for the panels: start / pause / resume / stop / step, updates, pacing, watchdog.

    Parameters
    ----------
    coord
        The coordinator; :meth:`set_coordinator` swaps it for another (when idle).
    rate
        Most UI updates per second; reports are batched in between.
    stuck_after_s
        Wall seconds without a finished round (while running, not paced or paused) before the
        status becomes ``"stuck"``.
    on_stuck
        Then: ``"pause"`` the run at the round's end with a checkpoint (default), ``"stop"`` it, or
        only ``"flag"`` it; the reason is kept in ``coord.control`` and the run folder's log.
    clock
        Wall clock for the throttle and the watchdog (injectable for tests).
    pace_wait
        ``pace_wait(seconds)`` performs a pacing sleep; the default waits on an event that pause,
        stop and speed changes set.

    ``runner.view`` (a :class:`RunView`) holds the per-node facts the panels show; it takes each
    batch before the listeners do.
    """

    def __init__(
        self,
        coord: Any,
        *,
        rate: float = 4.0,
        stuck_after_s: float = 120.0,
        on_stuck: str = "pause",
        clock: Clock = time.monotonic,
        pace_wait: Callable[[float], None] | None = None,
        tick_s: float = 0.25,
    ) -> None:
        super().__init__()
        self.throttle = Throttle(self._deliver, rate=rate, clock=clock)
        self.watchdog = Watchdog(stuck_after_s, clock=clock)
        # What a stuck run gets: "pause" (checkpoint, resumable), "stop", or "flag" (status only).
        self.on_stuck = checks.choice("on_stuck", on_stuck, ("pause", "stop", "flag"))
        self.tick_s = tick_s
        self.speed: float | None = None
        self.target: int | None = None
        self.message = ""
        self.last_report: RoundReport | None = None
        self.actions_log: deque[str] = deque(maxlen=200)
        self.view = RunView()
        self._interrupt = threading.Event()
        self._pace_wait = pace_wait or (lambda s: self._interrupt.wait(s))
        self._pacing = False
        self._pause_requested = False
        self._wake = threading.Event()
        self._flusher: threading.Thread | None = None
        self._flusher_lock = threading.Lock()
        self._closed = False
        self._was_active = False
        self._stuck_logged = False
        self._last_round = 0
        self._unsubscribe: Callable[[], None] | None = None
        self.coord: Any = None
        self.set_coordinator(coord)

    # -- wiring --------------------------------------------------------------------------------
    def set_coordinator(self, coord: Any) -> None:
        """Attach to ``coord`` (detaching from the previous one, which must not be running)."""
        if self.coord is not None and self.active:
            raise RuntimeError("the current run is still active; stop() it before switching coordinators")
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self.coord is not None and self.coord.control.between == self._between:
            self.coord.control.between = None
        self.throttle.clear()
        self.coord, self.last_report, self.target, self.message = coord, None, None, ""
        self._last_round = coord.round
        self.view.reset(coord)
        self._unsubscribe = coord.bus.subscribe(self._on_report)
        self.last_pushed: RoundReport | None = None
        coord.control.between = self._between
        self.watchdog.progress()
        self._notify_coordinator(coord)
        self._notify_status(force=True)

    def close(self) -> None:
        """Detach from the coordinator's bus and end the flusher (the run itself is left alone)."""
        self._closed = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self.coord.control.between == self._between:
            self.coord.control.between = None
        self._wake.set()
        if self._flusher is not None and self._flusher is not threading.current_thread():
            self._flusher.join(5.0)

    # -- status (read from the coordinator's RunControl; the watchdog adds "stuck") ---------------
    @property
    def active(self) -> bool:
        """A run is under way: running, paused, or waiting for a quorum."""
        return self.coord.control.active

    @property
    def status(self) -> str:
        """idle | running | paused | waiting | stuck | finished | stopped | failed."""
        state = self.coord.control.state
        if self.watchdog.stuck and state is RunState.RUNNING:
            return "stuck"
        return state.value

    @property
    def detail(self) -> str:
        """One line saying why, for the status bar."""
        control = self.coord.control
        if self.watchdog.stuck and control.state is RunState.RUNNING:
            return (
                f"stuck: no round finished in {self.watchdog.idle_for():.0f} wall seconds "
                f"(last finished: round {self._last_round}); stop the run or look at the log"
            )
        if control.state in (RunState.WAITING, RunState.FAILED) or control.stuck_reason:
            return control.detail
        return self.message

    @property
    def progress(self) -> tuple[int, int | None]:
        return self.coord.round, self.target

    # -- run control ---------------------------------------------------------------------------
    def start(self, rounds: int | None = None, *, until: int | None = None) -> None:
        """Run in the background (``coord.start``); a paused run resumes instead."""
        if self.active:
            if self.coord.control.state is not RunState.RUNNING:
                self.resume()
            return
        self._pause_requested = False
        self._interrupt.clear()
        self.watchdog.progress()
        self.coord.start(rounds, until=until)
        self.target = until if until is not None else self.coord.round + (rounds or 0)
        self.message = f"started: round {self.coord.round + 1} to {self.target}"
        self._was_active = True
        self._ensure_flusher()
        self._notify_status()

    def pause(self) -> None:
        """Pause at the next round boundary; the coordinator then checkpoints when the run has a folder."""
        self.coord.pause()
        self._pause_requested = True
        self._interrupt.set()
        self.message = "pausing at the end of this round"
        self._notify_status()

    def resume(self) -> None:
        self._pause_requested = False
        self._interrupt.clear()
        self.watchdog.progress()
        self.coord.resume()
        self.message = "resumed"
        self._ensure_flusher()
        self._notify_status()

    def stop(self, timeout: float | None = 0.0) -> None:
        """Stop after the current round; the coordinator writes its final checkpoint. Waits ``timeout`` s."""
        self._pause_requested = False
        self._interrupt.set()
        self.coord.stop(timeout)
        self.message = "stopping after this round" if self.active else "stopped"
        self._ensure_flusher()
        self._notify_status()

    def step(self) -> RoundReport:
        """One round in the calling thread (when no background run is active); updates follow throttled."""
        if self.coord.control.state is RunState.RUNNING:
            raise RuntimeError("a run is in progress; pause it to step by hand")
        report = self.coord.step()
        self.message = f"stepped round {report.round}"
        self._ensure_flusher()
        return report

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the background run and for its last update to reach the listeners (tests, scripts)."""
        self.coord.wait(timeout, raise_error=False)
        thread = self._flusher
        if thread is not None and thread is not threading.current_thread():
            self._wake.set()
            thread.join(timeout)

    def flush(self) -> None:
        """Deliver what is queued now, in this thread (tests, notebooks driving ``coord.step`` themselves)."""
        self.throttle.force()
        self._notify_status()

    def set_speed(self, speed: float | None) -> None:
        """Simulated seconds per wall second; None or 0 runs as fast as it can."""
        if speed is not None and not (speed >= 0 and math.isfinite(speed)):
            raise ValueError(f"speed must be a finite number >= 0 simulated seconds per wall second, got {speed!r}")
        self.speed = speed or None
        self._interrupt.set()  # a sleep under the old speed ends; the next round paces anew
        self._interrupt.clear()

    # -- node actions --------------------------------------------------------------------------
    def act(self, fn: Callable[[Any], Any], what: str) -> bool:
        """Run ``fn(coord)`` at the next round boundary; True if it ran at once (no round in progress)."""
        return self.coord.control.at_boundary(lambda: self._run_action(fn, what))

    def action(self, name: str, node: int, args: tuple[Any, ...] = (), what: str = "") -> bool:
        """Run the node action ``actions.<name>(coord, node, *args)`` at the next round boundary.

        The same call a :class:`~hypergpu_lab.ui.remote.RemoteRunner` turns into a command for a run
        in its own process, so the panels name actions instead of passing functions.
        """
        from . import actions

        fn = getattr(actions, name)
        return self.act(lambda coord: fn(coord, node, *args), what or name)

    def _run_action(self, fn: Callable[[Any], Any], what: str) -> None:
        try:
            result = fn(self.coord)
        except Exception as exc:
            log.warning("%s failed: %s", what, exc)
            self.message = f"{what} failed: {exc}"
        else:
            self.message = f"{what}: {result}" if isinstance(result, str) else what
            self.actions_log.append(f"round {self.coord.round}, t={self.coord.clock.now:.2f}s: {self.message}")
            log.info("%s", self.message)
        self._wake.set()

    @property
    def last_checkpoint(self) -> Path | None:
        """The newest checkpoint the coordinator wrote (at a pause, on cadence or at the end)."""
        return self.coord.checkpoints.last

    # -- the round loop's side -----------------------------------------------------------------
    def _on_report(self, report: RoundReport) -> None:
        """Bus subscriber, in the round loop's thread: queue the report (that is all)."""
        self.last_pushed = report
        self.throttle.push(report)
        self._last_round = report.round
        self.watchdog.progress()
        if self.throttle.pending == 1:  # the first report since the last update: deliver it promptly
            self._wake.set()
        self._ensure_flusher()

    def _between(self) -> None:
        """The run control's between-rounds hook (the round lock is free): pacing waits here, so a node
        action sent meanwhile lands at once. A manual step() is not a run round and is never paced."""
        report = self.last_pushed
        if not self.speed or report is None or self._pause_requested:
            return
        delay = report.duration / self.speed - report.wall_s
        if delay > 0:
            self._pacing = True
            try:
                self._pace_wait(delay)
            finally:
                self._pacing = False
                self.watchdog.progress()

    # -- the flusher's side --------------------------------------------------------------------
    def _ensure_flusher(self) -> None:
        with self._flusher_lock:
            if self._closed or (self._flusher is not None and self._flusher.is_alive()):
                return
            self._flusher = threading.Thread(target=self._flush_loop, name="hypergpu-ui-flusher", daemon=True)
            self._flusher.start()

    def check(self) -> str:
        """Run the watchdog and tell the status listeners of a change; returns the status."""
        was_active, active = self._was_active, self.active
        self._was_active = active
        if self.watchdog.check(self.coord.control.state is RunState.RUNNING and not self._pacing):
            if not self._stuck_logged:
                log.warning("%s", self.detail)
                self._stuck_logged = True
                if self.on_stuck != "flag":
                    reason = f"stuck: no round finished in {self.watchdog.idle_for():.0f} wall seconds"
                    self.coord.control.stuck(reason, action=self.on_stuck)
        else:
            self._stuck_logged = False
        if was_active and not active:
            self.message = self._end_message()
        self._notify_status()
        return self.status

    def _end_message(self) -> str:
        coord, status = self.coord, self.coord.control.state.value
        text = f"{status} at round {coord.round}"
        folder = coord.run_folder
        if folder is not None and status in ("finished", "stopped"):
            ckpt = checkpoint.path_for(folder.checkpoints, coord.round)
            text += f"; run folder {folder.path}" + (f", checkpoint {ckpt.name}" if ckpt.exists() else "")
        return text

    def _flush_loop(self) -> None:
        while not self._closed:
            self._wake.wait(self.throttle.due() if self.throttle.pending else self.tick_s)
            self._wake.clear()
            try:
                if self.throttle.pending and not self.active:
                    # The run is over: the last batch goes out after at most one interval of real
                    # time, whatever the clock says, so the final state is never left behind.
                    self._wake.wait(min(self.throttle.due(), self.throttle.interval))
                    self.throttle.force()
                else:
                    self.throttle.poll()
                self.check()
            except Exception:
                log.exception("UI update failed")
            if not self.active and not self.throttle.pending:
                return  # the run is over and its final batch is out

    def _status_key(self) -> tuple[str, str]:
        return (self.status, self.detail)
