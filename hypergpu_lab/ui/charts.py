"""The live charts of a run, fed batches of round reports by the runner (never by the round loop).

=====================  ======================================================  ==============
chart                  what                                                    update
=====================  ======================================================  ==============
``accuracy``           test accuracy and loss by round                          append
``accuracy_time``      the same by simulated time                               append
``round_time``         the round split into compute / download / upload /       append
                       waiting (mean over the nodes that arrived on time, so
                       the stack is the round's duration)
``latency``            heatmap node x round: mean transfer seconds              replace
``selection``          heatmap node x round: accepted / straggled / failed /    replace
                       rejected / quarantined / not selected
``batch_sizes``        heatmap node x round: the batch size each node trained   replace
                       with (the adaptive policy changes them)
``rewards``            whole tokens per node, as the ledger credited them       replace
                       (plus what queued rounds will credit); the recorded
                       score when the chain pays no reward; a local
                       contribution-score preview when no chain is attached
``link_classes``       nodes per link-quality class now                         replace
``decisions``          the adaptive policy's decision log (HTML table)          replace
=====================  ======================================================  ==============

Memory is bounded: the heatmaps keep the last ``heatmap_rounds`` rounds of at most ``max_nodes``
nodes (the lowest ids), the line charts ``max_rounds`` points.

The rewards chart never splits a reward itself: it shows the recorder's record (the integer shares
the ledger credited for acknowledged rounds, and :func:`~hypergpu_lab.chain.rewards.split_pool` of
the queued ones), so it agrees to the base unit with the Blockchain tab and the chain.
"""

from __future__ import annotations

import html
import logging
import math
from collections import Counter, deque
from typing import Any

import ipywidgets as widgets

from ..adaptation import CLASSES
from ..chain.rewards import to_tokens
from ..chain.scoring import SCORE_SCALE, score
from ..events import Decision, NodeRecord, RoundReport
from .driver import RunDriver
from .widgets import LiveChart

log = logging.getLogger(__name__)

PARTS = ("compute", "download", "upload", "waiting")
SELECTION_CODES = {"not selected": 0, "accepted": 1, "straggled": 2, "failed": 3, "rejected": 4, "quarantined": 5}
_SELECTION_COLOURS = ("#eeeeee", "#2ca02c", "#ff7f0e", "#d62728", "#9467bd", "#333333")
_CLASS_COLOURS = {
    "Excellent": "#1a9850",
    "Good": "#91cf60",
    "Fair": "#fee08b",
    "Poor": "#fc8d59",
    "Critical": "#d73027",
    "Offline": "#555555",
    "Unobserved": "#cccccc",
}


def _discrete(colours: tuple[str, ...]) -> list[list[Any]]:
    """A plotly colourscale of equal bands, one colour per integer code 0..n-1."""
    n, scale = len(colours), []
    for i, c in enumerate(colours):
        scale += [[i / n, c], [(i + 1) / n, c]]
    return scale


def _axis(title: str, **extra: Any) -> dict[str, Any]:
    return {"title": {"text": title}, **extra}


def _transfer_s(rec: NodeRecord) -> float:
    """Mean seconds of the node's transfers in a round (the download, and the upload when there was one)."""
    return (rec.download_s + rec.upload_s) / 2 if rec.upload_attempts else rec.download_s


def round_parts(report: RoundReport) -> dict[str, float]:
    """Mean compute / download / upload / waiting seconds over the nodes whose update arrived by the close."""
    on_time = [r for r in report.nodes if r.arrival is not None and r.arrival <= report.t_end + 1e-12]
    recs = on_time or list(report.nodes)
    if not recs:
        return {p: 0.0 for p in PARTS}
    return {p: sum(getattr(r, f"{p}_s") for r in recs) / len(recs) for p in PARTS}


MARKER_STYLE = {
    "action": ("triangle-down", "#1f77b4"),
    "fault": ("x", "#d62728"),
    "detection": ("diamond", "#ff7f0e"),
    "quarantine": ("square", "#333333"),
    "release": ("square-open", "#333333"),
    "readmit": ("square-open", "#2ca02c"),
    "rollback": ("star", "#9467bd"),
}
"""Events drawn as markers on the accuracy charts (kind: plotly symbol, colour), from events.jsonl."""

