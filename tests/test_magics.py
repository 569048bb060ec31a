"""``%load_ext hypergpu_lab`` in a real IPython shell: attach to a run another process serves, steer it, run a cell.

The run is a real ``hypergpu-lab serve`` process started here with the CLI, as the dashboard's Start
starts one. Nothing waits on the run's speed: each step waits for the run's own record (the
command's row in commands.jsonl, status.json), so the asserted rounds are the recorded ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("IPython")
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from hypergpu_lab import cli, service
from hypergpu_lab.config import RunConfig
from hypergpu_lab.runs import RunFolder

pytestmark = pytest.mark.slow

WAIT_S = 300.0
GOOD_YAML = """\
name: cell
rounds: 3
pool: {num_nodes: 4, dataset: digits, partition: iid, network: lan, seed: 7}
train: {model: mlp, strategy: fedavg, lr: 0.05, batch_size: 10}
"""


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[InteractiveShell]:
    """IPython's own shell with the extension loaded and the runs folder set to tmp_path/runs."""
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "hypergpu_lab")
    ip.run_line_magic("hypergpu", f"root {tmp_path / 'runs'}")
    try:
        yield ip
    finally:
        ip.run_line_magic("unload_ext", "hypergpu_lab")


@pytest.fixture
def served_run(tmp_path: Path) -> Iterator[Path]:
    """A long run (it cannot finish during the test) served by ``hypergpu-lab serve`` in its own process."""
    config = RunConfig.from_dict(
        {
            "name": "elsewhere",
            "rounds": 100_000,
            "pool": {"num_nodes": 4, "dataset": "digits", "partition": "iid", "network": "lan", "seed": 1},
            "train": {"model": "mlp", "strategy": "fedavg", "lr": 0.05, "batch_size": 10},
        }
    )
    folder = service.create_run(tmp_path / "runs", config).path
    service.send(folder, "start", source="dashboard")  # as the dashboard's Start queues it
    with (tmp_path / "serve.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hypergpu_lab.cli", "serve", str(folder)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        service.wait_status(folder, lambda s: s["state"] == "running", "running", timeout=WAIT_S)
        yield folder
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def _magics(ip: InteractiveShell):
    return ip.magics_manager.registry["HyperGPUMagics"]


def _metric_rounds(folder: Path) -> int:
    return len(RunFolder.open(folder).read_metrics())


def test_loading_the_extension_imports_nothing_heavy() -> None:
    # Prepare: a fresh interpreter, as a kernel is
    code = (
        "import sys\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance()\n"
        "ip.run_line_magic('load_ext', 'hypergpu_lab')\n"
        "magics = ip.magics_manager.magics\n"
        "print('hypergpu' in magics['line'], 'hypergpu' in magics['cell'])\n"
        "print(sorted(m for m in ('torch', 'ipywidgets', 'plotly', 'web3', 'numpy') if m in sys.modules))\n"
    )

    # Execute
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)

    # Assert
    assert out.stdout.splitlines() == ["True True", "[]"], out.stdout + out.stderr


