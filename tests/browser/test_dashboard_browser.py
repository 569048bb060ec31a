"""The dashboard notebook in a real browser (issue 8): Voila serves notebooks/dashboard.ipynb, Chromium drives it.

Start a run, see at least 3 rounds plotted (the points are read from the plotly graph div, not a
picture), pause, inject a latency spike on a node from the Nodes tab, let a round or two run and see
that node's link change class on the cluster map, then see the contributions recorded on the
Blockchain tab. Screenshots go to test-artifacts/; with HGL_UPDATE_SCREENSHOT=1 the Overview
screenshot also replaces docs/dashboard.png (the README's picture).

The notebook is copied into a temporary folder and served from there (its run folder, ``runs/``,
lands there too); the kernel finds this checkout through PYTHONPATH. Needs /usr/bin/chromium
(scripts/setup_browser.sh), playwright and voila. About 2-3 minutes on a busy 2-core machine.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "dashboard.ipynb"
README_SCREENSHOT = REPO / "docs" / "dashboard.png"
VIEWPORT = {"width": 1400, "height": 1000}
WAIT_MS = 90_000  # any one wait; widgets appear 10-20 s after navigation on a busy machine
ACCURACY = "Accuracy and loss by round"
SPIKE_MS, SPIKE_S = 5000, 60  # +5 s one-way for 60 virtual s: an Excellent/Good link drops to Fair or worse
RANK = {"Excellent": 0, "Good": 1, "Fair": 2, "Poor": 3, "Critical": 4, "Offline": 5}

VISIBLE = "(el) => el.getClientRects().length > 0"
# The accuracy chart's plotted points, from every view of it (Overview and, hidden, Metrics).
READ_CHART = """(title) => [...document.querySelectorAll('.hgl-live-chart')]
    .filter(gd => gd.dataset.chart === title && Array.isArray(gd.data))
    .map(gd => ({visible: gd.getClientRects().length > 0,
                 traces: gd.data.map(t => ({name: t.name, x: Array.from(t.x || []), y: Array.from(t.y || [])}))}))"""
# Each node of the visible cluster map: the class on the node and on its link, and the link's colour.
READ_MAP = f"""() => {{
    const visible = {VISIBLE};
    const svg = [...document.querySelectorAll('svg.hgl-cluster-map')].find(visible);
    if (!svg) return null;
    const out = {{}};
    for (const g of svg.querySelectorAll('.hgl-node[data-node]')) {{
        const link = svg.querySelector(`.hgl-link[data-link="${{g.dataset.node}}"]`);
        out[g.dataset.node] = {{quality: g.dataset.quality, state: g.dataset.state,
                               link: link && link.dataset.quality, stroke: link && link.getAttribute('stroke')}};
    }}
    return out;
}}"""
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|^\s*\w+(Error|Exception): ", re.MULTILINE)
# The page's text as the widgets hold it, hidden tabs included, scripts and styles left out.
PAGE_TEXT = """() => {
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    const parts = [];
    while (walker.nextNode()) {
        const tag = walker.currentNode.parentElement?.tagName;
        if (tag !== 'SCRIPT' && tag !== 'STYLE') parts.push(walker.currentNode.textContent);
    }
    return parts.join('\\n');
}"""


def _text(page: Any, selector: str) -> str:
    """textContent of the first match (hidden tabs included): what the widget holds, visible or not."""
    return page.evaluate("(s) => document.querySelector(s)?.textContent ?? ''", selector)


class Timeline:
    """Seconds since the start for each step, printed as it goes and summed up in the report."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.marks: list[tuple[str, float]] = []

    def __call__(self, what: str) -> None:
        t = time.monotonic() - self.t0
        self.marks.append((what, t))
        print(f"  {t:6.1f} s  {what}", flush=True)


@pytest.fixture
def dashboard_url(tmp_path: Path, voila_server: Callable[..., str]) -> Iterator[str]:
    from hypergpu_lab.cli import voila_command
    from tests.browser.test_runs_browser import _kill_runs

    notebook = tmp_path / NOTEBOOK.name
    shutil.copy(NOTEBOOK, notebook)
    try:
        yield voila_server(lambda port: voila_command(notebook, port, 300), cwd=tmp_path)
    finally:
        _kill_runs(tmp_path)  # runs live in their own processes: end them with the test