COMPARE_PREFIX = "compare: "
"""Name prefix of the faded trace of a finished run drawn over the live accuracy charts."""

ACCURACY_TRACES = (
    {"type": "scatter", "mode": "lines+markers", "name": "accuracy"},
    {"type": "scatter", "mode": "lines", "name": "loss", "yaxis": "y2"},
)


EMPTY_RUN = "No rounds yet: press Start (or Step for one round).<br>Each round adds a point here."


_BASE_TRACES = {t["name"] for t in ACCURACY_TRACES}


def accuracy_chart(x: str = "round", *, max_points: int = 500, height: int = 340) -> LiveChart:
    """Test accuracy and loss against ``x``: "round" or "time" (simulated seconds)."""
    label = "round" if x == "round" else "simulated time (s)"
    return LiveChart(
        title=f"Accuracy and loss by {'round' if x == 'round' else 'simulated time'}",
        traces=[{**t, "x": [], "y": []} for t in ACCURACY_TRACES],
        max_points=max_points,
        empty_text=EMPTY_RUN,
        plot_layout={
            "height": height,
            "xaxis": _axis(label, rangemode="tozero" if x != "round" else "normal"),
            "yaxis": _axis("test accuracy (%)", range=[0, 1.02], tickformat=".0%", nticks=6),
            "yaxis2": {
                **_axis("test loss (cross-entropy)", overlaying="y", side="right"),
                "automargin": True,
                "rangemode": "tozero",
                "tickmode": "auto",  # not synced to the accuracy ticks (that gave -0.008 / 1.177 / 2.363)
                "nticks": 6,
                "tickformat": "~g",
                "showgrid": False,
            },
            "margin": {"r": 70},
        },
    )


def privacy_chart(*, max_points: int = 500) -> LiveChart:
    """Epsilon spent (left axis) beside test accuracy (right axis), by round: the privacy-utility trade-off."""
    return LiveChart(
        title="Privacy spent (epsilon at the run's delta) and accuracy by round",
        traces=[
            {"type": "scatter", "mode": "lines+markers", "name": "epsilon", "x": [], "y": []},
            {"type": "scatter", "mode": "lines", "name": "accuracy", "yaxis": "y2", "x": [], "y": []},
        ],
        max_points=max_points,
        plot_layout={
            "xaxis": _axis("round"),
            "yaxis": _axis("epsilon", rangemode="tozero"),
            "yaxis2": {**_axis("test accuracy", overlaying="y", side="right", range=[0, 1]), "automargin": True},
            "margin": {"r": 70},
            "legend": {"orientation": "h"},
        },
    )


def feed_privacy(chart: LiveChart, batch: list[RoundReport]) -> None:
    """Append epsilon for the rounds of a DP run (a run without DP adds no point)."""
    private = [r for r in batch if r.epsilon is not None]
    evaluated = [r for r in private if r.test_accuracy is not None]
    chart.append(
        {
            "epsilon": ([r.round for r in private], [_finite(r.epsilon) for r in private]),
            "accuracy": ([r.round for r in evaluated], [_finite(r.test_accuracy) for r in evaluated]),
        }
    )


def _finite(value: float | None) -> float | None:
    """None for NaN and infinities (a diverged model): a gap in the line, and valid JSON for the browser."""
    return value if value is not None and math.isfinite(value) else None


def feed_accuracy(chart: LiveChart, batch: list[RoundReport], x: str = "round") -> None:
    """Append the evaluated rounds of ``batch`` (rounds without an evaluation add no point)."""
    evaluated = [r for r in batch if r.test_accuracy is not None]
    xs = [r.round if x == "round" else r.t_end for r in evaluated]
    chart.append(
        {
            "accuracy": (xs, [_finite(r.test_accuracy) for r in evaluated]),
            "loss": (xs, [_finite(r.test_loss) for r in evaluated]),
        }
    )


def clear(chart: LiveChart) -> None:
    """Keep the traces, drop their points."""
    chart.set_traces([{**t, "x": [], "y": []} for t in chart.traces])


