"""Network quality monitor: a 0-100 score per node from what the round reports say about its link.

Fed by the per-node records of each :class:`RoundReport` (nothing else: the
monitor sees what a real coordinator would see). For each node it keeps a
rolling window of the last ``window`` rounds in which the node was selected.

Score (documented formula)
--------------------------
* **latency** ``L``: mean duration in seconds of the node's *successful*
  transfers in the window (``download_s`` and ``upload_s`` each one sample).
  We take the whole transfer, retries and backoff included, because that is
  what a round waits for. Failed transfers are not latency samples; they count
  in the loss rate and reliability instead.
* **loss rate** ``p``: lost attempts / attempts, with attempts =
  ``download_attempts + upload_attempts`` and lost = attempts minus the
  transfers that succeeded (a download succeeded unless the node failed with
  zero upload attempts; an upload succeeded when ``arrival`` is set).
* **reliability** ``r``: rounds whose update arrived (accepted, straggled or
  rejected: the link delivered) / rounds selected.

``score = 40 * clip(ln(bad_s / L) / ln(bad_s / good_s), 0, 1)      # latency part, log scale
        + 30 * clip(1 - p / max_loss, 0, 1)                        # loss part
        + 30 * r``                                                  # reliability part

With the defaults (good_s = 0.01 s, bad_s = 2 s, max_loss = 0.2) a "good"
link scores about 90, "average" 80, "poor" 65, "unstable" 50. No successful
transfer in the window gives a latency part of 0.

Before a node is observed, :meth:`NetworkMonitor.prior_quality` puts the same
formula to its link profile's numbers (the UI draws unobserved nodes with it).

Classes: Excellent >= 85, Good >= 70, Fair >= 50, Poor >= 30, Critical below;
Offline when the last failure was a disconnect/partition or after
``offline_after`` consecutive failures. Hysteresis: a node keeps its class
while its score stays within ``[low - margin, high + margin)`` of that class's
band, so a score wobbling on a boundary does not flap. Trend: least-squares
slope of the last ``trend_window`` scores; improving / degrading past
``trend_threshold`` points per round; a trend not refreshed for
``trend_window`` rounds (the node was not selected) expires to "stable".
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hypergpu_lab.events import NodeRecord, RoundReport
from hypergpu_lab.network import LinkProfile

from ..checks import integer, number

log = logging.getLogger(__name__)

CLASSES = ("Excellent", "Good", "Fair", "Poor", "Critical", "Offline")
BANDS: dict[str, tuple[float, float]] = {  # [low, high) score band of each scored class
    "Excellent": (85.0, math.inf),
    "Good": (70.0, 85.0),
    "Fair": (50.0, 70.0),
    "Poor": (30.0, 50.0),
    "Critical": (-math.inf, 30.0),
}
_RANK = {c: i for i, c in enumerate(CLASSES)}  # 0 = best
DELIVERED = ("accepted", "straggled", "rejected")


@dataclass(frozen=True)
class NodeQuality:
    """One node's current link quality, as the monitor sees it."""

    node: int
    score: float
    latency_s: float | None
    loss_rate: float
    reliability: float
    quality: str
    trend: str
    rounds_observed: int


def raw_class(score: float) -> str:
    """The class of a score without hysteresis."""
    for name, (low, high) in BANDS.items():
        if low <= score < high:
            return name
    return "Critical"


def hysteresis_class(current: str | None, score: float, margin: float) -> str:
    """Keep ``current`` while ``score`` is within ``margin`` points of its band, else the raw class."""
    if current in BANDS:
        low, high = BANDS[current]
        if low - margin <= score < high + margin:
            return current
    return raw_class(score)


def slope(values: list[float]) -> float:
    """Least-squares slope per step of ``values`` (0 for fewer than two)."""
    if len(values) < 2:
        return 0.0
    x = np.arange(len(values), dtype=float)
    x -= x.mean()
    return float(np.dot(x, np.asarray(values, dtype=float)) / np.dot(x, x))


