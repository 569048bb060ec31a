"""Our widgets in a real browser: two LiveCharts and a ClusterMap served by Voila, read back in Chromium.

The three things plotly's FigureWidget got wrong are checked end to end: points appended before
the browser connects are drawn, BOTH charts keep growing live, and no point is lost or doubled
(x must be exactly 0, 1, 2, ... in each chart). The map must show a quality change made after
the page connected. Needs /usr/bin/chromium (scripts/setup_browser.sh), playwright and voila.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

# The kernel side: 20 points per chart before anything is displayed, then a feeder thread that
# appends at 10 Hz (also while Voila streams the page, before any browser is connected). Once the
# browser has rendered the loss chart (its view says "sync"), node 2 turns Critical and node 4 is
# quarantined, so the map's change can only be seen live.
SETUP = """\
import threading, time
from IPython.display import display
from hypergpu_lab.ui import ClusterMap, LiveChart

loss = LiveChart([{"name": "loss"}], title="loss", plot_layout={"xaxis": {"title": {"text": "step"}}})
acc = LiveChart([{"name": "accuracy"}, {"name": "target", "mode": "lines", "line": {"dash": "dot"}}],
                title="accuracy", max_points=1000)
regions = ["eu-west", "us-east", "ap-south"]
cmap = ClusterMap([{"id": i, "region": regions[i % 3], "quality": ["Excellent", "Good", "Fair", "Poor"][i % 4],
                    "state": "straggling" if i == 5 else "online", "label": f"node {i}"} for i in range(9)])
for i in range(20):
    loss.append({"loss": ([i], [1.0 / (i + 1)])})
    acc.append({"accuracy": ([i], [i / (i + 10)]), "target": ([i], [0.9])})
"""
DISPLAY = "display(loss)\ndisplay(acc)\ndisplay(cmap)\n"
FEED = """\
connected = threading.Event()
loss.on_msg(lambda _w, content, _b: content.get("type") == "sync" and connected.set())

def feed():
    step, started, changed_at = 20, time.time(), None
    while time.time() - started < 240:  # bounded: the test stops the server well before
        with acc.hold():
            acc.append({"accuracy": ([step], [step / (step + 10)])})
            acc.append({"target": ([step], [0.9])})
        loss.append({"loss": ([step], [1.0 / (step + 1)])})
        cmap.pulse([step % 9])
        if connected.is_set() and changed_at is None:
            changed_at = time.time()
        if changed_at is not None and time.time() - changed_at > 2 and cmap.nodes[2]["quality"] != "Critical":
            cmap.update_node(2, quality="Critical")
            cmap.update_node(4, state="quarantined")
        step += 1
        time.sleep(0.1)

threading.Thread(target=feed, daemon=True).start()
"""

READ_CHARTS = """() => [...document.querySelectorAll('.js-plotly-plot')].map(gd => ({
    chart: gd.dataset.chart,
    x: (gd.data && gd.data[0] && Array.from(gd.data[0].x)) || [],
}))"""
NODE_QUALITY = "() => document.querySelector('.hgl-node[data-node=\"2\"]')?.getAttribute('data-quality')"


def _notebook(path: Path) -> None:
    cells = [
        {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": source}
        for source in (SETUP, DISPLAY, FEED)
    ]
    notebook = {
        "cells": cells,
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    }
    path.write_text(json.dumps(notebook), encoding="utf-8")


@pytest.fixture
def voila_url(tmp_path: Path, voila_server: Callable[..., str]) -> str:
    """Voila serving the notebook on 127.0.0.1; the server and its kernel are stopped afterwards."""
    _notebook(tmp_path / "nb.ipynb")
    return voila_server(
        lambda port: [
            sys.executable,
            "-m",
            "voila",
            "nb.ipynb",
            "--no-browser",
            f"--port={port}",
            "--Voila.ip=127.0.0.1",
            "--MappingKernelManager.cull_idle_timeout=120",
            "--MappingKernelManager.cull_interval=30",
            "--MappingKernelManager.cull_connected=True",
        ],
        cwd=tmp_path,
    )


def _assert_contiguous(charts: list[dict]) -> None:
    for chart in charts:
        assert chart["x"] == list(range(len(chart["x"]))), f"{chart['chart']}: points lost or doubled"


def test_charts_and_map_update_live_in_voila(voila_url: str, chromium: Any, artifacts: Path) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page = chromium.new_page(viewport={"width": 1100, "height": 1400})
    errors: list[str] = []
    console: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"{error}\n{error.stack}"))
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    started = time.monotonic()
    page.goto(voila_url, timeout=60_000)
    try:
        page.wait_for_function(
            "() => [...document.querySelectorAll('.js-plotly-plot')].filter(gd => gd.data).length === 2"
            " && document.querySelector('.hgl-node[data-node=\"2\"]')",
            timeout=90_000,
        )
    except PlaywrightTimeout:
        page.screenshot(path=str(artifacts / "widgets_voila_timeout.png"), full_page=True)
        pytest.fail("widgets did not render in 90 s; console:\n" + "\n".join(console[-40:] + errors))
    print(f"widgets drawn {time.monotonic() - started:.1f} s after navigation")
    first = page.evaluate(READ_CHARTS)
    quality_at_connect = page.evaluate(NODE_QUALITY)

    # Both charts hold the 20 pre-display points plus what the feeder added before we connected.
    assert sorted(c["chart"] for c in first) == ["accuracy", "loss"]
    assert all(len(c["x"]) >= 20 for c in first), first
    _assert_contiguous(first)
    # plotly.js was evaluated once for the page, whatever the number of charts.
    assert page.evaluate("() => globalThis[Symbol.for('hypergpu_lab.plotly')].size") == 1

    # Live: both keep growing, still without gaps or duplicates.
    page.wait_for_timeout(3000)
    second = page.evaluate(READ_CHARTS)
    lengths = {c["chart"]: len(c["x"]) for c in first}
    for chart in second:
        assert len(chart["x"]) >= lengths[chart["chart"]] + 10, (chart["chart"], lengths, len(chart["x"]))
    _assert_contiguous(second)

    # The map: node 2 turns Critical a few seconds after the page connected.
    page.wait_for_function(f"() => ({NODE_QUALITY})() === 'Critical'", timeout=20_000)
    assert quality_at_connect == "Fair"
    assert (
        page.evaluate("() => document.querySelector('.hgl-node[data-node=\"4\"]').getAttribute('data-state')")
        == "quarantined"
    )

    # Clicking a node selects it (the synced trait comes back as a class on the node).
    # force: pulses keep the node animating while the feeder runs, so it is never "stable" for Playwright;
    # what matters here is that a click on the node reaches the handler and syncs `selected` back.
    page.click('.hgl-node[data-node="1"] .hgl-dot', force=True)
    page.wait_for_selector('.hgl-node.hgl-selected[data-node="1"]', timeout=10_000)
    page.wait_for_timeout(500)
    page.screenshot(path=str(artifacts / "widgets_voila.png"), full_page=True)
    print(f"views that recovered a missed delta: {sum('missed a delta' in line for line in console)}")
    assert not errors, errors
