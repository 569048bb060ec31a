"""Round reports and the tiny publish/subscribe bus that delivers them.

The coordinator only emits; metrics, run folders, charts and the chain
recorder subscribe. A failing subscriber is logged with its traceback and the
others still receive the report: a broken chart must not stop training.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

STATUSES = ("accepted", "straggled", "failed", "rejected")


@dataclass(frozen=True)
class NodeRecord:
    """What happened to one selected node in one round, in virtual seconds."""

    node: int
    status: str  # accepted | straggled | failed | rejected
    reason: str | None
    batch_size: int
    num_samples: int
    download_s: float
    compute_s: float
    upload_s: float
    waiting_s: float  # idle time between this node's arrival and the round's close
    arrival: float | None  # virtual time the update arrived, None if it never did
    download_attempts: int
    upload_attempts: int
    loss: float | None
    update_norm: float | None
    update_hash: str | None = None  # SHA-256 of the update's float32 bytes: what the chain records
    agreement: float | None = (
        None  # accepted: cosine x norm ratio² with the median update (contribution.robust_agreement)
    )
    injected: str | None = None  # the fault injected into this node this round, if any (ground truth)
    upload_bytes: int | None = None  # the encoded update's size per attempt (what the network carried)
    compression: str | None = None  # the update's codec (compression.CompressionSpec.label), None if none sent
    work_done: float | None = None  # share of its local steps the node completed (partial work), None if all
    download_bytes: int | None = None  # the model download's size per attempt (smaller with downlink compression)
    contribution: float | None = None  # accepted: its per-round Shapley (or LOO) value on validation data, if scored

    @property
    def retries(self) -> int:
        return max(self.download_attempts - 1, 0) + max(self.upload_attempts - 1, 0)


@dataclass(frozen=True)
class RoundReport:
    """Everything one round produced; the unit the bus delivers."""

    run_id: str
    round: int
    t_start: float
    t_end: float
    selected: int
    accepted: int
    straggled: int
    failed: int
    rejected: int
    test_accuracy: float | None
    test_loss: float | None
    train_loss: float | None
    wall_s: float
    nodes: tuple[NodeRecord, ...]
    events: tuple[str, ...] = ()
    duplicates: int = 0  # duplicate or replayed messages dropped (never applied)
    late_applied: int = 0  # buffered updates of earlier rounds applied in this one
    detections: tuple[dict[str, Any], ...] = ()  # failures/recoveries the heartbeat detector saw
    status: str = "ok"  # "ok" | "no updates"
    bytes_moved: int = 0  # model downloads + update uploads (+ SecAgg protocol messages), every attempt counted
    epsilon: float | None = None  # DP: privacy spent so far at the run's delta (dp-accounting); None without DP

    # Rows keep these keys only when set, so runs without privacy record exactly what they did before.
    _OPTIONAL = ("epsilon",)

    @property
    def duration(self) -> float:
        return self.t_end - self.t_start

    def summary(self) -> dict[str, Any]:
        """The per-round row: scalars only, cheap to keep."""
        skip = ("nodes", "events", "detections")
        row = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in skip}
        for name in self._OPTIONAL:
            if row[name] is None:
                del row[name]
        row["duration"] = self.duration
        return row

    def to_dict(self) -> dict[str, Any]:
        row = self.summary()
        row["nodes"] = [dataclasses.asdict(n) for n in self.nodes]
        row["events"] = list(self.events)
        row["detections"] = [dict(d) for d in self.detections]
        return row


@dataclass(frozen=True)
class Decision:
    """One change the adaptive policy (or its quarantine) made, and why: an entry of ``policy.decisions``.

    Built in two places (``adaptation.policy`` and ``adaptation.quarantine``) and
    read in three (the policy's round notes, its summary and the dashboard's
    decision table), so its shape is written down once, here.

    Attributes
    ----------
    round
        The round (1-based) the decision was taken in or for.
    node
        The node it concerns, or None for a run-wide decision.
    action
        What changed; ``before`` and ``after`` are, by action:

        ``select``          run-wide: after = the selected node ids (list); per node: after = True
                            (picked to explore or forced in)
        ``deprioritise``    after = False: node set aside for a degrading trend
        ``batch``           local batch size, in samples per step
        ``deadline``        after = round deadline, in virtual seconds
        ``deadline_slack``  multiplier on the expected time of the K-th fastest node (unitless)
        ``over_commit``     nodes selected per update wanted (a factor >= 1)
        ``snapshot``        after = the round whose configuration was saved
        ``rollback``        before = the current round, after = the round whose configuration is restored
        ``phase``           phase names (warmup, adaptive, convergence)
        ``compression``     the node's update compression level (``compression.LADDER``: none, int8,
                            topk-10%, topk-1%), chosen from its link
        ``quarantine``, ``release``, ``readmit``
                            node states (online, quarantined, probation)

        ``before`` is None where there is nothing to compare with.
    before, after
        The value before and after the change (see above).
    reason
        Why, in words, with the numbers that triggered it.
    """

    round: int
    node: int | None
    action: str
    before: Any
    after: Any
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """The stored form. Its keys (``what``, ``old``, ``new``) predate this class and stay, in this
        order, so checkpoints written before it and after it hold the same JSON."""
        return {
            "round": self.round,
            "node": self.node,
            "what": self.action,
            "old": self.before,
            "new": self.after,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Decision:
        """Read :meth:`to_dict`'s form back (e.g. the decision log of a checkpoint)."""
        return cls(data["round"], data["node"], data["what"], data["old"], data["new"], data["reason"])


Subscriber = Callable[[RoundReport], None]


class EventBus:
    """Delivers each report to every subscriber, in subscription order."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self.errors = 0

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        """Add a subscriber; returns a function that removes it."""
        self._subscribers.append(fn)
        return lambda: self._subscribers.remove(fn) if fn in self._subscribers else None

    def emit(self, report: RoundReport) -> None:
        for fn in list(self._subscribers):
            try:
                fn(report)
            except Exception:
                self.errors += 1
                log.exception("subscriber %r failed on round %d", fn, report.round)
