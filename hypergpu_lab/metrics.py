"""Bounded in-memory metrics: recent rounds and node records, windowed statistics, trends, anomalies.

The full history lives in the run folder on disk (see ``runs.py``); memory holds
rolling buffers so a million-round run costs the same RAM as a hundred-round one.
:class:`NodeMonitor` keeps per-node series (loss, update norm, latency, simulated GPU
utilisation and memory) and flags a value that jumps away from the node's own history
by the median/MAD modified z-score (:func:`robust_z`).
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .events import NodeRecord, RoundReport

if TYPE_CHECKING:
    from .models import ModelCost


class History:
    """Per-round summaries and per-node records of the latest rounds; subscribe it to a bus."""

    def __init__(self, *, max_rounds: int = 10_000, max_node_records: int = 100_000) -> None:
        self.rounds: deque[dict[str, Any]] = deque(maxlen=max_rounds)
        self.node_records: deque[tuple[int, NodeRecord]] = deque(maxlen=max_node_records)
        self.total_rounds = 0

    def __call__(self, report: RoundReport) -> None:
        self.rounds.append(report.summary())
        self.node_records.extend((report.round, n) for n in report.nodes)
        self.total_rounds += 1

    def __len__(self) -> int:
        return len(self.rounds)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rounds)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.rounds[i]

    def column(self, key: str) -> list[Any]:
        return [r[key] for r in self.rounds]

    @property
    def final(self) -> dict[str, Any] | None:
        return self.rounds[-1] if self.rounds else None

    def truncate(self, last_round: int) -> None:
        """Drop rounds after ``last_round`` (a run restored from an earlier checkpoint)."""
        while self.rounds and self.rounds[-1]["round"] > last_round:
            self.rounds.pop()
        while self.node_records and self.node_records[-1][0] > last_round:
            self.node_records.pop()

    def table(self, every: int = 1) -> str:
        """A plain-text table of the rounds, for terminals and logs."""
        rows = list(self.rounds)
        private = any("epsilon" in r for r in rows)  # a DP run: epsilon spent so far, per round
        head = f"{'round':>5} {'acc':>6} {'loss':>7} {'sim s':>9} {'ok':>4} {'late':>4} {'fail':>4} {'wall s':>7}"
        head += f" {'epsilon':>8}" if private else ""
        lines = [head, "-" * len(head)]
        for r in rows:
            if r["round"] % every and r is not rows[-1]:
                continue
            acc = "-" if r["test_accuracy"] is None else f"{r['test_accuracy']:.3f}"
            loss = "-" if r["test_loss"] is None else f"{r['test_loss']:.4f}"
            lines.append(
                f"{r['round']:>5} {acc:>6} {loss:>7} {r['t_end']:>9.2f} {r['accepted']:>4} "
                f"{r['straggled']:>4} {r['failed']:>4} {r['wall_s']:>7.3f}"
                + (f" {r.get('epsilon', float('nan')):>8.3f}" if private else "")
            )
        return "\n".join(lines)


# -- windowed statistics, trends and anomalies ---------------------------------------------------

# The modified z-score of Iglewicz and Hoaglin (1993): 0.6745 (x - median) / MAD, where 0.6745 is
# the 0.75 quantile of the standard normal, so the score is on a standard deviation's scale for
# normal data; |z| > 3.5 is their threshold for an outlier. Median and MAD ignore the outliers
# they are looking for, which a mean and standard deviation (pulled by the spike itself) do not.
MAD_SCALE = 0.6745
MEAN_AD_SCALE = 0.7979  # sqrt(2 / pi): E|X - mu| / sigma for a normal X, used when the MAD is 0


@dataclass(frozen=True)
class WindowStats:
    """Summary of the last ``n`` values of one series."""

    n: int
    mean: float
    std: float  # population standard deviation
    min: float
    max: float
    median: float


def window_stats(values: Sequence[float], window: int | None = None) -> WindowStats | None:
    """Mean, std, min, max and median of the last ``window`` finite values (all if None); None if empty."""
    xs = [float(v) for v in values if v is not None and math.isfinite(v)]
    xs = xs[-window:] if window else xs
    if not xs:
        return None
    mean = math.fsum(xs) / len(xs)
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / len(xs))
    return WindowStats(len(xs), mean, std, min(xs), max(xs), statistics.median(xs))


def trend(values: Sequence[float], window: int | None = None) -> float | None:
    """Least-squares slope per step of the last ``window`` finite values; None with fewer than 2."""
    xs = [float(v) for v in values if v is not None and math.isfinite(v)]
    ys = xs[-window:] if window else xs
    if len(ys) < 2:
        return None
    n = len(ys)
    t_mean, y_mean = (n - 1) / 2, math.fsum(ys) / n
    num = math.fsum((t - t_mean) * (y - y_mean) for t, y in enumerate(ys))
    return num / math.fsum((t - t_mean) ** 2 for t in range(n))


def robust_z(history: Sequence[float], x: float) -> float | None:
    """The modified z-score of ``x`` against ``history``: 0.6745 (x - median) / MAD.

    When more than half the history is one value the MAD is 0; the mean absolute deviation
    (scaled by sqrt(2/pi) to the same standard-deviation scale) is used instead. With no spread
    at all there is nothing to judge a jump against, and the answer is None.
    """
    xs = [float(v) for v in history if v is not None and math.isfinite(v)]
    if not xs or not math.isfinite(x):
        return None
    med = statistics.median(xs)
    mad = statistics.median(abs(v - med) for v in xs)
    if mad > 0:
        return MAD_SCALE * (x - med) / mad
    mean_ad = math.fsum(abs(v - med) for v in xs) / len(xs)
    if mean_ad > 0:
        return MEAN_AD_SCALE * (x - med) / mean_ad
    return None


@dataclass(frozen=True)
class Anomaly:
    """A node's value that jumped away from its own recent history."""

    round: int
    node: int
    metric: str  # loss | update_norm | latency_s
    value: float
    median: float
    z: float

    def describe(self) -> str:
        """The line a round report's events carry (the dashboard marks rounds by it)."""
        return (
            f"anomaly: node {self.node} {self.metric} {self.value:.4g} "
            f"(median {self.median:.4g}, robust z {self.z:+.1f})"
        )


