"""What the panels show about nodes, derived from round reports and the live pool; no widgets here.

Link quality comes from the adaptive policy's :class:`~hypergpu_lab.adaptation.NetworkMonitor` when
the coordinator's policy has one, else from a monitor of our own fed the same reports (the same
documented score formula). Everything else is the latest :class:`NodeRecord` of each node and
running totals, so memory is one record per node whatever the run length.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from ..adaptation import NetworkMonitor, NodeQuality
from ..chain.scoring import score
from ..events import NodeRecord, RoundReport
from ..network import LatencySpike
from .actions import BAD_KINDS

STATES = ("online", "offline", "crashed", "quarantined", "disconnected", "straggling", "byzantine")
"""``offline``: the availability model (train.availability) has the node away at the simulated now."""


@dataclass(frozen=True)
class NodeRow:
    """One line of the node table."""

    id: int
    gpu: str
    region: str
    profile: str  # the link profile in effect now
    quality: str  # monitor class: Excellent .. Offline, or "Unobserved"
    prior_quality: str  # the class the link profile is expected to score (what the map shows until observed)
    score: float | None
    batch_size: int | None  # in the node's latest selected round
    state: str  # one of STATES
    last_status: str | None  # accepted / straggled / failed / rejected in its latest round
    contribution: int  # samples in accepted updates, over the run
    accepted_rounds: int
    injected: str | None  # faults active now (ground truth)
    spike_ms: float = 0.0  # extra one-way latency of latency spikes active on its link now
    work_done: float | None = None  # share of its local steps done in its latest round (partial work); None: all
    value: float | None = None  # its latest update's contribution (NodeRecord.contribution: Shapley value); None: none
    paid: bool | None = None  # whether the chain's rule pays its latest round (chain.scoring.score > 0); None: no round

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class RunView:
    """Per-node facts for the panels; ``update`` takes report batches, ``rows`` reads the pool live."""

    def __init__(self, coord: Any = None) -> None:
        self.reset(coord)

    def reset(self, coord: Any) -> None:
        self.coord = coord
        self.latest: dict[int, NodeRecord] = {}
        self.latest_round: dict[int, int] = {}
        self.contribution: Counter[int] = Counter()
        self.accepted: Counter[int] = Counter()
        self.totals: Counter[str] = Counter()
        self.bytes_moved = 0
        self.last: RoundReport | None = None
        self.best_accuracy: float | None = None
        self._monitor = NetworkMonitor()

    @property
    def monitor(self) -> NetworkMonitor:
        """The policy's monitor when it has one, else ours."""
        policy_monitor = getattr(getattr(self.coord, "policy", None), "monitor", None)
        return policy_monitor if isinstance(policy_monitor, NetworkMonitor) else self._monitor

    def update(self, batch: list[RoundReport]) -> None:
        own = self.monitor is self._monitor
        for report in batch:
            if own:
                self._monitor.observe(report)
            for rec in report.nodes:
                self.latest[rec.node] = rec
                self.latest_round[rec.node] = report.round
                if rec.status == "accepted":
                    self.contribution[rec.node] += rec.num_samples
                    self.accepted[rec.node] += 1
            for key in ("accepted", "straggled", "failed", "rejected"):
                self.totals[key] += getattr(report, key)
            self.bytes_moved += report.bytes_moved
            if report.test_accuracy is not None and (
                self.best_accuracy is None or report.test_accuracy > self.best_accuracy
            ):
                self.best_accuracy = report.test_accuracy
            self.last = report

    def quality(self, node: int) -> NodeQuality | None:
        try:
            return self.monitor.quality(node)
        except RuntimeError:  # the round loop is updating the policy's monitor; next update reads it
            return None

    def state(self, node: int) -> str:
        coord = self.coord
        pool_state = coord.pool[node].state.value
        if pool_state != "online":
            return pool_state
        if not self.available(node):
            return "offline"
        if not coord.pool.network.conditions(node, coord.clock.now).connected:
            return "disconnected"
        now_faults = coord.faults.describe(node, coord.round + 1, coord.clock.now) or ""
        rec = self.latest.get(node)
        kinds = set(now_faults.split(",")) | set(
            (rec.injected or "").split(",") if rec is not None and self.latest_round.get(node) == coord.round else ()
        )
        if kinds & set(BAD_KINDS):
            return "byzantine"
        if "straggler" in kinds or (
            rec is not None and rec.status == "straggled" and self.latest_round.get(node) == coord.round
        ):
            return "straggling"
        return "online"

    def row(self, node: int) -> NodeRow:
        coord = self.coord
        n, link = coord.pool[node], coord.pool.network.links.get(node)
        q = self.quality(node)
        rec = self.latest.get(node)
        profile = coord.pool.network.conditions(node, coord.clock.now).profile if link is not None else None
        return NodeRow(
            node,
            n.gpu.name,
            link.region if link is not None else "-",
            profile.name if profile is not None else "-",
            q.quality if q is not None else "Unobserved",
            self.monitor.prior_quality(profile) if profile is not None else "Offline",  # no link: cannot deliver
            round(q.score, 1) if q is not None else None,
            rec.batch_size if rec is not None else None,
            self.state(node),
            rec.status if rec is not None else None,
            self.contribution[node],
            self.accepted[node],
            coord.faults.describe(node, coord.round + 1, coord.clock.now),
            self.spike_ms(node),
            rec.work_done if rec is not None else None,
            rec.contribution if rec is not None else None,
            score(rec) > 0 if rec is not None else None,
        )

    def available(self, node: int) -> bool:
        """Whether the availability model has ``node`` online at the simulated now."""
        model = getattr(self.coord, "availability", None)
        return model is None or model.online(node, self.coord.clock.now)

    def availability_note(self, node: int) -> str | None:
        """The node's availability in words: its model, state and next switch; None when always online."""
        model = getattr(self.coord, "availability", None)
        if model is None or model.kind == "always":
            return None
        now = self.coord.clock.now
        nxt = model.next_change(now, [node])
        state = "online" if model.online(node, now) else "offline"
        until = f" until t = {nxt:.1f} s" if nxt != float("inf") else " for good" if state == "offline" else ""
        return f"availability {model.kind}: {state}{until}"

    def spike_ms(self, node: int) -> float:
        """Extra milliseconds of the latency spikes on ``node``'s link at the simulated now."""
        now = self.coord.clock.now
        return float(
            sum(
                e.extra_ms
                for e in getattr(self.coord.pool.network, "events", ())
                if isinstance(e, LatencySpike) and node in e.nodes and e.start <= now < e.start + e.duration
            )
        )

    def rows(self, nodes: list[int] | None = None) -> list[NodeRow]:
        ids = sorted(self.coord.pool.nodes) if nodes is None else nodes
        return [self.row(i) for i in ids]

    def class_counts(self) -> dict[str, int]:
        """Nodes per link-quality class now (Unobserved: never selected yet)."""
        counts: Counter[str] = Counter()
        for i in self.coord.pool.nodes:
            q = self.quality(i)
            counts[q.quality if q is not None else "Unobserved"] += 1
        return dict(counts)
