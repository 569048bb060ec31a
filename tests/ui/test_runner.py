"""The runner: throttled updates that always end on the final state, the stuck-run watchdog, pacing, pause."""

from __future__ import annotations

import json
import threading
import time

import pytest
from ui_support import WAIT_S, FakeClock, at_boundary, coordinator, until

from hypergpu_lab import checkpoint
from hypergpu_lab.ui.runner import Runner, Throttle, Watchdog


def test_throttle_delivers_at_most_4_batches_a_second_and_always_the_last_item() -> None:
    # Prepare: 100 reports pushed over one second of a hand-driven clock, polled after each push
    clock, batches = FakeClock(), []
    throttle = Throttle(batches.append, rate=4.0, clock=clock)

    # Execute
    for i in range(100):
        throttle.push(i)
        throttle.poll()
        clock.advance(0.01)
    during = throttle.batches
    clock.advance(throttle.due())  # what the flusher does when the run has ended: wait, then poll
    throttle.poll()

    # Assert: at most 4 updates in that second, nothing lost, the final item delivered last
    assert during <= 4
    assert [x for b in batches for x in b] == list(range(100))
    assert batches[-1][-1] == 99 and throttle.pending == 0


def test_watchdog_needs_an_active_run_and_its_timeout() -> None:
    clock = FakeClock()
    dog = Watchdog(10.0, clock=clock)
    clock.advance(60)
    assert not dog.check(active=False)  # idle or paused: never stuck
    clock.advance(9)
    assert not dog.check(active=True)
    clock.advance(2)
    assert dog.check(active=True)
    dog.progress()
    assert not dog.stuck


def test_runner_flags_a_stuck_run_and_clears_it_when_rounds_resume() -> None:
    # Prepare: a subscriber (subscribed before the runner) that holds round 2 until released
    coord, gate, clock = coordinator(), threading.Event(), FakeClock()
    coord.bus.subscribe(lambda r: gate.wait(WAIT_S) if r.round == 2 else None)
    runner = Runner(coord, stuck_after_s=30.0, on_stuck="flag", clock=clock)
    delivered = threading.Event()
    runner.on_reports(lambda batch: delivered.set())

    # Execute
    runner.start(rounds=3)
    until(lambda: coord.round >= 2 and runner.last_report is not None, delivered)
    clock.advance(31)
    status, detail = runner.check(), runner.detail
    gate.set()
    runner.wait(WAIT_S)

    # Assert
    assert status == "stuck" and "no round finished in 31 wall seconds (last finished: round 1)" in detail
    assert runner.check() == "finished" and runner.last_report.round == 3


def test_listeners_get_every_round_in_batches_ending_with_the_final_report() -> None:
    coord = coordinator()
    runner = Runner(coord, rate=4.0)
    batches: list[list[int]] = []
    runner.on_reports(lambda batch: batches.append([r.round for r in batch]))

    t0 = time.monotonic()
    runner.start(rounds=5)
    runner.wait(WAIT_S)
    wall = time.monotonic() - t0

    assert [r for b in batches for r in b] == [1, 2, 3, 4, 5]
    # At most: one batch at once, 4 a second after it, and the always-delivered final one.
    # (The exact rate is tested with an injected clock in the throttle test above.)
    assert len(batches) <= 4 * wall + 2
    assert runner.status == "finished" and "finished at round 5" in runner.detail


def test_pacing_sleeps_duration_over_speed_minus_the_round_wall_time() -> None:
    # Prepare: a pacing wait that records instead of sleeping
    coord, waits = coordinator(), []
    runner = Runner(coord, pace_wait=waits.append)
    reports = []
    coord.bus.subscribe(reports.append)
    runner.set_speed(1e-3)  # 1 simulated ms per wall second: every round must wait

    # Execute
    runner.start(rounds=2)
    runner.wait(WAIT_S)

    # Assert
    assert len(waits) == 2
    for w, r in zip(waits, reports, strict=True):
        assert w == pytest.approx(r.duration / 1e-3 - r.wall_s, rel=1e-6)


def test_a_manual_step_is_never_paced_and_is_delivered_on_flush() -> None:
    coord, waits = coordinator(), []
    runner = Runner(coord, pace_wait=waits.append)
    runner.set_speed(1e-3)
    seen = []
    runner.on_reports(seen.extend)

    report = runner.step()
    runner.flush()

    assert waits == [] and seen == [report] and coord.round == 1


def test_pause_stops_at_a_round_boundary_and_checkpoints_resume_and_stop_leave_a_consistent_folder(tmp_path) -> None:
    # Prepare
    coord = coordinator(run_dir=tmp_path, name="paused", checkpoint_every=1000)  # only the pause and the end
    runner = Runner(coord)

    # Execute: start, pause after the first round, wait for the boundary
    runner.start(rounds=200)
    assert coord.status == "running"
    until(lambda: coord.round >= 1)
    runner.pause()
    at_boundary(runner)
    paused_at = coord.round
    ckpt = checkpoint.path_for(coord.run_folder.checkpoints, paused_at)

    # Assert: paused where the checkpoint says
    assert coord.status == "paused" and runner.active
    assert checkpoint.load(ckpt)["round"] == paused_at

    # Execute: resume, then stop
    runner.resume()
    assert coord.status == "running"
    until(lambda: coord.round > paused_at)
    runner.stop()
    runner.wait(WAIT_S)

    # Assert: stopped, the folder holds every round and the final checkpoint
    rows = [json.loads(line) for line in coord.run_folder.metrics_path.read_text().splitlines()]
    assert coord.status == "stopped" and not runner.active and coord.round < 200
    assert [r["round"] for r in rows] == list(range(1, coord.round + 1))
    assert checkpoint.load(checkpoint.path_for(coord.run_folder.checkpoints, coord.round))["round"] == coord.round
