"""Run control: one background run of a round function, steered by start, pause, resume, stop and wait.

The coordinator, the CLI and the dashboard all steer a run through this one class, so there is one
state machine. Its state is a :class:`RunState`; *why* it is in that state is a separate one-line
``detail``. Commands that change the simulation (a node action, a checkpoint at a pause) are handed
to :meth:`RunControl.at_boundary` and run between two rounds, never inside one.

A process that exits while a run is active stops it at the next round boundary (an ``atexit``
hook) instead of killing the round thread inside a tensor kernel.
"""

from __future__ import annotations

import atexit
import enum
import logging
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class RunState(str, enum.Enum):
    """Where a run is. A ``str`` enum, so ``state == "running"`` reads as it did when it was a string."""

    IDLE = "idle"
    RUNNING = "running"
    PAUSED = "paused"
    WAITING = "waiting"  # a round could not start (too few nodes); resume() tries again
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"

    @property
    def active(self) -> bool:
        """A run is under way (its thread is alive or about to be)."""
        return self in (RunState.RUNNING, RunState.PAUSED, RunState.WAITING)

    def __str__(self) -> str:
        return self.value


class Waiting(RuntimeError):
    """Raised by a round that cannot start yet; the run waits (state WAITING) until resumed."""


Listener = Callable[["RunControl"], None]
_LIVE: weakref.WeakSet[RunControl] = weakref.WeakSet()


