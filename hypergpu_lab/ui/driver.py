"""The seam between the panels and whatever runs the run: :class:`RunDriver`.

Two classes drive the panels: :class:`~hypergpu_lab.ui.runner.Runner` (a coordinator in this
kernel) and :class:`~hypergpu_lab.ui.remote.RemoteRunner` (a run served in its own process, steered
through its run folder). The panels are written against this protocol only, so either can stand
behind them and a third (a run on another machine) needs no panel change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ..events import RoundReport
    from .view import RunView

log = logging.getLogger(__name__)


@runtime_checkable
class RunDriver(Protocol):
    """What every panel may read and call (remote-only extras, such as ``on_chain``, are looked up with
    ``hasattr``). ``coord`` is the coordinator the panels show (a mirror, for a run in another process);
    ``view`` its per-node facts; ``actions_log`` the node actions taken; ``message`` the last one's result.
    """

    coord: Any
    view: RunView
    actions_log: Any
    message: str

    # listeners: reports in throttled batches, status changes, a switch to another coordinator
    def on_reports(self, fn: Callable[[list[Any]], None]) -> None: ...
    def on_status(self, fn: Callable[[Any], None]) -> None: ...
    def on_coordinator(self, fn: Callable[[Any], None]) -> None: ...

    # status
    @property
    def status(self) -> str: ...
    @property
    def active(self) -> bool: ...
    @property
    def detail(self) -> str: ...
    @property
    def progress(self) -> tuple[int, int | None]: ...
    @property
    def last_checkpoint(self) -> Path | None: ...

    # run control: each takes effect at a round boundary
    def start(self, rounds: int | None = None, *, until: int | None = None) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def stop(self, timeout: float | None = 0.0) -> None: ...
    def step(self) -> Any: ...
    def wait(self, timeout: float | None = None) -> None: ...
    def set_speed(self, speed: float | None) -> None: ...
    def action(self, name: str, node: int, args: tuple[Any, ...] = (), what: str = "") -> bool: ...

    # housekeeping
    def flush(self) -> None: ...
    def check(self) -> str: ...
    def close(self) -> None: ...


class Listeners:
    """The listener half of a driver, shared by both: panels register here, and a failing panel is
    logged without stopping the others (or the run).

    A driver sets ``view`` and ``last_report``, passes this class's ``_deliver`` to its throttle, and
    says what a status change is by ``_status_key``.
    """

    view: RunView
    last_report: RoundReport | None

    def __init__(self) -> None:
        self._report_listeners: list[Callable[[list[Any]], None]] = []
        self._status_listeners: list[Callable[[Any], None]] = []
        self._coord_listeners: list[Callable[[Any], None]] = []
        self._seen_status: tuple[Any, ...] | None = None

    def on_reports(self, fn: Callable[[list[Any]], None]) -> None:
        """``fn(batch)`` gets the reports of the rounds since the last update, at most ``rate`` times a second."""
        self._report_listeners.append(fn)

    def on_status(self, fn: Callable[[Any], None]) -> None:
        """``fn(driver)`` runs when the status or its detail changes (progress comes with the reports)."""
        self._status_listeners.append(fn)

    def on_coordinator(self, fn: Callable[[Any], None]) -> None:
        """``fn(coord)`` runs when the driver switches to another coordinator."""
        self._coord_listeners.append(fn)

    def _status_key(self) -> tuple[Any, ...]:
        """What counts as a status change worth telling the status listeners about."""
        raise NotImplementedError

    def _deliver(self, batch: list[RoundReport]) -> None:
        self.last_report = batch[-1]
        self.view.update(batch)
        for fn in list(self._report_listeners):
            self._call(fn, batch)

    def _notify_status(self, force: bool = False) -> None:
        seen = self._status_key()
        if seen == self._seen_status and not force:
            return
        self._seen_status = seen
        for fn in list(self._status_listeners):
            self._call(fn, self)

    def _notify_coordinator(self, coord: Any) -> None:
        for fn in list(self._coord_listeners):
            self._call(fn, coord)

    @staticmethod
    def _call(fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:  # a broken panel must not stop the others (or training)
            log.exception("UI listener %r failed", fn)