class RunCharts(widgets.VBox):
    """All live charts of one run; subscribe it to a :class:`~hypergpu_lab.ui.driver.RunDriver` (done on construction)."""

    def __init__(
        self,
        runner: RunDriver,
        *,
        max_rounds: int = 500,
        heatmap_rounds: int = 100,
        max_nodes: int = 50,
        decisions_shown: int = 30,
    ) -> None:
        self.runner = runner
        self.max_nodes, self.decisions_shown = max_nodes, decisions_shown
        self.accuracy = accuracy_chart("round", max_points=max_rounds)
        self.accuracy_time = accuracy_chart("time", max_points=max_rounds)
        self.privacy = privacy_chart(max_points=max_rounds)
        self.round_time = LiveChart(
            title="Round time by phase (mean per on-time node)",
            max_points=max_rounds,
            traces=[{"type": "bar", "name": p, "x": [], "y": []} for p in PARTS],
            empty_text=EMPTY_RUN,
            plot_layout={
                "barmode": "stack",
                "xaxis": _axis("round"),
                "yaxis": _axis("simulated time (s)", tickformat="~g"),
            },
        )
        heatmap = {"xaxis": _axis("round"), "yaxis": _axis("node id")}

        def per_node(title: str) -> LiveChart:  # the round x node heatmaps share everything but the title
            return LiveChart(
                title=title, traces=[], max_points=heatmap_rounds, empty_text=EMPTY_RUN, plot_layout=heatmap
            )

        self.latency = per_node("Transfer time per node (s)")
        self.selection = per_node("Selection timeline")
        self.batch_sizes = per_node("Batch size per node (samples)")
        self.rewards = LiveChart(
            title="Rewards per node",
            traces=[],
            max_points=max_nodes,
            empty_text="No rewards yet: accepted updates earn them once a run trains.",
            plot_layout={"barmode": "stack", "xaxis": _axis("node id", dtick=1), "yaxis": _axis("contribution score")},
        )
        self.link_classes = LiveChart(
            title="Link quality classes (nodes per class now)",
            traces=[],
            max_points=len(_CLASS_COLOURS),
            empty_text="No nodes observed yet: press Start.",
            plot_layout={"xaxis": _axis("link quality class"), "yaxis": _axis("nodes (count)", dtick=1)},
        )
        self.decisions = widgets.HTML()
        self._latency: deque[tuple[int, dict[int, float]]] = deque(maxlen=heatmap_rounds)
        self._batch: deque[tuple[int, dict[int, int]]] = deque(maxlen=heatmap_rounds)
        self._selection: deque[tuple[int, dict[int, int]]] = deque(maxlen=heatmap_rounds)
        self._scores: Counter[int] = Counter()  # no chain: a local preview of the contribution score
        self._rewards: dict[int, int] = {}  # base units the ledger credited, from the recorder's record
        grid = widgets.GridBox(
            [
                self.accuracy,
                self.accuracy_time,
                self.privacy,  # epsilon beside accuracy (empty without DP)
                self.round_time,
                self.link_classes,
                self.latency,
                self.selection,
                self.batch_sizes,
                self.rewards,
            ],
            layout=widgets.Layout(grid_template_columns="repeat(2, minmax(0, 1fr))", grid_gap="8px"),
        )
        super().__init__([grid, widgets.HTML("<b>Adaptation decisions</b>"), self.decisions])
        runner.on_reports(self.update)
        runner.on_status(self._on_status)
        self._markers: list[dict[str, Any]] = []
        if hasattr(runner, "on_events"):  # a run in its own process records what happened in events.jsonl
            runner.on_events(self.add_events)
        self._chain_fed = bool(getattr(runner, "chain", False)) and hasattr(runner, "on_chain")
        if self._chain_fed:  # a run in its own process: rewards come from its chain.json
            runner.on_chain(lambda _: self.refresh_rewards())
        runner.on_coordinator(self.reset)
        self._was_active = False
        self.compared: str | None = None
        self.reset(runner.coord)

    # -- feeding -------------------------------------------------------------------------------
    def reset(self, coord: Any) -> None:
        """Empty every chart (a new coordinator)."""
        self._latency.clear()
        self._batch.clear()
        self._selection.clear()
        self._scores.clear()
        self._rewards = {}
        self._markers = []
        for chart in (self.accuracy, self.accuracy_time):  # a new run: its own points only, no overlay
            chart.restart([{**t, "x": [], "y": []} for t in chart.traces if t["name"] in _BASE_TRACES])
        self.compared = None
        self.round_time.restart([{**t, "x": [], "y": []} for t in self.round_time.traces])
        clear(self.privacy)
        for chart in (self.latency, self.selection, self.batch_sizes, self.rewards, self.link_classes):
            chart.restart([])
        self._decisions(coord)

    def update(self, batch: list[RoundReport]) -> None:
        """Add a batch of reports: one append per line chart, one replacement per snapshot chart."""
        coord = self.runner.coord
        feed_accuracy(self.accuracy, batch, "round")
        feed_accuracy(self.accuracy_time, batch, "time")
        feed_privacy(self.privacy, batch)
        parts = [round_parts(r) for r in batch]
        self.round_time.append({p: ([r.round for r in batch], [x[p] for x in parts]) for p in PARTS})
        held = {n.id for n in coord.pool if n.state.value == "quarantined"}
        recorded = getattr(coord, "recorder", None) is not None or self._chain_fed
        for r in batch:
            self._latency.append((r.round, {rec.node: _transfer_s(rec) for rec in r.nodes}))
            self._batch.append((r.round, {rec.node: rec.batch_size for rec in r.nodes}))
            codes = {n: SELECTION_CODES["quarantined"] for n in held}
            codes.update({rec.node: SELECTION_CODES[rec.status] for rec in r.nodes})
            self._selection.append((r.round, codes))
            if not recorded:
                for rec in r.nodes:
                    self._scores[rec.node] += score(rec) / SCORE_SCALE
        self._snapshots(coord)

    def add_events(self, events: list[dict[str, Any]]) -> None:
        """Faults, node actions, detections, quarantine and rollbacks as markers on the accuracy charts."""
        new = [e for e in events if e.get("kind") in MARKER_STYLE]
        if not new:
            return
        self._markers.extend(new)
        for chart, x in ((self.accuracy, "round"), (self.accuracy_time, "t")):
            traces = [t for t in chart.traces if not t["name"].startswith("event: ")]
            for kind, (symbol, colour) in MARKER_STYLE.items():
                rows = [e for e in self._markers if e["kind"] == kind]
                if rows:
                    traces.append(
                        {
                            "type": "scatter",
                            "mode": "markers",
                            "name": f"event: {kind}",
                            "x": [e[x] for e in rows],
                            "y": [1.0] * len(rows),
                            "marker": {"symbol": symbol, "color": colour, "size": 11},
                            "hovertext": [
                                f"round {e['round']}, t={e['t']:.1f} s: {e['text']}"
                                + (f" ({e['why']})" if e.get("why") else "")
                                for e in rows
                            ],
                            "hoverinfo": "text",
                        }
                    )
            chart.set_traces(traces)

    def overlay(self, name: str | None, rows: list[dict[str, Any]] = ()) -> None:
        """Draw another run's accuracy (``rows`` of its metrics.jsonl) as a faded trace; None removes it."""
        self.compared = name
        for chart, x in ((self.accuracy, "round"), (self.accuracy_time, "t_end")):
            traces = [t for t in chart.traces if not t["name"].startswith(COMPARE_PREFIX)]
            if name is not None:
                points = [r for r in rows if r.get("test_accuracy") is not None]
                traces.append(
                    {
                        "type": "scatter",
                        "mode": "lines",
                        "name": f"{COMPARE_PREFIX}{name}",
                        "x": [r.get(x) for r in points],
                        "y": [_finite(r["test_accuracy"]) for r in points],
                        "line": {"color": "#7f7f7f", "width": 2, "dash": "dot"},
                        "opacity": 0.45,
                        "hovertemplate": f"{html.escape(name)}: round %{{x}}, accuracy %{{y:.1%}}<extra></extra>"
                        if x == "round"
                        else f"{html.escape(name)}: %{{x:.1f}} s, accuracy %{{y:.1%}}<extra></extra>",
                    }
                )
            chart.set_traces(traces)

    def _on_status(self, runner: RunDriver) -> None:
        """When a run ends, show the rewards the recorder has acknowledged since the last batch."""
        active = runner.active
        if self._was_active and not active:
            self.refresh_rewards()
        self._was_active = active

    def _nodes_shown(self, coord: Any) -> list[int]:
        return sorted(coord.pool.nodes)[: self.max_nodes]

    def _heatmap_axes(self, nodes: list[int]) -> None:
        """Every node labelled (one row each, the chart as tall as it takes), not every other one."""
        height = max(300, 110 + 16 * len(nodes))
        for chart in (self.latency, self.selection, self.batch_sizes):
            layout = {
                **chart.plot_layout,
                "height": height,
                "yaxis": _axis("node id", tickmode="array", tickvals=nodes, ticktext=[str(n) for n in nodes]),
            }
            if layout != chart.plot_layout:
                chart.plot_layout = layout

    def _snapshots(self, coord: Any) -> None:
        nodes = self._nodes_shown(coord)
        self._heatmap_axes(nodes)
        rounds = [r for r, _ in self._latency]
        self.latency.set_traces(
            [
                {
                    "type": "heatmap",
                    "name": "transfer s",
                    "x": rounds,
                    "y": nodes,
                    "colorscale": "Viridis",
                    "colorbar": {"title": {"text": "s"}},
                    "hovertemplate": "node %{y}, round %{x}: %{z:.3f} s<extra></extra>",
                    "z": [[col.get(n) for _, col in self._latency] for n in nodes],
                }
            ]
        )
        self.selection.set_traces(
            [
                {
                    "type": "heatmap",
                    "name": "status",
                    "x": [r for r, _ in self._selection],
                    "y": nodes,
                    "z": [[col.get(n, 0) for _, col in self._selection] for n in nodes],
                    "zmin": -0.5,
                    "zmax": len(SELECTION_CODES) - 0.5,
                    "colorscale": _discrete(_SELECTION_COLOURS),
                    "colorbar": {"tickvals": list(SELECTION_CODES.values()), "ticktext": list(SELECTION_CODES)},
                }
            ]
        )
        self.batch_sizes.set_traces(
            [
                {
                    "type": "heatmap",
                    "name": "batch size",
                    "x": [r for r, _ in self._batch],
                    "y": nodes,
                    "colorscale": "Blues",
                    "colorbar": {"title": {"text": "samples"}},
                    "hovertemplate": "node %{y}, round %{x}: batch %{z} samples<extra></extra>",
                    "z": [[col.get(n) for _, col in self._batch] for n in nodes],
                }
            ]
        )
        self.refresh_rewards()
        counts = self.runner.view.class_counts()
        names = [c for c in (*CLASSES, "Unobserved")]
        self.link_classes.set_traces(
            [
                {
                    "type": "bar",
                    "name": "nodes",
                    "x": names,
                    "y": [counts.get(c, 0) for c in names],
                    "marker": {"color": [_CLASS_COLOURS[c] for c in names]},
                }
            ]
        )
        self._decisions(coord)

    def _decisions(self, coord: Any) -> None:
        decisions = getattr(getattr(coord, "policy", None), "decisions", None)
        if decisions is None:
            self.decisions.value = (
                "<i>This policy makes no adaptation decisions; choose an adaptive policy "
                "in Settings to see them here.</i>"
            )
            return
        self.decisions.value = decision_table(list(decisions)[-self.decisions_shown :][::-1])

    def refresh_rewards(self) -> None:
        """Redraw the rewards chart from the recorder's record (local: no chain call, cheap)."""
        coord = self.runner.coord
        nodes = self._nodes_shown(coord)
        x = [str(n) for n in nodes]
        if getattr(self, "_chain_fed", False):
            self._rewards_from_snapshot(x, nodes)
            return
        recorder = getattr(coord, "recorder", None)
        if recorder is None:
            self._rewards = {}
            self._rewards_axis("contribution score (sum over rounds)")
            self.rewards.set_traces(
                [{"type": "bar", "name": "contribution score", "x": x, "y": [round(self._scores[n], 6) for n in nodes]}]
            )
            return
        if recorder.reward_per_round is None:  # the chain records scores and pays nothing
            self._rewards = {}
            scores = recorder.scores_by_node()
            self._rewards_axis("recorded score")
            self.rewards.set_traces(
                [
                    {
                        "type": "bar",
                        "name": "recorded score",
                        "x": x,
                        "y": [round(scores.get(n, 0) / SCORE_SCALE, 6) for n in nodes],
                    }
                ]
            )
            return
        decimals = recorder.ledger.token_decimals
        self._rewards = recorder.paid_by_node()
        queued = recorder.queued_by_node()
        self._rewards_axis("reward (tokens)")
        self.rewards.set_traces(
            [
                {
                    "type": "bar",
                    "name": "credited on chain",
                    "x": x,
                    "y": [to_tokens(self._rewards.get(n, 0), decimals) for n in nodes],
                },
                {
                    "type": "bar",
                    "name": "queued",
                    "x": x,
                    "y": [to_tokens(queued.get(n, 0), decimals) for n in nodes],
                },
            ]
        )

    def _rewards_from_snapshot(self, x: list[str], nodes: list[int]) -> None:
        snap = getattr(self.runner, "chain_snapshot", None) or {}
        decimals = int(snap.get("decimals", 18))
        paid, queued = snap.get("paid") or {}, snap.get("queued") or {}
        self._rewards = {int(n): int(v) for n, v in paid.items()}
        self._rewards_axis("reward (tokens)")
        self.rewards.set_traces(
            [
                {
                    "type": "bar",
                    "name": "credited on chain",
                    "x": x,
                    "y": [to_tokens(int(paid.get(str(n), 0)), decimals) for n in nodes],
                },
                {
                    "type": "bar",
                    "name": "queued",
                    "x": x,
                    "y": [to_tokens(int(queued.get(str(n), 0)), decimals) for n in nodes],
                },
            ]
        )

    def _rewards_axis(self, title: str) -> None:
        layout = self.rewards.plot_layout
        if layout.get("yaxis", {}).get("title", {}).get("text") != title:
            self.rewards.plot_layout = {**layout, "yaxis": _axis(title)}

    @property
    def rewards_by_node(self) -> dict[int, int]:
        """Token base units the ledger credited each node (acknowledged rounds); empty without a paying chain."""
        return dict(self._rewards)

    @property
    def scores_by_node(self) -> dict[int, float]:
        """The local contribution-score preview per node (only without a chain)."""
        return dict(self._scores)


