"""The Runs area: summaries, comparison, and ZIP export whose names cannot leave their folder."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
from ui_support import coordinator

from hypergpu_lab.ui import RunsPanel


@pytest.fixture(scope="module")
def finished_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two finished runs, built once for the module: alpha (2 rounds) and beta (3)."""
    root = tmp_path_factory.mktemp("runs")
    for name, rounds in (("alpha", 2), ("beta", 3)):
        coordinator(run_dir=root, name=name).run(rounds=rounds, progress=False)
    return root


@pytest.fixture
def runs_dir(finished_runs: Path, tmp_path: Path) -> Path:
    """A fresh folder holding copies of the two runs."""
    for name in ("alpha", "beta"):
        shutil.copytree(finished_runs / name, tmp_path / name)
    return tmp_path


def test_summary_and_compare_show_every_selected_run(runs_dir: Path) -> None:
    panel = RunsPanel(runs_dir)
    assert panel.runs.options == ("alpha", "beta")

    panel.runs.value = ("alpha", "beta")
    panel.buttons["compare"].click()

    assert [t["name"] for t in panel.chart.traces] == ["alpha", "beta"]
    assert [len(t["x"]) for t in panel.chart.traces] == [2, 3]
    assert "alpha" in panel.table.value and "beta" in panel.table.value
    panel.buttons["summary"].click()
    assert "final acc" in panel.table.value and "summary of 2 runs" in panel.message.value


def test_export_zip_holds_model_config_metrics_and_summary(runs_dir: Path) -> None:
    panel = RunsPanel(runs_dir)
    panel.runs.value = ("beta",)
    panel.name.value = "beta export"

    panel.buttons["export"].click()

    path = panel.last_export
    assert path == runs_dir / "exports" / "beta_export.zip"
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["config.json", "metrics.jsonl", "model.pt", "run.log", "summary.json"]
        assert zf.read("metrics.jsonl") == (runs_dir / "beta" / "metrics.jsonl").read_bytes()
        assert json.loads(zf.read("summary.json"))["rounds"] == 3
    assert "model.pt" in panel.message.value


def test_a_path_traversal_name_is_refused_and_writes_nothing(runs_dir: Path) -> None:
    panel = RunsPanel(runs_dir)
    panel.runs.value = ("alpha",)
    before = sorted(p for p in runs_dir.parent.rglob("*.zip"))

    for name in ("../evil", "..", "a/b", "/etc/evil", ".hidden"):
        panel.name.value = name
        panel.buttons["export"].click()
        assert "export refused" in panel.message.value, name

    assert sorted(p for p in runs_dir.parent.rglob("*.zip")) == before and panel.last_export is None
