"""A run outlives its pages (issue 15), in a real browser against the served dashboard.

One run, started from a page, is seen through a reload (same run, every round so far, still
streaming), by a second page (Pause from one is seen by the other), and after every page closed
(still listed, still alive, nothing created by opening pages). Every request the pages make is
counted: none may leave 127.0.0.1.

Nothing races the run's speed: the run is given 100000 rounds, so it cannot finish before the test
pauses it, and every wait is for a state the run reports, however slowly it gets there.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "dashboard.ipynb"
VIEWPORT = {"width": 1440, "height": 900}
WAIT_MS = 120_000
ACCURACY = "Accuracy and loss by round"
ROUNDS = 100_000
LOCAL = ("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:", "about:")

READY = """() => document.querySelector('.hgl-run-status')
    && [...document.querySelectorAll('.hgl-live-chart')].some(gd => Array.isArray(gd.data))"""
ROUNDS_SHOWN = f"""() => {{
    const gd = [...document.querySelectorAll('.hgl-live-chart')]
        .find(g => g.dataset.chart === {ACCURACY!r} && Array.isArray(g.data) && g.getClientRects().length);
    return gd ? Array.from(gd.data.find(t => t.name === 'accuracy')?.x || []) : null;
}}"""
STATUS = "() => document.querySelector('.hgl-run-status')?.textContent || ''"


def tab(page: Any, name: str) -> None:
    page.locator(".hgl-tabs > .lm-TabBar .lm-TabBar-tab", has_text=name).click()
    page.wait_for_function(
        """(name) => [...document.querySelectorAll('.hgl-tabs > .lm-TabBar .lm-TabBar-tab.lm-mod-current')]
        .some(t => t.textContent.trim() === name)""",
        arg=name,
    )


def _kill_runs(root: Path) -> None:
    from hypergpu_lab import service

    for status in root.glob("runs/*/status.json"):
        pid = (service.read_status(status.parent) or {}).get("pid")
        if service.pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def served(tmp_path: Path, voila_server: Callable[..., str]) -> Iterator[str]:
    from hypergpu_lab.cli import voila_command

    notebook = tmp_path / NOTEBOOK.name
    shutil.copy(NOTEBOOK, notebook)
    try:
        yield voila_server(lambda port: voila_command(notebook, port, 300), cwd=tmp_path)
    finally:
        _kill_runs(tmp_path)


def test_a_run_outlives_reloads_and_is_shared_by_pages(
    served: str, chromium: Any, tmp_path: Path, artifacts: Path
) -> None:
    from hypergpu_lab import service

    requests: list[str] = []
    errors: list[str] = []

    def open_page() -> Any:
        context = chromium.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.on("request", lambda r: requests.append(r.url))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(served, timeout=WAIT_MS)
        page.wait_for_function(READY)
        return page

    def shown(page: Any, at_least: int) -> list[int]:
        page.wait_for_function(f"() => ({ROUNDS_SHOWN})()?.length >= {at_least}")
        return page.evaluate(ROUNDS_SHOWN)

    def runs() -> list[Path]:
        return sorted(p for p in (tmp_path / "runs").glob("*") if p.is_dir()) if (tmp_path / "runs").is_dir() else []

    first = open_page()
    assert runs() == [], "opening a page created a run folder"
    tab(first, "Settings")
    first.locator(".hgl-rounds input").fill(str(ROUNDS))
    first.locator(".hgl-rounds input").press("Enter")
    tab(first, "Overview")
    first.wait_for_function("() => document.querySelector('button.hgl-run-start:not([disabled])')")
    first.click("button.hgl-run-start")
    before = shown(first, 3)
    assert before == list(range(1, len(before) + 1))
    (folder,) = runs()
    pid = service.read_status(folder)["pid"]

    # Reload mid-run: the same run, every round so far, and it keeps streaming.
    first.reload(timeout=WAIT_MS)
    first.wait_for_function(READY)
    after = shown(first, len(before))
    assert after == list(range(1, len(after) + 1)), f"rounds lost or doubled after reload: {after}"
    assert folder.name in first.evaluate(STATUS)
    more = shown(first, len(after) + 2)
    assert more[: len(after)] == after

    # A second page shows the same run; Pause from the first is seen there.
    second = open_page()
    shown(second, len(more))
    assert folder.name in second.evaluate(STATUS)
    first.click("button.hgl-run-pause")
    second.wait_for_function(f"() => /paused/.test(({STATUS})())")
    first.wait_for_function(f"() => /paused/.test(({STATUS})())")
    paused_at = service.read_status(folder)["round"]
    second.wait_for_function(f"() => ({ROUNDS_SHOWN})()?.length === {paused_at}")
    first.screenshot(path=str(artifacts / "runs_two_pages.png"))

    # Close every page: the run is still alive and listed; open again and it is all there.
    first.context.close()
    second.context.close()
    assert service.pid_alive(pid), "closing the pages ended the run"
    assert service.read_status(folder)["state"] == "paused"
    third = open_page()
    third.wait_for_function(f"() => /paused/.test(({STATUS})())")
    assert shown(third, paused_at) == list(range(1, paused_at + 1))
    third.click("button.hgl-run-resume")
    shown(third, paused_at + 1)
    third.click("button.hgl-run-stop")
    third.wait_for_function(f"() => /stopped/.test(({STATUS})())")
    deadline = time.monotonic() + 120
    while service.pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not service.pid_alive(pid), "the run process is still there after Stop"
    assert runs() == [folder], f"run folders: {runs()}"
    third.context.close()

    outside = sorted({u for u in requests if not u.startswith(LOCAL)})
    print(f"  {len(requests)} requests, {len(outside)} to other hosts")
    assert not outside, f"requests that left 127.0.0.1: {outside}"
    assert not errors, errors
