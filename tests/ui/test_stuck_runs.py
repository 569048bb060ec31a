"""A stuck run is handled, not only flagged: paused with a checkpoint (or stopped), the reason recorded."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from ui_support import WAIT_S, FakeClock, coordinator, until

from hypergpu_lab import checkpoint
from hypergpu_lab.run_control import RunState
from hypergpu_lab.ui.runner import Runner


def _stuck_at_round_2(tmp_path: Path, on_stuck: str, checkpoint_every: int):  # type: ignore[no-untyped-def]
    """A run in a folder whose round 2 is held by a subscriber until released; the watchdog fires."""
    coord = coordinator(run_dir=tmp_path, checkpoint_every=checkpoint_every)
    gate, clock = threading.Event(), FakeClock()
    coord.bus.subscribe(lambda r: gate.wait(WAIT_S) if r.round == 2 else None)
    runner = Runner(coord, stuck_after_s=30.0, on_stuck=on_stuck, clock=clock)
    delivered = threading.Event()
    runner.on_reports(lambda batch: delivered.set())
    runner.start(rounds=5)
    until(lambda: coord.round >= 2 and runner.last_report is not None, delivered)  # round 2 is held
    clock.advance(31)
    runner.check()
    return coord, gate, runner


def test_a_stuck_run_is_paused_with_a_checkpoint_and_the_reason_recorded(tmp_path: Path) -> None:
    # Execute
    coord, gate, runner = _stuck_at_round_2(tmp_path, "pause", checkpoint_every=0)  # only the pause writes one
    assert coord.control.state is RunState.PAUSED and "stuck: no round finished in 31" in coord.control.detail
    gate.set()  # the slow round ends: the pause takes effect at its boundary
    until(lambda: "paused after round" in coord.control.detail)

    # Assert: paused (not finished), checkpointed at the boundary, reason in the detail and the run log
    assert coord.round == 2 and coord.control.state is RunState.PAUSED
    assert "(stuck: no round finished in 31 wall seconds)" in coord.control.detail
    assert [n for n, _ in checkpoint.list_checkpoints(coord.run_folder.checkpoints)] == [2]
    assert "stuck: no round finished in 31 wall seconds" in coord.run_folder.log_path.read_text()
    assert runner.status == "paused" and "stuck" in runner.detail

    # and it resumes to the end
    runner.resume()
    runner.wait(WAIT_S)
    assert coord.round == 5 and coord.control.state is RunState.FINISHED and coord.control.stuck_reason is None


def test_on_stuck_stop_ends_the_run_with_its_final_checkpoint(tmp_path: Path) -> None:
    coord, gate, runner = _stuck_at_round_2(tmp_path, "stop", checkpoint_every=5)
    gate.set()
    runner.wait(WAIT_S)

    assert coord.control.state is RunState.STOPPED and coord.round == 2
    assert coord.control.detail == "stopped at round 2 (stuck: no round finished in 31 wall seconds)"
    assert [n for n, _ in checkpoint.list_checkpoints(coord.run_folder.checkpoints)] == [2]  # the final one


def test_on_stuck_is_validated(tmp_path: Path) -> None:
    from hypergpu_lab import ConfigError

    with pytest.raises(ConfigError, match="on_stuck: got 'kill'"):
        Runner(coordinator(), on_stuck="kill")
