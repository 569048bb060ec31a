"""When each node is online, in virtual time: always, a two-state Markov chain, a diurnal window, or a trace.

Real federations lose devices for reasons no fault plan scripts: a phone trains only while idle
and charging, at night in its own time zone (FLASH, FedScale, FLGo's "availability"). A model here
answers two questions for the coordinator, both pure functions of (node, time) and the run seed,
so a resumed run sees the same federation without any saved state:

* :meth:`Availability.online` -- is the node online at ``t``? Offline nodes are not selected.
* :meth:`Availability.offline_from` -- if online at ``t``, when does it next go offline? A node that
  goes offline before its upload has arrived fails the round ("offline"): FLGo's "connectivity".

Models (``TrainConfig.availability`` and ``availability_options``):

==========  =========================================================================================
always      every node online (the default)
markov      each node alternates up and down; sojourns are exponential with rates ``down_rate``
            (up -> down, per virtual second) and ``up_rate`` (down -> up); the first state is drawn
            from the stationary law P(up) = up_rate / (up_rate + down_rate). Draws come from keyed
            streams (seed, node, segment), so segment i of a node never depends on anything else.
diurnal     online while the node's local hour is in ``[start_hour, end_hour)`` (wrapping midnight),
            local hour = (t / day_s * 24 + UTC offset of the link's region) mod 24; ``day_s`` is the
            length of a virtual day (86400 by default; shorten it to see days pass within a run)
trace       replay a trace file (below): ``path`` names a file, or ``"synthetic"`` the shipped one
==========  =========================================================================================

Trace file format (plain text, one interval per line)::

    # comment lines and blank lines are ignored
    <node> <start_s> <end_s>      node is online for start_s <= t < end_s (virtual seconds)

A node with at least one line is online only inside its intervals (overlapping ones merge); a node
with none is always online. The shipped ``traces/synthetic-8.trace`` has eight nodes; its header
lists the online set at a few virtual times, which ``tests/test_availability.py`` replays.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import checks
from .errors import ConfigError
from .streams import stream

log = logging.getLogger(__name__)

KINDS = ("always", "markov", "diurnal", "trace")
TRACES_DIR = Path(__file__).with_name("traces")
SYNTHETIC_TRACE = TRACES_DIR / "synthetic-8.trace"
_MARKOV_TAG = 0x4D41_524B  # "MARK": stream tag of the Markov sojourns (see streams.py)

UTC_OFFSET_H: dict[str, float] = {
    "local": 0.0,
    "us-east": -5.0,
    "us-west": -8.0,
    "eu-west": 0.0,
    "sa-east": -3.0,
    "ap-south": 5.5,
}
"""Hours from UTC of each network region (``network.REGIONS``), for the diurnal model."""


class Availability:
    """Always online; the base of every model. Subclasses give each node its sorted switch times."""

    kind = "always"

    def online(self, node: int, t: float) -> bool:
        return True

    def offline_from(self, node: int, t: float) -> float:
        """The first time >= t the node is offline (``t`` itself if offline now; inf if never)."""
        return math.inf

    def next_change(self, t: float, nodes: list[int]) -> float:
        """The first time > t that any of ``nodes`` switches state (inf if none will)."""
        return math.inf

    def online_set(self, nodes: list[int], t: float) -> list[int]:
        return [n for n in nodes if self.online(n, t)]


class _Intervals(Availability):
    """A model given, per node, its online intervals as sorted switch times [on, off, on, off, ...]."""

    def _switches(self, node: int, until: float) -> list[float] | None:
        """Sorted switch times covering at least [0, until], starting with an 'on'; None: always online."""
        raise NotImplementedError

    def online(self, node: int, t: float) -> bool:
        sw = self._switches(node, t)
        return sw is None or bisect.bisect_right(sw, t) % 2 == 1

    def offline_from(self, node: int, t: float) -> float:
        if not self.online(node, t):
            return t
        sw = self._switches(node, t)
        if sw is None:
            return math.inf
        i = bisect.bisect_right(sw, t)  # generated models extend past t; a trace past its end is offline
        return sw[i] if i < len(sw) else math.inf

    def next_change(self, t: float, nodes: list[int]) -> float:
        best = math.inf
        for n in nodes:
            if self.online(n, t):
                best = min(best, self.offline_from(n, t))
            else:
                sw = self._switches(n, t) or []
                i = bisect.bisect_right(sw, t)
                best = min(best, sw[i] if i < len(sw) else math.inf)
        return best


class Markov(_Intervals):
    """Two-state continuous-time Markov chain per node, rates per virtual second."""

    kind = "markov"

    def __init__(self, *, up_rate: float = 1 / 60, down_rate: float = 1 / 300, seed: int = 0) -> None:
        p = "train.availability_options."
        self.up_rate = checks.number(p + "up_rate", up_rate, 0, open_low=True, accepted="> 0 per virtual second")
        self.down_rate = checks.number(p + "down_rate", down_rate, 0, open_low=True, accepted="> 0 per virtual second")
        self.seed = seed
        self._cache: dict[int, tuple[list[float], int]] = {}  # node -> (switch times, segments drawn)

    def _switches(self, node: int, until: float) -> list[float]:
        sw, drawn = self._cache.get(node, ([], 0))
        if not drawn:
            up_first = stream(self.seed, _MARKOV_TAG, node, 0).random() < self.up_rate / (self.up_rate + self.down_rate)
            sw = [0.0] if up_first else []  # an 'on' switch at 0, or the first switch is the first 'on'
            drawn, t = 1, 0.0
        t = sw[-1] if sw else 0.0
        while t <= until:
            # segment parity: while the list has an odd length the node is up, so the next sojourn is 'up'
            rate = self.down_rate if len(sw) % 2 == 1 else self.up_rate
            t += stream(self.seed, _MARKOV_TAG, node, drawn).exponential(1 / rate)
            sw.append(t)
            drawn += 1
        self._cache[node] = (sw, drawn)
        return sw


class Diurnal(_Intervals):
    """Online during a window of local hours each virtual day, by the link's region."""

    kind = "diurnal"

    def __init__(
        self,
        *,
        regions: Mapping[int, str],
        start_hour: float = 22.0,
        end_hour: float = 7.0,
        day_s: float = 86400.0,
    ) -> None:
        p = "train.availability_options."
        self.start = checks.number(p + "start_hour", start_hour, 0, 24, open_high=True)
        self.end = checks.number(p + "end_hour", end_hour, 0, 24, open_high=True)
        if self.start == self.end:
            raise ConfigError(p + "end_hour", end_hour, "an hour other than start_hour (the window would be empty)")
        self.day_s = checks.number(p + "day_s", day_s, 0, open_low=True, accepted="> 0 virtual seconds")
        self.regions = dict(regions)

    def _switches(self, node: int, until: float) -> list[float]:
        offset_h = UTC_OFFSET_H.get(self.regions.get(node, "local"), 0.0)
        # UTC hours h at which local time is start/end: h = local - offset (mod 24), in seconds of the day
        on = (self.start - offset_h) % 24 / 24 * self.day_s
        off = (self.end - offset_h) % 24 / 24 * self.day_s
        sw: list[float] = [] if on < off else [0.0]  # a window wrapping midnight UTC is open at t = 0
        day = 0
        while day * self.day_s <= until + self.day_s:
            base = day * self.day_s
            sw += [base + on, base + off] if on < off else [base + off, base + on]
            day += 1
        return sw  # [on, off, on + D, ...], or [0, off, on, off + D, ...] for a window across midnight


