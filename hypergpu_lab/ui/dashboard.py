"""The dashboard: run controls on top, then tabs Overview, Nodes, Metrics, Blockchain, Settings.

::

    from hypergpu_lab.ui import Dashboard
    Dashboard(coord)                      # an existing coordinator
    Dashboard(preset("quickstart"), out="runs")   # or a RunConfig: built here, in a run folder under out

One :class:`Runner` feeds every panel; the panels hold widgets only and forward to the runner and
the coordinator. Above the fold at 1440x900: a header saying what the run is (its settings, not a
fixed sentence), one compact row of controls and status, the key numbers as cards (round, accuracy,
loss, simulated time, nodes online, chain pending) and the accuracy chart beside the cluster map.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from ..config import RunConfig, preset
from ..events import RoundReport
from .chain_panel import ChainPanel
from .charts import RunCharts
from .control import ControlPanel, Factory
from .factory import build_coordinator, policy_name
from .nodes_panel import NodesPanel
from .runner import Runner
from .runs_panel import RunsPanel

log = logging.getLogger(__name__)

TABS = ("Overview", "Nodes", "Metrics", "Blockchain", "Settings")

STYLE = """<style>
.hgl-dashboard { font-size: 13px; }
.hgl-header { font-size: 13px; color: #444; margin: 0 0 2px 0; line-height: 1.4; }
.hgl-header b.hgl-title { font-size: 18px; color: #1f3a5f; margin-right: 8px; }
.hgl-kpis { display: flex; flex-wrap: wrap; gap: 8px; margin: 4px 0 6px 0; }
.hgl-kpi { border: 1px solid #e3e6ea; border-radius: 6px; padding: 3px 12px; min-width: 112px; background: #fafbfc; line-height: 1.35; }
.hgl-kpi .hgl-kpi-label { font-size: 11px; color: #666; white-space: nowrap; }
.hgl-kpi .hgl-kpi-value { font-size: 18px; font-weight: 600; color: #1f2937; white-space: nowrap; }
.hgl-kpi .hgl-kpi-sub { font-size: 11px; color: #777; white-space: nowrap; }
.hgl-secondary { font-size: 12px; color: #666; }
.hgl-tabs .widget-tab-contents, .hgl-tabs > .p-TabPanel-stackedPanel, .hgl-tabs > .lm-TabPanel-stackedPanel { padding: 8px 10px; }
.hgl-nodes td, .hgl-nodes th { white-space: nowrap; }
.hgl-controls .widget-button { height: 28px; }
.hgl-message { font-size: 12px; min-height: 0; }
.jp-RenderedHTMLCommon h1 { margin-top: 0; }
</style>"""


def settings_text(data: dict[str, Any]) -> str:
    """One line saying what a run is, from its config dict: nodes, model on data, strategy, policy, network, rounds."""
    pool, train = data.get("pool", {}), data.get("train", {})
    network = pool.get("network")
    return (
        f"{pool.get('num_nodes', '?')} nodes &middot; {train.get('model', '?')} on {pool.get('dataset', '?')} "
        f"({pool.get('partition', '?')}) &middot; {train.get('strategy', '?')} &middot; "
        f"policy {policy_name(train)} &middot; network {network if isinstance(network, str) else 'custom'} "
        f"&middot; {data.get('rounds', '?')} rounds"
    )


def _kpi(label: str, value: str, sub: str = "", key: str = "") -> str:
    sub_html = f"<div class='hgl-kpi-sub'>{html.escape(sub)}</div>" if sub else ""
    return (
        f"<div class='hgl-kpi' data-kpi='{key or label}'><div class='hgl-kpi-label'>{html.escape(label)}</div>"
        f"<div class='hgl-kpi-value'>{html.escape(value)}</div>{sub_html}</div>"
    )


class Dashboard(widgets.VBox):
    """Everything about one run in one widget.

    Parameters
    ----------
    source
        A coordinator, a :class:`RunConfig`, or a preset name.
    out
        Parent folder of run folders: where a RunConfig's run and rebuilt runs are written, and
        the Runs area's default root.
    rounds
        Rounds the Start button runs to (default: the config's, or 20).
    rate, stuck_after_s
        Most UI updates per second; wall seconds without a round before the run counts as stuck.
    factory
        ``factory(run_config) -> Coordinator`` for rebuilt runs (see ControlPanel).
    """

    def __init__(
        self,
        source: Any = "quickstart",
        *,
        out: str | Path | None = None,
        rate: float = 4.0,
        stuck_after_s: float = 120.0,
        factory: Factory | None = None,
        runs_root: str | Path | None = None,
        rounds: int | None = None,
        runner: Any = None,
    ) -> None:
        if runner is None:
            coord = self._coordinator(source, out)
            runner = Runner(coord, rate=rate, stuck_after_s=stuck_after_s)
        coord = runner.coord
        self.runner = runner
        self.control = ControlPanel(self.runner, factory=factory, out=out, chart=False, rounds=rounds)
        self.nodes = NodesPanel(self.runner)
        self.charts = RunCharts(self.runner)
        self.chain = ChainPanel(self.runner)
        if runs_root is None:
            runs_root = (
                out if out is not None else (coord.run_folder.path.parent if coord.run_folder is not None else "runs")
            )
        self.runs = RunsPanel(runs_root)
        self.header = widgets.HTML()
        self.header.add_class("hgl-header")
        self.numbers = widgets.HTML()
        self.numbers.add_class("hgl-numbers")
        self.secondary = widgets.HTML()
        self.secondary.add_class("hgl-secondary")
        self.compare = widgets.Dropdown(
            options=[("none", "")],
            value="",
            description="compare with",
            style={"description_width": "initial"},
            layout=widgets.Layout(width="300px"),
        )
        self.compare.add_class("hgl-compare")
        self.compare.observe(self._on_compare, names="value")
        self._compare_names: list[str] = []
        self._runs_root = Path(runs_root)
        self.runner.on_reports(self._on_reports)
        self.runner.on_status(lambda _: self._show_numbers())
        self.runner.on_coordinator(lambda _: self._show_numbers())
        if hasattr(self.runner, "on_chain"):
            self.runner.on_chain(lambda _: self._show_numbers())
        for field in self.control.fields.values():
            field.observe(lambda _: self._show_header(), names="value")
        self.charts.accuracy.layout = widgets.Layout(flex="3 1 0", min_width="0")
        self.nodes.cluster.layout = widgets.Layout(flex="2 1 0", min_width="0", max_width="560px")
        main = widgets.HBox([self.charts.accuracy, self.nodes.cluster], layout=widgets.Layout(width="100%"))
        overview = widgets.VBox(
            [
                self.numbers,
                main,
                widgets.HBox([self.compare, self.secondary], layout=widgets.Layout(align_items="center")),
            ]
        )
        self.runner.on_coordinator(lambda _: self._compare_reset())
        runs = widgets.Accordion([self.runs], titles=("Runs: summary, compare, export",))
        metrics = widgets.VBox([self.charts, runs])
        settings = widgets.VBox([self.control.settings, widgets.Accordion([self.control.log_output], titles=("Log",))])
        self.tabs = widgets.Tab([overview, self.nodes, metrics, self.chain, settings], titles=TABS)
        self.tabs.add_class("hgl-tabs")
        super().__init__([widgets.HTML(STYLE), self.header, self.control.controls, self.tabs])
        self.add_class("hgl-dashboard")
        self._show_numbers()
        if hasattr(self.runner, "open"):
            self.runner.open()  # every panel listens now: attach, and the history reaches them all

    @staticmethod
    def _coordinator(source: Any, out: str | Path | None) -> Any:
        if isinstance(source, str):
            source = preset(source)
        if isinstance(source, RunConfig):
            return build_coordinator(source, out=out)
        if not hasattr(source, "bus"):
            raise TypeError(f"a Coordinator, a RunConfig or a preset name, not {type(source).__name__}")
        return source

    @classmethod
    def from_config(cls, config: RunConfig, *, out: str | Path | None = None, **options: Any) -> Dashboard:
        """Build the coordinator for ``config`` (in a run folder under ``out``) and a dashboard for it."""
        return cls(build_coordinator(config, out=out), out=out, **options)

    @classmethod
    def serve(
        cls,
        runs: str | Path | None = None,
        config: RunConfig | str = "quickstart",
        *,
        chain: bool = True,
        reward_per_round: int | None = 10**18,
        **options: Any,
    ) -> Dashboard:
        """The monitoring dashboard: runs live in their own processes under ``runs``; this page attaches.

        Opening the page creates nothing: it attaches to the newest live run under ``runs`` (or waits
        for one), and Start launches a new run process there with the settings form's config.
        ``runs`` defaults to :func:`~hypergpu_lab.runs.runs_root` (``$HYPERGPU_LAB_RUNS``, else ``runs``).
        """
        from ..runs import runs_root
        from .remote import RemoteRunner

        runs = runs_root() if runs is None else runs

        config = preset(config) if isinstance(config, str) else config
        runner = RemoteRunner(runs, config, chain=chain, reward_per_round=reward_per_round)
        return cls(runner=runner, out=runs, runs_root=runs, rounds=config.rounds, **options)

    @property
    def coord(self) -> Any:
        return self.runner.coord

    def _on_reports(self, batch: list[RoundReport]) -> None:
        self._show_numbers()

    # -- compare with a finished run -------------------------------------------------------------
    def _finished_runs(self) -> list[str]:
        """Names of the runs under the runs folder that are over (finished or stopped) and not the one shown."""
        from .remote import list_runs

        shown = getattr(self.runner, "run_name", None)
        return [
            r["name"]
            for r in list_runs(self._runs_root)
            if r["state"] in ("finished", "stopped", "lost", "failed") and r["name"] != shown
        ]

    def _refresh_compare(self) -> None:
        names = self._finished_runs()
        if names == self._compare_names:
            return
        self._compare_names = names
        value = self.compare.value if self.compare.value in names else ""
        with self.compare.hold_trait_notifications():
            self.compare.options = [("none", ""), *((n, n) for n in names)]
            self.compare.value = value

    def _compare_reset(self) -> None:
        self._compare_names = []
        if self.compare.value:
            self.compare.value = ""  # a new run starts from its own points only
        self._refresh_compare()

    def _on_compare(self, change: dict[str, Any]) -> None:
        name = change["new"]
        if not name:
            self.charts.overlay(None)
            return
        from ..runs import RunFolder, safe_child

        try:
            rows = RunFolder.open(safe_child(self._runs_root, name)).read_metrics()
        except Exception as exc:  # a folder removed meanwhile: say so, draw nothing
            log.warning("compare with %s: %s", name, exc)
            rows = []
        self.charts.overlay(name, rows)

    def _show_header(self) -> None:
        name = getattr(self.runner, "run_name", None)
        run_config = getattr(self.runner, "run_config", None)
        form = self.control._valid
        if name is not None and run_config is not None:
            shown = run_config.to_dict()
            text = f"run <b>{html.escape(name)}</b>: {settings_text(shown)}"
        else:
            shown = form
            text = f"{settings_text(shown)} &middot; <i>no run yet: press Start</i>"
        if shown is not form and settings_text(form) != settings_text(shown):
            text += f"<br><span style='color:#9a6700'>next Start: {settings_text(form)}</span>"
        value = f"<b class='hgl-title'>HyperGPU Lab</b>{text}"
        if self.header.value != value:
            self.header.value = value

    def _chain_pending(self, coord: Any) -> tuple[str, str]:
        snap = getattr(self.runner, "chain_snapshot", None)
        if snap and isinstance(snap.get("status"), dict):
            st = snap["status"]
            return str(st.get("pending", "-")), f"{st.get('sent', 0)} rounds sent"
        recorder = getattr(coord, "recorder", None)
        if recorder is not None:
            st = recorder.status()
            return str(st.pending), f"{st.sent} rounds sent"
        if getattr(self.runner, "chain", False):
            return "-", "chain starts with the run"
        return "-", "no chain"

    def _show_numbers(self) -> None:
        view, coord = self.runner.view, self.runner.coord
        last = view.last
        acc = "-" if last is None or last.test_accuracy is None else f"{last.test_accuracy:.1%}"
        best = "" if view.best_accuracy is None else f"best {view.best_accuracy:.1%}"
        loss = "-" if last is None or last.test_loss is None else f"{last.test_loss:.3g}"
        done, target = self.runner.progress
        pending, sent = self._chain_pending(coord)
        online = sum(1 for n in coord.pool if n.state.value == "online")
        cards = [
            _kpi("status", self.runner.status, key="status"),
            _kpi("round", f"{done}" + (f" / {target}" if target else ""), key="round"),
            _kpi("test accuracy", acc, best, key="accuracy"),
            _kpi("test loss", loss, "cross-entropy", key="loss"),
            _kpi("simulated time", f"{coord.clock.now:.1f} s", key="time"),
            _kpi("nodes online", f"{online} / {len(coord.pool)}", f"{len(coord.pool.available())} available", "nodes"),
            _kpi("chain pending", pending, sent, key="chain"),
        ]
        value = f"<div class='hgl-kpis'>{''.join(cards)}</div>"
        if self.numbers.value != value:
            self.numbers.value = value
        totals = " / ".join(str(view.totals[k]) for k in ("accepted", "straggled", "failed", "rejected"))
        self._refresh_compare()
        self.secondary.value = (
            f"updates accepted / straggled / failed / rejected: {totals} &middot; moved "
            f"{view.bytes_moved / 2**20:.2f} MiB &middot; run folder: {html.escape(self._folder_text(coord))}"
        )
        self._show_header()

    def _folder_text(self, coord: Any) -> str:
        folder = getattr(self.runner, "folder", None)  # a run in its own process
        if folder is not None:
            return str(folder)
        if hasattr(self.runner, "launch"):
            return "none yet: Start creates one"
        return str(coord.run_folder.path) if coord.run_folder is not None else "none (in memory)"

    def close(self) -> None:
        """Detach from the run (it goes on) and close every widget."""
        self.runner.close()
        self.control.close()
        super().close()
