"""A run as its own process: it owns its run folder, applies commands at round boundaries, and records them.

Why a process of its own (``hypergpu-lab serve FOLDER``, started detached by the dashboard's Start):
a run must outlive the page that started it, be shared by every page, and leave nothing behind when
pages close. A Voila kernel dies with its page (or lingers, orphaned, when the browser's shutdown
is refused); a process that owns the run folder does neither, needs no server extension, and can be
listed, attached to, stopped or killed like any other process. Pages are readers of the folder and
writers of commands; none of them holds the run.

The run folder is the source of truth::

    config.json       the RunConfig (written when the run starts)
    service.json      how the run process was asked to run it (chain, reward per round)
    metrics.jsonl     one line per round (the coordinator's RunFolder)
    events.jsonl      what happened, for markers: actions, faults, detections, decisions, state changes
    inbox/            commands from pages: one JSON file each, applied in name order at a round boundary
    commands.jsonl    every applied command with the round after which it took effect (the replay script)
    status.json       state, detail, round, target, speed, pid and a heartbeat (rewritten atomically)
    live.ckpt         the full coordinator state after the latest change (pages mirror it)
    chain.json        the recorder's status, the recorded rounds and the balances (pages render it)
    final.json        the final round and the SHA-256 of the final weights
    checkpoints/      as for any run

One thread steps the coordinator and applies commands between rounds, so a command's effect depends
only on the round it is applied after: :func:`replay` re-runs config + command log and reaches the
same weights bit for bit. Pacing (simulated seconds per wall second) is a wait between rounds here,
never inside the core.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import checkpoint, persistence
from .config import RunConfig
from .coordinator import Coordinator
from .errors import ConfigError
from .events import RoundReport
from .nodes import NodePool
from .run_control import RunState, Waiting
from .runs import RunFolder, atomic_write_text, safe_child

log = logging.getLogger(__name__)

ACTIONS = (
    "set_profile",
    "latency_spike",
    "disconnect",
    "reconnect",
    "crash",
    "recover",
    "inject",
    "clear_faults",
)
"""Node actions a command may name: the functions of :mod:`hypergpu_lab.ui.actions` (no widgets there)."""

MARKED_DECISIONS = ("quarantine", "release", "readmit", "rollback", "phase")
"""Policy decisions that get a marker of their own on the charts (the rest go to the decision log)."""

OPS = ("start", "pause", "resume", "stop", "step", "speed", "action")
HEARTBEAT_S = 1.0
"""The run process rewrites status.json at least this often; a page calls a run lost after a few misses."""
LOST_AFTER_S = 15.0
POLL_S = 0.05


# --------------------------------------------------------------------------- the folder's files


def status_path(folder: str | Path) -> Path:
    return Path(folder) / "status.json"


def read_json(path: Path) -> Any:
    """The file's JSON, or None when it is missing or half-written (never raises for those)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_status(folder: str | Path) -> dict[str, Any] | None:
    return read_json(status_path(folder))


def pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by the kernel that started it) is not alive
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


def is_live(status: dict[str, Any] | None) -> bool:
    """The run's process is alive and its state is running, paused or waiting."""
    return bool(status) and RunState(status.get("state", "idle")).active and pid_alive(status.get("pid"))


def send(folder: str | Path, op: str, *, source: str = "", **args: Any) -> Path:
    """Queue a command for the run in ``folder``; it takes effect at the next round boundary.

    One file per command, written atomically under a name that sorts by time, so any number of pages
    may send at once without a lock and the run applies them in the order they were sent.
    """
    if op not in OPS:
        raise ConfigError("command", op, "one of " + ", ".join(OPS))
    if op == "action" and args.get("name") not in ACTIONS:
        raise ConfigError("action", args.get("name"), "one of " + ", ".join(ACTIONS))
    inbox = Path(folder) / "inbox"
    inbox.mkdir(exist_ok=True)
    path = inbox / f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.json"
    # The id (the file's name) comes back in commands.jsonl, so a sender can wait for its own command.
    atomic_write_text(path, json.dumps({"op": op, "source": source, "id": path.stem, **args}))
    return path


