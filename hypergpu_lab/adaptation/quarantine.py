"""Quarantine: keep a node that keeps failing out of selection for a while, then try it again.

After ``after`` consecutive failed rounds (status ``failed`` or ``rejected``;
a straggler delivered its update, so it is not a failure) the node is marked
``NodeState.QUARANTINED`` in the pool for ``duration`` rounds or virtual
seconds (``unit``). When that is over it is set ``ONLINE`` again on
*probation*: its next success re-admits it fully, its next failure sends it
straight back to quarantine. A node is not quarantined when that would leave
fewer than ``keep_available`` nodes available, so a run never stalls on it.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from hypergpu_lab.events import Decision, RoundReport
from hypergpu_lab.nodes import NodePool, NodeState

from ..checks import choice, integer, number

log = logging.getLogger(__name__)

FAILURES = ("failed", "rejected")


class Quarantine:
    """Per-node failure streaks, quarantine terms and probation; decisions come back as :class:`~hypergpu_lab.events.Decision`."""

    def __init__(self, *, after: int = 3, duration: float = 5, unit: str = "rounds", keep_available: int = 1) -> None:
        self.after = integer("quarantine.after", after, low=1)
        self.unit = choice("quarantine.unit", unit, ("rounds", "seconds"))
        self.duration = (
            integer("quarantine.duration", duration, low=1)
            if unit == "rounds"
            else number("quarantine.duration", duration, low=0.0, open_low=True)
        )
        self.keep_available = integer("quarantine.keep_available", keep_available, low=0)
        self.streak: dict[int, int] = {}
        self.held: dict[int, float] = {}  # node -> release at (round number or virtual time)
        self.probation: set[int] = set()
        self.terms: dict[int, int] = {}  # how many times each node was quarantined

    def is_quarantined(self, node: int) -> bool:
        return node in self.held

    def observe(self, report: RoundReport, pool: NodePool | None) -> list[Decision]:
        """Update streaks from a report; quarantine or re-admit nodes. Returns the decisions."""
        out: list[Decision] = []
        for rec in report.nodes:
            n = rec.node
            if rec.status not in FAILURES:
                self.streak[n] = 0
                if n in self.probation:
                    self.probation.discard(n)
                    out.append(
                        self._decision(report.round, n, "readmit", "probation", "online", "succeeded on probation")
                    )
                continue
            self.streak[n] = self.streak.get(n, 0) + 1
            if n in self.probation:
                out += self._hold(report, n, pool, "failed on probation")
            elif self.streak[n] >= self.after:
                out += self._hold(report, n, pool, f"{self.streak[n]} consecutive failures ({rec.reason})")
        return out

    def _hold(self, report: RoundReport, node: int, pool: NodePool | None, reason: str) -> list[Decision]:
        if pool is not None and len([i for i in pool.available() if i != node]) < self.keep_available:
            return [
                self._decision(
                    report.round,
                    node,
                    "quarantine",
                    "online",
                    "online",
                    f"{reason}; kept: fewer than {self.keep_available} nodes would be available",
                )
            ]
        self.probation.discard(node)
        release = report.round + self.duration if self.unit == "rounds" else report.t_end + self.duration
        self.held[node] = float(release)
        self.terms[node] = self.terms.get(node, 0) + 1
        if pool is not None and node in pool.nodes and pool[node].state is not NodeState.QUARANTINED:
            pool.set_state(node, NodeState.QUARANTINED)
        until = f"round {int(release)}" if self.unit == "rounds" else f"t={release:.2f}s"
        log.info("node %d quarantined until %s: %s", node, until, reason)
        return [
            self._decision(report.round, node, "quarantine", "online", "quarantined", f"{reason}; held until {until}")
        ]

    def release(self, round_: int, now: float, pool: NodePool) -> list[Decision]:
        """At the start of a round: end finished terms (probation), and re-assert held states in the pool."""
        out: list[Decision] = []
        for n in sorted(self.held):
            done = round_ > self.held[n] if self.unit == "rounds" else now >= self.held[n]
            if n not in pool.nodes:
                del self.held[n]
            elif done:
                del self.held[n]
                self.probation.add(n)
                self.streak[n] = 0
                if pool[n].state is NodeState.QUARANTINED:
                    pool.set_state(n, NodeState.ONLINE)
                out.append(self._decision(round_, n, "release", "quarantined", "probation", "quarantine term over"))
            elif pool[n].state is NodeState.ONLINE:  # e.g. after a restore from an older pool state
                pool.set_state(n, NodeState.QUARANTINED)
        return out

    @staticmethod
    def _decision(round_: int, node: int, action: str, before: str, after: str, reason: str) -> Decision:
        return Decision(round_, node, action, before, after, reason)

    def state_dict(self) -> dict[str, Any]:
        return {
            "streak": dict(self.streak),
            "held": dict(self.held),
            "probation": sorted(self.probation),
            "terms": dict(self.terms),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.streak = {int(n): int(v) for n, v in state["streak"].items()}
        self.held = {int(n): float(v) for n, v in state["held"].items()}
        self.probation = {int(n) for n in state["probation"]}
        self.terms = copy.deepcopy({int(n): int(v) for n, v in state["terms"].items()})
