"""Custom front-end widgets: a live Plotly chart that streams deltas, and a cluster map.

Why not plotly's ``FigureWidget``: it loses updates made before a browser connects, with
several on one page only the first updates live, and every update resends whole arrays.
``LiveChart`` keeps the full (bounded) traces as synced state, so a browser that connects
late draws everything, and streams only the new points to browsers already connected.

The front-end halves are plain ES modules in the top-level ``widgets/`` folder, loaded by
anywidget as they are (no build step, nothing from a CDN). plotly.js comes from the installed
``plotly`` package and crosses the wire once per page, carried by one shared ``PlotlyLoader``.

Ordering protocol (why ``_seq`` exists): each streamed delta carries a sequence number, and
every snapshot of ``traces`` sent to a browser carries the number of the last delta it
includes. A browser skips deltas it already has and, on a gap (a delta sent while it was
still connecting), asks for a fresh snapshot. Snapshot + number are taken under one lock.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Any

import anywidget
import traitlets as t

log = logging.getLogger(__name__)


def _widgets_dir() -> Path:
    """The ES modules: in the checkout (editable install) or under <prefix>/share (wheel install)."""
    import sys

    for folder in (
        Path(__file__).resolve().parents[2] / "widgets",
        Path(sys.prefix) / "share" / "hypergpu-lab" / "widgets",
    ):
        if (folder / "live_chart.js").is_file():
            return folder
    raise ImportError("hypergpu_lab.ui cannot find its front-end sources (widgets/*.js); reinstall the package")


WIDGETS_DIR = _widgets_dir()

QUALITY_CLASSES = ("Excellent", "Good", "Fair", "Poor", "Critical", "Offline")
"""Link-quality classes, best first; the same names as the network monitor's."""

NODE_STATES = ("online", "crashed", "quarantined", "straggling", "byzantine")
"""Node states the cluster map draws; crashed and quarantined nodes are dimmed."""

_HEATMAP_KEY = "z"  # a trace with z is a matrix: replaced whole, never appended to


# --------------------------------------------------------------------------- plotly.js, once


@functools.cache
def plotly_js() -> bytes:
    """The plotly.js bundle that ships inside the installed ``plotly`` package (never a CDN)."""
    return resources.files("plotly").joinpath("package_data", "plotly.min.js").read_bytes()


def plotly_js_version() -> str:
    """plotly.js version from the bundle's header comment, so two kernels on one page can share it."""
    match = re.search(rb"plotly\.js v(\d+\.\d+\.\d+\S*)", plotly_js()[:400])
    return match.group(1).decode() if match else "unknown"


class PlotlyLoader(anywidget.AnyWidget):
    """Carries plotly.js to the browser once; every ``LiveChart`` refers to one shared loader.

    Never displayed: its front-end ``initialize`` evaluates the library once per page and
    exports it, and each chart awaits that export through anywidget's ``host.getWidget``.
    """

    _esm = WIDGETS_DIR / "plotly_loader.js"

    source = t.Bytes(help="plotly.min.js from the plotly package, sent as a binary buffer (no JSON escaping)").tag(
        sync=True
    )
    version = t.Unicode(help="plotly.js version; the page keeps one evaluated copy per version").tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(source=plotly_js(), version=plotly_js_version(), **kwargs)


_loader: PlotlyLoader | None = None  # one per kernel: a second would ship the 4.8 MB again
_loader_lock = threading.Lock()


def plotly_loader() -> PlotlyLoader:
    """The kernel's shared loader, re-created if it was closed (e.g. by ``Widget.close_all``)."""
    global _loader
    with _loader_lock:
        if _loader is None or _loader.comm is None:
            _loader = PlotlyLoader()
        return _loader


# --------------------------------------------------------------------------- LiveChart


def _jsonable(value: Any) -> Any:
    """Plain JSON values (numpy arrays and scalars, tuples): the comm layer sends JSON only."""
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return value.tolist()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _as_points(values: Any, what: str) -> list[Any]:
    """One coordinate series as a fresh list (a bare scalar counts as one point)."""
    values = _jsonable(values)
    if isinstance(values, list):
        return values
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        return [values]
    raise TypeError(f"{what} must be a sequence of numbers, got {type(values).__name__}")


