"""One round as a value: what was planned, what crossed the network, what came back, how each node ended.

The coordinator fills a :class:`Round` step by step (plan, downloads, local results, uploads, the
close, the statuses, the applied updates) and turns it into the :class:`RoundReport` that the bus
delivers. Helpers take the round, not a dozen loose arguments.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from .contribution import robust_agreement
from .events import NodeRecord, RoundReport
from .faults import Message
from .network import Transfer
from .plan import RoundPlan
from .training import LocalResult

Status = tuple[str, str | None]  # (accepted | rejected | failed | straggled, reason)


@dataclass
class Round:
    """The facts of one round, in virtual seconds unless a name says otherwise."""

    number: int
    t0: float
    plan: RoundPlan
    detections: tuple[dict[str, Any], ...] = ()
    wall0: float = field(default_factory=time.perf_counter)
    down: dict[int, Transfer] = field(default_factory=dict)  # model download per selected node
    results: dict[int, LocalResult] = field(default_factory=dict)  # local training, per node that trained
    compute: dict[int, float] = field(default_factory=dict)  # simulated compute seconds
    up: dict[int, Transfer] = field(default_factory=dict)  # update upload per node that trained
    codec: dict[int, str] = field(default_factory=dict)  # the update's encoding per node that trained
    work: dict[int, float] = field(default_factory=dict)  # share of its local steps a node completed (partial work)
    close: float = 0.0  # when the server stopped waiting
    status: dict[int, Status] = field(default_factory=dict)  # per selected node
    applied: list[tuple[Message, float]] = field(default_factory=list)  # updates aggregated, staleness weight
    stacked: torch.Tensor | None = None  # their deltas, one row each, in (round, node) order
    dropped: int = 0  # duplicates and replays refused by exactly-once
    change: torch.Tensor | None = None  # new global weights minus old
    notes: tuple[str, ...] = ()  # what the strategy did beyond its rule (a robust fallback), for the report
    masked: bool = False  # SecAgg: updates are masked ring vectors, no per-update statistic is meaningful
    overhead_bytes: int = 0  # protocol messages beyond model and updates (SecAgg keys, recovery), every attempt
    epsilon: float | None = None  # privacy spent so far (privacy/accountant.py), None without DP
    contribution: list[float] | None = None  # per applied update: the contribution scorer's value (None: no signal)

    @property
    def deadline(self) -> float:
        return self.t0 + self.plan.deadline_s if self.plan.deadline_s is not None else math.inf

    def aggregation_weights(self) -> torch.Tensor:
        """Per applied update: sample count times staleness discount (what Strategy.aggregate weighs by)."""
        return torch.tensor([m.result.num_samples * w for m, w in self.applied], dtype=torch.float64)

    def records(self, num_samples: dict[int, int], injected: dict[int, tuple[str, ...]]) -> list[NodeRecord]:
        """One NodeRecord per selected node."""
        assert self.change is not None
        steps = [m.result.steps for m, _ in self.applied]
        agreement = robust_agreement(self.stacked, steps) if self.applied and not self.masked else {}
        index = {(m.round, m.node): i for i, (m, _) in enumerate(self.applied)}
        out = []
        for n in self.plan.nodes:
            d, u, res = self.down[n], self.up.get(n), self.results.get(n)
            arrived = u.end if u is not None and u.ok else None
            kind, reason = self.status[n]
            if kind == "straggled":
                reason = f"arrived {arrived - self.close:.3f}s after the close"
            i = index.get((self.number, n)) if kind == "accepted" else None
            out.append(
                NodeRecord(
                    node=n,
                    status=kind,
                    reason=reason,
                    batch_size=self.plan.batch_sizes[n],
                    num_samples=num_samples[n],
                    download_s=d.duration,
                    compute_s=self.compute.get(n, 0.0),
                    upload_s=u.duration if u is not None else 0.0,
                    waiting_s=self.close - arrived if arrived is not None and arrived <= self.close else 0.0,
                    arrival=arrived,
                    download_attempts=d.attempts,
                    upload_attempts=u.attempts if u is not None else 0,
                    loss=res.loss if res else None,
                    update_norm=res.update_norm if res and not self.masked else None,
                    update_hash=hashlib.sha256(res.delta.numpy().tobytes()).hexdigest() if res else None,
                    agreement=agreement.get(i) if i is not None else None,
                    contribution=self.contribution[i] if i is not None and self.contribution is not None else None,
                    injected=injected[n],
                    upload_bytes=u.nbytes if u is not None else None,
                    compression=self.codec.get(n),
                    work_done=self.work.get(n),
                    download_bytes=d.nbytes,
                )
            )
        return out

    def report(
        self,
        run_id: str,
        records: list[NodeRecord],
        accuracy: float | None,
        loss: float | None,
        network_events: tuple[str, ...],
    ) -> RoundReport:
        """The round's report: counts, losses, events and bytes, from the records and the applied updates.

        Bytes are what the transfers carried, every attempt counted: the model down, the encoded update up.
        """
        r = self.number
        count = {s: sum(rec.status == s for rec in records) for s in ("accepted", "straggled", "failed", "rejected")}
        total = sum(m.result.num_samples for m, _ in self.applied)
        train_loss = sum(m.result.loss * m.result.num_samples for m, _ in self.applied) / total if total else None
        late = [m for m, _ in self.applied if m.round < r]
        events = (
            network_events
            + self.plan.notes
            + self.notes
            + tuple(
                f"late update of node {m.node} from round {m.round} applied (staleness {r - m.round})" for m in late
            )
        )
        return RoundReport(
            run_id=run_id,
            round=r,
            t_start=self.t0,
            t_end=self.close,
            selected=len(self.plan.nodes),
            test_accuracy=accuracy,
            test_loss=loss,
            train_loss=train_loss,
            wall_s=time.perf_counter() - self.wall0,
            nodes=tuple(records),
            events=events,
            duplicates=self.dropped,
            late_applied=len(late),
            detections=self.detections,
            status="ok" if self.applied else "no updates",
            bytes_moved=sum(t.bytes_sent for t in (*self.down.values(), *self.up.values())) + self.overhead_bytes,
            epsilon=self.epsilon,
            **count,
        )
