"""Jupyter panels, live charts and the dashboard for HyperGPU Lab (ipywidgets + anywidget).

The core never imports this package; it listens on the coordinator's bus like any subscriber::

    from hypergpu_lab.ui import Dashboard, ControlPanel
    Dashboard(coord)                 # tabs Overview, Nodes, Metrics, Blockchain, Settings
    ControlPanel(coord)              # settings, run buttons, status and an accuracy chart

Names load on first use, so ``hypergpu_lab.ui.runner`` (no widget library) works on its own.
"""

from __future__ import annotations

import importlib
from typing import Any

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


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f".{_EXPORTS[name] or name}", __name__)
    value = module if not _EXPORTS[name] else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