def _observation(rec: NodeRecord, round_: int) -> dict[str, Any]:
    """The plain-data facts of one record the monitor keeps (checkpoint-friendly)."""
    down_ok = rec.status != "failed" or rec.upload_attempts > 0
    up_ok = rec.arrival is not None
    latencies = ([rec.download_s] if down_ok else []) + ([rec.upload_s] if up_ok else [])
    attempts = rec.download_attempts + rec.upload_attempts
    delivered = rec.status in DELIVERED
    return {
        "round": round_,
        "latencies": [float(v) for v in latencies],
        "attempts": int(attempts),
        "lost": int(attempts - down_ok - up_ok),
        "delivered": delivered,
        "status": rec.status,
        "reason": rec.reason or "",
        "compute_s": float(rec.compute_s),
        "waiting_s": float(rec.waiting_s),
        "duration_s": float(rec.download_s + rec.compute_s + rec.upload_s) if up_ok else None,
        "loss": None if rec.loss is None else float(rec.loss),
        "num_samples": int(rec.num_samples),
    }


class NetworkMonitor:
    """Rolling per-node link statistics, scores, classes with hysteresis, trends and alerts."""

    def __init__(
        self,
        *,
        window: int = 8,
        good_s: float = 0.01,
        bad_s: float = 2.0,
        max_loss: float = 0.2,
        margin: float = 5.0,
        trend_window: int = 4,
        trend_threshold: float = 2.0,
        offline_after: int = 3,
        max_alerts: int = 500,
    ) -> None:
        self.window = integer("monitor.window", window, low=1)
        self.good_s = number("monitor.good_s", good_s, low=0.0, open_low=True)
        self.bad_s = number("monitor.bad_s", bad_s, low=self.good_s, open_low=True)
        self.max_loss = number("monitor.max_loss", max_loss, low=0.0, high=1.0, open_low=True)
        self.margin = number("monitor.margin", margin, low=0.0, high=50.0)
        self.trend_window = integer("monitor.trend_window", trend_window, low=2)
        self.trend_threshold = number("monitor.trend_threshold", trend_threshold, low=0.0)
        self.offline_after = integer("monitor.offline_after", offline_after, low=1)
        self.max_alerts = integer("monitor.max_alerts", max_alerts, low=1)
        self._nodes: dict[int, dict[str, Any]] = {}
        self.alerts: list[dict[str, Any]] = []
        self.latest_round = 0

    # -- feeding -------------------------------------------------------------------------------
    def observe(self, report: RoundReport) -> list[dict[str, Any]]:
        """Take in one round's records; return the alerts it raised."""
        raised = []
        self.latest_round = max(self.latest_round, report.round)
        for rec in report.nodes:
            s = self._nodes.setdefault(
                rec.node,
                {
                    "obs": [],
                    "scores": [],
                    "quality": None,
                    "trend": "stable",
                    "consecutive_failures": 0,
                    "selected": 0,
                    "last_round": 0,
                },
            )
            obs = _observation(rec, report.round)
            s["obs"] = (s["obs"] + [obs])[-self.window :]
            s["selected"] += 1
            s["last_round"] = report.round
            s["consecutive_failures"] = 0 if obs["delivered"] else s["consecutive_failures"] + 1
            score = self._score(s["obs"])
            s["scores"] = (s["scores"] + [score])[-max(self.window, self.trend_window) :]
            old, old_trend = s["quality"], s["trend"]
            offline = not obs["delivered"] and (
                "disconnected" in obs["reason"]
                or "partitioned" in obs["reason"]
                or s["consecutive_failures"] >= self.offline_after
            )
            s["quality"] = "Offline" if offline else hysteresis_class(old, score, self.margin)
            s["trend"] = self._trend(s["scores"])
            raised += self._alerts(rec.node, report.round, old, s["quality"], old_trend, s["trend"], score)
        self.alerts = (self.alerts + raised)[-self.max_alerts :]
        for a in raised:
            log.info("round %d node %d: %s", a["round"], a["node"], a["message"])
        return raised

    def _score(self, obs: list[dict[str, Any]]) -> float:
        lat, loss, rel = self._parts(obs)
        return self.score_of(lat, loss, rel)

    def prior_quality(self, profile: LinkProfile) -> str:
        """The class a link of ``profile`` is expected to score before it was ever observed.

        Derived from the profile's own numbers with :meth:`score_of`, so a new
        profile gets a prior without a table to keep in step: latency is the
        middle of its one-way range plus the mean of the ``|N(0, jitter)|``
        jitter (``jitter * sqrt(2 / pi)``), the loss rate is its loss, and
        reliability is 1 because retries make a connected link deliver almost
        surely. Size-dependent transfer time and region distance are left out:
        they belong to the model and the node, not the profile.
        """
        low_ms, high_ms = profile.latency_ms
        latency_s = ((low_ms + high_ms) / 2 + profile.jitter_ms * math.sqrt(2 / math.pi)) / 1e3
        return raw_class(self.score_of(latency_s, profile.loss, 1.0))

    def score_of(self, latency_s: float | None, loss_rate: float, reliability: float) -> float:
        """The documented formula: latency (0-40) + loss (0-30) + reliability (0-30)."""
        if latency_s is None:
            lat_part = 0.0
        else:
            ratio = math.log(self.bad_s / max(latency_s, 1e-12)) / math.log(self.bad_s / self.good_s)
            lat_part = 40.0 * min(max(ratio, 0.0), 1.0)
        loss_part = 30.0 * min(max(1.0 - loss_rate / self.max_loss, 0.0), 1.0)
        return lat_part + loss_part + 30.0 * reliability

    @staticmethod
    def _parts(obs: list[dict[str, Any]]) -> tuple[float | None, float, float]:
        samples = [v for o in obs for v in o["latencies"]]
        attempts = sum(o["attempts"] for o in obs)
        latency = sum(samples) / len(samples) if samples else None
        loss = sum(o["lost"] for o in obs) / attempts if attempts else 0.0
        return latency, loss, sum(o["delivered"] for o in obs) / len(obs)

    def _trend(self, scores: list[float]) -> str:
        k = slope(scores[-self.trend_window :])
        return "improving" if k >= self.trend_threshold else "degrading" if k <= -self.trend_threshold else "stable"

    @staticmethod
    def _alerts(
        node: int, round_: int, old: str | None, new: str, old_trend: str, trend: str, score: float
    ) -> list[dict[str, Any]]:
        """A class drop raises an alert by how far it fell; a trend turning down raises an info."""
        out = []
        if old is not None and _RANK[new] > _RANK[old]:
            severity = (
                "critical"
                if new in ("Critical", "Offline")
                else "warning"
                if new == "Poor" or _RANK[new] - _RANK[old] >= 2
                else "info"
            )
            out.append(
                {
                    "round": round_,
                    "node": node,
                    "severity": severity,
                    "kind": "degraded",
                    "from": old,
                    "to": new,
                    "score": round(score, 2),
                    "message": f"{old} -> {new} (score {score:.1f})",
                }
            )
        if trend == "degrading" and old_trend != "degrading" and new not in ("Critical", "Offline"):
            out.append(
                {
                    "round": round_,
                    "node": node,
                    "severity": "info",
                    "kind": "trend",
                    "from": old_trend,
                    "to": trend,
                    "score": round(score, 2),
                    "message": f"score trending down ({score:.1f})",
                }
            )
        return out

    # -- reading -------------------------------------------------------------------------------
    def observed(self, node: int) -> bool:
        return node in self._nodes

    def quality(self, node: int) -> NodeQuality | None:
        """The node's current quality, None if it was never selected."""
        s = self._nodes.get(node)
        if s is None:
            return None
        lat, loss, rel = self._parts(s["obs"])
        return NodeQuality(node, s["scores"][-1], lat, loss, rel, s["quality"], self.trend(node), s["selected"])

    def score(self, node: int) -> float | None:
        s = self._nodes.get(node)
        return s["scores"][-1] if s else None

    def latency(self, node: int) -> float | None:
        s = self._nodes.get(node)
        return self._parts(s["obs"])[0] if s else None

    def trend(self, node: int) -> str | None:
        """improving / degrading / stable; a trend older than ``trend_window`` rounds has expired (stable),
        so a node set aside for a bad trend is not set aside forever."""
        s = self._nodes.get(node)
        if s is None:
            return None
        return s["trend"] if self.latest_round - s["last_round"] <= self.trend_window else "stable"

    def nodes(self) -> list[int]:
        """Ids of every node observed so far."""
        return sorted(self._nodes)

    def _delivered(self, node: int, key: str) -> list[Any]:
        s = self._nodes.get(node)
        return [o[key] for o in s["obs"] if o[key] is not None] if s else []

    def expected_duration(self, node: int) -> float | None:
        """Mean download + compute + upload seconds over the node's delivered rounds in the window."""
        d = self._delivered(node, "duration_s")
        return sum(d) / len(d) if d else None

    def throughput(self, node: int) -> float | None:
        """Observed samples per simulated compute second (mean over the window)."""
        s = self._nodes.get(node)
        rates = [o["num_samples"] / o["compute_s"] for o in s["obs"] if o["compute_s"] > 0] if s else []
        return sum(rates) / len(rates) if rates else None

    def efficiency(self, node: int) -> float | None:
        """Mean compute / (compute + waiting) over the rounds whose update was accepted on time."""
        s = self._nodes.get(node)
        eff = (
            [
                o["compute_s"] / (o["compute_s"] + o["waiting_s"])
                for o in s["obs"]
                if o["status"] == "accepted" and o["compute_s"] + o["waiting_s"] > 0
            ]
            if s
            else []
        )
        return sum(eff) / len(eff) if eff else None

    def reliability(self, node: int) -> float | None:
        s = self._nodes.get(node)
        return self._parts(s["obs"])[2] if s else None

    def recent_loss(self, node: int) -> float | None:
        """The node's most recent local training loss (Oort's statistical utility input)."""
        losses = self._delivered(node, "loss")
        return losses[-1] if losses else None

    def num_samples(self, node: int) -> int | None:
        s = self._nodes.get(node)
        return s["obs"][-1]["num_samples"] if s else None

    def participation(self) -> dict[int, int]:
        """Rounds each observed node was selected in (for fairness)."""
        return {n: s["selected"] for n, s in self._nodes.items()}

    def last_selected(self, node: int) -> int:
        s = self._nodes.get(node)
        return s["last_round"] if s else 0

    def summary(self, nodes: list[int] | None = None) -> dict[str, Any]:
        """Cluster view: counts per class, problematic and reliable nodes, mean score."""
        ids = sorted(self._nodes) if nodes is None else sorted(nodes)
        counts = {c: 0 for c in CLASSES} | {"Unobserved": 0}
        problematic, reliable, scores = [], [], []
        for n in ids:
            q = self.quality(n)
            if q is None:
                counts["Unobserved"] += 1
                continue
            counts[q.quality] += 1
            scores.append(q.score)
            if q.quality in ("Poor", "Critical", "Offline") or q.trend == "degrading":
                problematic.append(n)
            elif q.quality in ("Excellent", "Good") and q.reliability >= 0.9:
                reliable.append(n)
        return {
            "counts": counts,
            "problematic": problematic,
            "reliable": reliable,
            "mean_score": sum(scores) / len(scores) if scores else None,
            "alerts": len(self.alerts),
        }

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "nodes": copy.deepcopy(self._nodes),
            "alerts": copy.deepcopy(self.alerts),
            "latest_round": self.latest_round,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._nodes = {int(n): copy.deepcopy(s) for n, s in state["nodes"].items()}
        self.alerts = copy.deepcopy(list(state["alerts"]))
        self.latest_round = int(state["latest_round"])
