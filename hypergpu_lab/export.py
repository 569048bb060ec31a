"""Export a run as a ZIP: model weights + config + logs, under a name that cannot escape its folder."""

from __future__ import annotations

import io
import json
import os
import re
import unicodedata
import zipfile
from pathlib import Path
from typing import Any

import torch

from . import checkpoint
from .errors import ConfigError
from .runs import RunFolder, atomic_write_bytes, safe_child

_ODD = re.compile(r"[^A-Za-z0-9._-]+")


def readable(name: str) -> str:
    """``name`` in the characters a file name may safely hold, kept readable.

    Accents are transliterated (``Café`` -> ``Cafe``); a character with no ASCII form is escaped as
    ``u`` and its code point (``实验`` -> ``u5b9e_u9a8c``), so two non-Latin names no longer both
    become ``_.zip``; runs of anything else become ``_``.
    """
    parts = []
    for ch in unicodedata.normalize("NFKD", name):
        if unicodedata.combining(ch):
            continue  # the accent of a decomposed letter
        parts.append(ch if ch.isascii() else f"_u{ord(ch):04x}_")
    return re.sub(r"_{2,}", "_", _ODD.sub("_", "".join(parts))).strip("_") or "_"


def export_name(name: str) -> str:
    """A file name for ``name``: path parts are refused, other characters kept readable (:func:`readable`)."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("export name", name, "a non-empty name")
    name = name.strip()
    if "/" in name or "\\" in name or "\x00" in name or ".." in name or name.startswith("."):
        raise ConfigError("export name", name, "a plain name without '/', '\\', '..' or a leading '.'")
    stem = name[:-4] if name.endswith(".zip") else name
    return readable(stem)[:120] + ".zip"


def run_log(folder: RunFolder, rows: list[dict[str, Any]]) -> str:
    """The run's log: ``run.log`` as the CLI wrote it, then each round's events from metrics.jsonl.

    A run made from Python has no run.log; the per-round events (network changes, fallbacks,
    anomalies, late updates) still tell its story, so they are always included.
    """
    parts = []
    if folder.log_path.is_file():
        parts.append(folder.log_path.read_text(encoding="utf-8", errors="replace"))
    for r in rows:
        for event in r.get("events", []):
            parts.append(f"round {r['round']}: {event}\n")
        for node in r.get("nodes", []):
            if node.get("status") != "accepted" and node.get("reason"):
                parts.append(f"round {r['round']}: node {node['node']} {node['status']}: {node['reason']}\n")
    return "".join(parts)


def export_run(
    run: str | os.PathLike, dest: str | os.PathLike, name: str | None = None, *, force: bool = False
) -> Path:
    """Write ``dest/<name>.zip``: model.pt (final weights), config.json, metrics.jsonl, summary.json, run.log.

    An existing file of that name is kept unless ``force``: a second export must not silently
    replace the first one somebody already shared.
    """
    from .analytics import summarize

    folder = RunFolder.open(run)
    target = safe_child(dest, export_name(folder.path.name if name is None else name), field="export name")
    if target.exists() and not force:
        raise ConfigError(
            "export name",
            target.name,
            f"a name not yet used in {target.parent}",
            hint="pass --force (force=True) to replace it",
        )
    found = checkpoint.latest_valid(folder.checkpoints)
    rows = folder.read_metrics()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.json", folder.config_path.read_text(encoding="utf-8"))
        zf.writestr("metrics.jsonl", folder.metrics_path.read_text(encoding="utf-8"))
        zf.writestr("summary.json", json.dumps(summarize(rows, name=folder.path.name).__dict__, indent=2, default=str))
        zf.writestr("run.log", run_log(folder, rows))
        if found is not None:
            path, state = found
            model = io.BytesIO()
            torch.save(
                {
                    "round": state["round"],
                    "weights": state["weights"],
                    "train_config": state["train_config"],
                    "pool_config": state["pool_config"],
                },
                model,
            )
            zf.writestr("model.pt", model.getvalue())
    atomic_write_bytes(target, buf.getvalue(), overwrite=force)
    return target
