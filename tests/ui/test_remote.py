"""Pages attached to a run in its own process (ui/remote.py): full history on attach, shared state, commands.

Rounds are driven by Step commands, so nothing here races the run's speed.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ipywidgets")

from hypergpu_lab import service
from hypergpu_lab.ui.remote import RemoteRunner, list_runs
from tests.test_service import small_config

WAIT_S = 120.0


def until(what: str, predicate: Any) -> None:
    deadline = time.monotonic() + WAIT_S
    event = threading.Event()
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        event.wait(0.1)


def test_two_pages_share_one_run_and_a_late_page_gets_its_history(tmp_path: Path) -> None:
    config = small_config(rounds=50)
    assert list_runs(tmp_path) == []
    first = RemoteRunner(tmp_path, config, tick_s=0.05)
    assert list_runs(tmp_path) == [], "opening a page creates no run folder"
    seen: list[int] = []
    first.on_reports(lambda batch: seen.extend(r.round for r in batch))
    folder = first.launch(config, until=50, running=False)
    pid = None
    try:
        for _ in range(3):
            first.step()
        until("3 rounds on the first page", lambda: seen[-1:] == [3])
        first.action("latency_spike", 1, (3000.0, 40.0), "latency spike")
        until("the spike in the actions log", lambda: any("latency spike" in x for x in first.actions_log))
        pid = first.status_data["pid"]

        second = RemoteRunner(tmp_path, config, tick_s=0.05)  # a page opened later
        got: list[int] = []
        second.on_reports(lambda batch: got.extend(r.round for r in batch))
        second.open()
        until("the second page's history", lambda: got == [1, 2, 3])
        assert second.folder == folder and second.status == "paused"
        second.flush()
        assert any("latency spike" in x for x in second.actions_log)

        second.start(until=50)  # runs on from the second page
        until("running on both pages", lambda: first.status == "running" and second.status == "running")
        first.pause()
        until("paused on the second page", lambda: second.status == "paused")
        n = second.progress[0]
        assert got == list(range(1, len(got) + 1)) and seen[: len(got)] == got[: len(seen)]
        second.step()
        until("one more round on the first page", lambda: seen and seen[-1] == n + 1)
        second.stop()
        until("the run process to end", lambda: not service.pid_alive(pid))
        until("stopped on both pages", lambda: first.status == "stopped" and second.status == "stopped")
        assert [r["state"] for r in list_runs(tmp_path)] == ["stopped"]
        second.close()
    finally:
        first.close()
        if pid and service.pid_alive(pid):
            import os
            import signal

            os.kill(pid, signal.SIGKILL)
