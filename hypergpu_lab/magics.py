"""``%load_ext hypergpu_lab``: list, attach to and steer the runs the dashboard started, from a notebook.

The commands are in :data:`USAGE` (``%hypergpu help`` prints it). A run lives in its own process
(:mod:`hypergpu_lab.service`) and the magics are one more page of it: they read its folder and
write commands to its inbox, as the dashboard does, so a notebook and the dashboard steer the same
run and always agree. A command takes effect at the run's next round boundary; the magic waits for
the run's record of it (``commands.jsonl``), not for a guessed time. The cell magic reads its YAML
with the CLI's loader and validation, so an error names the field.

Nothing heavy is imported until a magic runs: the extension loads in milliseconds, torch and the
widgets come with the first magic that needs them. Output is for the person at the notebook, like
the CLI's, so it is printed.
"""

from __future__ import annotations

import argparse
import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.display import Pretty, display

from .errors import ConfigError
from .runs import runs_root

USAGE = """\
%hypergpu runs                 the runs under the runs folder, newest first, with state and round
%hypergpu root [DIR]           show or set the runs folder ($HYPERGPU_LAB_RUNS, else runs/)
%hypergpu attach [RUN]         attach to RUN (default: the newest live run) and show its panel
%hypergpu panel [--dashboard]  show the attached run's panel again (or the whole dashboard)
%hypergpu status               the attached run's state, round and last command
%hypergpu pause | resume | step | stop      a command to the attached run; returns once it is applied

%%hypergpu [--rounds N] [--seed S] [--name NAME] [--chain] [--wait] [--no-panel]
<a run config in YAML, as `hypergpu-lab run --config` reads it>: starts it as a run and attaches"""


def _say(text: str) -> None:
    """A magic's answer, shown as the cell's output through IPython's display (not ``print``)."""
    display(Pretty(text))


