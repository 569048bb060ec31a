"""Epsilon reaches the run folder's metrics and the CLI's result table; privacy off adds nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hypergpu_lab.cli import main
from hypergpu_lab.metrics import History

pytest.importorskip("dp_accounting")


def test_cli_table_and_metrics_show_epsilon(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Prepare
    config = tmp_path / "dp.json"
    train = {"model": "mlp", "clients_per_round": 5, "privacy": {"mode": "central", "noise_multiplier": 1.0}}
    pool = {"num_nodes": 20, "dataset": "digits", "partition": "iid", "network": "lan"}
    config.write_text(json.dumps({"name": "dp", "rounds": 2, "pool": pool, "train": train}))

    # Execute
    rc = main(["run", "--config", str(config), "--out", str(tmp_path), "--no-progress"])

    # Assert
    out = capsys.readouterr().out
    rows = [json.loads(line) for line in (tmp_path / "dp" / "metrics.jsonl").read_text().splitlines()]
    assert rc == 0
    assert "epsilon" in out.splitlines()[0] and "epsilon" in out.splitlines()[-2]
    assert [r["epsilon"] > 0 for r in rows] == [True, True]
    assert f"{rows[-1]['epsilon']:.3f}" in out


def test_table_without_privacy_has_no_epsilon_column() -> None:
    history = History()
    row = {"round": 1, "test_accuracy": 0.5, "test_loss": 1.0, "t_end": 1.0, "accepted": 1}
    history.rounds.append({**row, "straggled": 0, "failed": 0, "wall_s": 0.1})

    assert "epsilon" not in history.table()