def wait_applied(folder: str | Path, sent: Path, timeout: float | None = 60.0) -> dict[str, Any]:
    """Block until the run has applied the command :func:`send` wrote to ``sent``; its commands.jsonl row.

    The row says whether the run accepted it (``ok``) and what it did (``result``). Raises
    RuntimeError when the run's process ends (or is gone) without applying it, TimeoutError after
    ``timeout`` seconds. Waits on the run's record, never on a guess of how long a round takes.
    """
    return _wait(folder, lambda: _applied(folder, sent.stem), f"command {sent.stem}", timeout)


def wait_status(
    folder: str | Path, done: Callable[[dict[str, Any]], bool], what: str, timeout: float | None = 60.0
) -> dict[str, Any]:
    """Block until ``done(status)`` holds for the run's status.json; that status (errors as :func:`wait_applied`)."""

    def check() -> dict[str, Any] | None:
        status = read_status(folder)
        return status if status and done(status) else None

    return _wait(folder, check, what, timeout)


def wait_ended(folder: str | Path, timeout: float | None = 60.0) -> dict[str, Any]:
    """Block until the run is over (finished, stopped or failed); its final.json (errors as :func:`wait_applied`).

    final.json, not status.json: the status says "stopped" a moment before the final weights are
    hashed and written, and a reader that waited for the status could still miss them.
    """
    return _wait(folder, lambda: read_json(Path(folder) / "final.json"), "the end of the run", timeout)


def _applied(folder: str | Path, command_id: str) -> dict[str, Any] | None:
    return next((row for row in read_commands(folder) if row.get("id") == command_id), None)


def _wait(folder: str | Path, check: Callable[[], Any], what: str, timeout: float | None) -> Any:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        found = check()
        if found is not None:
            return found
        status = read_status(folder)
        if status is not None and not pid_alive(status.get("pid")):
            found = check()  # it may have been recorded just before the process ended
            if found is not None:
                return found
            raise RuntimeError(f"the run in {folder} ended ({status.get('state')}) before {what}")
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"{what}: the run in {folder} did not get there in {timeout:g} s")
        time.sleep(POLL_S)


def read_commands(folder: str | Path) -> list[dict[str, Any]]:
    return _read_jsonl(Path(folder) / "commands.jsonl")


def read_events(folder: str | Path) -> list[dict[str, Any]]:
    return _read_jsonl(Path(folder) / "events.jsonl")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return rows
    for line in text.splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:  # a torn last line of a killed run
            pass
    return rows


def _append(path: Path, row: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row, separators=(",", ":"), default=str) + "\n")
        f.flush()


def weights_hash(coord: Coordinator) -> str:
    """SHA-256 of the global weights' float32 bytes: equal hashes are equal weights, bit for bit."""
    return hashlib.sha256(coord.weights.detach().float().contiguous().numpy().tobytes()).hexdigest()


# --------------------------------------------------------------------------- starting a run


def create_run(
    out: str | Path, config: RunConfig, *, chain: bool = False, reward_per_round: int | None = None
) -> RunFolder:
    """A new run folder ``out/<name>[-k]`` holding the config and how to serve it (no process yet)."""
    from .ui.factory import unique_name  # no widgets: factory is plain code

    NodePool.from_config(config.pool)  # missing data fails here, before a run folder exists
    name = unique_name(out, config.name)
    folder = RunFolder.create(out, name, {**config.to_dict(), "name": name})
    atomic_write_text(
        folder.path / "service.json", json.dumps({"chain": chain, "reward_per_round": reward_per_round}, indent=2)
    )
    return folder


def launch(folder: str | Path, *, log_level: str = "INFO") -> subprocess.Popen:
    """Start ``hypergpu-lab serve FOLDER`` detached: its own session, so neither a page nor its kernel owns it."""
    folder = Path(folder)
    logfile = open(folder / "run.log", "ab")  # handed to the child, closed below
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hypergpu_lab.service", str(folder), "--log-level", log_level],
            stdin=subprocess.DEVNULL,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    finally:
        logfile.close()
    # Reap it when it exits (it outlives the page, but must not stay a zombie of the page's kernel).
    threading.Thread(target=proc.wait, name="hypergpu-reap-run", daemon=True).start()
    return proc


