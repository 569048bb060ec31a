"""Failure detection from heartbeats, in virtual time.

A reachable node sends a heartbeat every ``interval_s``; the coordinator
declares it failed once it has heard nothing for ``timeout_s``. So a node
whose last heartbeat was at ``h`` is detected at ``h + timeout_s``, and the
detection latency (detection minus the moment it became unreachable) lies in
``[timeout_s - interval_s, timeout_s]``. When its heartbeats resume it is
back online at the first heartbeat after recovery.

Only nodes named in a disconnect or partition event can go silent, so a
check costs nothing for the thousands of nodes that never fail.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from . import checks
from .network import Disconnect, Network, Partition
from .nodes import NodePool, NodeState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Detection:
    """A state change the detector made: a failure (with latency) or a recovery."""

    node: int
    kind: str  # "failed" | "recovered"
    at: float  # virtual time the coordinator learned of it
    since: float  # virtual time the node went silent / came back

    @property
    def latency(self) -> float:
        return self.at - self.since


class HeartbeatDetector:
    """Marks silent nodes CRASHED and returning nodes ONLINE in the pool."""

    def __init__(self, *, interval_s: float = 1.0, timeout_s: float = 5.0, max_scan: int = 100_000) -> None:
        checks.number("heartbeat_interval_s", interval_s, 0, open_low=True)
        checks.number(
            "heartbeat_timeout_s", timeout_s, interval_s, accepted=f"a finite number >= interval ({interval_s})"
        )
        self.interval, self.timeout, self.max_scan = interval_s, timeout_s, max_scan

    def _beats(self, network: Network, node: int, t: float) -> bool:
        return network.conditions(node, t).connected

    def _last_beat(self, network: Network, node: int, t: float) -> float | None:
        """Time of the node's last heartbeat at or before ``t`` (None if never)."""
        k = math.floor(t / self.interval)
        for _ in range(self.max_scan):
            if k < 0:
                return None
            if self._beats(network, node, k * self.interval):
                return k * self.interval
            k -= 1
        return None

    def check(self, pool: NodePool, t: float) -> list[Detection]:
        """Update node states for time ``t``; return what changed."""
        network = pool.network
        watched = {n for e in network.events if isinstance(e, (Disconnect, Partition)) for n in e.nodes}
        changes: list[Detection] = []
        for n in sorted(watched):
            if n not in pool.nodes:
                continue
            node = pool[n]
            last = self._last_beat(network, n, t)
            heard = last if last is not None else 0.0  # a node never heard from counts from registration
            if node.state is NodeState.ONLINE and t - heard >= self.timeout:
                since = self._silent_since(network, n, heard, t)
                changes.append(Detection(n, "failed", heard + self.timeout, since))
                node.state = NodeState.CRASHED
            elif node.state is NodeState.CRASHED and last is not None and t - last < self.timeout:
                back = self._back_since(network, n, last)
                changes.append(Detection(n, "recovered", back, back))
                node.state = NodeState.ONLINE
                node.heartbeat(back)
        for d in changes:
            log.info("node %d %s at t=%.2f (latency %.2fs)", d.node, d.kind, d.at, d.latency)
        return changes

    def _silent_since(self, network: Network, node: int, heard: float, t: float) -> float:
        """When the node became unreachable: the start of the outage event after its last heartbeat."""
        starts = [
            e.start
            for e in network.events
            if isinstance(e, (Disconnect, Partition)) and node in e.nodes and heard <= e.start <= t
        ]
        return min(starts) if starts else heard

    def _back_since(self, network: Network, node: int, last: float) -> float:
        """The first heartbeat of the current reachable stretch."""
        k = round(last / self.interval)
        while k > 0 and self._beats(network, node, (k - 1) * self.interval):
            k -= 1
        return k * self.interval

    def next_beat_after(self, t: float) -> float:
        return (math.floor(t / self.interval) + 1) * self.interval
