"""The node pool panel: a live table of the nodes, the cluster map, and actions on the running simulation.

Actions (change the link profile, a latency spike, disconnect / reconnect, crash / recover, make a
node faulty or honest again) are the functions of :mod:`hypergpu_lab.ui.actions`, queued through
:meth:`Runner.act` so they land at a round boundary. Clicking a node on the map selects it here.
"""

from __future__ import annotations

import html
import logging
from typing import Any

import ipywidgets as widgets

from ..events import RoundReport
from ..network import PROFILES
from . import actions
from .common import error_html, guarded, note_html, table_html
from .driver import RunDriver
from .view import NodeRow
from .widgets import ClusterMap

log = logging.getLogger(__name__)

COLUMNS = (
    "node",
    "GPU",
    "region",
    "link",
    "quality",
    "score",
    "batch",
    "work done",
    "state",
    "last round",
    "samples accepted",
    "last contribution",
    "faults",
)


MAP_STATES = {"disconnected": "crashed", "offline": "crashed"}  # the map draws both dimmed, like a crash


def work_cell(row: NodeRow) -> str:
    """Partial work in the table: the share of local steps done in the node's latest round."""
    if row.last_status is None:
        return "-"
    return "all" if row.work_done is None else f"{row.work_done:.0%}"


def contribution_cell(row: NodeRow) -> str:
    """The node's latest round as the chain's rule sees it: its update's Shapley value (when the run scores
    contributions), and whether that round is paid (chain/scoring.py: the preview when no chain records)."""
    if row.paid is None:
        return "-"
    verdict = "paid" if row.paid else "unpaid"
    return verdict if row.value is None else f"{row.value:+.3g} {verdict}"


def map_node(row: NodeRow) -> dict[str, Any]:
    """A ClusterMap node entry for a table row: a short label on the map, the rest in its hover text."""
    label = f"node {row.id} · {row.gpu}"
    detail = [f"link {row.profile}"]
    if row.quality == "Unobserved":
        # Never observed: the class its link profile is expected to score (NetworkMonitor.prior_quality).
        quality = row.prior_quality
        detail.append(f"{quality} expected (not yet observed)")
    else:
        quality = row.quality
        detail.append(f"quality {quality}" + (f" (score {row.score:.0f})" if row.score is not None else ""))
    if row.state != "online":  # drawn on the map (dimmed, a cross, a B ring), written in the hover text
        detail.append(f"state {row.state}")
    if row.injected:
        detail.append(f"faults now: {row.injected}")
    if row.spike_ms:
        detail.append(f"latency spike: +{row.spike_ms:g} ms one-way now")
    return {
        "id": row.id,
        "region": row.region,
        "quality": quality,
        "state": MAP_STATES.get(row.state, row.state),
        "label": label,
        "detail": " | ".join(detail),
        "spike_ms": row.spike_ms,
    }


