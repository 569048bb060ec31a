"""What the node panel's buttons do to a live simulation: plain functions of a coordinator.

Each takes effect from the coordinator's current virtual time (``coord.clock.now``) or next round,
and returns a one-line description for the action log. Call them at a round boundary
(:meth:`~hypergpu_lab.ui.runner.Runner.act` does), never half-way through a round. Network changes
go through ``network.schedule``; faults through a new :class:`~hypergpu_lab.faults.FaultInjector`
holding the old plan plus the change and the old injector's state, so checkpoints record them
(``FaultInjector.add`` injects live; ending a fault replaces the injector, keeping its state).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..errors import ConfigError
from ..faults import BYZANTINE, KINDS, Fault, FaultInjector
from ..network import PROFILES, Disconnect, LatencySpike, ProfileChange, Reconnect

ROUND_FAULTS = tuple(k for k in KINDS if k not in ("crash", "partition"))  # injectable per node, by round
BAD_KINDS = (*BYZANTINE, "label_flip")


def set_profile(coord: Any, node: int, profile: str) -> str:
    """The node's link uses ``profile`` from now on."""
    if profile not in PROFILES:
        raise ConfigError("profile", profile, ", ".join(PROFILES))
    coord.pool.network.schedule(ProfileChange(nodes=(node,), at=coord.clock.now, profile=profile))
    return f"node {node}: link profile {profile}"


def latency_spike(coord: Any, node: int, extra_ms: float, duration_s: float) -> str:
    """``extra_ms`` more one-way latency on the node's link for ``duration_s`` virtual seconds from now."""
    coord.pool.network.schedule(
        LatencySpike(nodes=(node,), start=coord.clock.now, duration=duration_s, extra_ms=extra_ms)
    )
    return f"node {node}: +{extra_ms:g} ms for {duration_s:g} virtual s"


def disconnect(coord: Any, node: int) -> str:
    """The node's link goes down until :func:`reconnect`."""
    coord.pool.network.schedule(Disconnect(nodes=(node,), start=coord.clock.now, duration=None))
    return f"node {node}: disconnected"


def reconnect(coord: Any, node: int) -> str:
    """End the node's disconnects (and a crash's outage) from now on."""
    coord.pool.network.schedule(Reconnect(nodes=(node,), at=coord.clock.now))
    return f"node {node}: reconnected"


def _replace_faults(coord: Any, faults: list[Fault]) -> None:
    old: FaultInjector = coord.faults
    new = FaultInjector(faults, seed=old.seed)
    new.load_state_dict(old.state_dict())
    coord.faults = new


def _without(fault: Fault, node: int) -> list[Fault]:
    """The fault for its other nodes (empty if ``node`` was its only one)."""
    rest = tuple(n for n in fault.nodes if n != node)
    return [dataclasses.replace(fault, nodes=rest)] if rest else []


def add_fault(coord: Any, fault: Fault) -> None:
    """Add ``fault`` to the live plan; a crash or partition is scheduled on the network as well."""
    missing = [n for n in fault.nodes if n not in coord.pool.nodes]
    if missing:
        raise ConfigError("fault.nodes", missing, "ids of nodes in the pool")
    coord.faults.add(fault, coord.pool.network)


def crash(coord: Any, node: int) -> str:
    """The node dies now (a crash fault in virtual time): its transfers fail, its heartbeats stop."""
    add_fault(coord, Fault("crash", (node,), start=coord.clock.now, unit="time"))
    return f"node {node}: crashed"


def recover(coord: Any, node: int) -> str:
    """End the node's crash now: the fault plan records the end and the link comes back."""
    now, kept, ended = coord.clock.now, [], False
    for f in coord.faults.faults:
        if f.kind == "crash" and node in f.nodes and (f.end is None or f.end > now):
            kept += _without(f, node)
            ended = True
            if now > f.start:  # it did happen: keep it in the record, ending now
                kept.append(dataclasses.replace(f, nodes=(node,), end=now))
        else:
            kept.append(f)
    _replace_faults(coord, kept)
    coord.pool.network.schedule(Reconnect(nodes=(node,), at=now))
    return f"node {node}: recovered" if ended else f"node {node}: reconnected (it had no crash)"


def inject(coord: Any, node: int, kind: str, magnitude: float | None = None) -> str:
    """Turn the node faulty from the next round on: a Byzantine update, label flipping, a straggler, ..."""
    if kind not in ROUND_FAULTS:
        raise ConfigError("fault.kind", kind, "one of " + ", ".join(ROUND_FAULTS))
    add_fault(coord, Fault(kind, (node,), start=coord.round + 1, unit="round", magnitude=magnitude))
    return f"node {node}: {kind} from round {coord.round + 1}"


def clear_faults(coord: Any, node: int) -> str:
    """End the node's per-round faults before the next round (crashes end with :func:`recover`)."""
    nxt, kept, ended = coord.round + 1, [], []
    for f in coord.faults.faults:
        if f.unit == "round" and node in f.nodes and (f.end is None or f.end > nxt):
            kept += _without(f, node)
            ended.append(f.kind)
            if f.start < nxt:
                kept.append(dataclasses.replace(f, nodes=(node,), end=nxt))
        else:
            kept.append(f)
    _replace_faults(coord, kept)
    return f"node {node}: ended {', '.join(ended)}" if ended else f"node {node}: no faults to end"
