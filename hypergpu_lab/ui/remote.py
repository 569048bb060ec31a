"""A page's side of a run that lives in its own process: attach, mirror, stream, and send commands.

:class:`RemoteRunner` stands where :class:`~hypergpu_lab.ui.runner.Runner` stands for the panels
(the same listeners, status, view and controls), but holds no run. It reads a run folder served by
:mod:`hypergpu_lab.service`:

* on attach it reads the whole ``metrics.jsonl`` and hands it over as one batch, so every chart is
  redrawn from the run's full history, then it tails the file;
* ``live.ckpt`` is loaded into a *mirror* coordinator built from the run's config (no training
  happens in it), so the node table, the map and the decision log show the run's pool, links,
  faults and policy exactly as the run has them;
* ``status.json``, ``events.jsonl``, ``commands.jsonl`` and ``chain.json`` feed the status line,
  the chart markers, the actions log and the Blockchain tab;
* every control (Start, Pause, Resume, Stop, Step, pacing, node actions) is a command written to
  the run's inbox (:func:`hypergpu_lab.service.send`); what a page shows is what the run reports
  back, so two pages always agree.

A page that is not attached watches the runs folder and attaches to the newest live run, so a
second page joins a run started by the first. No widget library is imported here.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import checkpoint, persistence, service
from ..config import RunConfig
from ..events import NodeRecord, RoundReport
from ..faults import FaultInjector
from ..run_control import RunState
from .driver import Listeners
from .runner import Throttle
from .view import RunView

log = logging.getLogger(__name__)

Listener = Callable[[Any], None]


def report_of(row: dict[str, Any]) -> RoundReport:
    """A RoundReport back from its metrics.jsonl line."""
    nodes = tuple(NodeRecord(**n) for n in row.get("nodes", ()))
    fields = {k: v for k, v in row.items() if k not in ("nodes", "duration")}
    fields["events"] = tuple(fields.get("events", ()))
    fields["detections"] = tuple(fields.get("detections", ()))
    return RoundReport(**{**fields, "nodes": nodes})


def list_runs(root: str | Path) -> list[dict[str, Any]]:
    """Every run folder under ``root``, newest first: name, path, state (``lost`` for a dead process), round."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = []
    for path in root.iterdir():
        if path.name.startswith(".") or not (path / "config.json").is_file():
            continue
        status = service.read_status(path) or {}
        state = status.get("state", "idle")
        if RunState(state).active and not service.pid_alive(status.get("pid")):
            state = "lost"
        runs.append(
            {
                "name": path.name,
                "path": path,
                "state": state,
                "round": status.get("round", 0),
                "target": status.get("target"),
                "live": state in ("running", "paused", "waiting"),
                "mtime": (path / "config.json").stat().st_mtime,
            }
        )
    return sorted(runs, key=lambda r: r["mtime"], reverse=True)


def newest_live(root: str | Path) -> Path | None:
    return next((r["path"] for r in list_runs(root) if r["live"]), None)