class RunControl:
    """Runs ``step()`` in a background thread until ``position()`` reaches the target.

    Parameters
    ----------
    step
        Runs one round; raises :class:`Waiting` when it cannot start yet.
    position
        The number of the last finished round.
    on_pause, on_end
        Called in the run's thread at the boundary where a pause takes effect, and when the run
        finishes or stops (e.g. to write a checkpoint).
    between
        Called in the run's thread after each round, with the round lock released: pacing waits
        here, so commands sent meanwhile run at once (between the two rounds, as always).
    """

    def __init__(
        self,
        step: Callable[[], Any],
        position: Callable[[], int],
        *,
        on_pause: Callable[[], Any] | None = None,
        on_end: Callable[[], Any] | None = None,
        between: Callable[[], Any] | None = None,
    ) -> None:
        self._step, self._position = step, position
        self._on_pause, self._on_end = on_pause, on_end
        self.between = between  # settable: the run process installs its pacing here
        self.lock = threading.RLock()  # held for a whole round; commands run when it is free
        self.state = RunState.IDLE
        self.detail = ""
        self.error: BaseException | None = None
        self.target: int | None = None
        self._go = threading.Event()
        self._go.set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._commands: deque[Callable[[], Any]] = deque()
        self._listeners: list[Listener] = []
        self._blocking = False
        self._pause_hooked = False
        self._steps = 0  # single rounds asked for while paused (step())
        self._count_lock = threading.Lock()
        self.stuck_reason: str | None = None  # set by stuck(); shown in the detail until resumed

    # -- what a steering party sees ------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.state.active

    def on_change(self, fn: Listener) -> Callable[[], None]:
        """``fn(control)`` runs (in the thread that made the change) when the state or detail changes."""
        self._listeners.append(fn)
        return lambda: self._listeners.remove(fn) if fn in self._listeners else None

    def _set(self, state: RunState, detail: str, *, force: bool = False) -> None:
        """Change state and detail and tell the listeners (``force``: tell them even when unchanged)."""
        if (state, detail) == (self.state, self.detail) and not force:
            return
        self.state, self.detail = state, detail
        for fn in list(self._listeners):
            try:
                fn(self)
            except Exception:  # a broken listener must not stop the run
                log.exception("run-control listener %r failed", fn)

    # -- commands ------------------------------------------------------------------------------
    def start(self, target: int, *, blocking: bool = False, paused: str | None = None) -> None:
        """Run rounds in a background thread until round ``target``.

        ``blocking`` is for :meth:`run`: a round that must wait for nodes ends the run (state
        WAITING) instead of waiting for a resume() nobody can send. ``paused`` (a detail line)
        starts the run paused before its first round: a served run waits so for Start or Step.
        """
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("a run is already active; stop() it first")
        self.target, self.error, self.stuck_reason = target, None, None
        self._blocking = blocking
        self._stop.clear()
        self._steps = 0
        if paused is not None:
            self._go.clear()
            self._pause_hooked = True  # nothing ran yet: nothing to checkpoint at this pause
            self._set(RunState.PAUSED, paused)
        else:
            self._go.set()
            self._set(RunState.RUNNING, f"running: round {self._position() + 1} to {target}")
        self._thread = threading.Thread(target=self._loop, name="hypergpu-rounds", daemon=True)
        _LIVE.add(self)
        self._thread.start()

    def pause(self) -> None:
        """Finish the round in progress, then wait (a waiting run stays waiting).

        The state stays RUNNING ("pausing at the end of round N") until the round in progress ends:
        PAUSED means no round runs, so whoever reads it may step, checkpoint or compare.
        """
        self._pause_hooked = False
        self._go.clear()
        if self.state is RunState.RUNNING:
            self._set(RunState.RUNNING, f"pausing at the end of round {self._position() + 1}{self._why()}")

    def _settle_pause(self) -> None:
        """At a boundary (the round lock held): a requested pause takes effect, so the state says PAUSED."""
        if self.state in (RunState.RUNNING, RunState.PAUSED) and not self._go.is_set() and not self._stop.is_set():
            self._set(RunState.PAUSED, f"paused after round {self._position()}{self._why()}")

    def stuck(self, reason: str, *, action: str = "pause") -> None:
        """A watchdog saw no progress: record ``reason``, then pause or stop at the round's end.

        ``pause`` (the default) keeps the run resumable: the pause hook writes a checkpoint at the
        boundary, as for any pause. ``stop`` ends it there (with the final checkpoint). Either way
        the reason stays in :attr:`detail` and :attr:`stuck_reason`, so the run is never left
        hanging without a word. A round that never returns cannot be interrupted from here: the
        state and reason are set at once, the checkpoint follows when the round ends.
        """
        from .checks import choice

        choice("on_stuck", action, ("pause", "stop"))
        if not self.active:
            return
        self.stuck_reason = reason
        log.warning("%s: %s the run at the end of round %d", reason, action, self._position() + 1)
        if action == "pause":  # PAUSED at once (unlike pause()): a round that never returns must not read RUNNING
            self.pause()
            self._set(RunState.PAUSED, f"{reason}; pausing at the end of round {self._position() + 1}")
        else:
            self._stop.set()
            self._go.set()
            self._set(self.state, f"{reason}; stopping at the end of round {self._position() + 1}")

    def _why(self) -> str:
        return f" ({self.stuck_reason})" if self.stuck_reason else ""

    def retarget(self, target: int) -> None:
        """Run up to round ``target`` instead (a started run asked to go further, or less far)."""
        if target <= self._position():
            raise ValueError(f"target round {target} is not after the {self._position()} rounds already run")
        self.target = target

    def step(self) -> None:
        """While paused (or waiting): run exactly one more round at the next boundary, then stay paused."""
        if self.state is RunState.RUNNING:
            raise RuntimeError("a run is in progress; pause it to step by hand")
        if not self.active:
            raise RuntimeError("no run is active: start() one first")
        with self._count_lock:
            self._steps += 1
            self._go.set()

    @property
    def steps_pending(self) -> int:
        """Single rounds asked for by step() that have not run yet."""
        return self._steps

    def resume(self) -> None:
        """Continue after pause(), or try again after a wait for nodes."""
        self.stuck_reason = None
        if self.state in (RunState.PAUSED, RunState.WAITING) or (
            self.state is RunState.RUNNING and not self._go.is_set()
        ):
            self._set(RunState.RUNNING, f"resumed at round {self._position() + 1}")
        self._go.set()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the round in progress; wait up to ``timeout`` seconds for it (None: until it ends)."""
        self._stop.set()
        self._go.set()
        self.wait(timeout, raise_error=False)

    def wait(self, timeout: float | None = None, *, raise_error: bool = True) -> bool:
        """Wait for the run to end; True if it has. Re-raises the error of a failed run."""
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        if raise_error and self.error is not None:
            raise self.error
        return thread is None or not thread.is_alive()

    def run(self, target: int) -> None:
        """Blocking run: start, then wait. Ctrl-C stops at the next round boundary instead of mid-round."""
        self.start(target, blocking=True)
        try:
            while not self.wait(0.2, raise_error=False):
                pass
        except KeyboardInterrupt:
            log.warning("interrupted: stopping at the end of round %d", self._position() + 1)
            self.stop()
        self.wait()

    def at_boundary(self, command: Callable[[], Any]) -> bool:
        """Run ``command()`` between rounds: now if no round is in progress (True), else when it ends."""
        self._commands.append(command)
        if self.lock.acquire(blocking=False):
            try:
                self._pause_hook()  # a pause requested before this boundary takes effect first
                self._run_commands()
            finally:
                self.lock.release()
            return True
        return False

    def boundary(self) -> None:
        """Called by the round function at the end of a round, still holding :attr:`lock`.

        A pause requested during the round takes effect here (its hook runs before anyone else
        sees the boundary), then the commands queued during the round run.
        """
        if threading.current_thread() is self._thread:
            self._pause_hook()
        self._run_commands()

    def _pause_hook(self) -> None:
        """Run the pause hook once per pause, at the first boundary after pause()."""
        self._settle_pause()
        if self._on_pause is not None and not self._go.is_set() and self.state is RunState.PAUSED:
            if not self._pause_hooked:
                self._pause_hooked = True
                self._on_pause()

    def round_ended(self) -> None:
        """Called by the round function after it released :attr:`lock`: runs the queued commands.

        Commands queued while the round ran are seen here, or by :meth:`at_boundary`'s own attempt
        once the lock is free: whichever comes second finds them.
        """
        if self._commands:
            with self.lock:
                self._run_commands()

    def _run_commands(self) -> None:
        while self._commands:
            self._commands.popleft()()

    # -- the run's thread ----------------------------------------------------------------------
    def _loop(self) -> None:
        try:
            while self._position() < (self.target or 0):
                # Decide whether to start a round while holding the round lock: a pause() that lands
                # between two rounds is then seen before the next one starts, and whoever holds the
                # lock next (this thread or a command) finds the pause hook already run or runs it.
                stepped = False
                with self.lock:
                    go = self._go.is_set() or self._stop.is_set()
                    if go and not self._stop.is_set():
                        single = self._steps > 0 and self.state is not RunState.RUNNING
                        try:
                            self._step()
                            stepped = True
                        except Waiting as exc:  # wait with a clear detail; resume() tries again
                            log.warning("%s", exc)
                            self._go.clear()
                            self._set(RunState.WAITING, str(exc), force=True)  # each failed try is news
                            if self._blocking:
                                return
                        finally:
                            if single:  # one round asked for while paused: it ran (or waited); pause again
                                with self._count_lock:
                                    self._steps -= 1
                                    if not self._steps and self.state is not RunState.RUNNING:
                                        self._go.clear()
                                        go = False
                                if not go and self.state is RunState.PAUSED:
                                    self._set(RunState.PAUSED, f"paused after round {self._position()}")
                    elif not go:
                        self._pause_hook()  # settles the pause (PAUSED) and runs its hook once
                self.round_ended()  # commands queued while this thread held the lock
                if stepped and self.between is not None and not self._stop.is_set():
                    self.between()
                    self.round_ended()  # commands queued while the hook held the lock
                if self._stop.is_set():
                    break
                if not go:
                    self._go.wait()
            done = self._position() >= (self.target or 0)
            if self._on_end is not None:
                self.at_boundary(self._on_end)
            state = RunState.FINISHED if done else RunState.STOPPED
            self._set(state, f"{state.value} at round {self._position()}{self._why()}")
        except BaseException as exc:  # surfaced by wait() and the detail line, never lost
            self.error = exc
            log.exception("round loop failed at round %d", self._position() + 1)
            self._set(RunState.FAILED, f"failed at round {self._position() + 1}: {type(exc).__name__}: {exc}")


@atexit.register
def _stop_live_runs() -> None:
    """At interpreter exit, stop every active run at its next round boundary and wait for it."""
    for control in list(_LIVE):
        if control.active:
            log.info("interpreter exit: stopping the active run at the end of its round")
            control.stop()