COMMANDS = ("pause", "resume", "step", "stop")
WAIT_S = 120.0  # how long a command may wait for the run's next round boundary before the magic returns


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad line as IPython's UsageError (one line, no traceback), never exits."""

    def __init__(self, prog: str, **kwargs: Any) -> None:
        super().__init__(prog=prog, add_help=False, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _parser(sub: str) -> _Parser:
    p = _Parser(f"%hypergpu {sub}")
    if sub == "root":
        p.add_argument("folder", nargs="?", type=Path)
    elif sub == "runs":
        p.add_argument("--root", type=Path)
    elif sub == "attach":
        p.add_argument("run", nargs="?", help="a run folder's name under the runs folder, or its path")
        p.add_argument("--root", type=Path)
        p.add_argument("--dashboard", action="store_true", help="show the whole dashboard, not the panel")
        p.add_argument("--no-panel", action="store_true", help="attach without showing widgets")
    elif sub == "panel":
        p.add_argument("--dashboard", action="store_true")
    elif sub in COMMANDS:
        p.add_argument("--no-wait", action="store_true", help="queue the command and return at once")
        p.add_argument("--timeout", type=float, default=WAIT_S, help="seconds to wait for the run to apply it")
    elif sub == "%%":
        p.prog = "%%hypergpu"
        p.add_argument("--rounds", type=int)
        p.add_argument("--seed", type=int)
        p.add_argument("--name")
        p.add_argument("--root", type=Path)
        p.add_argument("--chain", action="store_true", help="record contributions on an embedded chain")
        p.add_argument("--wait", action="store_true", help="block until the run ends, then print its rounds")
        p.add_argument("--no-panel", action="store_true")
    return p


@dataclass
class Session:
    """What the magics remember in one shell: the runs folder and the attached run (with its page)."""

    root: Path = field(default_factory=runs_root)
    folder: Path | None = None
    runner: Any = None  # the RemoteRunner that feeds the panel, while one is shown
    panel: Any = None

    def detach(self) -> None:
        if self.runner is not None:
            self.runner.close()
        self.folder, self.runner, self.panel = None, None, None


@magics_class
class HyperGPUMagics(Magics):
    """``%hypergpu`` (line) and ``%%hypergpu`` (cell); see the module docstring."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self.session = Session()

    @line_cell_magic
    def hypergpu(self, line: str, cell: str | None = None) -> Any:
        try:
            if cell is not None:
                return self._cell(line, cell)
            words = shlex.split(line)
            if not words or words[0] in ("help", "-h", "--help"):
                _say(USAGE)
                return None
            sub, rest = ("runs" if words[0] == "list" else words[0]), words[1:]
            if sub in COMMANDS:
                return self._command(sub, _parser(sub).parse_args(rest))
            if sub not in ("root", "runs", "attach", "panel", "status"):
                raise UsageError(f"%hypergpu: unknown command {words[0]!r}; try %hypergpu help")
            return getattr(self, f"_{sub}")(_parser(sub).parse_args(rest))
        except ConfigError as exc:
            raise UsageError(str(exc)) from None

    # -- the runs folder -------------------------------------------------------------------------
    def _root(self, args: argparse.Namespace) -> None:
        if args.folder is not None:
            self.session.root = args.folder
        _say(f"runs folder: {self.session.root.resolve()}")

    def _runs(self, args: argparse.Namespace) -> None:
        from .analytics import format_table
        from .ui.remote import list_runs

        root = args.root or self.session.root
        runs = list_runs(root)
        if not runs:
            _say(f"no runs in {Path(root).resolve()}")
            return
        attached = self.session.folder
        rows = [
            {
                "run": r["name"] + (" *" if Path(r["path"]).resolve() == attached else ""),
                "state": r["state"],
                "round": r["round"],
                "target": r["target"],
            }
            for r in runs
        ]
        _say(format_table(rows))

    # -- attaching -------------------------------------------------------------------------------
    def _attach(self, args: argparse.Namespace) -> None:
        from .ui.remote import newest_live

        root = args.root or self.session.root
        if args.run is None:
            folder = newest_live(root)
            if folder is None:
                raise UsageError(f"%hypergpu attach: no live run in {Path(root).resolve()}; %hypergpu runs lists them")
        else:
            folder = self._find(root, args.run)
        self.attach(folder, panel=not args.no_panel, dashboard=args.dashboard)

    @staticmethod
    def _find(root: Path, run: str) -> Path:
        from .runs import safe_child

        path = Path(run)
        folder = path if path.is_absolute() or len(path.parts) > 1 else safe_child(root, run, field="run")
        if not (folder / "config.json").is_file():
            raise ConfigError("run", run, f"a run folder (with config.json) under {Path(root).resolve()}, or its path")
        return folder.resolve()

    def attach(self, folder: Path, *, panel: bool = True, dashboard: bool = False) -> None:
        """Make ``folder`` the run the commands go to; show its panel fed by a RemoteRunner."""
        self.session.detach()
        self.session.folder = Path(folder).resolve()
        if panel:
            self._show(dashboard)
        _say(f"attached to run {self.session.folder.name}: {self._status_line()}")

    def _panel(self, args: argparse.Namespace) -> None:
        self._attached()
        if self.session.panel is None or args.dashboard:
            self._show(args.dashboard)
        else:
            self._display(self.session.panel)

    def _show(self, dashboard: bool) -> None:
        """A panel on the attached run: subscribe first, then attach, so the whole history reaches it."""
        from .config import RunConfig
        from .ui.remote import RemoteRunner

        folder = self._attached()
        if self.session.runner is not None:
            self.session.runner.close()
        config = RunConfig.from_dict(json.loads((folder / "config.json").read_text(encoding="utf-8")))
        runner = RemoteRunner(folder.parent, config, follow=False, source="notebook")
        if dashboard:
            from .ui.dashboard import Dashboard

            panel = Dashboard(runner=runner, out=folder.parent, runs_root=folder.parent, rounds=config.rounds)
        else:
            from .ui.control import ControlPanel

            panel = ControlPanel(runner, out=folder.parent, rounds=config.rounds)
            runner.open()
        runner.attach(folder)
        self.session.runner, self.session.panel = runner, panel
        self._display(panel)

    @staticmethod
    def _display(obj: Any) -> None:
        from IPython.display import display

        display(obj)

    def _attached(self) -> Path:
        if self.session.folder is None:
            raise UsageError("%hypergpu: no run attached; %hypergpu attach [RUN] first")
        return self.session.folder

    # -- status and commands ---------------------------------------------------------------------
    def _status(self, args: argparse.Namespace) -> None:
        self._attached()
        _say(self._status_line())

    def _status_line(self) -> str:
        from .service import pid_alive, read_status

        status = read_status(self._attached()) or {}
        state = status.get("state", "starting")
        if state in ("running", "paused", "waiting") and not pid_alive(status.get("pid")):
            state = "lost"
        line = f"{state}, round {status.get('round', 0)} of {status.get('target', '?')}"
        detail = "; ".join(s for s in (status.get("detail"), status.get("message")) if s)
        return f"{line} ({detail})" if detail else line

    def _command(self, op: str, args: argparse.Namespace) -> None:
        """Send ``op`` to the attached run and, unless --no-wait, return once the run has applied it."""
        from . import service

        folder = self._attached()
        if not service.is_live(service.read_status(folder)):
            raise UsageError(f"%hypergpu {op}: run {folder.name} is not live ({self._status_line()})")
        sent = service.send(folder, op, source="notebook")
        if args.no_wait:
            _say(f"{op} queued for run {folder.name}'s next round boundary")
            return
        try:
            row = service.wait_applied(folder, sent, timeout=args.timeout)
            if op == "stop" and row.get("ok", True):
                service.wait_ended(folder, timeout=args.timeout)
            elif op == "pause" and row.get("ok", True):  # it takes effect when the round in progress ends
                service.wait_status(folder, lambda s: s.get("state") != "running", "the pause", args.timeout)
            elif op == "step" and row.get("ok", True):  # the round it asked for has run
                done = row["round"] + 1
                service.wait_status(
                    folder, lambda s: s.get("round", 0) >= done or s.get("state") != "paused", "the step", args.timeout
                )
        except TimeoutError:
            _say(f"{op} still queued: run {folder.name} has not reached a round boundary in {args.timeout:g} s")
            return
        except RuntimeError as exc:
            raise UsageError(f"%hypergpu {op}: {exc}") from None
        if not row.get("ok", True):
            raise UsageError(f"%hypergpu {op}: the run refused it: {row.get('result')}")
        if self.session.runner is not None:
            self.session.runner.flush()  # the panel shows the new state now, not a tick later
        _say(f"{op}: {self._status_line()}")

    # -- a run from a cell -----------------------------------------------------------------------
    def _cell(self, line: str, cell: str) -> None:
        """Validate the cell's YAML as the CLI would, start it as a run of its own, and attach."""
        from . import service
        from .cli import with_overrides
        from .config import RunConfig

        args = _parser("%%").parse_args(shlex.split(line))
        config = with_overrides(
            RunConfig.from_text(cell, "yaml", source="%%hypergpu cell"),
            rounds=args.rounds,
            seed=args.seed,
            name=args.name,
        )
        root = args.root or self.session.root
        folder = service.start_run(root, config, chain=args.chain, source="notebook").path
        _say(f"started run {folder.name} in {folder.parent.resolve()}: {config.rounds} rounds")
        self.attach(folder, panel=not args.no_panel)
        if args.wait:
            try:
                service.wait_ended(folder, timeout=None)
            except RuntimeError as exc:
                raise UsageError(f"%%hypergpu: {exc}") from None
            if self.session.runner is not None:
                self.session.runner.flush()
            self._print_rounds(folder)
            _say(f"run {folder.name}: {self._status_line()}")

    @staticmethod
    def _print_rounds(folder: Path) -> None:
        from .analytics import format_table
        from .runs import RunFolder

        rows = [
            {"round": m["round"], "accuracy": m.get("test_accuracy"), "loss": m.get("test_loss"), "t": m.get("t_end")}
            for m in RunFolder.open(folder).read_metrics()
        ]
        _say(format_table(rows))


def load(ipython: Any) -> None:
    """Register the magics on ``ipython`` (called by ``%load_ext hypergpu_lab``)."""
    magics = HyperGPUMagics(ipython)
    ipython.register_magics(magics)


def unload(ipython: Any) -> None:
    """Close the attached run's page reader (the run itself goes on in its own process)."""
    magics = ipython.magics_manager.registry.get("HyperGPUMagics")
    if magics is not None:
        magics.session.detach()
