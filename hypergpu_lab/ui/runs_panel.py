"""Runs: one run's summary, several runs compared (overlaid curves and a table), a run exported as a ZIP.

Reads run folders under one root (``metrics.jsonl``, checkpoints), so it works for finished runs,
runs in progress and runs copied from elsewhere. Export names go through
:func:`hypergpu_lab.export.export_name`: a name with a path in it is refused, never followed.
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from ..analytics import compare, summarize_folder
from ..errors import ConfigError
from ..export import export_run
from ..runs import safe_child
from .common import error_html, guarded, note_html, table_html
from .widgets import LiveChart

log = logging.getLogger(__name__)


def run_folders(root: str | Path) -> list[str]:
    """Names of the run folders directly under ``root`` (those with a config.json), sorted."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(
        p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / "config.json").is_file()
    )


class RunsPanel(widgets.VBox):
    """Summaries, comparison and ZIP export of the runs under ``root``; exports go to ``exports``."""

    def __init__(self, root: str | Path = "runs", *, exports: str | Path | None = None, target: float = 0.9) -> None:
        self.target = target
        self.root = widgets.Text(
            value=str(root),
            description="runs folder",
            style={"description_width": "90px"},
            layout=widgets.Layout(width="420px"),
        )
        self.exports = widgets.Text(
            value=str(exports) if exports is not None else str(Path(root) / "exports"),
            description="exports to",
            style={"description_width": "90px"},
            layout=widgets.Layout(width="420px"),
        )
        self.runs = widgets.SelectMultiple(
            options=[],
            description="runs",
            rows=6,
            style={"description_width": "90px"},
            layout=widgets.Layout(width="420px"),
        )
        self.name = widgets.Text(
            value="",
            placeholder="zip name (default: the run's name)",
            description="zip name",
            style={"description_width": "90px"},
            layout=widgets.Layout(width="420px"),
        )
        self.buttons = {
            "scan": widgets.Button(description="Scan"),
            "summary": widgets.Button(description="Summary"),
            "compare": widgets.Button(description="Compare"),
            "export": widgets.Button(description="Export ZIP"),
        }
        self.message = widgets.HTML()
        self.table = widgets.HTML()
        self.chart = LiveChart(
            title="Accuracy by round",
            traces=[],
            max_points=100_000,
            plot_layout={
                "xaxis": {"title": {"text": "round"}},
                "yaxis": {"title": {"text": "test accuracy"}, "range": [0, 1]},
            },
        )
        self.last_export: Path | None = None
        for key, button in self.buttons.items():
            button.on_click(guarded(self.message, key)(getattr(self, f"_on_{key}")))
        super().__init__(
            [
                widgets.HBox([self.root, self.buttons["scan"]]),
                self.runs,
                widgets.HBox([self.buttons["summary"], self.buttons["compare"]]),
                widgets.HBox([self.name, self.buttons["export"]]),
                self.exports,
                self.message,
                self.table,
                self.chart,
            ]
        )
        self.scan()

    def scan(self) -> list[str]:
        """List the run folders under the root again (keeping the selection where it still exists)."""
        names = run_folders(self.root.value)
        keep = tuple(n for n in self.runs.value if n in names)
        with self.runs.hold_sync():
            self.runs.options = names
            self.runs.value = keep
        self.message.value = note_html(f"{len(names)} runs in {self.root.value}")
        return names

    def _selected(self) -> list[Path]:
        names = list(self.runs.value)
        if not names:
            raise ConfigError("runs", (), "at least one run selected")
        return [safe_child(self.root.value, n, field="run") for n in names]

    def _on_scan(self, _: Any = None) -> None:
        self.scan()

    def _on_summary(self, _: Any = None) -> None:
        rows = [summarize_folder(p, target=self.target).row() for p in self._selected()]
        self.table.value = table_html(list(rows[0]), [list(r.values()) for r in rows])
        self.message.value = note_html(f"summary of {len(rows)} runs")

    def _on_compare(self, _: Any = None) -> None:
        rows, curves = compare(self._selected(), target=self.target)
        self.table.value = table_html(list(rows[0]), [list(r.values()) for r in rows])
        self.chart.set_traces(
            [
                {"type": "scatter", "mode": "lines+markers", "name": name, "x": c["round"], "y": c["acc"]}
                for name, c in curves.items()
            ]
        )
        self.message.value = note_html(f"compared {len(rows)} runs")

    def _on_export(self, _: Any = None) -> None:
        runs = self._selected()
        if len(runs) != 1:
            raise ConfigError("runs", [p.name for p in runs], "exactly one run to export")
        name = self.name.value.strip() or None
        try:
            path = export_run(runs[0], self.exports.value, name)
        except ConfigError as exc:
            self.message.value = error_html(f"export refused: {exc}")
            return
        with zipfile.ZipFile(path) as zf:
            contents = ", ".join(zf.namelist())
        self.last_export = path
        self.message.value = note_html(f"wrote {path} ({path.stat().st_size / 1024:.1f} KiB): {contents}")
