"""Exporters: round reports into the formats other tools read, as subscribers on ``coord.bus``.

Each exporter is a sink (see :data:`hypergpu_lab.layers.LAYERS`): it subscribes to a coordinator's
:class:`~hypergpu_lab.events.EventBus` and turns every :class:`~hypergpu_lab.events.RoundReport`
into its tool's format, so the core never imports TensorBoard, MLflow or prometheus-client. Each
third-party library is imported only when its exporter is built, and a missing one is a
:class:`ConfigError` naming the extra to install.

* :class:`CsvExporter`: one row per round (``rounds.csv``) and one per node and round (``nodes.csv``).
* :class:`TensorBoardExporter`: scalars per round in TensorBoard event files (``pip install '.[tensorboard]'``).
* :class:`MlflowExporter`: one MLflow run in a local file store, params from the config, metrics by
  round (``pip install '.[mlflow]'``).
* :class:`PrometheusEndpoint`: the live state of a running lab in Prometheus text format on
  127.0.0.1, read from the coordinator at each scrape (``pip install '.[prometheus]'``).

Use::

    csv = CsvExporter("out/csv").attach(coord)
    coord.run(rounds=20)
    csv.close()
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import checks
from .errors import ConfigError
from .events import RoundReport

if TYPE_CHECKING:
    from .coordinator import Coordinator

log = logging.getLogger(__name__)

# The per-round scalars every exporter writes, by the name other tools show.
SCALARS = (
    "test_accuracy",
    "test_loss",
    "train_loss",
    "selected",
    "accepted",
    "straggled",
    "failed",
    "rejected",
    "duplicates",
    "late_applied",
    "bytes_moved",
    "duration",
)


def scalars(report: RoundReport) -> dict[str, float]:
    """The finite per-round numbers of ``report`` (an unevaluated round has no accuracy)."""
    row = report.summary()
    return {k: float(row[k]) for k in SCALARS if row.get(k) is not None and math.isfinite(float(row[k]))}


def _require(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            "exporter", module, f"the {module} package installed", hint=f"pip install -e '.[{extra}]'"
        ) from None


class _Sink:
    """Subscribe/unsubscribe and close: what every exporter shares."""

    _unsubscribe: Callable[[], None] | None = None

    def attach(self, coord: Coordinator) -> _Sink:
        """Receive every round ``coord`` reports from now on; returns self."""
        self._unsubscribe = coord.bus.subscribe(self)
        return self

    def __call__(self, report: RoundReport) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def close(self) -> None:
        """Stop listening and flush; safe to call twice."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None


class CsvExporter(_Sink):
    """``rounds.csv`` (a row per round, the summary's columns) and ``nodes.csv`` (a row per node record).

    Rows are appended and flushed per round, so the files can be read while the run goes on.
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = checks.writable_folder("csv folder", folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.rounds_path, self.nodes_path = self.folder / "rounds.csv", self.folder / "nodes.csv"
        self._files: dict[Path, tuple[Any, csv.DictWriter]] = {}

    def _write(self, path: Path, row: dict[str, Any]) -> None:
        if path not in self._files:
            fresh = not path.exists() or path.stat().st_size == 0
            f = open(path, "a", newline="", encoding="utf-8")
            writer = csv.DictWriter(f, fieldnames=list(row))
            if fresh:
                writer.writeheader()
            self._files[path] = (f, writer)
        f, writer = self._files[path]
        writer.writerow(row)

    def __call__(self, report: RoundReport) -> None:
        self._write(self.rounds_path, report.summary())
        for rec in report.nodes:
            self._write(self.nodes_path, {"round": report.round, **dataclasses.asdict(rec)})
        for f, _ in self._files.values():
            f.flush()

    def close(self) -> None:
        super().close()
        for f, _ in self._files.values():
            f.close()
        self._files.clear()


class TensorBoardExporter(_Sink):
    """Scalars per round (``round/test_accuracy``, ...) and per node (``node/<id>/loss``) as event files."""

    def __init__(self, logdir: str | os.PathLike, *, per_node: bool = True) -> None:
        _require("tensorboard", "tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        self.logdir = checks.writable_folder("tensorboard logdir", logdir)
        self.per_node = per_node
        self.writer = SummaryWriter(log_dir=str(self.logdir))

    def __call__(self, report: RoundReport) -> None:
        for key, value in scalars(report).items():
            self.writer.add_scalar(f"round/{key}", value, report.round)
        if self.per_node:
            for rec in report.nodes:
                for key in ("loss", "update_norm"):
                    value = getattr(rec, key)
                    if value is not None and math.isfinite(value):
                        self.writer.add_scalar(f"node/{rec.node}/{key}", value, report.round)
        for event in report.events:
            if event.startswith("anomaly:"):
                self.writer.add_text("anomalies", event, report.round)
        self.writer.flush()

    def close(self) -> None:
        super().close()
        self.writer.close()


class MlflowExporter(_Sink):
    """One MLflow run in a local file store: the config as params, per-round metrics by step.

    ``tracking_dir`` is a folder (an ``mlruns`` store); nothing is sent anywhere. The run ends
    FINISHED on :meth:`close`, or with ``status`` (``FAILED``, ``KILLED``) when given.
    """

    def __init__(
        self,
        tracking_dir: str | os.PathLike,
        *,
        experiment: str = "hypergpu-lab",
        run_name: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        # MLflow 3 refuses the file store unless asked for by name; a local folder is the point here
        # (no server, no database), so opt in, leaving a value the user set alone.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        _require("mlflow", "mlflow")
        from mlflow.tracking import MlflowClient

        folder = checks.writable_folder("mlflow tracking_dir", tracking_dir)
        folder.mkdir(parents=True, exist_ok=True)
        self.tracking_uri = folder.as_uri()
        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        found = self.client.get_experiment_by_name(experiment)
        self.experiment_id = found.experiment_id if found else self.client.create_experiment(experiment)
        self.run_id = self.client.create_run(self.experiment_id, run_name=run_name).info.run_id
        for key, value in _flatten(params or {}):
            self.client.log_param(self.run_id, key, str(value)[:500])

    def attach(self, coord: Coordinator) -> MlflowExporter:
        """Subscribe, and record the coordinator's training config as params (prefixed ``train.``)."""
        for key, value in _flatten({"train": dataclasses.asdict(coord.config)}):
            self.client.log_param(self.run_id, key, str(value)[:500])
        super().attach(coord)
        return self

    def __call__(self, report: RoundReport) -> None:
        from mlflow.entities import Metric

        ts = int(report.wall_s * 1000)  # MLflow wants a timestamp; the metric's step is the round
        metrics = [Metric(k, v, ts, report.round) for k, v in scalars(report).items()]
        self.client.log_batch(self.run_id, metrics=metrics)

    def close(self, status: str = "FINISHED") -> None:
        if self._unsubscribe is not None or status != "FINISHED":
            self.client.set_terminated(self.run_id, status=status)
        super().close()


