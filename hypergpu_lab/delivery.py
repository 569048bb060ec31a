"""Exactly-once delivery of updates: which (round, node) updates the server still expects, and stragglers.

An update is applied at most once: a message counts only while its (round, node) key is
outstanding, i.e. selected and not yet resolved; duplicates and replays find the key gone. With
``late_updates="buffer"`` (FedBuff), an update that arrives after its round closed is kept in
flight and applied in the round during which it arrives, discounted by its staleness.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .clock import VirtualClock
from .faults import FaultInjector, Message
from .round import Round
from .training import LocalResult


class Delivery:
    """The server's side of the update channel: outstanding keys and buffered stragglers."""

    def __init__(self, run_id: str, *, buffer_late: bool) -> None:
        self.run_id, self.buffer_late = run_id, buffer_late
        self.outstanding: set[tuple[int, int]] = set()  # (round, node) keys an update may still resolve
        self.late: list[tuple[float, Message]] = []  # stragglers in flight (buffer mode)

    def collect(self, rnd: Round, clock: VirtualClock, faults: FaultInjector) -> list[tuple[float, Message]]:
        """Advance the clock to the round's close; return the messages that arrived by then, in order.

        The round closes when every selected node has arrived or failed, when ``target_updates``
        have arrived (FaultTolerant mode, over-commitment), or at the deadline, whichever is first.
        """
        plan, up = rnd.plan, rnd.up
        arrivals = sorted((u.end, n) for n, u in up.items() if u.ok)
        resolved = max((up[n].end if n in up else rnd.down[n].end for n in plan.nodes), default=rnd.t0)
        rnd.close = min(resolved, rnd.deadline)
        if plan.target_updates is not None and len(arrivals) >= plan.target_updates:
            rnd.close = min(rnd.close, arrivals[plan.target_updates - 1][0])
        for t, n in arrivals:
            msg = Message(self.run_id, rnd.number, n, 1, rnd.results[n])
            clock.schedule(t, msg)
            for extra in faults.extra_messages(msg, t):
                clock.schedule(t + 1e-3, extra)
        for t, msg in self.late:  # buffered stragglers of earlier rounds arrive when they arrive
            clock.schedule(t, msg, priority=1)
        inbox = clock.pop_until(rnd.close)
        # What is still in flight arrived after the close: stragglers. Buffer mode keeps the
        # original messages for a later round; duplicates and everything in "drop" mode are gone.
        self.late = [(t, m) for t, m in clock.drain() if isinstance(m, Message) and m.attempt == 1 and self.buffer_late]
        return inbox

    def admit(self, rnd: Round, inbox: list[tuple[float, Message]]) -> list[Message]:
        """The first copy of each outstanding update, in canonical (round, node) order; counts the rest."""
        self.outstanding.update((rnd.number, n) for n in rnd.plan.nodes)
        fresh = []
        for _, msg in inbox:
            key = (msg.round, msg.node)
            if key not in self.outstanding:
                rnd.dropped += 1
                continue
            self.outstanding.discard(key)
            fresh.append(msg)
        # Aggregate in a canonical order, not arrival order: float sums and Krum's ties depend on row order.
        fresh.sort(key=lambda m: (m.round, m.node))
        return fresh

    def judge(self, rnd: Round, fresh: list[Message], reasons: list[str | None], backend_failures: dict[int, str]):
        """Statuses for the selected nodes and the updates to apply, with their staleness weights."""
        r = rnd.number
        for msg, reason in zip(fresh, reasons):
            if msg.round == r:
                rnd.status[msg.node] = ("rejected", reason) if reason else ("accepted", None)
            if not reason:  # FedBuff staleness weight: 1 for this round's updates
                rnd.applied.append((msg, 1.0 / math.sqrt(1 + r - msg.round)))
        for n in rnd.plan.nodes:
            if n not in rnd.status:
                rnd.status[n] = _unresolved(rnd, n, backend_failures)
            if rnd.status[n][0] != "straggled" or not self.buffer_late:
                self.outstanding.discard((r, n))

    def state_dict(self) -> dict[str, Any]:
        return {
            "outstanding": sorted(self.outstanding),
            "late": [
                {
                    "t": t,
                    "round": m.round,
                    "node": m.node,
                    "attempt": m.attempt,
                    "delta": m.result.delta.clone(),
                    "num_samples": m.result.num_samples,
                    "loss": m.result.loss,
                    "steps": m.result.steps,
                }
                for t, m in self.late
            ],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.outstanding = {(int(a), int(b)) for a, b in state["outstanding"]}
        self.late = [
            (float(e["t"]), Message(self.run_id, int(e["round"]), int(e["node"]), int(e["attempt"]), _result(e)))
            for e in state["late"]
        ]


def _unresolved(rnd: Round, n: int, backend_failures: dict[int, str]) -> tuple[str, str]:
    """Why a selected node has no update this round."""
    down, up = rnd.down[n], rnd.up.get(n)
    if not down.ok:
        return "failed", f"download {down.reason} after {down.attempts} attempts"
    if up is None:  # downloaded, but the backend returned no result: a crash for this round
        return "failed", "backend: " + backend_failures.get(n, "no result")
    if not up.ok:
        return "failed", f"upload {up.reason} after {up.attempts} attempts"
    return "straggled", "arrived after the close"


def _result(e: dict[str, Any]) -> LocalResult:
    norm = float(torch.linalg.vector_norm(e["delta"]))
    return LocalResult(int(e["node"]), e["delta"], int(e["num_samples"]), float(e["loss"]), int(e["steps"]), norm)