def start_run(
    out: str | Path,
    config: RunConfig,
    *,
    until: int | None = None,
    running: bool = True,
    speed: float | None = None,
    chain: bool = False,
    reward_per_round: int | None = None,
    source: str = "",
) -> RunFolder:
    """Create the run folder, queue the first commands (pacing, start) and launch its process."""
    folder = create_run(out, config, chain=chain, reward_per_round=reward_per_round)
    if speed:
        send(folder.path, "speed", speed=speed, source=source)
    if running:
        send(folder.path, "start", until=until or config.rounds, source=source)
    launch(folder.path)
    return folder


# --------------------------------------------------------------------------- the run process


def build(folder: RunFolder | None, config: RunConfig, *, chain: Any = None, chain_options: Any = None) -> Coordinator:
    """The coordinator of a run folder's config (without a folder: a replay or a page's mirror)."""
    return Coordinator.from_config(config, run_dir=folder, chain=chain, chain_options=chain_options)


def apply_action(coord: Coordinator, name: str, node: int, args: Sequence[Any]) -> str:
    """Run a node action (``ui.actions.<name>``) on ``coord``; its one-line description."""
    from .ui import actions

    if name not in ACTIONS:
        raise ConfigError("action", name, "one of " + ", ".join(ACTIONS))
    return getattr(actions, name)(coord, int(node), *args)