class NodesPanel(widgets.VBox):
    """Node table, cluster map and per-node actions for the runner's coordinator."""

    def __init__(self, runner: RunDriver, *, page_size: int = 25, cluster_map: ClusterMap | None = None) -> None:
        self.runner, self.page_size = runner, page_size
        self._map_nodes: list[dict[str, Any]] = []
        self.cluster = cluster_map if cluster_map is not None else ClusterMap()
        self.node = widgets.Dropdown(
            description="node", layout=widgets.Layout(width="180px"), style={"description_width": "40px"}
        )
        self.node.add_class("hgl-node-select")
        self.page = widgets.BoundedIntText(
            value=1,
            min=1,
            max=1,
            description="page",
            layout=widgets.Layout(width="140px"),
            style={"description_width": "40px"},
        )
        self.table = widgets.HTML()
        self.detail = widgets.HTML()
        self.message = widgets.HTML()
        self._queued_after: str | None = None  # the actions log's last line when an action was queued
        self.history = widgets.HTML()
        self.history.add_class("hgl-actions-log")
        small = widgets.Layout(width="150px")
        self.profile = widgets.Dropdown(options=list(PROFILES), value="poor", layout=small)
        self.extra_ms = widgets.FloatText(
            value=800.0, description="ms", layout=small, style={"description_width": "30px"}
        )
        self.spike_s = widgets.FloatText(
            value=30.0, description="for s", layout=small, style={"description_width": "40px"}
        )
        self.extra_ms.add_class("hgl-spike-ms")
        self.spike_s.add_class("hgl-spike-s")
        self.fault = widgets.Dropdown(options=list(actions.ROUND_FAULTS), value="sign_flip", layout=small)
        self.buttons = {
            "profile": widgets.Button(description="Set link profile"),
            "spike": widgets.Button(description="Latency spike"),
            "disconnect": widgets.Button(description="Disconnect"),
            "reconnect": widgets.Button(description="Reconnect"),
            "crash": widgets.Button(description="Crash", button_style="danger"),
            "recover": widgets.Button(description="Recover"),
            "inject": widgets.Button(description="Make faulty", button_style="warning"),
            "clear": widgets.Button(description="Clear faults"),
        }
        for key, button in self.buttons.items():
            button.on_click(guarded(self.message, key)(getattr(self, f"_on_{key}")))
            button.add_class(f"hgl-action-{key}")
        self.node.observe(self._on_select, names="value")
        self.page.observe(lambda _: self.refresh(), names="value")
        self.cluster.observe(self._on_map_click, names="selected")
        runner.on_reports(self.update)
        runner.on_coordinator(self.reset)
        runner.on_status(lambda _: self.refresh())  # an action applied between rounds shows before the next round
        actions_box = widgets.VBox(
            [
                widgets.HBox([self.profile, self.buttons["profile"]]),
                widgets.HBox([self.extra_ms, self.spike_s, self.buttons["spike"]]),
                widgets.HBox(
                    [
                        self.buttons["disconnect"],
                        self.buttons["reconnect"],
                        self.buttons["crash"],
                        self.buttons["recover"],
                    ]
                ),
                widgets.HBox([self.fault, self.buttons["inject"], self.buttons["clear"]]),
            ]
        )
        super().__init__(
            [
                widgets.HBox([self.node, self.page]),
                widgets.HBox([self.table, self.cluster]),
                widgets.HTML("<b>Selected node</b>"),
                self.detail,
                actions_box,
                self.message,
                widgets.HTML("<b>Actions so far</b>"),
                self.history,
            ]
        )
        self.reset(runner.coord)

    # -- selection -----------------------------------------------------------------------------
    @property
    def selected(self) -> int | None:
        return self.node.value

    def select(self, node: int) -> None:
        self.node.value = node

    def _on_select(self, change: dict[str, Any]) -> None:
        node = change["new"]
        if node is None:
            return
        if self.cluster.selected != node and any(n["id"] == node for n in self.cluster.nodes):
            self.cluster.selected = node
        ids = sorted(self.runner.coord.pool.nodes)
        self.page.value = ids.index(node) // self.page_size + 1 if node in ids else self.page.value
        self.refresh()

    def _on_map_click(self, change: dict[str, Any]) -> None:
        node = change["new"]
        if node is not None and node >= 0 and node in self.runner.coord.pool.nodes and node != self.node.value:
            self.node.value = node

    # -- feeding -------------------------------------------------------------------------------
    def reset(self, coord: Any) -> None:
        ids = sorted(coord.pool.nodes)
        with self.node.hold_sync():
            self.node.options = [(f"node {i}", i) for i in ids]
            self.node.value = ids[0] if ids else None
        with self.page.hold_sync():
            self.page.max = max(1, -(-len(ids) // self.page_size))
            self.page.value = 1
        self.refresh()

    def update(self, batch: list[RoundReport]) -> None:
        self.refresh()
        accepted = [rec.node for rec in batch[-1].nodes if rec.status == "accepted"]
        if accepted:
            self.cluster.pulse(accepted)

    def refresh(self) -> None:
        """Redraw the table page, the map and the selected node's detail from the live pool."""
        view = self.runner.view
        all_rows = view.rows()
        start = (self.page.value - 1) * self.page_size
        rows = all_rows[start : start + self.page_size]
        selected = self.node.value
        cells = [
            (
                r.id,
                r.gpu,
                r.region,
                r.profile,
                r.quality,
                r.score,
                r.batch_size,
                work_cell(r),
                r.state,
                r.last_status,
                r.contribution,
                contribution_cell(r),
                r.injected or "",
            )
            for r in rows
        ]
        highlight = next((i for i, r in enumerate(rows) if r.id == selected), None)
        self.table.value = table_html(COLUMNS, cells, css_class="hgl-nodes", highlight=highlight)
        nodes = [map_node(r) for r in all_rows]
        if nodes != self._map_nodes:  # validating and syncing 1000 nodes costs; skip when unchanged
            self.cluster.nodes = self._map_nodes = nodes
        if selected is not None and self.cluster.selected != selected:
            self.cluster.selected = selected
        self._show_detail(selected)
        last = self.runner.actions_log[-1] if self.runner.actions_log else ""
        if self._queued_after is not None and last != self._queued_after:
            self.message.value = note_html(f"applied: {last}")  # the queued note is stale now
            self._queued_after = None
        self.history.value = "<br>".join(html.escape(x) for x in list(self.runner.actions_log)[-8:][::-1]) or note_html(
            "none yet"
        )

    def _show_detail(self, node: int | None) -> None:
        if node is None or node not in self.runner.coord.pool.nodes:
            self.detail.value = ""
            return
        view = self.runner.view
        row, rec, q = view.row(node), view.latest.get(node), view.quality(node)
        head = f"{html.escape(row.gpu)}, {row.region}, link {row.profile}, state <b>{row.state}</b>"
        parts = [f"<b>node {node}</b>: {head}"]
        if note := view.availability_note(node):
            parts.append(note)
        if q is not None:
            lat = "-" if q.latency_s is None else f"{q.latency_s * 1e3:.0f} ms"
            parts.append(
                f"quality {q.quality} (score {q.score:.1f}, latency {lat}, loss {q.loss_rate:.1%}, "
                f"reliability {q.reliability:.0%}, trend {q.trend})"
            )
        if rec is not None:
            parts.append(
                f"round {view.latest_round[node]}: {rec.status}"
                + (f" ({html.escape(rec.reason)})" if rec.reason else "")
                + f", download {rec.download_s:.3f}s, compute {rec.compute_s:.3f}s, "
                f"upload {rec.upload_s:.3f}s, batch {rec.batch_size}"
                + (f", {rec.work_done:.0%} of its local steps (partial work)" if rec.work_done is not None else "")
            )
            if rec.contribution is not None:
                parts.append(
                    f"contribution: Shapley value {rec.contribution:+.4g} of validation accuracy, "
                    + ("paid" if row.paid else "unpaid")
                )
        self.detail.value = "<br>".join(parts)

    # -- actions -------------------------------------------------------------------------------
    def _act(self, what: str, fn: Any, *args: Any) -> None:
        node = self.node.value
        if node is None:
            self.message.value = error_html("select a node first")
            return
        now = self.runner.action(fn.__name__, node, args, what)
        text = self.runner.message if now else f"{what} queued for the end of the round in progress"
        self.message.value = (error_html if "failed" in text else note_html)(text)
        if not now:
            self._queued_after = self.runner.actions_log[-1] if self.runner.actions_log else ""
        self.refresh()

    def _on_profile(self, _: Any = None) -> None:
        self._act("set link profile", actions.set_profile, self.profile.value)

    def _on_spike(self, _: Any = None) -> None:
        self._act("latency spike", actions.latency_spike, self.extra_ms.value, self.spike_s.value)

    def _on_disconnect(self, _: Any = None) -> None:
        self._act("disconnect", actions.disconnect)

    def _on_reconnect(self, _: Any = None) -> None:
        self._act("reconnect", actions.reconnect)

    def _on_crash(self, _: Any = None) -> None:
        self._act("crash", actions.crash)

    def _on_recover(self, _: Any = None) -> None:
        self._act("recover", actions.recover)

    def _on_inject(self, _: Any = None) -> None:
        self._act("make faulty", actions.inject, self.fault.value)

    def _on_clear(self, _: Any = None) -> None:
        self._act("clear faults", actions.clear_faults)
