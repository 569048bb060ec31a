"""Tests for the command line: runs, resumes, bad input (exit 2), presets and the demo."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hypergpu_lab.cli import main
from hypergpu_lab.config import PRESETS, preset

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Any:
    """Runs here are tiny; one intra-op thread keeps them fast when other processes share the CPU
    (two spinning OpenMP threads on a busy 2-core machine slow a round down a hundredfold)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _metrics(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def _without_wall(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k != "wall_s"} for row in rows]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, str, Path]:
    """`run --preset iid-lan --rounds 3` once for the module; tests that change the folder copy it."""
    out = tmp_path_factory.mktemp("cli") / "out"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        rc = main(["run", "--preset", "iid-lan", "--rounds", "3", "--out", str(out), "--no-progress"])
    return rc, stdout.getvalue(), stderr.getvalue(), out


def _copy_out(first_run: tuple[int, str, str, Path], tmp_path: Path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(first_run[3], out)
    return out


# -- run, rerun, resume ----------------------------------------------------------------------------


def test_run_prints_table_and_creates_run_folder(first_run: tuple[int, str, str, Path]) -> None:
    # Prepare
    rc, stdout, stderr, out = first_run
    folder = out / "iid-lan"

    # Assert
    assert rc == 0, stderr
    lines = stdout.splitlines()
    assert lines[0].split()[:3] == ["round", "acc", "loss"]
    assert [line.split()[0] for line in lines[2:5]] == ["1", "2", "3"]
    assert re.search(r"final test accuracy \d\.\d{3} after 3 rounds", stdout)
    assert f"run folder: {folder.resolve()}" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["iid-lan"]
    assert json.loads((folder / "config.json").read_text()) == preset("iid-lan", rounds=3).to_dict()
    rows = _metrics(folder)
    assert [r["round"] for r in rows] == [1, 2, 3]
    assert all(r["selected"] == 10 and r["run_id"] == "iid-lan" for r in rows)
    assert (folder / "checkpoints").is_dir()


def test_run_again_without_resume_refuses(
    first_run: tuple[int, str, str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Prepare
    out = _copy_out(first_run, tmp_path)
    before = (out / "iid-lan" / "metrics.jsonl").read_bytes()

    # Execute
    rc = main(["run", "--preset", "iid-lan", "--rounds", "3", "--out", str(out), "--no-progress"])

    # Assert
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("hypergpu-lab: error: out: ") and err.count("\n") == 1
    assert "--resume" in err
    assert (out / "iid-lan" / "metrics.jsonl").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["iid-lan"]


def test_resume_continues_to_round_5(
    first_run: tuple[int, str, str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Prepare
    out = _copy_out(first_run, tmp_path)
    folder = out / "iid-lan"
    before = _metrics(folder)
    config_before = (folder / "config.json").read_bytes()

    # Execute
    rc = main(["run", "--preset", "iid-lan", "--rounds", "5", "--out", str(out), "--resume", "--no-progress"])

    # Assert
    stdout = capsys.readouterr().out
    assert rc == 0
    rows = _metrics(folder)
    assert [r["round"] for r in rows] == [1, 2, 3, 4, 5]
    # Rounds 1-3 keep their results (wall time is the only field a replay may change).
    assert _without_wall(rows[:3]) == _without_wall(before)
    assert rows[4]["t_end"] > rows[2]["t_end"]
    assert "after 5 rounds" in stdout
    assert (folder / "config.json").read_bytes() == config_before


def test_resume_from_checkpoint_keeps_earlier_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Prepare: a small run that checkpoints every round
    config = tmp_path / "small.yaml"
    config.write_text(
        "name: small\nrounds: 2\n"
        "pool: {num_nodes: 3, dataset: digits, max_train: 150, network: lan}\n"
        "train: {model: mlp, checkpoint_every: 1, keep_checkpoints: 2}\n"
    )
    out = tmp_path / "out"
    assert main(["run", "--config", str(config), "--out", str(out), "--no-progress"]) == 0
    lines_before = (out / "small" / "metrics.jsonl").read_text().splitlines()

    # Execute
    rc = main(["run", "--config", str(config), "--rounds", "4", "--out", str(out), "--resume", "--no-progress"])

    # Assert
    capsys.readouterr()
    assert rc == 0
    lines = (out / "small" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 4
    assert lines[:2] == lines_before  # continued from the round-2 checkpoint, not replayed
    assert sorted(p.name for p in (out / "small" / "checkpoints").iterdir()) == [
        "round-000000000003.ckpt",
        "round-000000000004.ckpt",
    ]


# -- bad input exits 2 with one line ---------------------------------------------------------------


def _run_fails(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("hypergpu-lab: error: ") and err.count("\n") == 1
    return err


def test_unknown_preset_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Execute
    err = _run_fails(["run", "--preset", "nope", "--out", str(tmp_path / "out")], capsys)

    # Assert
    assert "preset: got 'nope'" in err and "iid-lan" in err
    assert not (tmp_path / "out").exists()


def test_missing_config_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _run_fails(["run", "--config", str(tmp_path / "missing.yaml")], capsys)

    assert "config: " in err and "missing.yaml" in err


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("train: {lr: -1}\n", "train.lr"),
        ("pool: {num_nodes: 0}\n", "pool.num_nodes"),
        ("pool: {num_nodes: 3\n", "config"),  # malformed YAML
        ("rounds: 3\nepochs: 2\n", "epochs"),  # unknown key
    ],
)
def test_bad_yaml_config_exits_2_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, field: str
) -> None:
    # Prepare
    config = tmp_path / "bad.yaml"
    config.write_text(text)

    # Execute
    err = _run_fails(["run", "--config", str(config), "--out", str(tmp_path / "out"), "--no-progress"], capsys)

    # Assert
    assert f"error: {field}: " in err
    assert not (tmp_path / "out").exists()


def test_missing_data_exits_2_and_leaves_no_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Prepare: MNIST pointed at an empty folder
    (tmp_path / "nodata").mkdir()
    config = tmp_path / "mnist.yaml"
    config.write_text(f"name: m\npool: {{dataset: mnist, data_root: '{tmp_path / 'nodata'}'}}\n")
    out = tmp_path / "out"

    # Execute
    err = _run_fails(["run", "--config", str(config), "--out", str(out), "--no-progress"], capsys)

    # Assert: the retry after adding the files must not need --resume
    assert "MNIST" in err or "mnist" in err
    assert not (out / "m").exists()


def test_bad_rounds_override_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    err = _run_fails(["run", "--preset", "iid-lan", "--rounds", "0"], capsys)

    assert "rounds: got 0" in err


def test_resume_without_out_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    err = _run_fails(["run", "--preset", "iid-lan", "--resume"], capsys)

    assert "--resume" in err and "--out" in err


def test_resume_of_missing_run_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _run_fails(["run", "--preset", "iid-lan", "--out", str(tmp_path), "--resume"], capsys)

    assert "run folder" in err and "iid-lan" in err


def test_bad_input_through_the_module_entry_point(tmp_path: Path) -> None:
    # Prepare
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
    }

    # Execute
    proc = subprocess.run(
        [sys.executable, "-m", "hypergpu_lab.cli", "run", "--preset", "nope", "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )

    # Assert
    assert proc.returncode == 2
    assert proc.stderr.startswith("hypergpu-lab: error: preset: got 'nope'")
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


# -- presets and demo ------------------------------------------------------------------------------


def test_presets_lists_every_preset(capsys: pytest.CaptureFixture[str]) -> None:
    # Execute
    rc = main(["presets"])

    # Assert
    lines = capsys.readouterr().out.splitlines()
    assert rc == 0
    assert [line.split()[0] for line in lines] == list(PRESETS)
    for line, data in zip(lines, PRESETS.values()):
        assert f"{data['pool']['num_nodes']} nodes" in line and data["pool"]["dataset"] in line


def test_demo_prints_final_accuracy(capsys: pytest.CaptureFixture[str]) -> None:
    # Execute
    rc = main(["demo", "--rounds", "2", "--no-progress"])

    # Assert
    stdout = capsys.readouterr().out
    assert rc == 0
    assert stdout.startswith("HyperGPU Lab demo: 10 simulated GPU nodes")
    assert sum(line.strip().startswith("node ") for line in stdout.splitlines()) == 10
    match = re.search(r"^final test accuracy (\d\.\d{3}) after 2 rounds", stdout, flags=re.M)
    assert match is not None, stdout
    assert 0.0 <= float(match.group(1)) <= 1.0


def test_a_run_that_must_wait_for_nodes_exits_75_and_says_why(tmp_path, capsys) -> None:
    cfg = {
        "name": "starved",
        "rounds": 5,
        "pool": {"num_nodes": 4, "dataset": "digits", "network": "lan"},
        "train": {"model": "mlp", "quorum": 4, "max_wait_s": 10.0, "heartbeat_timeout_s": 2.0},
        "faults": [{"kind": "crash", "nodes": [0, 1], "start": 0.0, "unit": "time"}],
    }
    path = tmp_path / "starved.json"
    path.write_text(json.dumps(cfg))

    code = main(["run", "--config", str(path), "--no-progress"])

    assert code == 75
    assert "run waiting: waiting for quorum: 2 of 4 nodes available, 4 needed" in capsys.readouterr().err