def _bounded(values: list[Any], max_points: int) -> list[Any]:
    return values[-max_points:] if max_points and len(values) > max_points else values


class LiveChart(anywidget.AnyWidget):
    """One Plotly chart whose traces grow live; late-connecting browsers still see everything.

    ``append`` changes the Python-side traces in place (no state sync) and sends only the new
    points, which the browser adds with ``Plotly.extendTraces``. ``set_traces`` replaces the
    traces whole (heatmaps, a new run). Observers of ``traces`` fire on ``set_traces`` only.
    """

    _esm = WIDGETS_DIR / "live_chart.js"
    _css = WIDGETS_DIR / "live_chart.css"

    traces = t.List(
        t.Dict(),
        help="Plotly traces: dicts with name (unique), type, mode, x, y, z for heatmaps "
        "and any other plotly trace keys; the full bounded data",
    ).tag(sync=True)
    plot_layout = t.Dict(
        help="Plotly layout overrides (axes, legend, height in px, ...); the chart title comes from "
        "title. Not `layout`: that name is the ipywidgets Layout (width, margin) every "
        "DOMWidget keeps"
    ).tag(sync=True)
    max_points = t.Int(0, min=0, help="rolling window: points kept per trace, oldest dropped first; 0 = unbounded").tag(
        sync=True
    )
    title = t.Unicode("", help="chart title; also the chart div's data-chart attribute").tag(sync=True)
    empty_text = t.Unicode(
        "", help="shown instead of empty axes while no trace holds a point (say what to do to get some)"
    ).tag(sync=True)
    _plotly = anywidget.WidgetTrait().tag(sync=True)

    def __init__(
        self,
        traces: Sequence[Mapping[str, Any]] = (),
        *,
        plot_layout: Mapping[str, Any] | None = None,
        max_points: int = 0,
        title: str = "",
        empty_text: str = "",
        **kwargs: Any,
    ) -> None:
        self._lock = threading.RLock()  # before super().__init__: opening the comm calls get_state
        self._seq = 0  # number of the last delta sent; carried by every snapshot
        self._hold_depth = 0
        self._pending: dict[str, tuple[list[Any], list[Any]]] = {}
        super().__init__(
            traces=list(traces),
            plot_layout=dict(plot_layout or {}),
            max_points=max_points,
            title=title,
            empty_text=empty_text,
            **kwargs,
        )
        self.on_msg(self._on_front_end_msg)

    @t.default("_plotly")
    def _default_plotly(self) -> PlotlyLoader:
        return plotly_loader()

    @t.validate("traces")
    def _validate_traces(self, proposal: t.Bunch) -> list[dict[str, Any]]:
        traces, names = [], set()
        for raw in proposal["value"]:
            trace = _jsonable(raw)
            name = trace.get("name")
            if not isinstance(name, str) or not name:
                raise t.TraitError(f"every trace needs a non-empty string name, got {name!r}")
            if name in names:
                raise t.TraitError(f"trace names must be unique: {name!r} appears twice")
            names.add(name)
            if _HEATMAP_KEY not in trace:
                trace.setdefault("type", "scatter")
                if trace["type"] in ("scatter", "scattergl"):
                    trace.setdefault("mode", "lines")
                if "x" not in trace and "y" not in trace:
                    trace["x"], trace["y"] = [], []
                if "x" in trace and "y" in trace:  # a y-only trace (plotly indexes x) is drawn, not appended to
                    x, y = _as_points(trace["x"], "x"), _as_points(trace["y"], "y")
                    if len(x) != len(y):
                        raise t.TraitError(f"trace {name!r}: x has {len(x)} points but y has {len(y)}")
                    trace["x"], trace["y"] = _bounded(x, self.max_points), _bounded(y, self.max_points)
            traces.append(trace)
        return traces

    @t.observe("max_points")
    def _trim_to_window(self, change: t.Bunch) -> None:
        if change["new"] and change["new"] < (change["old"] or float("inf")):
            self.set_traces(self.traces)

    def set_traces(self, traces: Sequence[Mapping[str, Any]]) -> None:
        """Replace every trace (one full state sync): for heatmaps, or to start over."""
        with self._lock:
            self.traces = list(traces)

    def restart(self, traces: Sequence[Mapping[str, Any]]) -> None:
        """Replace every trace and tell every view to drop what it drew (a new run: no old point survives).

        Besides the state sync, a numbered "reset" message goes to the views: a view that drew the
        old run's points redraws from this snapshot whatever deltas it has seen.
        """
        with self._lock:
            self.traces = list(traces)
            self._seq += 1
            self.send({"type": "reset", "seq": self._seq, "traces": self._snapshot()})

    def append(self, points: Mapping[str, tuple[Sequence[Any], Sequence[Any]]]) -> None:
        """Add points, ``{trace_name: (xs, ys)}``; an unknown name starts a new line trace.

        Inside ``hold()`` the points wait until the outermost hold ends.
        """
        batch = {}
        for name, (xs, ys) in points.items():
            x, y = _as_points(xs, f"x of {name!r}"), _as_points(ys, f"y of {name!r}")
            if len(x) != len(y):
                raise ValueError(f"trace {name!r}: {len(x)} x values but {len(y)} y values")
            batch[name] = (x, y)
        with self._lock:
            if self._hold_depth:
                for name, (x, y) in batch.items():
                    px, py = self._pending.setdefault(name, ([], []))
                    px.extend(x)
                    py.extend(y)
            else:
                self._extend(batch)

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Batch every append made while open into one message (and one update of ``traces``)."""
        with self._lock:
            self._hold_depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._hold_depth -= 1
                if not self._hold_depth and self._pending:
                    batch, self._pending = self._pending, {}
                    self._extend(batch)

    def _extend(self, batch: Mapping[str, tuple[list[Any], list[Any]]]) -> None:
        """Apply one delta to the Python-side traces and stream it; caller holds the lock."""
        batch = {name: xy for name, xy in batch.items() if xy[0]}
        if not batch:
            return
        index = {trace["name"]: i for i, trace in enumerate(self.traces)}
        new = [name for name in batch if name not in index]
        if new:  # structural change: one full sync, then the delta on top of it
            self.set_traces([*self.traces, *({"name": name, "x": [], "y": []} for name in new)])
            index = {trace["name"]: i for i, trace in enumerate(self.traces)}
        for name in batch:  # all checked before any is changed: a delta applies whole or not at all
            trace = self.traces[index[name]]
            if _HEATMAP_KEY in trace or "x" not in trace or "y" not in trace:
                raise ValueError(f"trace {name!r} is a heatmap or lacks x or y: replace it with set_traces")
        window = self.max_points
        indices, xs, ys = [], [], []
        for name, (x, y) in batch.items():
            trace = self.traces[index[name]]
            trace["x"].extend(x)
            trace["y"].extend(y)
            if window and len(trace["x"]) > window:
                del trace["x"][:-window], trace["y"][:-window]
            indices.append(index[name])
            xs.append(_bounded(x, window))
            ys.append(_bounded(y, window))
        self._seq += 1
        self.send({"type": "extend", "seq": self._seq, "indices": indices, "x": xs, "y": ys, "max_points": window})

    def _snapshot(self) -> list[dict[str, Any]]:
        """A copy of the traces: serialisation happens after the lock is released."""
        return [
            {**trace, "x": list(trace["x"]), "y": list(trace["y"])} if "x" in trace and "y" in trace else dict(trace)
            for trace in self.traces
        ]

    def get_state(self, key: str | Iterable[str] | None = None, drop_defaults: bool = False) -> dict[str, Any]:
        """The synced state; a snapshot of ``traces`` carries ``_seq``, the last delta it includes."""
        with self._lock:
            state = super().get_state(key=key, drop_defaults=drop_defaults)
            keys = [key] if isinstance(key, str) else key
            if keys is None or "traces" in keys:
                state["traces"] = self._snapshot()
                state["_seq"] = self._seq
            return state

    def _on_front_end_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        """A view asks for the current number ("sync") or, after a gap, a fresh snapshot ("resync")."""
        kind = content.get("type") if isinstance(content, dict) else None
        with self._lock:
            if kind == "sync":
                self.send({"type": "seq", "seq": self._seq})
            elif kind == "resync":
                log.debug("LiveChart %r: a view missed a delta; resending %d traces", self.title, len(self.traces))
                self.send({"type": "reset", "seq": self._seq, "traces": self._snapshot()})


# --------------------------------------------------------------------------- ClusterMap


def _node(raw: Mapping[str, Any]) -> dict[str, Any]:
    """One validated node entry with defaults, so the front end never guesses."""
    raw = _jsonable(raw)
    if not isinstance(raw, dict) or "id" not in raw:
        raise t.TraitError(f"a node needs at least an id, got {raw!r}")
    node_id = raw["id"]
    if isinstance(node_id, bool) or not isinstance(node_id, int) or node_id < 0:
        raise t.TraitError(f"node id must be a non-negative int, got {node_id!r}")
    quality, state = raw.get("quality", "Good"), raw.get("state", "online")
    if quality not in QUALITY_CLASSES:
        raise t.TraitError(f"node {node_id}: quality {quality!r} is not one of {QUALITY_CLASSES}")
    if state not in NODE_STATES:
        raise t.TraitError(f"node {node_id}: state {state!r} is not one of {NODE_STATES}")
    return {
        **raw,
        "id": node_id,
        "region": str(raw.get("region", "default")),
        "quality": quality,
        "state": state,
        "label": str(raw.get("label", f"node {node_id}")),
    }


class ClusterMap(anywidget.AnyWidget):
    """SVG map: the coordinator in the centre, nodes grouped by region, links coloured by quality.

    Clicking a node sets ``selected`` so a Python observer (the node panel) can react.
    """

    _esm = WIDGETS_DIR / "cluster_map.js"
    _css = WIDGETS_DIR / "cluster_map.css"

    nodes = t.List(
        t.Dict(),
        help="nodes: dicts with id (int), region, quality (a QUALITY_CLASSES name), "
        "state (a NODE_STATES name) and label",
    ).tag(sync=True)
    selected = t.Int(-1, help="id of the node clicked in the map; -1 = none").tag(sync=True)
    coordinator_label = t.Unicode("coordinator", help="text under the central coordinator").tag(sync=True)

    def __init__(self, nodes: Sequence[Mapping[str, Any]] = (), **kwargs: Any) -> None:
        super().__init__(nodes=list(nodes), **kwargs)

    @t.validate("nodes")
    def _validate_nodes(self, proposal: t.Bunch) -> list[dict[str, Any]]:
        nodes = [_node(raw) for raw in proposal["value"]]
        ids = [node["id"] for node in nodes]
        if len(set(ids)) != len(ids):
            raise t.TraitError(f"node ids must be unique, got {ids}")
        return nodes

    @t.validate("selected")
    def _validate_selected(self, proposal: t.Bunch) -> int:
        value = proposal["value"]
        if value != -1 and value not in self._ids():
            raise t.TraitError(f"selected must be -1 or a node id in the map, got {value}")
        return value

    @t.observe("nodes")
    def _drop_vanished_selection(self, _change: t.Bunch) -> None:
        if self.selected != -1 and self.selected not in self._ids():
            self.selected = -1

    def _ids(self) -> set[int]:
        return {node["id"] for node in self.nodes}

    def update_node(self, node_id: int, **fields: Any) -> None:
        """Change one node's fields (quality, state, ...); the list is replaced so the change syncs."""
        if node_id not in self._ids():
            raise KeyError(f"no node {node_id} in the map")
        self.nodes = [{**node, **fields} if node["id"] == node_id else node for node in self.nodes]

    def pulse(self, node_ids: Iterable[int]) -> None:
        """Flash these nodes' links, e.g. when their updates arrive; a message, not state."""
        known = self._ids()
        ids = [int(i) for i in node_ids if int(i) in known]
        if ids:
            self.send({"type": "pulse", "nodes": ids})
