"""Run control: one state machine (a state enum plus a detail line), commands at round boundaries, clean exits."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from hypergpu_lab.run_control import RunControl, RunState, Waiting


class _Rounds:
    """A round function whose rounds the test releases one at a time (no race with the run's speed)."""

    def __init__(self, fail_at: int | None = None, wait_at: int | None = None) -> None:
        self.done, self.gate = 0, threading.Semaphore(0)
        self.fail_at, self.wait_at = fail_at, wait_at
        self.control = RunControl(self.step, lambda: self.done, on_pause=self.paused, on_end=self.ended)
        self.events: list[str] = []

    def step(self) -> None:
        with self.control.lock:
            assert self.gate.acquire(timeout=30)
            if self.done + 1 == self.wait_at:
                self.wait_at = None
                raise Waiting("waiting for quorum: 1 of 4 nodes")
            if self.done + 1 == self.fail_at:
                raise ValueError("boom")
            self.done += 1
            self.control.boundary()
        self.control.round_ended()

    def paused(self) -> None:
        self.events.append(f"paused at {self.done}")

    def ended(self) -> None:
        self.events.append(f"ended at {self.done}")


def test_states_follow_start_pause_resume_and_finish() -> None:
    rounds = _Rounds()
    seen: list[RunState] = []
    rounds.control.on_change(lambda c: seen.append(c.state))

    rounds.control.start(3)
    rounds.control.pause()  # takes effect at the end of round 1
    rounds.gate.release()
    assert not rounds.control.wait(0.2)
    assert rounds.control.state is RunState.PAUSED and rounds.done == 1 and rounds.events == ["paused at 1"]

    rounds.control.resume()
    rounds.gate.release(2)
    assert rounds.control.wait(30)
    assert rounds.control.state is RunState.FINISHED and rounds.control.detail == "finished at round 3"
    assert rounds.events == ["paused at 1", "ended at 3"]
    assert seen[0] is RunState.RUNNING and RunState.PAUSED in seen and seen[-1] is RunState.FINISHED


def test_a_round_that_must_wait_sets_waiting_with_the_reason_and_resume_tries_again() -> None:
    rounds = _Rounds(wait_at=2)
    rounds.control.start(2)
    rounds.gate.release(2)
    for _ in range(300):
        if rounds.control.state is RunState.WAITING:
            break
        threading.Event().wait(0.05)
    assert rounds.control.state is RunState.WAITING and rounds.control.active
    assert rounds.control.detail == "waiting for quorum: 1 of 4 nodes"

    rounds.control.resume()
    rounds.gate.release()
    assert rounds.control.wait(30) and rounds.control.state is RunState.FINISHED and rounds.done == 2


def test_a_failed_round_is_state_failed_with_the_error_in_the_detail_and_raised_by_wait() -> None:
    rounds = _Rounds(fail_at=1)
    rounds.control.start(2)
    rounds.gate.release()
    with pytest.raises(ValueError, match="boom"):
        rounds.control.wait(30)
    assert rounds.control.state is RunState.FAILED
    assert rounds.control.detail == "failed at round 1: ValueError: boom"


def test_a_command_runs_between_rounds_never_inside_one() -> None:
    rounds = _Rounds()
    inside: list[bool] = []
    rounds.control.start(2)
    # The run is blocked inside round 1 (holding the lock): the command is queued.
    for _ in range(300):
        if not rounds.control.lock.acquire(blocking=False):
            break
        rounds.control.lock.release()
        threading.Event().wait(0.01)
    ran_now = rounds.control.at_boundary(lambda: inside.append(rounds.done))
    assert not ran_now and inside == []
    rounds.gate.release(2)
    assert rounds.control.wait(30)
    assert inside == [1]  # after round 1, before round 2


EXIT_SCRIPT = """
import logging
from hypergpu_lab import Coordinator, NodePool
from hypergpu_lab.ui import Dashboard
pool = NodePool.simulated(4, dataset="digits", network="lan", seed=0)
coord = Coordinator(pool=pool, model="cnn")
dash = Dashboard(coord, rounds=100000)
dash.control.buttons["start"].click()
import time
while coord.round < 2:   # the run is under way, then the script ends with it active
    time.sleep(0.05)
print("exiting at round", coord.round, flush=True)
"""


@pytest.mark.slow
def test_a_script_that_exits_during_a_background_run_stops_it_at_a_round_boundary_and_exits_cleanly() -> None:
    pytest.importorskip("ipywidgets")
    out = subprocess.run([sys.executable, "-c", EXIT_SCRIPT], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "exiting at round" in out.stdout
    assert "terminate called" not in out.stderr


def test_a_run_started_paused_takes_single_steps_then_runs_to_a_new_target() -> None:
    rounds = _Rounds()
    after: list[int] = []
    rounds.control.between = lambda: after.append(rounds.done)
    rounds.control.start(2, paused="ready at round 0")
    assert rounds.control.state is RunState.PAUSED and rounds.events == [], "no pause hook before any round"

    rounds.control.step()
    rounds.gate.release()
    for _ in range(600):
        if rounds.control.steps_pending == 0 and rounds.control.detail == "paused after round 1":
            break
        threading.Event().wait(0.05)
    assert rounds.done == 1 and rounds.control.state is RunState.PAUSED and rounds.control.steps_pending == 0
    assert not rounds.control.wait(0.2), "one step runs one round, then the run stays paused"
    assert rounds.done == 1 and after == [1]

    rounds.control.retarget(4)
    with pytest.raises(ValueError, match="not after the 1 rounds"):
        rounds.control.retarget(1)
    rounds.control.resume()
    rounds.gate.release(3)
    assert rounds.control.wait(30) and rounds.control.state is RunState.FINISHED and rounds.done == 4
    assert after == [1, 2, 3, 4], "the between-rounds hook ran after every round"


def test_pause_reads_running_until_the_round_in_progress_ends() -> None:
    rounds = _Rounds()
    rounds.control.start(3)
    rounds.control.pause()  # round 1 is blocked on the gate: it is still in progress
    assert rounds.control.state is RunState.RUNNING and "pausing at the end of round 1" in rounds.control.detail
    with pytest.raises(RuntimeError, match="pause it to step"):
        rounds.control.step()
    rounds.gate.release()
    for _ in range(600):
        if rounds.control.state is RunState.PAUSED:
            break
        threading.Event().wait(0.05)
    assert rounds.control.state is RunState.PAUSED and rounds.done == 1 and rounds.events == ["paused at 1"]
    rounds.control.stop()
    assert rounds.control.state is RunState.STOPPED
