"""The lab inside JupyterLab (issue 21): the "HyperGPU Lab" launcher tile opens the live dashboard in a Lab tab.

A real ``jupyter lab`` (free port, token set, no browser) in a temporary folder, with nothing
enabled by hand: jupyter-server-proxy finds the package's entry point. Chromium clicks the tile and
the dashboard's widgets appear in the Lab tab. Start there launches a run into ``runs/`` beside the
server; a notebook's ``%hypergpu`` magics (IPython's shell, here in the test) attach to that run and
pause it, and the Lab tab shows it paused. Every request the page makes is counted: none may leave
127.0.0.1. Waits are for states the page or the run reports, never for a time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

VIEWPORT = {"width": 1440, "height": 900}
WAIT_MS = 180_000  # JupyterLab, then Voila's first start and kernel, on a busy 2-core machine
ROUNDS = 100_000  # the run cannot finish before the test pauses it
LOCAL = ("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:", "about:")
TABS = ["Overview", "Nodes", "Metrics", "Blockchain", "Settings"]
STATUS = "() => document.querySelector('.hgl-run-status')?.textContent || ''"


def test_the_launcher_tile_opens_the_live_dashboard_in_a_lab_tab(
    jupyter_lab: Any, chromium: Any, tmp_path: Path, artifacts: Path
) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    from hypergpu_lab import service

    requests: list[str] = []
    context = chromium.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.on("request", lambda r: requests.append(r.url))

    # The tile is in the launcher, with its title and icon; a click opens a Lab tab, not a browser tab.
    page.goto(jupyter_lab(ready_s=WAIT_MS / 1000), timeout=WAIT_MS)
    tile = page.locator(".jp-LauncherCard", has_text="HyperGPU Lab")
    tile.wait_for()
    assert tile.locator("img, svg, .jp-LauncherCard-icon").count() >= 1
    page.screenshot(path=str(artifacts / "lab_launcher_tile.png"))
    tile.click()
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="HyperGPU Lab").wait_for()
    assert len(context.pages) == 1, "the tile opened a browser tab instead of a Lab tab"
    frame = page.locator("iframe[src*='hypergpu-lab']").element_handle().content_frame()

    # The dashboard's widgets, inside the Lab tab.
    frame.wait_for_function("() => document.querySelector('.hgl-dashboard .hgl-run-status')")
    tabs = frame.eval_on_selector_all(
        ".hgl-tabs > .lm-TabBar .lm-TabBar-tab", "els => els.map(e => e.textContent.trim())"
    )
    assert tabs == TABS
    assert "no run yet" in frame.evaluate(STATUS)
    frame.wait_for_function("() => document.querySelector('button.hgl-run-start:not([disabled])')")
    page.screenshot(path=str(artifacts / "lab_launcher_dashboard.png"))

    # Start from the Lab tab: the run lands in runs/ beside the server, where a notebook looks.
    frame.locator(".hgl-tabs > .lm-TabBar .lm-TabBar-tab", has_text="Settings").click()
    frame.locator(".hgl-rounds input").fill(str(ROUNDS))
    frame.locator(".hgl-rounds input").press("Enter")
    frame.locator(".hgl-tabs > .lm-TabBar .lm-TabBar-tab", has_text="Overview").click()
    frame.click("button.hgl-run-start")
    frame.wait_for_function(f"() => /running/.test(({STATUS})())")
    (folder,) = [p for p in (tmp_path / "runs").iterdir() if (p / "config.json").is_file()]
    service.wait_status(folder, lambda s: s["state"] == "running", "running", timeout=WAIT_MS / 1000)

    # A notebook attaches to the run the dashboard started and pauses it; the Lab tab shows it.
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "hypergpu_lab")
    try:
        shell.run_line_magic("hypergpu", f"root {tmp_path / 'runs'}")
        shell.run_line_magic("hypergpu", "attach --no-panel")
        assert shell.magics_manager.registry["HyperGPUMagics"].session.folder == folder.resolve()
        shell.run_line_magic("hypergpu", f"pause --timeout {WAIT_MS / 1000}")
        assert service.read_status(folder)["state"] == "paused"
        frame.wait_for_function(f"() => /paused/.test(({STATUS})())")
        page.screenshot(path=str(artifacts / "lab_launcher_paused.png"))
        shell.run_line_magic("hypergpu", f"stop --timeout {WAIT_MS / 1000}")
        frame.wait_for_function(f"() => /stopped/.test(({STATUS})())")
    finally:
        shell.run_line_magic("unload_ext", "hypergpu_lab")

    outside = [u for u in requests if not u.startswith(LOCAL)]
    assert not outside, f"requests left the machine: {outside[:5]}"
    context.close()
