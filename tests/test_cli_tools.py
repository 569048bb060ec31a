"""The CLI's run tools (summary, compare, export), resume edge cases, and the run's own log."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from hypergpu_lab.analytics import summarize_folder
from hypergpu_lab.cli import main
from hypergpu_lab.runs import RunFolder

pytestmark = pytest.mark.slow

BASE: dict[str, Any] = {
    "name": "r",
    "rounds": 3,
    "pool": {"num_nodes": 4, "dataset": "synthetic", "max_train": 200, "max_test": 50},
    "train": {"model": "mlp", "checkpoint_every": 1},
}


def _run(tmp_path: Path, out: Path, name: str, rounds: int = 3, **train: Any) -> Path:
    cfg = {**BASE, "name": name, "rounds": rounds, "train": {**BASE["train"], **train}}
    path = tmp_path / f"{name}-{abs(hash(str(out)))}.json"
    path.write_text(json.dumps(cfg))
    assert main(["run", "--config", str(path), "--out", str(out), "--no-progress"]) == 0
    return out / name


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three runs: a/one, a/two and b/one (a name shared with a/one, different length)."""
    tmp = tmp_path_factory.mktemp("runs")
    return {
        "a/one": _run(tmp, tmp / "a", "one", 3),
        "a/two": _run(tmp, tmp / "a", "two", 2, lr=0.01),
        "b/one": _run(tmp, tmp / "b", "one", 1),
    }


def test_run_writes_its_log_into_the_run_folder(runs: dict[str, Path]) -> None:
    text = (runs["a/one"] / "run.log").read_text()
    assert "run one: rounds 1 to 3" in text and "finished at round 3" in text


def test_summary_prints_a_row_per_run_and_totals(runs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    # Execute: a parent folder expands to its run folders
    rc = main(["summary", str(runs["a/one"].parent), "--json"])

    # Assert: the figures are the library's own summaries
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert [r["name"] for r in out["runs"]] == ["one", "two"]
    expected = [summarize_folder(runs[k]) for k in ("a/one", "a/two")]
    assert [r["rounds"] for r in out["runs"]] == [s.rounds for s in expected] == [3, 2]
    assert out["total"]["rounds"] == 5
    assert out["total"]["accepted"] == sum(s.updates["accepted"] for s in expected)

    assert main(["summary", str(runs["a/one"]), str(runs["b/one"])]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[0] == "run" and table[-1].lstrip().startswith("total (2 runs)")


def test_compare_keys_by_folder(runs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["compare", str(runs["a/one"]), str(runs["b/one"]), "--json"])

    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert list(out["curves"]) == [str(runs["a/one"]), str(runs["b/one"])]
    assert out["curves"][str(runs["a/one"])]["round"] == [1, 2, 3]
    assert out["curves"][str(runs["b/one"])]["round"] == [1]


def test_compare_needs_two_runs(runs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(runs["a/one"])]) == 2
    assert "error: runs: " in capsys.readouterr().err


def test_export_includes_the_log_and_refuses_to_overwrite(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Execute
    dest = tmp_path / "exports"
    dest.mkdir()
    assert main(["export", str(runs["a/one"]), "--to", str(dest), "--name", "实验 one"]) == 0
    zip_path = dest / "u5b9e_u9a8c_one.zip"
    first = zip_path.read_bytes()

    # Assert: readable name, the log inside, read back with zipfile
    with zipfile.ZipFile(zip_path) as zf:
        assert "run one: rounds 1 to 3" in zf.read("run.log").decode()
        assert zf.read("metrics.jsonl") == (runs["a/one"] / "metrics.jsonl").read_bytes()
    assert main(["export", str(runs["a/one"]), "--to", str(dest), "--name", "实验 one"]) == 2
    assert "--force" in capsys.readouterr().err
    assert zip_path.read_bytes() == first
    assert main(["export", str(runs["a/one"]), "--to", str(dest), "--name", "实验 one", "--force"]) == 0
    assert main(["export", str(runs["a/one"]), "--to", str(dest), "--name", "../up"]) == 2
    assert not (tmp_path / "up.zip").exists()
    assert sorted(p.name for p in dest.iterdir()) == ["u5b9e_u9a8c_one.zip"]


def test_resume_with_no_readable_checkpoint_refuses_and_truncates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Prepare: a 3-round run whose every checkpoint is then corrupted
    folder = _run(tmp_path, tmp_path / "out", "broken", 3)
    for ckpt in (folder / "checkpoints").iterdir():
        ckpt.write_bytes(ckpt.read_bytes()[:-50])
    metrics_before = (folder / "metrics.jsonl").read_bytes()
    capsys.readouterr()

    # Execute
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({**BASE, "name": "broken"}))
    rc = main(["run", "--config", str(cfg), "--out", str(tmp_path / "out"), "--resume", "--rounds", "5"])

    # Assert
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "--resume: no readable checkpoint" in err and "nothing was changed" in err
    assert (folder / "metrics.jsonl").read_bytes() == metrics_before
    assert len(RunFolder.open(folder).read_metrics()) == 3


def test_json_logging_on_request(tmp_path: Path) -> None:
    # Prepare
    import io
    import logging

    from hypergpu_lab.logs import json_handler

    stream = io.StringIO()
    logger = logging.getLogger("hypergpu_lab.test")
    handler = json_handler(stream)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        # Execute
        logger.info("round %d done", 3, extra={"round": 3})
    finally:
        logger.removeHandler(handler)

    # Assert
    record = json.loads(stream.getvalue())
    assert record["message"] == "round 3 done" and record["round"] == 3 and record["level"] == "INFO"
    assert record["logger"] == "hypergpu_lab.test"