class RunService:
    """Serves one run folder: the coordinator's own :class:`RunControl` runs the rounds; this class
    turns the inbox's commands into its calls and writes what pages read.

    There is one state machine, the coordinator's. The process's main thread reads the inbox and
    keeps the heartbeat; node actions run through ``control.at_boundary`` (between two rounds);
    pacing is the control's ``between`` hook, so commands sent while it waits take effect at once.
    """

    def __init__(self, folder: str | Path, *, chain: Any = None) -> None:
        self.folder = RunFolder.open(folder)
        self.config = RunConfig.from_dict(self.folder.read_config())
        options = read_json(self.folder.path / "service.json") or {}
        if chain is None and options.get("chain"):
            from .chain.client import ChainClient

            chain = ChainClient.embedded()
        chain_options = {"reward_per_round": options.get("reward_per_round")} if chain is not None else None
        self.coord = build(self.folder, self.config, chain=chain, chain_options=chain_options)
        self.control = self.coord.control
        self.coord.bus.subscribe(self._on_report)
        self.control.on_change(self._on_change)
        self.control.between = self._after_round
        self.message = ""
        self.target: int = self.config.rounds
        self.speed: float | None = None
        self.seq = len(read_commands(self.folder.path))
        self._last_state: RunState | None = None
        self._last_report: RoundReport | None = None
        self._gone = False
        self._decisions_seen = 0
        self._faults_seen: dict[int, str | None] = {}
        self._last_status = 0.0
        self._files_lock = threading.Lock()  # status.json and commands.jsonl are written from two threads
        self._pace_cut = threading.Event()  # ends a pacing wait: pause, stop, a new speed
        self._chain_stop = threading.Event()
        self._chain_thread: threading.Thread | None = None
        self.inbox = self.folder.path / "inbox"
        self.inbox.mkdir(exist_ok=True)

    @property
    def state(self) -> RunState:
        return self.control.state

    @property
    def detail(self) -> str:
        return self.control.detail

    # -- files ---------------------------------------------------------------------------------
    def write_status(self) -> None:
        coord = self.coord
        with self._files_lock:
            atomic_write_text(
                status_path(self.folder.path),
                json.dumps(
                    {
                        "run": self.folder.path.name,
                        "pid": os.getpid(),
                        "heartbeat": time.time(),
                        "state": self.state.value,
                        "detail": self.detail,
                        "message": self.message,
                        "round": coord.round,
                        "target": self.target,
                        "speed": self.speed,
                        "t": coord.clock.now,
                        "commands": self.seq,
                    }
                ),
            )
            self._last_status = time.monotonic()

    def write_live(self) -> None:
        """The whole coordinator state, for pages to mirror (they show nodes, links and faults from it)."""
        checkpoint.save(self.folder.path / "live.ckpt", persistence.state_dict(self.coord))

    def event(self, kind: str, text: str, *, node: int | None = None, why: str = "", at: float | None = None) -> None:
        """One line of events.jsonl; ``at`` is the round it belongs to (x of its marker), default the last."""
        coord = self.coord
        _append(
            self.folder.path / "events.jsonl",
            {
                "round": coord.round if at is None else at,
                "t": coord.clock.now,
                "kind": kind,
                "node": node,
                "text": text,
                "why": why,
            },
        )

    def _log_command(self, row: dict[str, Any]) -> None:
        """One line of commands.jsonl (the replay script), numbered in the order applied."""
        with self._files_lock:
            self.seq += 1
            _append(self.folder.path / "commands.jsonl", {**row, "seq": self.seq})

    # -- what the run control and each round leave ----------------------------------------------
    def _on_change(self, control: Any) -> None:
        """A state change is an event (a detail change alone is not); each failed try to start a round
        (WAITING) is also a command line, so :func:`replay` goes through the same waits."""
        if self._gone:
            return
        state = control.state
        if state is RunState.WAITING:
            self._log_command({"op": "wait", "round": self.coord.round, "t": self.coord.clock.now, "ok": True})
        if state is not self._last_state:
            self._last_state = state
            self.event("state", f"{state.value}: {control.detail}")
        self.write_status()

    def _on_report(self, report: RoundReport) -> None:
        self._last_report = report
        for rec in report.nodes:
            seen = self._faults_seen.get(rec.node)
            if rec.injected != seen:
                if rec.injected:
                    self.event("fault", f"node {rec.node}: {rec.injected}", node=rec.node, why="injected fault active")
                self._faults_seen[rec.node] = rec.injected
        for d in report.detections:
            node = d.get("node")
            what = d.get("kind", "detection")
            why = f"heartbeat failure detector, {d.get('latency', 0):.2f} virtual s after it happened"
            self.event("detection", f"node {node}: {what}", node=node, why=why)
        decisions = list(getattr(self.coord.policy, "decisions", ()) or ())
        for d in decisions[self._decisions_seen :]:
            kind = d.action if d.action in MARKED_DECISIONS else "decision"
            self.event(
                kind,
                f"{d.action}" + (f" node {d.node}" if d.node is not None else "") + f": {d.before} -> {d.after}",
                node=d.node,
                why=d.reason,
                at=d.round,
            )
        self._decisions_seen = len(decisions)

    def _after_round(self) -> None:
        """In the run's thread after each round: the mirror, the status, then pacing (the lock is free)."""
        with self.control.lock:  # no node action lands while the state is written
            self.write_live()
        self.write_status()
        self._pace()

    def _pace(self) -> None:
        """Wait ``duration / speed`` minus the round's wall time; pause, stop or a new speed cut it short."""
        self._pace_cut.clear()
        report, speed = self._last_report, self.speed
        if not speed or report is None or self.state is not RunState.RUNNING:
            return
        end = time.monotonic() + report.duration / speed - report.wall_s
        while (left := end - time.monotonic()) > 0:
            if self._pace_cut.wait(min(left, HEARTBEAT_S)):
                return
            self.write_status()  # the heartbeat, while the run waits on purpose

    # -- commands ------------------------------------------------------------------------------
    def apply_inbox(self) -> bool:
        """Apply every queued command; True if any was applied. A step is a barrier: what was sent after
        it waits for its round."""
        try:
            names = sorted(p.name for p in self.inbox.iterdir() if p.suffix == ".json" and not p.name.startswith("."))
        except OSError:
            return False
        for name in names:
            path = self.inbox / name
            command = read_json(path)
            path.unlink(missing_ok=True)
            if isinstance(command, dict):
                self.apply(command)
                if command.get("op") == "step" and self.control.steps_pending:
                    break
        return bool(names)

    def apply(self, command: dict[str, Any]) -> None:
        """Apply one command between two rounds and record it with the round after which it took effect.

        It runs through ``control.at_boundary``: at once when no round is in progress, else when the
        round in progress ends. This thread waits for it (a round at most), so the commands sent after
        it cannot overtake it, and a pause's row names the round the run really paused after.
        """
        done = threading.Event()

        def at_boundary() -> None:
            try:
                self._apply(command)
            finally:
                done.set()

        self.control.at_boundary(at_boundary)
        while not done.wait(HEARTBEAT_S) and self.control.active:
            self.write_status()

    def _apply(self, command: dict[str, Any]) -> None:
        op, coord, control = command.get("op"), self.coord, self.control
        round_, t = coord.round, coord.clock.now
        ok, result = True, ""
        try:
            if op == "start":
                target = int(command.get("until") or self.target)
                if target <= coord.round:
                    raise ConfigError("rounds", target, f"more than the {coord.round} rounds already run")
                control.retarget(target)
                self.target = target
                if self.state in (RunState.PAUSED, RunState.WAITING):
                    control.resume()
                result = f"run to round {self.target}"
            elif op == "pause":
                if self.state is RunState.RUNNING:
                    control.pause()
                    self._pace_cut.set()
                result = "paused"
            elif op == "resume":
                if self.state in (RunState.PAUSED, RunState.WAITING):
                    control.resume()
                result = "resumed"
            elif op == "stop":
                control.stop(timeout=0)
                self._pace_cut.set()
                result = "stop"
            elif op == "step":
                if self.state is RunState.RUNNING:
                    raise ConfigError("step", "running", "a paused run (pause it to step by hand)")
                control.step()
                result = f"step to round {coord.round + 1}"
            elif op == "speed":
                speed = command.get("speed")
                self.speed = float(speed) if speed else None
                self._pace_cut.set()  # a wait under the old speed ends; the next round paces anew
                result = f"pacing {self.speed:g} sim s / wall s" if self.speed else "pacing off"
            elif op == "action":
                result = apply_action(coord, command["name"], command["node"], command.get("args") or ())
                self.event("action", result, node=int(command["node"]), why=command.get("what") or command["name"])
            else:
                raise ConfigError("command", op, "one of " + ", ".join(OPS))
        except Exception as exc:  # a bad command is recorded as refused, never stops the run
            ok, result = False, f"{type(exc).__name__}: {exc}"
            log.warning("command %s refused: %s", op, result)
        self.message = f"{op}: {result}"
        self._log_command({**command, "round": round_, "t": t, "wall": time.time(), "ok": ok, "result": result})
        if ok and op == "action":
            self.write_live()
        self.write_status()

    # -- the process's main thread ----------------------------------------------------------------
    def serve(self) -> RunState:
        """Run until finished, stopped or failed; returns the final state.

        The run starts paused at its current round ("Start or Step"); this thread applies the inbox
        and keeps the heartbeat until the control's thread ends.
        """
        self.write_live()
        if self.coord.recorder is not None:
            self._chain_thread = threading.Thread(target=self._chain_loop, name="hypergpu-chain-snapshot", daemon=True)
            self._chain_thread.start()
        self.control.start(self.target, paused=f"ready at round {self.coord.round}: Start or Step")
        while not self.control.wait(POLL_S, raise_error=False):
            if not self.control.steps_pending:
                self.apply_inbox()
            if not self.folder.path.is_dir():
                log.warning("run folder %s is gone; ending the run", self.folder.path)
                self._gone = True
                self.control.stop()
                return RunState.STOPPED
            if time.monotonic() - self._last_status >= HEARTBEAT_S:
                self.write_status()
        self._finish()
        return self.state

    def _finish(self) -> None:
        """Write final.json, then flush the chain (the process stays alive and listed while it sends)."""
        coord = self.coord
        atomic_write_text(
            self.folder.path / "final.json",
            json.dumps({"round": coord.round, "weights_sha256": weights_hash(coord), "state": self.state.value}),
        )
        self.write_live()
        if coord.recorder is not None:
            self.message = "sending the remaining rounds to the chain"
            self.write_status()
            done = threading.Event()
            threading.Thread(
                target=lambda: (coord.recorder.close(flush=True, timeout=300), done.set()), daemon=True
            ).start()
            while not done.wait(HEARTBEAT_S):
                self.write_status()
            self._chain_stop.set()
            self.write_chain()
            self.message = "chain up to date"
        self.write_status()

    # -- the chain snapshot ----------------------------------------------------------------------
    def _chain_loop(self) -> None:
        while not self._chain_stop.wait(1.0):
            try:
                self.write_chain()
            except Exception:
                log.exception("chain snapshot failed")

    def write_chain(self) -> None:
        """chain.json: what the Blockchain tab shows, read here so pages make no chain calls."""
        rec = self.coord.recorder
        ledger, sid = rec.ledger, rec.session_id
        info = ledger.describe()
        status = rec.status()
        nodes = sorted(self.coord.pool.nodes)[:50]
        snapshot = {
            "written": time.time(),
            "endpoint": str(info.endpoint),
            "chain_id": info.chain_id,
            "coordinator": info.coordinator,
            "contracts": dict(info.contracts),
            "session": sid,
            "decimals": ledger.token_decimals,
            "reward_per_round": rec.reward_per_round,
            "status": status.as_dict(),
            "failures": {str(k): v for k, v in rec.failures().items()},
            "accounts": [
                {
                    "node": n,
                    "address": ledger.address_of(n),
                    "score": ledger.total_score(sid, n),
                    "claimable": ledger.claimable(n),
                    "claimed": ledger.claimed(n),
                    "balance": ledger.token_balance(n),
                }
                for n in nodes
            ],
            "paid": {str(k): v for k, v in rec.paid_by_node().items()},
            "queued": {str(k): v for k, v in rec.queued_by_node().items()},
            "history": [
                {
                    "round": r.round,
                    "block": r.block,
                    "tx": r.tx_hash,
                    "nodes": len(r.contributions),
                    "score": r.total_score,
                }
                for r in ledger.history(sid)[-30:]
            ],
        }
        atomic_write_text(self.folder.path / "chain.json", json.dumps(snapshot, default=str))


