"""Export a run as a ZIP: model weights + config + logs, under a name that cannot escape its folder."""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from pathlib import Path

import torch

from . import checkpoint
from .errors import ConfigError
from .runs import RunFolder, atomic_write_bytes, safe_child

_ODD = re.compile(r"[^A-Za-z0-9._-]+")


def export_name(name: str) -> str:
    """A file name for ``name``: path parts are refused, other odd characters become '_'."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("export name", name, "a non-empty name")
    name = name.strip()
    if "/" in name or "\\" in name or "\x00" in name or ".." in name or name.startswith("."):
        raise ConfigError("export name", name, "a plain name without '/', '\\', '..' or a leading '.'")
    clean = _ODD.sub("_", name)[:120]
    return clean if clean.endswith(".zip") else clean + ".zip"


def export_run(run: str | os.PathLike, dest: str | os.PathLike, name: str | None = None) -> Path:
    """Write ``dest/<name>.zip`` with model.pt (final weights), config.json, metrics.jsonl and summary.json."""
    from .analytics import summarize

    folder = RunFolder.open(run)
    target = safe_child(dest, export_name(folder.path.name if name is None else name), field="export name")
    found = checkpoint.latest_valid(folder.checkpoints)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.json", folder.config_path.read_text(encoding="utf-8"))
        zf.writestr("metrics.jsonl", folder.metrics_path.read_text(encoding="utf-8"))
        rows = folder.read_metrics()
        zf.writestr("summary.json", json.dumps(summarize(rows, name=folder.path.name).__dict__, indent=2, default=str))
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
    atomic_write_bytes(target, buf.getvalue())
    return target
