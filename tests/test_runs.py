"""Tests for run folders: atomic writes, safe names, metrics lines and truncation."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from hypergpu_lab import runs
from hypergpu_lab.errors import ConfigError
from hypergpu_lab.events import NodeRecord, RoundReport
from hypergpu_lab.runs import RunFolder, atomic_write_bytes, atomic_write_text, safe_child


def _record(node: int, status: str = "accepted", loss: float | None = 0.5) -> NodeRecord:
    return NodeRecord(
        node=node,
        status=status,
        reason=None if status == "accepted" else "non-finite values",
        batch_size=10,
        num_samples=100 + node,
        download_s=0.01,
        compute_s=0.2,
        upload_s=0.02,
        waiting_s=0.0,
        arrival=0.23 + node,
        download_attempts=1,
        upload_attempts=2,
        loss=loss,
        update_norm=1.5,
    )


def _report(round_: int, *, accuracy: float | None = 0.5, nodes: tuple[NodeRecord, ...] | None = None) -> RoundReport:
    nodes = nodes if nodes is not None else (_record(0), _record(1, status="straggled", loss=None))
    return RoundReport(
        run_id="r",
        round=round_,
        t_start=float(round_ - 1),
        t_end=float(round_),
        selected=len(nodes),
        accepted=sum(n.status == "accepted" for n in nodes),
        straggled=sum(n.status == "straggled" for n in nodes),
        failed=0,
        rejected=sum(n.status == "rejected" for n in nodes),
        test_accuracy=accuracy,
        test_loss=1.0 / round_,
        train_loss=0.7,
        wall_s=0.01,
        nodes=nodes,
        events=(f"event of round {round_}",),
    )


def _folder(tmp_path: Path) -> RunFolder:
    return RunFolder.create(tmp_path / "out", "run-1", {"rounds": 3})


# -- atomic writes ---------------------------------------------------------------------------------


def test_atomic_write_replaces_whole_and_leaves_no_temp(tmp_path: Path) -> None:
    # Prepare
    target = tmp_path / "sub" / "file.bin"

    # Execute
    atomic_write_bytes(target, b"first version, longer than the second")
    atomic_write_bytes(target, b"second")
    atomic_write_text(tmp_path / "sub" / "t.txt", "caf\u00e9")

    # Assert
    assert target.read_bytes() == b"second"
    assert (tmp_path / "sub" / "t.txt").read_bytes() == "caf\u00e9".encode()
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["file.bin", "t.txt"]


def test_failed_atomic_write_keeps_old_content_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare
    target = tmp_path / "file.txt"
    target.write_bytes(b"old content")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(runs.os, "replace", broken_replace)

    # Execute
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(target, b"new content that never lands")

    # Assert
    assert target.read_bytes() == b"old content"
    assert [p.name for p in tmp_path.iterdir()] == ["file.txt"]


def test_atomic_write_interrupted_during_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare
    target = tmp_path / "file.txt"
    target.write_bytes(b"old content")

    def broken_fsync(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(runs.os, "fsync", broken_fsync)

    # Execute
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(target, b"new")

    # Assert
    assert target.read_bytes() == b"old content"
    assert [p.name for p in tmp_path.iterdir()] == ["file.txt"]


# -- safe names ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../x", "a/b", "..", ".", ".hidden", "", "a\\b", "nul\x00"])
def test_safe_child_refuses_escaping_names(tmp_path: Path, name: str) -> None:
    # Execute
    with pytest.raises(ConfigError) as info:
        safe_child(tmp_path, name, field="out")

    # Assert
    assert info.value.field == "out"
    assert repr(name) in str(info.value)


def test_safe_child_accepts_plain_name(tmp_path: Path) -> None:
    # Execute
    child = safe_child(tmp_path, "run-1")

    # Assert
    assert child == tmp_path.resolve() / "run-1"
    assert not child.exists()


# -- RunFolder -------------------------------------------------------------------------------------


def test_create_builds_the_layout(tmp_path: Path) -> None:
    # Execute
    folder = RunFolder.create(tmp_path / "new" / "parent", "run-1", {"rounds": 3, "name": "run-1"})

    # Assert
    assert folder.path == (tmp_path / "new" / "parent" / "run-1").resolve()
    assert folder.checkpoints.is_dir()
    assert folder.metrics_path.read_text() == ""
    assert folder.read_config() == {"rounds": 3, "name": "run-1"}
    assert RunFolder.open(folder.path).read_config() == folder.read_config()
    assert [p.name for p in folder.path.parent.iterdir()] == ["run-1"]  # no temp folder beside it


def test_create_refuses_existing_folder(tmp_path: Path) -> None:
    # Prepare
    folder = _folder(tmp_path)
    folder.append(_report(1))
    before = folder.metrics_path.read_bytes()

    # Execute
    with pytest.raises(ConfigError) as info:
        RunFolder.create(tmp_path / "out", "run-1", {"rounds": 99})

    # Assert
    assert info.value.field == "out"
    assert "--resume" in str(info.value)
    assert folder.read_config() == {"rounds": 3}
    assert folder.metrics_path.read_bytes() == before


def test_create_leaves_nothing_when_config_cannot_be_written(tmp_path: Path) -> None:
    # Prepare
    out = tmp_path / "out"

    # Execute
    with pytest.raises(TypeError):
        RunFolder.create(out, "run-1", {"model": object()})

    # Assert
    assert list(out.iterdir()) == []


def test_create_refuses_unsafe_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^name: "):
        RunFolder.create(tmp_path, "../escape", {})
    assert list(tmp_path.iterdir()) == []


def test_open_refuses_folder_without_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config.json"):
        RunFolder.open(tmp_path)


def test_append_and_read_metrics_round_trip(tmp_path: Path) -> None:
    # Prepare
    folder = _folder(tmp_path)
    reports = [_report(1), _report(2, accuracy=None), _report(3, nodes=())]

    # Execute
    for report in reports:
        folder.append(report)
    rows = folder.read_metrics()

    # Assert
    assert rows == [r.to_dict() for r in reports]
    assert rows[0]["nodes"][1]["status"] == "straggled" and rows[0]["nodes"][1]["loss"] is None
    assert rows[0]["duration"] == 1.0
    assert len(folder.metrics_path.read_text().splitlines()) == 3


def test_append_converts_numpy_and_tensor_scalars(tmp_path: Path) -> None:
    # Prepare
    import numpy as np
    import torch

    folder = _folder(tmp_path)
    report = _report(1, accuracy=np.float32(0.25))  # type: ignore[arg-type]
    report = RoundReport(
        **{
            **{f: getattr(report, f) for f in report.__dataclass_fields__},
            "train_loss": torch.tensor(0.5),
            "test_loss": torch.tensor(float("nan")),
        }
    )

    # Execute
    folder.append(report)

    # Assert
    row = folder.read_metrics()[0]
    assert row["test_accuracy"] == 0.25 and row["train_loss"] == 0.5
    assert row["test_loss"] is None


def test_append_keeps_rounds_with_non_finite_values(tmp_path: Path) -> None:
    # Prepare: a diverged node's update is rejected with a NaN loss and an infinite norm
    folder = _folder(tmp_path)
    bad = NodeRecord(**{**_record(1, status="rejected").__dict__, "loss": float("nan"), "update_norm": float("inf")})
    report = _report(1, nodes=(_record(0), bad))

    # Execute
    folder.append(report)

    # Assert: the round is on disk as strict JSON, non-finite numbers as null
    text = folder.metrics_path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    rows = folder.read_metrics()
    assert [r["round"] for r in rows] == [1]
    assert rows[0]["nodes"][1]["loss"] is None and rows[0]["nodes"][1]["update_norm"] is None
    assert rows[0]["nodes"][0]["loss"] == 0.5


def test_torn_last_line_is_skipped_with_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Prepare: a crash in the middle of writing round 3
    folder = _folder(tmp_path)
    folder.append(_report(1))
    folder.append(_report(2))
    line = json.dumps(_report(3).to_dict())
    with open(folder.metrics_path, "a") as f:
        f.write(line[: len(line) // 2])

    # Execute
    with caplog.at_level(logging.WARNING, logger="hypergpu_lab.runs"):
        rows = folder.read_metrics()

    # Assert
    assert [r["round"] for r in rows] == [1, 2]
    assert any("line 3" in rec.getMessage() and rec.levelno == logging.WARNING for rec in caplog.records)


def test_read_metrics_of_missing_file_is_empty(tmp_path: Path) -> None:
    # Prepare
    folder = _folder(tmp_path)
    os.remove(folder.metrics_path)

    # Execute / Assert
    assert folder.read_metrics() == []


@pytest.mark.parametrize(("keep", "expected"), [(0, []), (2, [1, 2]), (5, [1, 2, 3, 4]), (3, [1, 2, 3])])
def test_truncate_metrics_keeps_rounds_up_to_n(tmp_path: Path, keep: int, expected: list[int]) -> None:
    # Prepare
    folder = _folder(tmp_path)
    reports = [_report(r) for r in range(1, 5)]
    for report in reports:
        folder.append(report)
    with open(folder.metrics_path, "a") as f:
        f.write('{"round": 5, "torn')

    # Execute
    folder.truncate_metrics(keep)

    # Assert: kept rows unchanged, the torn line gone, no temp file left
    assert folder.read_metrics() == [reports[r - 1].to_dict() for r in expected]
    assert len(folder.metrics_path.read_text().splitlines()) == len(expected)
    assert sorted(p.name for p in folder.path.iterdir()) == ["checkpoints", "config.json", "metrics.jsonl"]


def test_truncate_then_append_continues_the_file(tmp_path: Path) -> None:
    # Prepare
    folder = _folder(tmp_path)
    for r in (1, 2, 3):
        folder.append(_report(r))

    # Execute
    folder.truncate_metrics(1)
    folder.append(_report(2, accuracy=0.9))

    # Assert
    rows = folder.read_metrics()
    assert [r["round"] for r in rows] == [1, 2]
    assert rows[1]["test_accuracy"] == 0.9