DECISION_UNITS = {
    "batch": " samples",
    "deadline": " s",
    "deadline_slack": " x expected",
    "over_commit": " x K",
    "rollback": "",
}
"""What a decision's numbers count, by action (a deadline in simulated seconds, a batch in samples, ...)."""


def _decision_value(action: str, value: Any) -> str:
    """One side of a decision's change, rounded for reading (3 significant digits) and with its unit."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return f"{len(value)} nodes: " + ", ".join(str(v) for v in value[:12]) + (" ..." if len(value) > 12 else "")
    if action == "rollback" and isinstance(value, int):
        return f"round {value}"
    if isinstance(value, float):
        value = f"{value:.3g}"
    return f"{value}{DECISION_UNITS.get(action, '')}"


def decision_table(rows: list[Decision]) -> str:
    """An HTML table of policy decisions grouped by round, newest first: node, what, before -> after, reason."""
    if not rows:
        return "<i>No decisions yet: the adaptive policy logs its choices here once a run trains.</i>"
    head = "".join(f"<th style='text-align:left;padding:0 8px'>{h}</th>" for h in ("node", "what", "change", "reason"))
    body, current = [], None
    for d in sorted(rows, key=lambda d: -d.round):
        if d.round != current:
            current = d.round
            body.append(
                f"<tr class='hgl-decision-round'><td colspan='4' style='padding:6px 8px 2px;font-weight:600;"
                f"border-bottom:1px solid #ddd'>round {d.round}</td></tr>"
            )
        node = "all" if d.node is None else d.node
        after = html.escape(_decision_value(d.action, d.after))
        change = f"{html.escape(_decision_value(d.action, d.before))} &rarr; {after}" if d.before is not None else after
        cells = (node, html.escape(d.action.replace("_", " ")), change, html.escape(d.reason))
        body.append("<tr>" + "".join(f"<td style='padding:0 8px'>{c}</td>" for c in cells) + "</tr>")
    return f"<table class='hgl-decisions'><tr>{head}</tr>{''.join(body)}</table>"