@dataclass(frozen=True)
class GpuUsage:
    """Simulated GPU figures of one node in one round, from the compute model."""

    utilisation: float  # share of the round the GPU spent training, in [0, 1]
    memory_bytes: float  # weights, gradients and optimiser state (4x params) + the batch's activations
    memory_share: float  # of the GPU's memory


def gpu_usage(record: NodeRecord, memory_gb: float, cost: ModelCost, round_s: float) -> GpuUsage:
    """What a node's GPU did in a round: busy share of the round, and memory by the rule ``max_batch`` uses."""
    utilisation = min(record.compute_s / round_s, 1.0) if round_s > 0 else (1.0 if record.compute_s > 0 else 0.0)
    trained = record.compute_s > 0
    memory = (4 * cost.param_bytes + record.batch_size * cost.activation_bytes_per_sample) if trained else 0.0
    return GpuUsage(utilisation, memory, memory / (memory_gb * 2**30))


class NodeMonitor:
    """Per-node series (loss, update norm, latency, GPU use) with windowed statistics, trends and anomalies.

    The coordinator calls :meth:`observe` with each round's records before the report is emitted, so
    anomalies become events of that round's report (and so lines in metrics.jsonl and the export's
    run.log). A value is judged against the node's own last ``window`` values, before it joins them,
    once at least ``min_history`` exist; ``|robust z| > threshold`` is an anomaly. Series are
    bounded, so memory does not grow with the run.
    """

    WATCHED = ("loss", "update_norm", "latency_s")
    SERIES = WATCHED + ("gpu_util", "gpu_mem_gb")

    def __init__(self, *, window: int = 20, threshold: float = 3.5, min_history: int = 5) -> None:
        self.window, self.threshold, self.min_history = window, threshold, min_history
        self.series: dict[tuple[int, str], deque[float]] = {}
        self.anomalies: deque[Anomaly] = deque(maxlen=1000)

    def observe(
        self,
        round_: int,
        records: Sequence[NodeRecord],
        round_s: float,
        memory_gb: Mapping[int, float],
        cost: ModelCost,
    ) -> list[Anomaly]:
        """Judge and record one round's node values; returns this round's anomalies."""
        found = []
        for rec in records:
            if rec.status == "failed" and rec.loss is None:
                continue  # nothing measured: a failure is reported as such, not as an outlier
            usage = gpu_usage(rec, memory_gb[rec.node], cost, round_s)
            values = {
                "loss": rec.loss,
                "update_norm": rec.update_norm,
                "latency_s": rec.download_s + rec.upload_s,
                "gpu_util": usage.utilisation,
                "gpu_mem_gb": usage.memory_bytes / 2**30,
            }
            for metric, value in values.items():
                if value is None or not math.isfinite(value):
                    continue
                hist = self.series.setdefault((rec.node, metric), deque(maxlen=self.window))
                if metric in self.WATCHED and len(hist) >= self.min_history:
                    z = robust_z(hist, value)
                    if z is not None and abs(z) > self.threshold:
                        found.append(Anomaly(round_, rec.node, metric, value, statistics.median(hist), z))
                hist.append(float(value))
        self.anomalies.extend(found)
        return found

    def values(self, node: int, metric: str) -> list[float]:
        return list(self.series.get((node, metric), ()))

    def stats(self, node: int, metric: str, window: int | None = None) -> WindowStats | None:
        return window_stats(self.values(node, metric), window)

    def trend(self, node: int, metric: str, window: int | None = None) -> float | None:
        return trend(self.values(node, metric), window)

    def state_dict(self) -> dict[str, Any]:
        """The series, so a restored run judges its next rounds as the uninterrupted one would."""
        return {f"{n}:{m}": list(v) for (n, m), v in self.series.items()}

    def load_state_dict(self, state: Mapping[str, list[float]]) -> None:
        self.series = {}
        for key, values in state.items():
            node, metric = key.split(":", 1)
            self.series[(int(node), metric)] = deque(values, maxlen=self.window)