def test_attach_to_a_run_started_elsewhere_then_pause_resume_and_stop_it(
    shell: InteractiveShell, served_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Prepare
    folder = served_run
    magics = _magics(shell)

    # Execute: list, attach to the newest live run (no name given), pause
    shell.run_line_magic("hypergpu", "runs")
    listed = capsys.readouterr().out
    shell.run_line_magic("hypergpu", "attach")
    attached = capsys.readouterr().out
    shell.run_line_magic("hypergpu", f"pause --timeout {WAIT_S}")
    paused_out = capsys.readouterr().out
    paused = service.read_status(folder)
    pause_row = [c for c in service.read_commands(folder) if c["op"] == "pause"][-1]
    rounds_when_paused = _metric_rounds(folder)
    panel_when_paused = magics.session.panel.status.value

    # Assert: the run paused where its record says, and the panel shows it
    assert "elsewhere" in listed and "running" in listed
    assert "attached to run elsewhere" in attached
    assert magics.session.folder == folder.resolve()
    assert pause_row["ok"] and pause_row["source"] == "notebook"
    assert paused["state"] == "paused" and paused["round"] == pause_row["round"] == rounds_when_paused
    assert "paused" in paused_out
    assert ">paused</b>" in panel_when_paused and f"round {pause_row['round']} of 100000" in panel_when_paused
    assert magics.session.runner.last_report.round == pause_row["round"]  # the history reached the panel

    # Execute: the whole dashboard on the same run, in the notebook
    shell.run_line_magic("hypergpu", "panel --dashboard")
    dashboard = magics.session.panel
    dashboard.runner.flush()

    # Assert
    assert type(dashboard).__name__ == "Dashboard" and ">paused</b>" in dashboard.control.status.value

    # Execute: a paused run stays at its round until resumed (a step is a barrier: one round, recorded)
    shell.run_line_magic("hypergpu", f"step --timeout {WAIT_S}")
    service.wait_status(folder, lambda s: s["round"] == pause_row["round"] + 1, "the stepped round", timeout=WAIT_S)
    shell.run_line_magic("hypergpu", f"resume --timeout {WAIT_S}")
    resumed = service.read_status(folder)
    shell.run_line_magic("hypergpu", f"stop --timeout {WAIT_S}")
    stopped_out = capsys.readouterr().out
    stopped = service.read_status(folder)
    stop_row = [c for c in service.read_commands(folder) if c["op"] == "stop"][-1]
    final = json.loads((folder / "final.json").read_text())

    # Assert: resumed, then stopped at the round boundary the record names, past the stepped round
    assert resumed["state"] == "running"
    assert stopped["state"] == "stopped" and "stop: stopped" in stopped_out
    assert final["state"] == "stopped" and final["round"] == stop_row["round"] == _metric_rounds(folder)
    assert stop_row["round"] >= pause_row["round"] + 2  # the step, and at least one round after resume
    with pytest.raises(UsageError, match="not live"):
        shell.run_line_magic("hypergpu", "pause")


def test_cell_magic_runs_a_yaml_config_as_the_cli_runs_the_same_file(
    shell: InteractiveShell, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Prepare
    config_file = tmp_path / "cell.yaml"
    config_file.write_text(GOOD_YAML)

    # Execute: the cell, served in its own process, waited for; and the CLI on the same YAML
    shell.run_cell_magic("hypergpu", "--wait --no-panel", GOOD_YAML)
    out = capsys.readouterr().out
    assert cli.main(["run", "--config", str(config_file), "--out", str(tmp_path / "cli"), "--no-progress"]) == 0

    # Assert: same config read, same rounds recorded (same config + seed, same metrics)
    folder = tmp_path / "runs" / "cell"
    assert RunConfig.from_dict(json.loads((folder / "config.json").read_text())) == RunConfig.from_file(config_file)
    assert json.loads((folder / "final.json").read_text())["state"] == "finished"
    cell_rows = RunFolder.open(folder).read_metrics()
    cli_rows = RunFolder.open(tmp_path / "cli" / "cell").read_metrics()
    assert [r["round"] for r in cell_rows] == [1, 2, 3]
    key = lambda rows: [(r["test_accuracy"], r["test_loss"], r["t_end"]) for r in rows]  # noqa: E731
    assert key(cell_rows) == key(cli_rows)
    assert "started run cell" in out and "finished" in out


@pytest.mark.parametrize(
    ("cell", "names"),
    [
        (GOOD_YAML.replace("lr: 0.05", "lr: -1"), "train.lr"),
        (GOOD_YAML.replace("num_nodes: 4", "num_nodes: four"), "pool.num_nodes"),
        (GOOD_YAML.replace("strategy: fedavg", "strategy: fedavgg"), "train.strategy"),
        (GOOD_YAML + "bogus: 1\n", "bogus"),
        ("rounds: [3\n", "line"),
    ],
)
def test_cell_magic_refuses_a_bad_yaml_naming_the_field_and_starts_nothing(
    shell: InteractiveShell, tmp_path: Path, cell: str, names: str
) -> None:
    # Execute
    with pytest.raises(UsageError) as err:
        shell.run_cell_magic("hypergpu", "", cell)

    # Assert
    assert names in str(err.value)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_cell_options_are_the_clis_and_bad_lines_are_usage_errors(shell: InteractiveShell) -> None:
    with pytest.raises(UsageError, match="rounds"):
        shell.run_cell_magic("hypergpu", "--rounds 0", GOOD_YAML)
    with pytest.raises(UsageError, match="unrecognized arguments"):
        shell.run_cell_magic("hypergpu", "--bogus", GOOD_YAML)
    with pytest.raises(UsageError, match="unknown command"):
        shell.run_line_magic("hypergpu", "launch")
    with pytest.raises(UsageError, match="no run attached"):
        shell.run_line_magic("hypergpu", "pause")


def test_runs_folder_defaults_to_the_environment(tmp_path: Path) -> None:
    env = {**os.environ, "HYPERGPU_LAB_RUNS": str(tmp_path / "shared-runs")}
    code = textwrap.dedent(
        """
        from IPython.core.interactiveshell import InteractiveShell
        ip = InteractiveShell.instance()
        ip.run_line_magic('load_ext', 'hypergpu_lab')
        ip.run_line_magic('hypergpu', 'root')
        """
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == f"runs folder: {(tmp_path / 'shared-runs').resolve()}", out.stderr
