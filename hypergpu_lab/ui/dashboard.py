"""The dashboard: run controls on top, then tabs Overview, Nodes, Metrics, Blockchain, Settings.

::

    from hypergpu_lab.ui import Dashboard
    Dashboard(coord)                      # an existing coordinator
    Dashboard(preset("quickstart"), out="runs")   # or a RunConfig: built here, in a run folder under out

One :class:`Runner` feeds every panel; the panels hold widgets only and forward to the runner and
the coordinator. Overview shows the status, progress, key numbers, the accuracy chart and the map.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from ..config import RunConfig, preset
from ..events import RoundReport
from .chain_panel import ChainPanel
from .charts import RunCharts
from .common import table_html
from .control import ControlPanel, Factory
from .factory import build_coordinator
from .nodes_panel import NodesPanel
from .runner import Runner
from .runs_panel import RunsPanel

log = logging.getLogger(__name__)

TABS = ("Overview", "Nodes", "Metrics", "Blockchain", "Settings")


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
        self.numbers = widgets.HTML()
        self.runner.on_reports(self._on_reports)
        self.runner.on_status(lambda _: self._show_numbers())
        self.runner.on_coordinator(lambda _: self._show_numbers())
        overview = widgets.VBox([self.numbers, widgets.HBox([self.charts.accuracy, self.nodes.cluster])])
        runs = widgets.Accordion([self.runs], titles=("Runs: summary, compare, export",))
        metrics = widgets.VBox([self.charts, runs])
        settings = widgets.VBox([self.control.settings, widgets.Accordion([self.control.log_output], titles=("Log",))])
        self.tabs = widgets.Tab([overview, self.nodes, metrics, self.chain, settings], titles=TABS)
        self.tabs.add_class("hgl-tabs")
        super().__init__([self.control.controls, self.tabs])
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
        runs: str | Path = "runs",
        config: RunConfig | str = "quickstart",
        *,
        chain: bool = True,
        reward_per_round: int | None = 10**18,
        **options: Any,
    ) -> Dashboard:
        """The monitoring dashboard: runs live in their own processes under ``runs``; this page attaches.

        Opening the page creates nothing: it attaches to the newest live run under ``runs`` (or waits
        for one), and Start launches a new run process there with the settings form's config.
        """
        from .remote import RemoteRunner

        config = preset(config) if isinstance(config, str) else config
        runner = RemoteRunner(runs, config, chain=chain, reward_per_round=reward_per_round)
        return cls(runner=runner, out=runs, runs_root=runs, rounds=config.rounds, **options)

    @property
    def coord(self) -> Any:
        return self.runner.coord

    def _on_reports(self, batch: list[RoundReport]) -> None:
        self._show_numbers()

    def _show_numbers(self) -> None:
        view, coord = self.runner.view, self.runner.coord
        last = view.last
        acc = "-" if last is None or last.test_accuracy is None else f"{last.test_accuracy:.3f}"
        best = "-" if view.best_accuracy is None else f"{view.best_accuracy:.3f}"
        done, target = self.runner.progress
        rows = [
            ("status", self.runner.status),
            ("round", f"{done}" + (f" of {target}" if target else "")),
            ("test accuracy (best)", f"{acc} ({best})"),
            ("simulated time", f"{coord.clock.now:.2f} s"),
            ("nodes available", f"{len(coord.pool.available())} of {len(coord.pool)}"),
            (
                "updates accepted / straggled / failed / rejected",
                " / ".join(str(view.totals[k]) for k in ("accepted", "straggled", "failed", "rejected")),
            ),
            ("moved", f"{view.bytes_moved / 2**20:.2f} MiB"),
            ("run folder", self._folder_text(coord)),
        ]
        self.numbers.value = table_html(("", ""), rows, css_class="hgl-numbers")

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