def _flatten(data: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in data.items():
        if isinstance(value, dict) and value:
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


class PrometheusEndpoint:
    """``/metrics`` in Prometheus text format for a running lab, on 127.0.0.1 only.

    Every scrape reads the coordinator as it is (round, run state, the last round's figures, nodes
    available), so the endpoint never holds a second copy that could disagree with the run. Its
    own registry keeps it apart from anything else in the process using prometheus-client.
    """

    def __init__(self, coord: Coordinator, *, port: int = 0, addr: str = "127.0.0.1") -> None:
        prometheus = _require("prometheus_client", "prometheus")
        from prometheus_client.registry import CollectorRegistry

        port = checks.integer("port", port, low=0, high=65535)
        if addr not in ("127.0.0.1", "::1", "localhost"):
            raise ConfigError("addr", addr, "a loopback address (127.0.0.1, ::1 or localhost)")
        self.coord = coord
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(self)
        self.server, self.thread = prometheus.start_http_server(port, addr=addr, registry=self.registry)
        self.port = self.server.server_port
        self.url = f"http://{addr}:{self.port}/metrics"

    def collect(self) -> Iterator[Any]:
        """The metric families of one scrape (prometheus-client's collector protocol)."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        coord = self.coord
        yield GaugeMetricFamily("hypergpu_lab_round", "Last finished round", value=coord.round)
        state = GaugeMetricFamily("hypergpu_lab_run_state", "1 for the run's current state", labels=["state"])
        for s in type(coord.status):
            state.add_metric([s.value], 1.0 if s == coord.status else 0.0)
        yield state
        yield GaugeMetricFamily(
            "hypergpu_lab_nodes_available", "Nodes the failure detector sees as up", value=len(coord.pool.available())
        )
        yield GaugeMetricFamily("hypergpu_lab_nodes", "Nodes in the pool", value=len(coord.pool))
        yield GaugeMetricFamily("hypergpu_lab_simulated_seconds", "Virtual time", value=coord.clock.now)
        final = coord.history.final
        if final is not None:
            for key in ("test_accuracy", "test_loss", "train_loss"):
                if final.get(key) is not None:
                    yield GaugeMetricFamily(f"hypergpu_lab_{key}", f"{key} of the last round", value=final[key])
        updates = CounterMetricFamily("hypergpu_lab_updates", "Node updates by outcome", labels=["status"])
        for key in ("accepted", "straggled", "failed", "rejected"):
            updates.add_metric([key], float(sum(r[key] for r in coord.history.rounds)))
        yield updates
        yield CounterMetricFamily(
            "hypergpu_lab_anomalies", "Anomalies flagged by the node monitor", value=len(coord.monitor.anomalies)
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
