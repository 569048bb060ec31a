"""Exporters as bus sinks, each read back with its own tool's reader."""

from __future__ import annotations

import csv
import urllib.request
from pathlib import Path

import pytest

from hypergpu_lab import Coordinator, NodePool
from hypergpu_lab.exporters import CsvExporter, MlflowExporter, PrometheusEndpoint, TensorBoardExporter, scalars


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One 3-round run with all three file exporters attached; returns (coord, reports, folders)."""
    tmp = tmp_path_factory.mktemp("exporters")
    pool = NodePool.simulated(4, dataset="synthetic", max_train=200, max_test=50, network="lan", seed=0)
    coord = Coordinator(pool=pool, model="mlp")
    reports = []
    coord.bus.subscribe(reports.append)
    sinks = [
        CsvExporter(tmp / "csv").attach(coord),
        TensorBoardExporter(tmp / "tb").attach(coord),
        MlflowExporter(tmp / "mlruns", run_name="three rounds").attach(coord),
    ]
    coord.run(rounds=3, progress=False)
    for sink in sinks:
        sink.close()
    return coord, reports, tmp, sinks


def test_csv_reads_back_with_the_csv_module(run) -> None:  # type: ignore[no-untyped-def]
    coord, reports, tmp, _ = run
    with open(tmp / "csv" / "rounds.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["round"]) for r in rows] == [1, 2, 3]
    assert [float(r["test_accuracy"]) for r in rows] == [r.test_accuracy for r in reports]
    with open(tmp / "csv" / "nodes.csv", newline="") as f:
        nodes = list(csv.DictReader(f))
    assert len(nodes) == sum(len(r.nodes) for r in reports)
    assert {n["status"] for n in nodes} <= {"accepted", "straggled", "failed", "rejected"}


def test_tensorboard_event_files_read_back_with_tensorboards_reader(run) -> None:  # type: ignore[no-untyped-def]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    coord, reports, tmp, _ = run
    acc = EventAccumulator(str(tmp / "tb"))
    acc.Reload()
    events = acc.Scalars("round/test_accuracy")
    assert [e.step for e in events] == [1, 2, 3]
    assert [e.value for e in events] == pytest.approx([r.test_accuracy for r in reports], abs=1e-6)
    assert "node/0/loss" in acc.Tags()["scalars"]


def test_mlflow_run_reads_back_with_the_mlflow_client(run) -> None:  # type: ignore[no-untyped-def]
    from mlflow.tracking import MlflowClient

    coord, reports, tmp, sinks = run
    exporter = sinks[2]
    client = MlflowClient(tracking_uri=(tmp / "mlruns").as_uri())
    got = client.get_run(exporter.run_id)
    assert got.info.status == "FINISHED" and got.info.run_name == "three rounds"
    assert got.data.params["train.strategy"] == "fedavg" and got.data.params["train.lr"] == str(coord.config.lr)
    history = client.get_metric_history(exporter.run_id, "test_accuracy")
    assert sorted((m.step, m.value) for m in history) == [(r.round, scalars(r)["test_accuracy"]) for r in reports]


def test_prometheus_endpoint_scraped_on_loopback(run) -> None:  # type: ignore[no-untyped-def]
    from prometheus_client.parser import text_string_to_metric_families

    coord, reports, _, _ = run
    endpoint = PrometheusEndpoint(coord)
    try:
        assert endpoint.url.startswith("http://127.0.0.1:")
        text = urllib.request.urlopen(endpoint.url, timeout=10).read().decode()
    finally:
        endpoint.close()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("hypergpu_lab_round", ())] == 3
    assert samples[("hypergpu_lab_run_state", (("state", "finished"),))] == 1
    assert samples[("hypergpu_lab_test_accuracy", ())] == pytest.approx(reports[-1].test_accuracy)
    accepted = sum(r.accepted for r in reports)
    assert samples[("hypergpu_lab_updates_total", (("status", "accepted"),))] == accepted


def test_prometheus_refuses_a_non_loopback_address(run) -> None:  # type: ignore[no-untyped-def]
    from hypergpu_lab import ConfigError

    with pytest.raises(ConfigError, match="addr: got '0.0.0.0'"):
        PrometheusEndpoint(run[0], addr="0.0.0.0")


def test_csv_folder_must_be_writable(tmp_path: Path) -> None:
    from hypergpu_lab import ConfigError

    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="csv folder"):
        CsvExporter(tmp_path / "f")
