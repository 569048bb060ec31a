"""The run as its own process (service.py): commands at round boundaries, recorded, and replayed exactly.

Rounds are driven by command (``step`` is a barrier in the inbox), so nothing here races the run's
speed: the whole script is queued before the service starts and is applied in order.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hypergpu_lab import service
from hypergpu_lab.config import RunConfig
from hypergpu_lab.run_control import RunState

WAIT_S = 120.0


def small_config(name: str = "svc", rounds: int = 8) -> RunConfig:
    return RunConfig.from_dict(
        {
            "name": name,
            "rounds": rounds,
            "pool": {"num_nodes": 5, "dataset": "digits", "partition": "iid", "network": "mixed", "seed": 3},
            "train": {"model": "mlp", "strategy": "fedavg", "lr": 0.05, "batch_size": 10},
        }
    )


def script(folder: Path) -> None:
    """Steps with node actions and faults between them, then a run to the end."""
    send = lambda op, **a: service.send(folder, op, source="test", **a)  # noqa: E731
    send("step")
    send("step")
    send("action", name="latency_spike", node=1, args=[3000.0, 40.0], what="latency spike")
    send("step")
    send("action", name="inject", node=2, args=["sign_flip"], what="make faulty")
    send("pause")  # changes nothing in the simulation; recorded all the same
    send("step")
    send("action", name="crash", node=3, what="crash")
    send("step")
    send("action", name="recover", node=3, what="recover")
    send("action", name="clear_faults", node=2, what="clear faults")
    send("start", until=8)


def test_commands_apply_at_boundaries_and_replay_gives_the_same_weights(tmp_path: Path) -> None:
    folder = service.create_run(tmp_path, small_config()).path
    script(folder)
    run = service.RunService(folder)
    assert run.serve() is RunState.FINISHED
    log = service.read_commands(folder)
    applied = [(c["op"], c["round"]) for c in log]
    assert applied == [
        ("step", 0),
        ("step", 1),
        ("action", 2),
        ("step", 2),
        ("action", 3),
        ("pause", 3),
        ("step", 3),
        ("action", 4),
        ("step", 4),
        ("action", 5),
        ("action", 5),
        ("start", 5),
    ], applied
    assert all(c["ok"] for c in log), log
    final = json.loads((folder / "final.json").read_text())
    assert final["round"] == 8 and final["weights_sha256"] == service.weights_hash(run.coord)
    status = service.read_status(folder)
    assert status["state"] == "finished" and status["round"] == 8
    kinds = {e["kind"] for e in service.read_events(folder)}
    assert {"action", "fault", "state"} <= kinds, kinds
    assert len(run.folder.read_metrics()) == 8

    replayed = service.replay(folder)
    assert replayed.round == 8
    assert service.weights_hash(replayed) == final["weights_sha256"]
    # ... and the actions mattered: without them the weights differ.
    plain = service.build(None, small_config())
    plain.run(rounds=8, progress=False)
    assert service.weights_hash(plain) != final["weights_sha256"]


def test_replay_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hypergpu_lab.cli import main

    folder = service.create_run(tmp_path, small_config(rounds=4)).path
    service.send(folder, "step")
    service.send(folder, "action", name="inject", node=0, args=["scale"])
    service.send(folder, "start", until=4)
    service.RunService(folder).serve()
    assert main(["replay", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "same final weights" in out, out


def test_a_bad_command_is_refused_and_recorded(tmp_path: Path) -> None:
    folder = service.create_run(tmp_path, small_config(rounds=2)).path
    service.send(folder, "action", name="crash", node=99)
    service.send(folder, "start", until=2)
    service.RunService(folder).serve()
    first = service.read_commands(folder)[0]
    assert first["ok"] is False and "99" in first["result"]
    with pytest.raises(Exception, match="one of"):
        service.send(folder, "action", name="rm -rf", node=0)


def test_the_run_process_outlives_its_starter_and_stops_on_command(tmp_path: Path) -> None:
    """A detached process serves the folder; Stop through the inbox ends it; nothing is left running."""
    code = (
        "import sys; from hypergpu_lab import service; from tests.test_service import small_config; "
        "f = service.start_run(sys.argv[1], small_config(rounds=10_000), speed=0.5); print(f.path)"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")]),
    }
    folder = Path(subprocess.check_output([sys.executable, "-c", code, str(tmp_path)], env=env, text=True).strip())
    # The starter has exited; the run goes on.
    deadline = time.monotonic() + WAIT_S
    status = None
    while time.monotonic() < deadline:
        status = service.read_status(folder)
        if status and status["round"] >= 1:
            break
        time.sleep(0.2)
    assert status and service.is_live(status), status
    pid = status["pid"]
    try:
        service.send(folder, "stop")
        while time.monotonic() < deadline and service.pid_alive(pid):
            time.sleep(0.2)
        assert not service.pid_alive(pid), "the run process did not end on Stop"
        assert service.read_status(folder)["state"] == "stopped"
    finally:
        if service.pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
