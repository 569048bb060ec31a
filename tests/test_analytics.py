"""Run summaries, comparison and ZIP export (with names that cannot leave their folder)."""

from __future__ import annotations

import io
import zipfile

import pytest
import torch

from hypergpu_lab import ConfigError, Coordinator, NodePool
from hypergpu_lab.analytics import compare, format_table, summarize_folder
from hypergpu_lab.export import export_name, export_run
from hypergpu_lab.runs import RunFolder


def _run(tmp_path, name: str, rounds: int, **kw) -> Coordinator:  # type: ignore[no-untyped-def]
    pool = NodePool.simulated(6, dataset="digits", partition="iid", network="mixed", seed=0)
    coord = Coordinator(pool=pool, model="mlp", run_dir=RunFolder.create(tmp_path, name, {}), checkpoint_every=2, **kw)
    coord.run(rounds=rounds, progress=False)
    return coord


def test_summary_matches_the_run(tmp_path) -> None:
    coord = _run(tmp_path, "a", 4)
    s = summarize_folder(tmp_path / "a", target=0.5)
    hist = list(coord.history)
    accs = [r["test_accuracy"] for r in hist]
    assert s.rounds == 4 and s.final_accuracy == accs[-1] and s.best_accuracy == max(accs)
    assert s.simulated_s == hist[-1]["t_end"]
    first = next(r for r in hist if r["test_accuracy"] >= 0.5)
    assert s.time_to_target == first["t_end"]
    attempts = sum(n.download_attempts + n.upload_attempts for _, n in coord.history.node_records)
    assert s.bytes_moved == attempts * coord.layout.nbytes
    assert sum(s.participation.values()) == 24 and s.updates["accepted"] == sum(r["accepted"] for r in hist)
    assert s.contribution[0] == 4 * coord.pool[0].num_samples


def test_compare_overlays_runs(tmp_path) -> None:
    _run(tmp_path, "a", 3)
    _run(tmp_path, "b", 2, lr=0.01)
    table, curves = compare([tmp_path / "a", tmp_path / "b"])
    assert [r["run"] for r in table] == ["a", "b"] and [r["rounds"] for r in table] == [3, 2]
    assert curves["a"]["round"] == [1, 2, 3] and len(curves["b"]["acc"]) == 2
    assert "final acc" in format_table(table).splitlines()[0]


def test_export_zip_holds_model_config_and_logs(tmp_path) -> None:
    coord = _run(tmp_path, "a", 3)
    out = export_run(tmp_path / "a", tmp_path / "exports", name="my run #1")
    assert out.parent == (tmp_path / "exports").resolve() and out.name == "my_run_1.zip"
    with zipfile.ZipFile(out) as zf:
        assert sorted(zf.namelist()) == ["config.json", "metrics.jsonl", "model.pt", "run.log", "summary.json"]
        model = torch.load(io.BytesIO(zf.read("model.pt")), weights_only=True)
        assert model["round"] == 3 and torch.equal(model["weights"], coord.weights)
        assert len(zf.read("metrics.jsonl").decode().splitlines()) == 3


@pytest.mark.parametrize("bad", ["../escape", "a/b", "..", ".hidden", "x\\y", "", "  ", "ok/../../etc"])
def test_path_traversal_names_are_refused(tmp_path, bad: str) -> None:
    with pytest.raises(ConfigError, match="export name"):
        export_name(bad)
    _run(tmp_path, "a", 1)
    with pytest.raises(ConfigError):
        export_run(tmp_path / "a", tmp_path / "exports", name=bad)
    assert not (tmp_path / "escape.zip").exists() and not (tmp_path.parent / "escape.zip").exists()


def test_compare_keys_runs_by_folder_when_two_share_a_name(tmp_path) -> None:
    # Prepare: two runs called "run" in different folders, of different lengths
    _run(tmp_path / "exp1", "run", 3)
    _run(tmp_path / "exp2", "run", 2)

    # Execute
    table, curves = compare([tmp_path / "exp1" / "run", tmp_path / "exp2" / "run"])

    # Assert: two curves, each its own folder's, never merged
    keys = [str(tmp_path / "exp1" / "run"), str(tmp_path / "exp2" / "run")]
    assert list(curves) == keys and [r["run"] for r in table] == keys
    assert curves[keys[0]]["round"] == [1, 2, 3] and curves[keys[1]]["round"] == [1, 2]
    with pytest.raises(ConfigError, match="runs: .*distinct run folders"):
        compare([tmp_path / "exp1" / "run", tmp_path / "exp1" / "run"])


def test_export_refuses_to_overwrite_without_force(tmp_path) -> None:
    # Prepare
    _run(tmp_path, "a", 1)
    first = export_run(tmp_path / "a", tmp_path / "exports")
    before = first.read_bytes()
    (tmp_path / "a" / "run.log").write_text("INFO later line\n")

    # Execute / Assert: refused by name, the first ZIP untouched; force replaces it
    with pytest.raises(ConfigError, match=r"export name: got 'a.zip'; accepted: a name not yet used"):
        export_run(tmp_path / "a", tmp_path / "exports")
    assert first.read_bytes() == before
    assert export_run(tmp_path / "a", tmp_path / "exports", force=True) == first
    with zipfile.ZipFile(first) as zf:
        assert zf.read("run.log").decode().startswith("INFO later line")


@pytest.mark.parametrize(
    "name, file",
    [("实验", "u5b9e_u9a8c.zip"), ("Café", "Cafe.zip"), ("实验 2", "u5b9e_u9a8c_2.zip"), ("my run #1", "my_run_1.zip")],
)
def test_export_names_stay_readable_and_distinct(name: str, file: str) -> None:
    assert export_name(name) == file
