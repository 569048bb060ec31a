"""Fault injection: a plan of what goes wrong, to whom, and when.

A :class:`Fault` is active over a window of rounds (``unit="round"``) or of
virtual seconds (``unit="time"``). The :class:`FaultInjector` turns the plan
into effects at the points of a round where they happen in reality:

- crash, partition: the node becomes unreachable (network events), so its
  transfers fail and its heartbeats stop; the coordinator only learns of it
  through the failure detector, as it would in a real deployment;
- straggler: local compute takes ``magnitude`` times longer;
- label_flip: data poisoning, the node trains on labels ``C - 1 - y``;
- sign_flip, noise, scale, nan, inf: Byzantine updates (``-d``, ``d + N(0, m^2)``,
  ``m * d``, NaN or infinite values);
- free_rider: sends a zero update (``magnitude=0``) or re-sends its last one;
- duplicate: the same update arrives twice; replay: an update of an earlier
  round is sent again. The coordinator must apply neither twice.

Every random draw is seeded by (seed, round, node), so faulty runs are as
reproducible and resumable as clean ones.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from . import checks
from .errors import ConfigError
from .network import Disconnect, Network, Partition
from .training import LocalResult

log = logging.getLogger(__name__)

KINDS = (
    "crash",
    "partition",
    "straggler",
    "label_flip",
    "sign_flip",
    "noise",
    "scale",
    "nan",
    "inf",
    "free_rider",
    "duplicate",
    "replay",
)
BYZANTINE = ("sign_flip", "noise", "scale", "nan", "inf", "free_rider")
_DEFAULT_MAGNITUDE = {"straggler": 5.0, "noise": 1.0, "scale": 10.0, "free_rider": 0.0}


@dataclass(frozen=True)
class Fault:
    """One fault: ``kind`` on ``nodes`` from ``start`` until ``end`` (exclusive; None = forever)."""

    kind: str
    nodes: tuple[int, ...]
    start: float = 1
    end: float | None = None
    unit: str = "round"
    magnitude: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError("fault.kind", self.kind, "one of " + ", ".join(KINDS))
        object.__setattr__(self, "nodes", checks.node_ids("fault.nodes", self.nodes, single=True, empty=False))
        if self.unit not in ("round", "time"):
            raise ConfigError("fault.unit", self.unit, "'round' or 'time'")
        if self.kind in ("crash", "partition") and self.unit != "time":
            raise ConfigError("fault.unit", self.unit, "'time' for crash and partition (virtual seconds)")
        checks.number("fault.start", self.start, 0)
        checks.optional(checks.number, "fault.end", self.end, self.start, open_low=True)
        if self.magnitude is None:
            object.__setattr__(self, "magnitude", _DEFAULT_MAGNITUDE.get(self.kind, 1.0))
        checks.number(
            "fault.magnitude",
            self.magnitude,
            1 if self.kind == "straggler" else None,
            1e6 if self.kind == "straggler" else None,  # a slowdown past 1e6x stalls virtual time, as a spike did
            accepted="a finite number (in [1, 1000000] for straggler)",
        )

    def active(self, round_: int, t: float) -> bool:
        x = round_ if self.unit == "round" else t
        return self.start <= x and (self.end is None or x < self.end)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        known = {f.name for f in dataclasses.fields(cls)}
        if unknown := sorted(set(data) - known):
            raise ConfigError(f"fault.{unknown[0]}", data[unknown[0]], "a field of: " + ", ".join(sorted(known)))
        return cls(
            **{**data, "nodes": tuple(data["nodes"]) if isinstance(data.get("nodes"), list) else data.get("nodes", ())}
        )


@dataclass(frozen=True)
class Message:
    """An update on the wire, keyed by (run, round, node, attempt): the unit of exactly-once."""

    run_id: str
    round: int
    node: int
    attempt: int
    result: LocalResult


class FaultInjector:
    """Applies a list of faults at the points of the round loop where each takes effect."""

    def __init__(self, faults: Iterable[Fault | dict[str, Any]], *, seed: int = 0) -> None:
        self.faults = tuple(f if isinstance(f, Fault) else Fault.from_dict(f) for f in faults)
        self.seed = seed
        self._last: dict[int, LocalResult] = {}  # free riders' and replayers' previous updates

    def install(self, network: Network) -> None:
        """Crashes and partitions become network events: the node is unreachable for the window."""
        for f in self.faults:
            missing = [n for n in f.nodes if n not in network.links]
            if missing:
                raise ConfigError("fault.nodes", missing, "ids of nodes in the pool")
            duration = None if f.end is None else f.end - f.start
            if f.kind == "crash":
                network.schedule(Disconnect(nodes=f.nodes, start=float(f.start), duration=duration))
            elif f.kind == "partition":
                network.schedule(
                    Partition(
                        nodes=f.nodes, start=float(f.start), duration=duration if duration is not None else math.inf
                    )
                )

    def add(self, fault: Fault | dict[str, Any], network: Network) -> Fault:
        """Inject a fault into a running simulation (crashes and partitions become network events)."""
        fault = fault if isinstance(fault, Fault) else Fault.from_dict(fault)
        FaultInjector([fault], seed=self.seed).install(network)
        self.faults = (*self.faults, fault)
        return fault

    def _active(self, kind: str | Sequence[str], node: int, round_: int, t: float) -> Fault | None:
        kinds = (kind,) if isinstance(kind, str) else tuple(kind)
        for f in self.faults:
            if f.kind in kinds and node in f.nodes and f.active(round_, t):
                return f
        return None

    def compute_factor(self, node: int, round_: int, t: float) -> float:
        f = self._active("straggler", node, round_, t)
        return float(f.magnitude) if f else 1.0

    def flips_labels(self, node: int, round_: int, t: float) -> bool:
        """Data poisoning: the node trains on labels ``C - 1 - y`` this round."""
        return self._active("label_flip", node, round_, t) is not None

    def corrupt(self, result: LocalResult, round_: int, t: float) -> LocalResult:
        """A Byzantine node replaces its honest update; the honest one is remembered for replays."""
        f = self._active(BYZANTINE, result.node, round_, t)
        previous = self._last.get(result.node)
        self._last[result.node] = result
        if f is None:
            return result
        d = result.delta
        if f.kind == "sign_flip":
            d = -d
        elif f.kind == "scale":
            d = d * f.magnitude
        elif f.kind == "noise":
            gen = torch.Generator().manual_seed(
                int(np.random.SeedSequence([self.seed, round_, result.node, 7]).generate_state(1)[0])
            )
            d = d + f.magnitude * torch.randn(d.shape, generator=gen)
        elif f.kind in ("nan", "inf"):
            d = d.clone()
            d[:: max(1, d.numel() // 10)] = float(f.kind)
        elif f.kind == "free_rider":
            d = previous.delta if (f.magnitude and previous is not None) else torch.zeros_like(d)
        return dataclasses.replace(result, delta=d, update_norm=float(torch.linalg.vector_norm(d)))

    def extra_messages(self, message: Message, t: float) -> list[Message]:
        """Copies a faulty node sends besides its update: the same again, or an old one."""
        out: list[Message] = []
        if self._active("duplicate", message.node, message.round, t):
            out.append(dataclasses.replace(message, attempt=message.attempt + 1))
        if self._active("replay", message.node, message.round, t) and message.round > 1:
            out.append(dataclasses.replace(message, round=message.round - 1))
        return out

    def describe(self, node: int, round_: int, t: float) -> str | None:
        """Names of the faults active on ``node`` (ground truth, for reports and the UI)."""
        kinds = [f.kind for f in self.faults if node in f.nodes and f.active(round_, t)]
        return ",".join(kinds) or None

    def byzantine_nodes(self, round_: int, t: float) -> set[int]:
        return {
            n for f in self.faults if f.kind in BYZANTINE + ("label_flip",) and f.active(round_, t) for n in f.nodes
        }

    def state_dict(self) -> dict[str, Any]:
        return {"last": {n: r.delta for n, r in self._last.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._last = {
            int(n): LocalResult(int(n), d, 0, 0.0, 0, float(torch.linalg.vector_norm(d)))
            for n, d in state.get("last", {}).items()
        }