class _Tail:
    """New complete lines of a growing JSON-lines file (a torn last line waits for its newline)."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset = path, 0

    def read(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return []
        end = data.rfind(b"\n") + 1
        self.offset += end
        rows = []
        for line in data[:end].splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                log.warning("%s: a line that is not JSON; skipped", self.path)
        return rows


class RemoteRunner(Listeners):
    """The panels' runner for runs served in their own process under ``root``.

    Parameters
    ----------
    root
        The runs folder: where Start creates run folders and where live runs are looked for.
    config
        What the page shows before any run is attached (the mirror's pool), and the default for Start.
    chain, reward_per_round
        Whether runs started here record on an embedded chain, and the reward per round in token units.
    rate, tick_s
        Most UI updates per second; how often the folder is read.
    follow
        Attach on its own to the newest live run when not attached to one.
    """

    def __init__(
        self,
        root: str | Path,
        config: RunConfig,
        *,
        chain: bool = False,
        reward_per_round: int | None = None,
        rate: float = 4.0,
        tick_s: float = 0.25,
        follow: bool = True,
        source: str = "",
    ) -> None:
        self.root, self.config = Path(root), config
        self.chain, self.reward_per_round = chain, reward_per_round
        self.tick_s, self.follow, self.source = tick_s, follow, source
        super().__init__()
        self.throttle = Throttle(self._deliver, rate=rate)
        self.view = RunView()
        self.folder: Path | None = None
        self.run_config: RunConfig = config
        self.coord: Any = service.build(None, config)
        self.status_data: dict[str, Any] = {}
        self.speed: float | None = None
        self.target: int | None = None
        self.message = ""
        self.last_report: RoundReport | None = None
        self.actions_log: deque[str] = deque(maxlen=200)
        self.events: list[dict[str, Any]] = []
        self.chain_snapshot: dict[str, Any] | None = None
        self._event_listeners: list[Listener] = []
        self._chain_listeners: list[Listener] = []
        self._lock = threading.RLock()  # one poll at a time (the poller, or a button's flush)
        self._tails: dict[str, _Tail] = {}
        self._mtimes: dict[str, float] = {}
        self._closed = threading.Event()
        self.view.reset(self.coord)
        self._thread: threading.Thread | None = None

    def open(self) -> RemoteRunner:
        """Attach to the newest live run (with ``follow``) and start reading; call once the panels listen.

        Not in ``__init__``: the history is handed over once, on attach, so the panels must have
        subscribed by then.
        """
        if self._thread is None:
            if self.follow:
                live = newest_live(self.root)
                if live is not None:
                    self.attach(live)
            self._thread = threading.Thread(target=self._loop, name="hypergpu-ui-tail", daemon=True)
            self._thread.start()
        return self

    # -- listeners (as Runner) -----------------------------------------------------------------
    def on_events(self, fn: Listener) -> None:
        """``fn(new_events)``: lines of the run's events.jsonl (all of them right after an attach)."""
        self._event_listeners.append(fn)

    def on_chain(self, fn: Listener) -> None:
        """``fn(snapshot)``: the run's chain.json each time the run rewrites it."""
        self._chain_listeners.append(fn)

    # -- attaching -----------------------------------------------------------------------------
    def attach(self, folder: str | Path) -> None:
        """Show the run in ``folder``: a fresh mirror, empty charts, then its whole history, then live."""
        folder = Path(folder)
        with self._lock:
            config = RunConfig.from_dict(json.loads((folder / "config.json").read_text(encoding="utf-8")))
            coord = service.build(None, config)
            self.throttle.clear()
            self.folder, self.run_config, self.coord = folder, config, coord
            self.status_data, self.events, self.chain_snapshot = {}, [], None
            self.last_report, self.target, self.speed = None, None, None
            self.actions_log.clear()
            self._tails = {n: _Tail(folder / n) for n in ("metrics.jsonl", "events.jsonl", "commands.jsonl")}
            self._mtimes = {}
            self._seen_status = None
            self.view.reset(coord)
            log.info("attached to run %s", folder.name)
            self._notify_coordinator(coord)
            self._poll(force=True)

    @property
    def run_name(self) -> str | None:
        return self.folder.name if self.folder is not None else None

    # -- status (what the run reports) ----------------------------------------------------------
    @property
    def _state(self) -> str:
        if self.folder is None:
            return "idle"
        state = self.status_data.get("state", "starting")
        if state in ("running", "paused", "waiting"):
            pid, beat = self.status_data.get("pid"), self.status_data.get("heartbeat", 0)
            if not service.pid_alive(pid) or time.time() - beat > service.LOST_AFTER_S * 4:
                return "lost"
        return state

    @property
    def status(self) -> str:
        """idle | starting | running | paused | waiting | finished | stopped | failed | lost."""
        return self._state

    @property
    def active(self) -> bool:
        return self._state in ("starting", "running", "paused", "waiting")

    @property
    def detail(self) -> str:
        s = self.status_data
        if self.folder is None:
            return "no run yet: press Start"
        if self._state == "lost":
            return f"the run's process (pid {s.get('pid')}) is gone; its folder keeps what it recorded"
        parts = [s.get("detail", "starting the run process")]
        if s.get("message"):
            parts.append(s["message"])
        return "; ".join(p for p in parts if p)

    @property
    def progress(self) -> tuple[int, int | None]:
        return int(self.status_data.get("round", self.coord.round)), self.target

    # -- controls: commands to the run ---------------------------------------------------------
    def _send(self, op: str, **args: Any) -> None:
        if self.folder is None or not self.active:
            raise RuntimeError("no live run: press Start")
        service.send(self.folder, op, source=self.source, **args)

    def launch(self, config: RunConfig, *, until: int | None = None, running: bool = True) -> Path:
        """Start a new run in its own process and attach to it (empty charts until its first round)."""
        if self.active:
            raise RuntimeError("a run is live; stop it before starting another")
        folder = service.start_run(
            self.root,
            config,
            until=until,
            running=running,
            speed=self.speed,
            chain=self.chain,
            reward_per_round=self.reward_per_round,
            source=self.source,
        ).path
        self.attach(folder)
        self.open()
        self.message = f"started run {folder.name}"
        return folder

    def start(self, rounds: int | None = None, *, until: int | None = None) -> None:
        """Resume a paused run, or run the attached one on to ``until``; a new run is :meth:`launch`."""
        if self.active:
            self._send("start", until=until or (self.progress[0] + (rounds or 0)) or None)
        else:
            self.launch(self.config, until=until)

    def pause(self) -> None:
        self._send("pause")
        self.message = "pausing at the end of this round"

    def resume(self) -> None:
        self._send("resume")

    def stop(self, timeout: float | None = 0.0) -> None:
        self._send("stop")
        self.message = "stopping after this round"

    def step(self) -> None:
        self._send("step")
        self.message = "one round requested"

    def set_speed(self, speed: float | None) -> None:
        if speed is not None and not (speed >= 0 and math.isfinite(speed)):
            raise ValueError(f"speed must be a finite number >= 0 simulated seconds per wall second, got {speed!r}")
        self.speed = speed or None
        if self.folder is not None and self.active:
            service.send(self.folder, "speed", speed=self.speed, source=self.source)

    def action(self, name: str, node: int, args: tuple[Any, ...] = (), what: str = "") -> bool:
        """Send a node action; it runs at the run's next round boundary (False: not yet applied)."""
        self._send("action", name=name, node=int(node), args=list(args), what=what or name)
        self.message = f"{what or name} queued for the next round boundary"
        return False

    def flush(self) -> None:
        with self._lock:
            self._poll()
            self.throttle.force()
            self._notify_status(force=True)

    def check(self) -> str:
        return self.status

    def wait(self, timeout: float | None = None) -> None:
        """Wait until the run is no longer live (tests and scripts)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.active and (deadline is None or time.monotonic() < deadline):
            self._closed.wait(self.tick_s)
        self.flush()

    @property
    def last_checkpoint(self) -> Path | None:
        if self.folder is None:
            return None
        found = checkpoint.list_checkpoints(self.folder / "checkpoints")
        return found[-1][1] if found else None

    def close(self) -> None:
        """Stop reading the folder (the run goes on in its own process)."""
        self._closed.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5.0)

    # -- reading the folder --------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._closed.wait(self.tick_s):
            try:
                with self._lock:
                    if self.follow and not self.active:
                        live = newest_live(self.root)
                        if live is not None and live != self.folder:
                            self.attach(live)
                            continue
                    self._poll()
            except Exception:
                log.exception("reading the run folder failed")

    def _changed(self, name: str) -> bool:
        try:
            mtime = (self.folder / name).stat().st_mtime_ns
        except OSError:
            return False
        if self._mtimes.get(name) == mtime:
            return False
        self._mtimes[name] = mtime
        return True

    def _poll(self, force: bool = False) -> None:
        if self.folder is None:
            self._notify_status(force=force)
            return
        if self._changed("status.json"):
            status = service.read_status(self.folder)
            if status:
                self.status_data = status
                self.target, self.speed = status.get("target"), status.get("speed")
        if self._changed("live.ckpt"):
            self._load_live()
        for row in self._tails["commands.jsonl"].read():
            if row.get("op") == "action":
                what = row.get("what") or row.get("name")
                self.actions_log.append(f"round {row['round']}, t={row['t']:.2f}s: {what}: {row.get('result')}")
        reports = [report_of(r) for r in self._tails["metrics.jsonl"].read()]
        for report in reports:
            self.throttle.push(report)
        events = self._tails["events.jsonl"].read()
        if events:
            self.events.extend(events)
            for fn in list(self._event_listeners):
                self._call(fn, events)
        if self._changed("chain.json"):
            snapshot = service.read_json(self.folder / "chain.json")
            if snapshot:
                self.chain_snapshot = snapshot
                for fn in list(self._chain_listeners):
                    self._call(fn, snapshot)
        if force:
            self.throttle.force()
        else:
            self.throttle.poll()
        self._notify_status(force=force)

    def _load_live(self) -> None:
        """Put the run's latest state into the mirror (pool, links, faults, policy, clock, weights)."""
        try:
            state = checkpoint.load(self.folder / "live.ckpt")
        except Exception as exc:  # rewritten under us: the next change brings a whole one
            log.debug("live state not readable yet: %s", exc)
            self._mtimes.pop("live.ckpt", None)
            return
        coord = self.coord
        persistence.load_state_dict(coord, state)
        faults = FaultInjector(state.get("fault_plan", ()), seed=coord.faults.seed)
        faults.load_state_dict(state["faults"])
        coord.faults = faults

    def _status_key(self) -> tuple[Any, ...]:
        return (self.status, self.detail, self.progress, self.run_name)
