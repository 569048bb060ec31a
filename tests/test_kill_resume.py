"""The coordinator process is SIGKILLed mid-run; `--resume` finishes bit-identical to an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hypergpu_lab import checkpoint
from hypergpu_lab.runs import RunFolder

pytestmark = pytest.mark.slow

CONFIG = {
    "name": "killme",
    "rounds": 24,
    "pool": {"num_nodes": 10, "dataset": "digits", "partition": "dirichlet", "alpha": 0.5, "network": "unstable-wan"},
    "train": {"model": "cnn", "batch_size": 10, "deadline_s": 4.0, "checkpoint_every": 3},
    "faults": [
        {"kind": "crash", "nodes": [3], "start": 5.0, "end": 30.0, "unit": "time"},
        {"kind": "duplicate", "nodes": [1, 2]},
    ],
}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "hypergpu_lab.cli", "run", *args, "--no-progress"]


def _env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parent.parent)
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _final(folder: Path) -> dict:
    (_, path), *_ = reversed(checkpoint.list_checkpoints(folder / "checkpoints"))
    return checkpoint.load(path)


def _rows(folder: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in RunFolder.open(folder).read_metrics()]


# SecAgg with central DP and adaptive clipping: the masks, the noise and the clip norm must all come back.
PRIVATE = {
    **CONFIG,
    "train": {
        **CONFIG["train"],
        "model": "mlp",
        "privacy": {
            "mode": "central",
            "noise_multiplier": 0.8,
            "clip": 1.0,
            "adaptive_quantile": 0.5,
            "clip_count_stddev": 1.0,
            "secagg": True,
        },
    },
}


@pytest.mark.parametrize("config", [CONFIG, PRIVATE], ids=["plain", "secagg-dp"])
def test_sigkill_then_resume_equals_uninterrupted_run(tmp_path: Path, config: dict) -> None:
    if "privacy" in config["train"]:
        pytest.importorskip("dp_accounting")
        pytest.importorskip("cryptography")
    # Prepare
    cfg = tmp_path / "run.json"
    cfg.write_text(json.dumps(config))
    subprocess.run(
        _cli("--config", str(cfg), "--out", str(tmp_path / "a")),
        check=True,
        env=_env(),
        capture_output=True,
        timeout=300,
    )

    # Execute: start the same run, kill -9 it once round 8 is on disk, then resume it.
    proc = subprocess.Popen(
        _cli("--config", str(cfg), "--out", str(tmp_path / "b")),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    metrics = tmp_path / "b" / "killme" / "metrics.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.exists() and metrics.read_text().count("\n") >= 8:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    assert proc.wait(timeout=60) == -signal.SIGKILL, "the run finished before it could be killed"
    killed_at = metrics.read_text().count("\n")
    assert killed_at < config["rounds"]
    resumed = subprocess.run(
        _cli("--config", str(cfg), "--out", str(tmp_path / "b"), "--resume"),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )

    # Assert: same final weights bit for bit, same metrics for every round.
    assert resumed.returncode == 0, resumed.stderr
    a, b = _final(tmp_path / "a" / "killme"), _final(tmp_path / "b" / "killme")
    assert a["round"] == b["round"] == config["rounds"]
    assert torch.equal(a["weights"], b["weights"])
    assert _rows(tmp_path / "b" / "killme") == _rows(tmp_path / "a" / "killme")
