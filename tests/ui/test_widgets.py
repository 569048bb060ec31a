"""The custom widgets' Python side, without a browser: what state they keep and what they send.

Messages are captured by replacing the widget's ``send``; front-end messages are fed in through
``_handle_custom_msg`` and front-end state changes through ``set_state``, as the comm would.
"""

from __future__ import annotations

import re
import threading
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("anywidget", reason="the UI extra (anywidget, ipywidgets, plotly) is not installed")
pytest.importorskip("plotly", reason="the UI extra (anywidget, ipywidgets, plotly) is not installed")

import numpy as np
import traitlets

from hypergpu_lab.ui import widgets
from hypergpu_lab.ui.widgets import QUALITY_CLASSES, ClusterMap, LiveChart, plotly_loader

REPO = Path(__file__).resolve().parents[2]


def capture(widget: Any, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Custom messages the widget sends, in order."""
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(widget, "send", lambda content, buffers=None: sent.append(content))
    return sent


# --------------------------------------------------------------------------- LiveChart


def test_append_keeps_the_window_and_sends_only_the_new_points(monkeypatch: pytest.MonkeyPatch) -> None:
    chart = LiveChart([{"name": "loss", "x": [0, 1], "y": [1.0, 0.5]}], max_points=4, title="loss")
    sent = capture(chart, monkeypatch)

    chart.append({"loss": ([2, 3, 4], [0.4, 0.3, 0.2])})

    assert chart.traces[0]["x"] == [1, 2, 3, 4] and chart.traces[0]["y"] == [0.5, 0.4, 0.3, 0.2]
    assert sent == [
        {"type": "extend", "seq": 1, "indices": [0], "x": [[2, 3, 4]], "y": [[0.4, 0.3, 0.2]], "max_points": 4}
    ]


def test_a_batch_larger_than_the_window_sends_only_what_fits(monkeypatch: pytest.MonkeyPatch) -> None:
    chart = LiveChart([{"name": "a"}], max_points=3)
    sent = capture(chart, monkeypatch)

    chart.append({"a": (np.arange(10), np.arange(10) * 2.0)})  # numpy in, plain lists out

    assert chart.traces[0]["x"] == [7, 8, 9]
    assert sent[0]["x"] == [[7, 8, 9]] and sent[0]["y"] == [[14.0, 16.0, 18.0]]
    assert all(type(v) is int for v in chart.traces[0]["x"])


def test_message_size_does_not_grow_with_the_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    chart = LiveChart([{"name": "a", "x": list(range(10_000)), "y": [0.0] * 10_000}])
    sent = capture(chart, monkeypatch)

    chart.append({"a": ([10_000], [1.0])})

    assert len(chart.traces[0]["x"]) == 10_001
    assert sent[0]["x"] == [[10_000]]


def test_append_to_an_unknown_name_adds_a_line_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    chart = LiveChart([{"name": "a"}])
    sent = capture(chart, monkeypatch)

    chart.append({"b": ([0], [1.0])})

    assert [t["name"] for t in chart.traces] == ["a", "b"]
    assert chart.traces[1] == {"name": "b", "type": "scatter", "mode": "lines", "x": [0], "y": [1.0]}
    assert sent[0]["indices"] == [1]


def test_append_rejects_ragged_points_heatmaps_and_y_only_traces() -> None:
    chart = LiveChart(
        [
            {"name": "a"},
            {"name": "h", "type": "heatmap", "z": [[1, 2], [3, 4]]},
            {"name": "bars", "type": "bar", "y": [3, 1]},
        ]
    )
    with pytest.raises(ValueError, match="2 x values but 1 y values"):
        chart.append({"a": ([0, 1], [1.0])})
    with pytest.raises(ValueError, match="heatmap"):
        chart.append({"a": ([0], [1]), "h": ([0], [1])})
    assert chart.traces[0]["x"] == []  # a delta applies whole or not at all
    with pytest.raises(ValueError, match="lacks x or y"):
        chart.append({"bars": ([0], [1])})
    assert chart.traces[2] == {"name": "bars", "type": "bar", "y": [3, 1]}


def test_hold_batches_appends_into_one_message(monkeypatch: pytest.MonkeyPatch) -> None:
    chart = LiveChart([{"name": "a"}, {"name": "b"}])
    sent = capture(chart, monkeypatch)

    with chart.hold():
        chart.append({"a": ([0], [1.0])})
        with chart.hold():  # nested: only the outermost hold sends
            chart.append({"b": ([0], [2.0]), "a": ([1], [3.0])})
        assert sent == [] and chart.traces[0]["x"] == []  # nothing applied yet

    assert sent == [
        {"type": "extend", "seq": 1, "indices": [0, 1], "x": [[0, 1], [0]], "y": [[1.0, 3.0], [2.0]], "max_points": 0}
    ]
    assert chart.traces[0]["x"] == [0, 1] and chart.traces[1]["y"] == [2.0]


def test_set_traces_replaces_everything_and_the_snapshot_carries_its_sequence_number() -> None:
    chart = LiveChart([{"name": "a", "x": [0], "y": [1]}])
    chart.append({"a": ([1], [2])})
    changes: list[Any] = []
    chart.observe(changes.append, "traces")

    chart.set_traces([{"name": "heat", "type": "heatmap", "z": [[0.1, 0.2], [0.3, 0.4]]}])

    assert chart.traces == [{"name": "heat", "type": "heatmap", "z": [[0.1, 0.2], [0.3, 0.4]]}]
    assert len(changes) == 1
    state = chart.get_state("traces")
    assert state == {"traces": chart.traces, "_seq": 1}


def test_set_traces_validates_names() -> None:
    chart = LiveChart()
    with pytest.raises(traitlets.TraitError, match="unique"):
        chart.set_traces([{"name": "a"}, {"name": "a"}])
    with pytest.raises(traitlets.TraitError, match="name"):
        chart.set_traces([{"x": [1], "y": [2]}])
    with pytest.raises(traitlets.TraitError, match="x has 2 points but y has 1"):
        chart.set_traces([{"name": "a", "x": [1, 2], "y": [2]}])


def test_shrinking_max_points_trims_the_traces() -> None:
    chart = LiveChart([{"name": "a", "x": list(range(10)), "y": list(range(10))}])
    chart.max_points = 3
    assert chart.traces[0]["x"] == [7, 8, 9]


def test_snapshot_is_a_copy_taken_with_its_sequence_number() -> None:
    """A snapshot is serialised after the lock is released: it must not change under later appends."""
    chart = LiveChart([{"name": "a"}])
    chart.append({"a": ([0], [0])})
    state = chart.get_state()
    chart.append({"a": ([1], [1])})
    assert state["traces"][0]["x"] == [0] and state["_seq"] == 1


def test_snapshots_match_their_sequence_number_under_concurrent_appends() -> None:
    chart = LiveChart([{"name": "a"}])
    done = threading.Event()

    def feed() -> None:
        for i in range(2000):
            chart.append({"a": ([i], [i])})
        done.set()

    thread = threading.Thread(target=feed)
    thread.start()
    snapshots = []
    while not done.is_set():
        snapshots.append(chart.get_state("traces"))
    thread.join()
    assert snapshots
    for state in snapshots:  # one point per delta: the snapshot holds exactly _seq points, in order
        assert state["traces"][0]["x"] == list(range(state["_seq"]))


def test_a_view_that_missed_a_delta_gets_a_fresh_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    chart = LiveChart([{"name": "a"}])
    chart.append({"a": ([0, 1], [5, 6])})
    sent = capture(chart, monkeypatch)

    chart._handle_custom_msg({"type": "sync"}, [])
    chart._handle_custom_msg({"type": "resync"}, [])

    assert sent[0] == {"type": "seq", "seq": 1}
    assert sent[1]["type"] == "reset" and sent[1]["seq"] == 1
    assert sent[1]["traces"][0]["x"] == [0, 1]


def test_every_chart_refers_to_the_one_plotly_loader() -> None:
    first, second = LiveChart(), LiveChart()
    assert first._plotly is second._plotly is plotly_loader()
    assert first.get_state()["_plotly"] == f"anywidget:{plotly_loader().model_id}"


def test_plotly_js_comes_from_the_installed_plotly_package() -> None:
    bundle = resources.files("plotly").joinpath("package_data", "plotly.min.js").read_bytes()
    loader = plotly_loader()
    assert loader.source == bundle
    import plotly.offline

    assert loader.version == plotly.offline.get_plotlyjs_version()


def test_the_loader_is_recreated_after_it_was_closed() -> None:
    loader = plotly_loader()
    loader.close()
    assert plotly_loader() is not loader and plotly_loader().comm is not None


def test_front_end_sources_fetch_nothing_from_the_network() -> None:
    sources = sorted(widgets.WIDGETS_DIR.glob("*.js")) + sorted(widgets.WIDGETS_DIR.glob("*.css"))
    assert {p.name for p in sources} >= {
        "live_chart.js",
        "live_chart.css",
        "cluster_map.js",
        "cluster_map.css",
        "plotly_loader.js",
    }
    for path in sources:
        text = path.read_text(encoding="utf-8")
        assert "http" not in text.lower(), f"{path.name} mentions http"
        assert not re.search(r"^\s*import\s", text, re.MULTILINE), (
            f"{path.name} imports a module: anywidget loads one file"
        )


# --------------------------------------------------------------------------- ClusterMap

NODES = [
    {"id": 0, "region": "eu", "quality": "Excellent", "state": "online", "label": "a100-0"},
    {"id": 1, "region": "eu", "quality": "Poor", "state": "quarantined"},
    {"id": 2, "region": "us", "quality": "Offline", "state": "crashed"},
]


def test_nodes_are_validated_and_completed() -> None:
    cmap = ClusterMap(NODES)
    assert cmap.nodes[1] == {"id": 1, "region": "eu", "quality": "Poor", "state": "quarantined", "label": "node 1"}
    assert cmap.selected == -1
    with pytest.raises(traitlets.TraitError, match="quality 'Bad'"):
        cmap.nodes = [{"id": 0, "quality": "Bad"}]
    with pytest.raises(traitlets.TraitError, match="state 'asleep'"):
        cmap.nodes = [{"id": 0, "state": "asleep"}]
    with pytest.raises(traitlets.TraitError, match="unique"):
        cmap.nodes = [{"id": 0}, {"id": 0}]


def test_node_states_from_the_core_enum_are_accepted() -> None:
    from hypergpu_lab.nodes import NodeState

    cmap = ClusterMap([{"id": 0, "state": NodeState.QUARANTINED}])
    assert cmap.nodes[0]["state"] == "quarantined"


def test_a_click_in_the_browser_reaches_python_observers() -> None:
    cmap = ClusterMap(NODES)
    seen: list[int] = []
    cmap.observe(lambda change: seen.append(change["new"]), "selected")

    cmap.set_state({"selected": 2})  # what the comm does when the front end saves `selected`

    assert cmap.selected == 2 and seen == [2]
    with pytest.raises(traitlets.TraitError, match="selected"):
        cmap.selected = 7


def test_selection_is_dropped_when_its_node_leaves_the_map() -> None:
    cmap = ClusterMap(NODES, selected=2)
    cmap.nodes = NODES[:2]
    assert cmap.selected == -1


def test_update_node_replaces_the_list_so_it_syncs() -> None:
    cmap = ClusterMap(NODES)
    changes: list[Any] = []
    cmap.observe(changes.append, "nodes")

    cmap.update_node(0, quality="Critical")

    assert cmap.nodes[0]["quality"] == "Critical" and len(changes) == 1
    with pytest.raises(KeyError):
        cmap.update_node(9, quality="Good")


def test_pulse_sends_known_ids_only(monkeypatch: pytest.MonkeyPatch) -> None:
    cmap = ClusterMap(NODES)
    sent = capture(cmap, monkeypatch)

    cmap.pulse(np.array([0, 2, 9]))
    cmap.pulse([9])  # nothing known: nothing sent

    assert sent == [{"type": "pulse", "nodes": [0, 2]}]


def test_quality_classes_are_the_network_monitors() -> None:
    monitor = pytest.importorskip("hypergpu_lab.adaptation.monitor")
    assert QUALITY_CLASSES == monitor.CLASSES