class Trace(_Intervals):
    """Replays per-node online intervals from a trace file (format in the module docstring)."""

    kind = "trace"

    def __init__(self, *, path: str | Path = "synthetic") -> None:
        self.path = SYNTHETIC_TRACE if path == "synthetic" else Path(path)
        if not self.path.is_file():
            raise ConfigError("train.availability_options.path", str(path), "an existing trace file or 'synthetic'")
        self.intervals = read_trace(self.path)
        self._sw = {n: [t for iv in ivs for t in iv] for n, ivs in self.intervals.items()}

    def _switches(self, node: int, until: float) -> list[float] | None:
        return self._sw.get(node)


def read_trace(path: Path) -> dict[int, list[tuple[float, float]]]:
    """Per node, its merged online intervals [(start, end), ...] in time order."""
    raw: dict[int, list[tuple[float, float]]] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        where = f"{path.name}:{lineno}"
        parts = text.split()
        if len(parts) != 3:
            raise ConfigError(where, line, "'<node> <start_s> <end_s>' (three fields)")
        try:
            node, start, end = int(parts[0]), float(parts[1]), float(parts[2])
        except ValueError:
            raise ConfigError(where, line, "an integer node id and two numbers of virtual seconds") from None
        if node < 0 or not (math.isfinite(start) and math.isfinite(end)) or not 0 <= start < end:
            raise ConfigError(where, line, "node >= 0 and 0 <= start_s < end_s, finite")
        raw.setdefault(node, []).append((start, end))
    merged: dict[int, list[tuple[float, float]]] = {}
    for node, ivs in raw.items():
        out: list[tuple[float, float]] = []
        for s, e in sorted(ivs):
            if out and s <= out[-1][1]:
                out[-1] = (out[-1][0], max(out[-1][1], e))
            else:
                out.append((s, e))
        merged[node] = out
    return merged


def build(kind: str, options: Mapping[str, Any], *, seed: int, regions: Mapping[int, str]) -> Availability:
    """The availability model a config names; an option the model does not take is refused by name."""
    checks.choice("train.availability", kind, KINDS)
    options = checks.mapping_of_str("train.availability_options", options)
    accepted = {
        "always": (),
        "markov": ("up_rate", "down_rate"),
        "diurnal": ("start_hour", "end_hour", "day_s"),
        "trace": ("path",),
    }[kind]
    if unknown := sorted(set(options) - set(accepted)):
        raise ConfigError(
            f"train.availability_options.{unknown[0]}",
            options[unknown[0]],
            f"options of {kind}: " + (", ".join(accepted) or "none"),
        )
    if kind == "markov":
        return Markov(seed=seed, **options)
    if kind == "diurnal":
        return Diurnal(regions=regions, **options)
    if kind == "trace":
        return Trace(**options)
    return Availability()