def test_dashboard_runs_spikes_and_records_in_voila(dashboard_url: str, chromium: Any, artifacts: Path) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page = chromium.new_page(viewport=VIEWPORT)
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    console: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"{error}\n{error.stack}"))
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    mark = Timeline()

    def shot(name: str, height: int = 2000) -> Path:
        """A screenshot in test-artifacts/, 1400 px wide and ``height`` high (Voila scrolls inside the
        page, so full_page would give the viewport only)."""
        path = artifacts / f"dashboard_{name}.png"
        page.set_viewport_size({**VIEWPORT, "height": height})
        page.wait_for_timeout(800)  # the charts and the map follow the new size
        page.screenshot(path=str(path))
        page.set_viewport_size(VIEWPORT)
        return path

    def wait(what: str, expression: str, arg: Any = None, timeout: int = WAIT_MS) -> Any:
        """wait_for_function with a screenshot, the console and the page's status text when it times out."""
        try:
            return page.wait_for_function(expression, arg=arg, timeout=timeout).json_value()
        except PlaywrightTimeout:
            shot("timeout")
            pytest.fail(
                f"timed out waiting for {what} ({timeout / 1000:.0f} s); status: "
                f"{_text(page, '.hgl-run-status')!r}; page errors: {errors}; console:\n" + "\n".join(console[-30:])
            )

    def no_traceback(when: str) -> None:
        text = page.evaluate(PAGE_TEXT)
        match = TRACEBACK.search(text)
        assert match is None, f"{when}: Python error text on the page: ...{text[max(0, match.start() - 300) :][:1500]}"
        red = page.evaluate("""() => [...document.querySelectorAll('[style*="#b00020"]')]
                                     .map(e => e.textContent.trim()).filter(Boolean)""")
        assert not red, f"{when}: error messages on the page: {red}"

    def tab(name: str) -> None:
        page.locator(".hgl-tabs > .lm-TabBar .lm-TabBar-tab", has_text=name).click()
        wait(
            f"the {name} tab to open",
            """(name) => [...document.querySelectorAll(
            '.hgl-tabs > .lm-TabBar .lm-TabBar-tab.lm-mod-current')].some(t => t.textContent.trim() === name)""",
            name,
        )

    def map_nodes() -> dict[str, dict[str, str]]:
        return wait("a visible cluster map", READ_MAP)

    # 1. Voila runs the notebook; the dashboard's widgets are drawn.
    page.goto(dashboard_url, timeout=WAIT_MS)
    mark("page loaded")
    wait(
        "the dashboard widgets",
        """() => document.querySelector('button.hgl-run-start:not([disabled])')
        && document.querySelectorAll('.hgl-node[data-node]').length >= 10
        && [...document.querySelectorAll('.hgl-live-chart')].some(gd => Array.isArray(gd.data))""",
    )
    mark("widgets drawn")
    no_traceback("after load")
    assert len(map_nodes()) == 10, "the quickstart pool has 10 nodes"

    # 2. Start a run too long to finish before the test pauses it (no race with the run's speed);
    # wait until the accuracy chart holds at least 3 rounds, read them from the plot.
    tab("Settings")
    page.locator(".hgl-rounds input").fill("100000")
    page.locator(".hgl-rounds input").press("Enter")
    tab("Overview")
    page.click("button.hgl-run-start")
    wait(
        "3 plotted rounds",
        f"""() => ({READ_CHART})({ACCURACY!r})
        .some(v => v.visible && v.traces.length && v.traces[0].x.length >= 3)""",
    )
    mark("3 rounds plotted")

    # 3. Pause (at the end of the round in progress).
    page.click("button.hgl-run-pause")
    wait(
        "the run to pause",
        """() => /paused/.test(document.querySelector('.hgl-run-status')?.textContent)
        && document.querySelector('button.hgl-run-resume:not([disabled])')""",
    )
    mark("paused")
    views = page.evaluate(READ_CHART, ACCURACY)
    shown = next(v for v in views if v["visible"])
    traces = {t["name"]: t for t in shown["traces"]}
    assert set(traces) == {"accuracy", "loss"}, traces
    accuracy, loss = traces["accuracy"], traces["loss"]
    rounds = len(accuracy["x"])
    assert rounds >= 3
    assert accuracy["x"] == list(range(1, rounds + 1)), f"rounds lost or doubled: {accuracy['x']}"
    assert loss["x"] == accuracy["x"]
    assert all(0.0 <= y <= 1.0 for y in accuracy["y"]), accuracy["y"]
    assert all(y > 0 for y in loss["y"]), loss["y"]
    for view in views:  # every view of the chart (Overview, Metrics) holds the same points
        assert [t["x"] for t in view["traces"]] == [accuracy["x"], loss["x"]], view
    print(f"  accuracy by round: {[round(y, 3) for y in accuracy['y']]}; {len(views)} views of the chart")
    shot("paused")

    # 4. Pick the node with the best link, spike its latency from the Nodes tab.
    before = map_nodes()
    target = min(before, key=lambda n: (RANK.get(before[n]["quality"], 9), int(n)))
    was = before[target]["quality"]
    assert was in ("Excellent", "Good"), f"no node with a good link to degrade: {before}"
    assert before[target]["link"] == was
    tab("Nodes")
    page.locator(".hgl-node-select select").select_option(label=f"node {target}")
    wait(
        "the node to be selected",
        f"""() => [...document.querySelectorAll(
        '.hgl-node.hgl-selected[data-node="{target}"]')].some({VISIBLE})""",
    )
    for selector, value in ((".hgl-spike-ms input", SPIKE_MS), (".hgl-spike-s input", SPIKE_S)):
        page.locator(selector).fill(str(value))
        page.locator(selector).press("Enter")  # a FloatText syncs on Enter or blur
    page.click("button.hgl-action-spike")
    logged = f"latency spike: node {target}: +{SPIKE_MS} ms for {SPIKE_S} virtual s"
    wait(
        "the spike in the actions log",
        "(line) => document.querySelector('.hgl-actions-log')?.textContent.includes(line)",
        logged,
    )
    mark(f"spike on node {target} ({was})")
    no_traceback("after the spike")

    # 5. Resume: within a round or two the monitor sees the slow link and the map's class drops.
    page.click("button.hgl-run-resume")
    after = wait(
        f"node {target}'s link class to change from {was}",
        f"""([node, was]) => {{
        const nodes = ({READ_MAP})();
        return nodes && nodes[node] && nodes[node].link !== was && nodes[node];
    }}""",
        [target, was],
    )
    mark(f"node {target}: {was} -> {after['quality']}")
    marker = wait(
        "the spike as a marker on the accuracy chart, with hover text",
        f"""() => [...document.querySelectorAll('.hgl-live-chart')]
        .filter(gd => gd.dataset.chart === {ACCURACY!r} && Array.isArray(gd.data))
        .flatMap(gd => gd.data).filter(t => t.name === 'event: action')
        .flatMap(t => Array.from(t.hovertext || [])).find(h => h.includes('+{SPIKE_MS} ms'))""",
    )
    mark(f"marker: {marker}")
    assert after["quality"] == after["link"]
    assert RANK[after["quality"]] > RANK[was], f"node {target} went from {was} to {after['quality']}"
    assert after["stroke"] != before[target]["stroke"], "the link's colour follows its class"
    row = page.evaluate(
        """(node) => [...document.querySelectorAll('table.hgl-nodes tr')]
        .map(tr => [...tr.cells].map(c => c.textContent.trim())).find(cells => cells[0] === node)""",
        target,
    )
    assert row is not None and RANK.get(row[4], -1) > RANK[was], f"the node table says {row}"
    if page.locator("button.hgl-run-pause").is_enabled():  # the run may have finished its rounds meanwhile
        page.click("button.hgl-run-pause")
    wait(
        "the run to pause again", "() => /paused|finished/.test(document.querySelector('.hgl-run-status')?.textContent)"
    )
    mark("paused again")
    shot("nodes_after_spike")

    # 6. Blockchain tab: the outbox has sent the rounds, the contract holds the scores.
    tab("Blockchain")
    done = int(re.search(r"round (\d+)", _text(page, ".hgl-run-status")).group(1))
    # No Refresh: the tab follows the run's chain.json on its own, until every round so far is sent.
    wait(
        f"the Blockchain tab to show {done} rounds sent, without Refresh",
        "(done) => Number((document.querySelector('.hgl-outbox')?.textContent.match(/sent (\\d+)/) || [0, -1])[1]) >= done",
        done,
    )
    outbox = " ".join(_text(page, ".hgl-outbox").split())
    sent = int(re.search(r"sent (\d+)", outbox).group(1))
    mark(f"outbox: {outbox}")
    assert sent >= 3, f"only {sent} rounds sent to the chain: {outbox}"
    assert re.search(r"failed 0\b", outbox), outbox
    tx_rounds = page.evaluate("""() => [...document.querySelectorAll('.hgl-tx-log tr')]
        .map(tr => [...tr.cells].map(c => c.textContent.trim()))
        .filter(cells => cells[0] === 'record round').map(cells => Number(cells[1]))""")
    assert len(tx_rounds) >= 3 and sorted(tx_rounds) == list(range(1, len(tx_rounds) + 1)), tx_rounds
    scores = page.evaluate("""() => [...document.querySelectorAll('.hgl-accounts tr')].slice(1)
        .map(tr => [...tr.cells].map(c => c.textContent.trim()))""")
    assert len(scores) == 10, scores
    assert sum(int(row[2]) for row in scores) > 0, f"no contribution scores on chain: {scores}"
    assert all(re.fullmatch(r"0x[0-9a-fA-F]{4}\u2026[0-9a-fA-F]{4}", row[1]) for row in scores), scores
    assert all(row[0].startswith("node ") for row in scores), scores
    shot("blockchain")
    no_traceback("on the Blockchain tab")

    # 7. Back on the Overview: the picture for the README (charts and cluster map, one viewport).
    tab("Overview")
    overview = shot("overview", height=1110)  # down to the map's legend
    if os.environ.get("HGL_UPDATE_SCREENSHOT") == "1":
        README_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copy(overview, README_SCREENSHOT)
    no_traceback("at the end")
    assert not errors, errors
    mark("done")
