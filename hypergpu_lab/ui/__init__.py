"""Jupyter panels, live charts and the dashboard for HyperGPU Lab (ipywidgets + anywidget).

The core never imports this package; it listens on the coordinator's bus like any subscriber::

    from hypergpu_lab.ui import Dashboard, ControlPanel
    Dashboard(coord)                 # tabs Overview, Nodes, Metrics, Blockchain, Settings
    ControlPanel(coord)              # settings, run buttons, status and an accuracy chart

Names load on first use, so ``hypergpu_lab.ui.runner`` (no widget library) works on its own.
"""

from __future__ import annotations

from typing import Any

from .. import lazy

_EXPORTS = {
    "Dashboard": "dashboard",
    "ControlPanel": "control",
    "NodesPanel": "nodes_panel",
    "ChainPanel": "chain_panel",
    "RunsPanel": "runs_panel",
    "RunCharts": "charts",
    "Runner": "runner",
    "Throttle": "runner",
    "Watchdog": "runner",
    "RunView": "view",
    "LiveChart": "widgets",
    "ClusterMap": "widgets",
    "build_coordinator": "factory",
    "config_of": "factory",
    "POLICIES": "factory",
    "actions": "",
}

__all__ = [
    "POLICIES",
    "ChainPanel",
    "ClusterMap",
    "ControlPanel",
    "Dashboard",
    "LiveChart",
    "NodesPanel",
    "RunCharts",
    "RunView",
    "Runner",
    "RunsPanel",
    "Throttle",
    "Watchdog",
    "actions",
    "build_coordinator",
    "config_of",
    "panel",
]


def panel(coord: Any, **options: Any) -> Any:
    """The control panel of ``coord``; here, not on the Coordinator, because the engine never imports the UI."""
    from .control import ControlPanel

    return ControlPanel(coord, **options)


__getattr__, __dir__ = lazy.exports(__name__, _EXPORTS, globals())