# --------------------------------------------------------------------------- replay


def replay(folder: str | Path) -> Coordinator:
    """Re-run a run folder's config and command log; the returned coordinator holds the final weights.

    Commands took effect between rounds, each after the round it records, so re-applying the
    simulation-changing ones (node actions, and the quorum waits the run went through) after the
    same rounds reproduces the run exactly. Pause, resume, pacing and who sent what change nothing.
    """
    run = RunFolder.open(folder)
    config = RunConfig.from_dict(run.read_config())
    coord = build(None, config)
    final = read_json(Path(folder) / "final.json") or read_status(folder) or {}
    last = int(final.get("round", 0))
    for command in read_commands(folder):
        if command.get("op") not in ("action", "wait") or not command.get("ok", True):
            continue
        while coord.round < command["round"]:
            coord.step()
        if command["op"] == "wait":
            try:
                coord.step()
            except Waiting:
                continue
            raise ConfigError("replay", command, "a round that waited for quorum, as the recorded run did")
        apply_action(coord, command["name"], command["node"], command.get("args") or ())
    while coord.round < last:
        coord.step()
    return coord


def safe_run(root: str | Path, name: str) -> Path:
    return safe_child(root, name, field="run")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hypergpu_lab.service", description="Serve one run folder.")
    p.add_argument("folder", type=Path)
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    state = RunService(args.folder).serve()
    return 0 if state in (RunState.FINISHED, RunState.STOPPED) else 1


if __name__ == "__main__":
    raise SystemExit(main())
