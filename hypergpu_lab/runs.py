"""Run folders on disk: the config, every round's metrics, and checkpoints.

Layout of ``<out>/<name>/``::

    config.json        the RunConfig, written once
    metrics.jsonl      one JSON line per round (summary + node records), appended and fsynced
    run.log            the lab's log lines while the CLI ran it (see RunFolder.logging)
    checkpoints/       round-000000000005.ckpt ... (see checkpoint.py)

A folder appears whole or not at all: it is built under a temporary name and
renamed into place. A crash can leave at most a torn last line in
metrics.jsonl, which readers skip and a resume rewrites.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .events import RoundReport

log = logging.getLogger(__name__)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, overwrite: bool = True) -> None:
    """Write to a temp file in the same folder, fsync, then rename over ``path``.

    With ``overwrite=False`` the temp file is hard-linked into place instead, which fails if
    ``path`` appeared meanwhile (FileExistsError): no check-then-write race.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; run files are meant to be read by dashboards too
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
            os.unlink(tmp)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def safe_child(parent: str | os.PathLike, name: str, field: str = "name") -> Path:
    """``parent/name`` where ``name`` is a plain file name that cannot escape ``parent``."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name or name.startswith("."):
        raise ConfigError(field, name, "a plain file name without '/', '\\' or a leading '.'")
    root = Path(parent).resolve()
    child = (root / name).resolve()
    if child.parent != root:
        raise ConfigError(field, name, f"a name inside {root}")
    return child


class RunFolder:
    """One run's folder; create it with :meth:`create`, reopen it with :meth:`open`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @classmethod
    def create(cls, out: str | os.PathLike, name: str, config: dict[str, Any]) -> RunFolder:
        """Create ``out/name`` atomically with its config; refuse to overwrite an existing run."""
        target = safe_child(out, name)
        if target.exists():
            raise ConfigError(
                "out",
                str(target),
                "a folder that does not exist yet",
                hint="pass --resume to continue that run, or choose another --out or name",
            )
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=target.parent))
        except OSError as exc:  # --out is a file, or somewhere nothing can be created (/proc/x)
            raise ConfigError("out", str(out), "a writable folder", hint=exc.strerror or str(exc)) from None
        try:
            tmp.chmod(0o755)
            (tmp / "checkpoints").mkdir()
            atomic_write_text(tmp / "config.json", json.dumps(config, indent=2, sort_keys=True))
            (tmp / "metrics.jsonl").touch()
            os.rename(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _fsync_dir(target.parent)
        return cls(target)

    @classmethod
    def open(cls, path: str | os.PathLike) -> RunFolder:
        path = Path(path)
        if not (path / "config.json").is_file():
            raise ConfigError("run folder", str(path), "a folder created by a run (it has config.json)")
        return cls(path)

    @property
    def log_path(self) -> Path:
        return self.path / "run.log"

    @contextlib.contextmanager
    def logging(self, level: int = logging.INFO, fmt: logging.Formatter | None = None) -> Iterator[None]:
        """Copy the lab's log records (``hypergpu_lab.*``) into ``run.log`` while the block runs.

        So a run folder carries its own story (waits, fallbacks, skipped checkpoints) to whoever
        receives its export, not only the terminal that ran it.
        """
        handler = logging.FileHandler(self.log_path, encoding="utf-8")
        handler.setLevel(level)
        handler.setFormatter(fmt or logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger("hypergpu_lab")
        before = root.level
        if root.getEffectiveLevel() > level:
            root.setLevel(level)
        root.addHandler(handler)
        try:
            yield
        finally:
            root.removeHandler(handler)
            root.setLevel(before)
            handler.close()

    def read_config(self) -> dict[str, Any]:
        return json.loads(self.config_path.read_text(encoding="utf-8"))

    def append(self, report: RoundReport) -> None:
        """Append one round as a JSON line and fsync, so a killed run loses at most this line."""
        line = (
            json.dumps(_finite(report.to_dict()), separators=(",", ":"), allow_nan=False, default=_json_default) + "\n"
        )
        with open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every complete line; a torn last line (a crash mid-write) is skipped with a warning."""
        rows: list[dict[str, Any]] = []
        if not self.metrics_path.exists():
            return rows
        for n, line in enumerate(self.metrics_path.read_text(encoding="utf-8").splitlines(), 1):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                log.warning("%s line %d is incomplete; skipped", self.metrics_path, n)
        return rows

    def truncate_metrics(self, last_round: int) -> None:
        """Keep rounds <= ``last_round`` (resuming from a checkpoint replays the rest)."""
        rows = [r for r in self.read_metrics() if r["round"] <= last_round]
        text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows)
        atomic_write_text(self.metrics_path, text)


def _finite(value: Any) -> Any:
    """Non-finite floats become null, so a round with a diverged node (NaN loss) is still recorded as strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return _finite(value.item())
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


RUNS_ENV = "HYPERGPU_LAB_RUNS"


def runs_root() -> Path:
    """The folder that holds the run folders pages and notebooks share: ``$HYPERGPU_LAB_RUNS``, else ``runs``.

    One default for the dashboard, the ``%hypergpu`` magics and the JupyterLab launcher tile, so a
    notebook finds the runs the dashboard started. The launcher sets the variable for the dashboard
    it serves, since Voila runs that page's kernel in the notebook's own folder.
    """
    return Path(os.environ.get(RUNS_ENV) or "runs")
