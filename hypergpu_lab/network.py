"""The simulated network: link profiles, per-node links, transfers with retries, scheduled events.

Everything is computed in virtual time, so a transfer is a pure function of
the link, the scheduled events, the start time and the random generator the
caller passes in. The :class:`Network` holds no random state: the coordinator
derives one generator per (seed, round, node, direction), which keeps runs
reproducible and resumable.

Only the coordinator side of each link is modelled: one link per node,
between that node and the coordinator.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hypergpu_lab import checks
from hypergpu_lab.errors import ConfigError

__all__ = [
    "LinkProfile",
    "PROFILES",
    "REGIONS",
    "MIXES",
    "RetryPolicy",
    "expected_rounds",
    "Link",
    "Transfer",
    "LatencySpike",
    "Disconnect",
    "Reconnect",
    "Partition",
    "ProfileChange",
    "NetworkEvent",
    "LinkConditions",
    "Network",
]

logger = logging.getLogger(__name__)

# Domain-separation tags so the latency draw and the profile shuffle never share a stream.
_LATENCY_TAG = 0x4C41_5400  # "LAT"
_SHUFFLE_TAG = 0x5348_5546  # "SHUF"


# --------------------------------------------------------------------------- profiles


MAX_DELAY_MS = 86_400_000.0  # one day: the largest latency or spike a link accepts


@dataclass(frozen=True)
class LinkProfile:
    """Quality class of a link; each node's link draws its own base latency from it.

    Attributes
    ----------
    name
        Label shown in reports.
    latency_ms
        ``(low, high)`` one-way base latency range; a link draws uniformly once.
    loss
        Probability that one message attempt is lost, in ``[0, 1)`` (1 would never deliver); with
        ``RetryPolicy(loss_unit="packet")``, the probability that one packet is lost.
    bandwidth_mbps
        Throughput in megabits per second; sets the size-dependent part of a transfer (downloads,
        and uploads too unless ``upload_mbps`` is given).
    jitter_ms
        Standard deviation of the per-attempt jitter, added as ``|N(0, jitter)|``
        because a network can delay a message but never speed it up.
    upload_mbps
        Uplink throughput, for an asymmetric link (home broadband and mobile links upload several
        times slower than they download); None: the same as ``bandwidth_mbps``.
    """

    name: str
    latency_ms: tuple[float, float]
    loss: float
    bandwidth_mbps: float
    jitter_ms: float = 0.0
    upload_mbps: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError("name", self.name, "a non-empty string")
        try:
            low, high = self.latency_ms
        except (TypeError, ValueError):
            raise ConfigError("latency_ms", self.latency_ms, "a (low, high) pair of milliseconds") from None
        low = checks.number("latency_ms", low, low=0.0, accepted="0 <= low <= high milliseconds")
        high = checks.number(
            "latency_ms", high, low, MAX_DELAY_MS, accepted="0 <= low <= high <= 86400000 milliseconds"
        )
        object.__setattr__(self, "latency_ms", (low, high))
        object.__setattr__(
            self,
            "loss",
            checks.number("loss", self.loss, low=0.0, high=1.0, open_high=True, accepted="a probability in [0, 1)"),
        )
        object.__setattr__(
            self,
            "bandwidth_mbps",
            checks.number(
                "bandwidth_mbps", self.bandwidth_mbps, low=0.0, open_low=True, accepted="> 0 megabits per second"
            ),
        )
        object.__setattr__(
            self,
            "jitter_ms",
            checks.number("jitter_ms", self.jitter_ms, 0.0, MAX_DELAY_MS, accepted="0 to 86400000 milliseconds"),
        )
        if self.upload_mbps is not None:
            object.__setattr__(
                self,
                "upload_mbps",
                checks.number(
                    "upload_mbps",
                    self.upload_mbps,
                    low=0.0,
                    open_low=True,
                    accepted="> 0 megabits per second, or None for a symmetric link",
                ),
            )

    def mbps(self, upload: bool = False) -> float:
        """The throughput one way: ``upload_mbps`` for an upload on an asymmetric link, else ``bandwidth_mbps``."""
        return self.upload_mbps if upload and self.upload_mbps is not None else self.bandwidth_mbps


PROFILES: dict[str, LinkProfile] = {
    p.name: p
    for p in (
        LinkProfile("perfect", (0.0, 1.0), 0.0, 10_000.0, 0.1),
        LinkProfile("good", (10.0, 50.0), 0.001, 1_000.0, 2.0),
        LinkProfile("average", (50.0, 150.0), 0.01, 100.0, 10.0),
        LinkProfile("poor", (150.0, 300.0), 0.05, 20.0, 30.0),
        LinkProfile("unstable", (50.0, 500.0), 0.10, 10.0, 100.0),
    )
}
"""The five link classes of the project seed, best to worst."""

REGIONS: dict[str, float] = {
    "local": 0.0,
    "us-east": 5.0,
    "us-west": 35.0,
    "eu-west": 40.0,
    "sa-east": 70.0,
    "ap-south": 110.0,
}
"""Extra one-way base latency (ms) by region, roughly the distance from a us-east coordinator."""

MIXES: dict[str, dict[str, float]] = {
    "perfect": {"perfect": 1.0},
    "datacenter": {"perfect": 0.8, "good": 0.2},
    "lan": {"perfect": 0.5, "good": 0.5},
    "mixed": {"good": 0.4, "average": 0.3, "poor": 0.2, "unstable": 0.1},
    "unstable-wan": {"average": 0.3, "poor": 0.3, "unstable": 0.4},
}
"""Named network mixes: profile name -> fraction of nodes (fractions sum to 1)."""

LOSS_UNITS = ("message", "packet")
"""What one loss draw loses: a whole message attempt, or each packet (see :meth:`Network.transfer`)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How a sender retries a lost message.

    Attributes
    ----------
    max_retries
        Retries after the first attempt, so at most ``1 + max_retries`` attempts.
    timeout_factor
        The sender declares an attempt lost after ``timeout_factor`` times the
        attempt's expected duration (it cannot know sooner).
    backoff_s, backoff_factor, max_backoff_s
        Wait before retry ``k`` (k = 1, 2, ...): ``min(backoff_s * backoff_factor**(k-1), max_backoff_s)``.
    loss_unit
        ``"message"``: an attempt is lost whole and resent whole. ``"packet"``: a message is
        ``ceil(nbytes / mtu_bytes)`` packets, each lost independently, and a retry resends only the
        lost ones (TCP-like selective retransmission), so a big message on a lossy link takes more
        rounds than a small one: the reason compression pays on lossy WANs.
    mtu_bytes
        Bytes per packet in ``"packet"`` mode (Ethernet's 1500 by default).
    """

    max_retries: int = 5
    timeout_factor: float = 2.0
    backoff_s: float = 0.1
    backoff_factor: float = 2.0
    max_backoff_s: float = 10.0
    loss_unit: str = "message"
    mtu_bytes: int = 1500

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_retries", checks.integer("max_retries", self.max_retries, low=0))
        object.__setattr__(
            self,
            "timeout_factor",
            checks.number(
                "timeout_factor",
                self.timeout_factor,
                low=1.0,
                accepted=">= 1 (a loss is noticed no sooner than the expected arrival)",
            ),
        )
        object.__setattr__(
            self, "backoff_s", checks.number("backoff_s", self.backoff_s, low=0.0, accepted=">= 0 seconds")
        )
        object.__setattr__(
            self, "backoff_factor", checks.number("backoff_factor", self.backoff_factor, low=1.0, accepted=">= 1")
        )
        object.__setattr__(
            self, "max_backoff_s", checks.number("max_backoff_s", self.max_backoff_s, low=0.0, accepted=">= 0 seconds")
        )
        checks.choice("loss_unit", self.loss_unit, LOSS_UNITS)
        object.__setattr__(
            self,
            "mtu_bytes",
            checks.integer("mtu_bytes", self.mtu_bytes, low=1, accepted="an integer >= 1 (bytes per packet)"),
        )

    def packets(self, nbytes: int) -> int:
        """Packets a message of ``nbytes`` travels in: 1 in ``"message"`` mode, else ``ceil(nbytes / mtu)``, >= 1."""
        return 1 if self.loss_unit == "message" else max(1, -(-nbytes // self.mtu_bytes))

    def backoff(self, attempt: int) -> float:
        """Seconds waited after failed attempt number ``attempt`` (1-based) before the next one."""
        return min(self.backoff_s * self.backoff_factor ** (attempt - 1), self.max_backoff_s)

    def expected_retry_s(self, nbytes: int, loss: float, attempt_s: float) -> float:
        """Expected seconds that retries add to a message of ``nbytes`` whose attempt takes ``attempt_s``.

        Retry ``m`` happens when the message needs more than ``m`` rounds (``P(M > m)``, see
        :func:`expected_rounds`) and costs the timeout ``timeout_factor * attempt_s`` plus
        ``backoff(m)``. Retries of fewer packets are priced as a whole attempt (an upper bound; the
        latency dominates an attempt on a lossy WAN).
        """
        n = self.packets(checks.integer("nbytes", nbytes, low=0))
        p = checks.number("loss", loss, low=0.0, high=1.0)
        timeout = self.timeout_factor * checks.number("attempt_s", attempt_s, low=0.0)
        return sum(_rounds_tail(n, p, m) * (timeout + self.backoff(m)) for m in range(1, self.max_retries + 1))


def expected_rounds(packets: int, loss: float, max_rounds: int | None = None) -> float:
    """Expected sending rounds for ``packets`` packets each lost with probability ``loss``, only lost ones resent.

    A packet needs a geometric number of rounds, so the rounds ``M`` of the message satisfy
    ``P(M > m) = 1 - (1 - loss**m)**packets`` and ``E[M] = sum_{m >= 0} P(M > m)``; with
    ``max_rounds`` the sum stops there (``E[min(M, max_rounds)]``: a sender that gives up). Planners
    use it to price a message under per-packet loss (see ``adaptation``'s per-link compression).
    """
    n = checks.integer("packets", packets, low=1)
    p = checks.number("loss", loss, low=0.0, high=1.0)
    if max_rounds is not None:
        max_rounds = checks.integer("max_rounds", max_rounds, low=1)
    elif p == 1.0:
        raise ConfigError("loss", loss, "< 1 without max_rounds (every packet lost: the rounds never end)")
    total, m = 0.0, 0
    while max_rounds is None or m < max_rounds:
        tail = _rounds_tail(n, p, m)
        if tail < 1e-15:
            break
        total, m = total + tail, m + 1
    return total


def _rounds_tail(n: int, p: float, m: int) -> float:
    """``P(M > m) = 1 - (1 - p**m)**n``, computed without cancellation when it is small."""
    if m == 0 or p == 1.0:
        return 1.0
    return -math.expm1(n * math.log1p(-(p**m)))


# --------------------------------------------------------------------------- links and transfers


@dataclass
class Link:
    """The link between one node and the coordinator.

    ``base_latency_ms`` already includes the region's extra latency; it is drawn
    once when the link is created so a node keeps its distance for the whole run.
    """

    node: int
    profile: LinkProfile
    region: str
    base_latency_ms: float

    def __post_init__(self) -> None:
        self.node = checks.integer("node", self.node, low=0, accepted="a node id (int >= 0)")
        if not isinstance(self.profile, LinkProfile):
            raise ConfigError("profile", self.profile, "a LinkProfile")
        checks.choice("region", self.region, REGIONS)
        self.base_latency_ms = checks.number(
            "base_latency_ms", self.base_latency_ms, low=0.0, accepted=">= 0 milliseconds"
        )


@dataclass(frozen=True)
class Transfer:
    """One message (model download or update upload) in virtual time.

    ``end`` is the arrival time when ``ok``, otherwise the time the sender gave
    up; ``reason`` is the last failed attempt's cause (``"lost"``,
    ``"disconnected"`` or ``"partitioned"``) and None on success.
    ``sent_bytes`` is what went on the wire over all attempts when packets were
    resent selectively; None under the message model, where every attempt
    carries ``nbytes`` (see :attr:`bytes_sent`).
    """

    node: int
    nbytes: int
    start: float
    end: float
    ok: bool
    attempts: int
    reason: str | None = None
    sent_bytes: int | None = None

    @property
    def bytes_sent(self) -> int:
        """Bytes on the wire, retries included."""
        return self.nbytes * self.attempts if self.sent_bytes is None else self.sent_bytes

    @property
    def duration(self) -> float:
        """Seconds from the first attempt to arrival (or to giving up)."""
        return self.end - self.start

    @property
    def retries(self) -> int:
        """Attempts beyond the first."""
        return self.attempts - 1


# --------------------------------------------------------------------------- scheduled events


def _window(start: Any, duration: Any, *, open_ended: bool = False) -> tuple[float, float | None]:
    """Validate an event's ``start`` and ``duration`` (None allowed only when open-ended)."""
    s = checks.number("start", start, low=0.0, accepted="a time >= 0 in simulated seconds")
    if duration is None and open_ended:
        return s, None
    d = checks.number(
        "duration",
        duration,
        low=0.0,
        open_low=True,
        accepted="> 0 seconds" + (", or None for until a Reconnect" if open_ended else ""),
    )
    return s, d


@dataclass(frozen=True)
class LatencySpike:
    """Adds ``extra_ms`` one-way latency to ``nodes`` during ``[start, start + duration)``."""

    nodes: tuple[int, ...]
    start: float
    duration: float
    extra_ms: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", checks.node_ids("nodes", self.nodes, single=True, empty=False))
        s, d = _window(self.start, self.duration)
        object.__setattr__(self, "start", s)
        object.__setattr__(self, "duration", d)
        object.__setattr__(
            self,
            "extra_ms",
            # bounded: 1e300 ms pushed virtual time past where float seconds can still advance
            checks.number("extra_ms", self.extra_ms, 0.0, MAX_DELAY_MS, accepted="0 to 86400000 milliseconds (a day)"),
        )


@dataclass(frozen=True)
class Disconnect:
    """``nodes`` lose their link during ``[start, start + duration)``; None lasts until a Reconnect."""

    nodes: tuple[int, ...]
    start: float
    duration: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", checks.node_ids("nodes", self.nodes, single=True, empty=False))
        s, d = _window(self.start, self.duration, open_ended=True)
        object.__setattr__(self, "start", s)
        object.__setattr__(self, "duration", d)


@dataclass(frozen=True)
class Reconnect:
    """Ends, at ``at``, every Disconnect of ``nodes`` that started at or before ``at``."""

    nodes: tuple[int, ...]
    at: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", checks.node_ids("nodes", self.nodes, single=True, empty=False))
        object.__setattr__(self, "at", checks.number("at", self.at, accepted="a finite time in simulated seconds"))


@dataclass(frozen=True)
class Partition:
    """``nodes`` are cut off from the coordinator during ``[start, start + duration)``."""

    nodes: tuple[int, ...]
    start: float
    duration: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", checks.node_ids("nodes", self.nodes, single=True, empty=False))
        s, d = _window(self.start, self.duration)
        object.__setattr__(self, "start", s)
        object.__setattr__(self, "duration", d)


@dataclass(frozen=True)
class ProfileChange:
    """From ``at`` on, ``nodes`` use the named profile.

    The link keeps its relative position in the latency range (a node at the
    fast end of "good" lands at the fast end of "poor"), so no random draw is
    needed and conditions stay a pure function of the event list.
    """

    nodes: tuple[int, ...]
    at: float
    profile: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", checks.node_ids("nodes", self.nodes, single=True, empty=False))
        object.__setattr__(self, "at", checks.number("at", self.at, accepted="a finite time in simulated seconds"))
        checks.choice("profile", self.profile, PROFILES)


NetworkEvent = LatencySpike | Disconnect | Reconnect | Partition | ProfileChange
_EVENT_TYPES: dict[str, type] = {c.__name__: c for c in (LatencySpike, Disconnect, Reconnect, Partition, ProfileChange)}


def _event_start(event: NetworkEvent) -> float:
    """The instant an event takes effect (``start`` or ``at``)."""
    return event.at if isinstance(event, (Reconnect, ProfileChange)) else event.start


@dataclass(frozen=True)
class LinkConditions:
    """Effective state of one link at one instant.

    ``latency_s`` is base + region + active spikes, without jitter; ``reason``
    is None when connected, else ``"disconnected"`` or ``"partitioned"``.
    """

    profile: LinkProfile
    latency_s: float
    connected: bool
    reason: str | None = None


def _lost_packets(n: int, p: float, u: float) -> int:
    """``Binomial(n, p)`` from one uniform ``u`` in ``[0, 1)``: the smallest ``k`` with ``P(K > k) <= u``.

    Inverting the distribution (instead of ``rng.binomial``, whose stream use varies) keeps one
    uniform per attempt. For ``n = 1`` it is ``u < p``, the message model's rule, exactly.
    """
    if n == 1 or p == 0.0:
        return int(u < p)
    k = np.arange(n + 1)
    log_choose = np.concatenate(([0.0], np.cumsum(np.log(n - k[:-1]) - np.log(k[1:]))))
    pmf = np.exp(log_choose + k * math.log(p) + (n - k) * math.log1p(-p))
    above = pmf[::-1].cumsum()[::-1]  # above[k] = P(K >= k), so P(K > k) = above[k + 1]
    tail = np.append(above[1:], 0.0) / above[0]  # normalised: rounding cannot leave u beyond every tail
    return int(np.argmax(tail <= u))


# --------------------------------------------------------------------------- the network


def _resolve_mix(mix: str | Mapping[str, float] | LinkProfile) -> list[tuple[LinkProfile, float]]:
    """Turn a mix name, profile name, fraction dict or LinkProfile into (profile, fraction) pairs."""
    accepted = (
        f"a mix ({', '.join(MIXES)}), a profile ({', '.join(PROFILES)}), "
        "a dict profile -> fraction summing to 1, or a LinkProfile"
    )
    if isinstance(mix, LinkProfile):
        return [(mix, 1.0)]
    if isinstance(mix, str):
        if mix in MIXES:
            mix = MIXES[mix]
        elif mix in PROFILES:
            return [(PROFILES[mix], 1.0)]
        else:
            raise ConfigError("network", mix, accepted)
    if not isinstance(mix, Mapping) or not mix:
        raise ConfigError("network", mix, accepted)
    pairs = []
    for name, fraction in mix.items():
        if name not in PROFILES:
            raise ConfigError("network", name, f"profile names: {', '.join(PROFILES)}")
        pairs.append((PROFILES[name], checks.number("network", fraction, low=0.0, accepted="fractions >= 0")))
    if abs(sum(f for _, f in pairs) - 1.0) > 1e-6:
        raise ConfigError("network", dict(mix), "fractions summing to 1")
    return pairs


def _largest_remainder(fractions: Sequence[float], n: int) -> list[int]:
    """Exact integer counts summing to ``n`` nearest to ``n * fractions`` (Hamilton's method).

    Ties in the remainders go to the earlier entry, so counts are deterministic.
    """
    quotas = [f * n for f in fractions]
    counts = [math.floor(q) for q in quotas]
    order = sorted(range(len(quotas)), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


def _draw_base_latency_ms(profile: LinkProfile, region: str, *, seed: int, node: int) -> float:
    """Uniform draw in the profile's range plus the region's extra latency.

    Seeded by (seed, node) so a node's latency does not depend on which other
    nodes exist or in what order they were added.
    """
    low, high = profile.latency_ms
    u = np.random.default_rng([seed, node, _LATENCY_TAG]).random()
    return low + u * (high - low) + REGIONS[region]


class Links(MutableMapping[int, Link]):
    """Node id -> :class:`Link`, where the links :meth:`Network.build` made are two small arrays.

    Why: a million registered nodes must not hold a million Link objects (nor draw a million
    latencies up front). A built link is made from its profile and region index when first
    read, with the same (seed, node) draw an eager build makes, then kept (so a caller may
    change it in place); links added one by one are stored as objects.
    """

    def __init__(self) -> None:
        self._made: dict[int, Link] = {}
        self._profiles: list[LinkProfile] = []
        self._regions: list[str] = []
        self._profile = np.zeros(0, dtype=np.int8)
        self._region = np.zeros(0, dtype=np.int8)
        self._built = np.zeros(0, dtype=bool)  # node id < len: a built link not yet made or removed
        self._seed = 0

    def build(self, profiles: list[LinkProfile], profile: np.ndarray, regions: list[str], seed: int) -> None:
        """Links for nodes ``0..len(profile)-1``: ``profiles[profile[i]]``, regions round-robin."""
        n = len(profile)
        self._profiles, self._profile, self._seed = profiles, profile.astype(np.int8), seed
        self._regions = regions
        self._region = (np.arange(n) % len(regions)).astype(np.int8)
        self._built = np.ones(n, dtype=bool)

    def _lazy(self, node: object) -> bool:
        return isinstance(node, (int, np.integer)) and 0 <= node < len(self._built) and bool(self._built[node])

    def __getitem__(self, node: int) -> Link:
        link = self._made.get(node)
        if link is not None:
            return link
        if not self._lazy(node):
            raise KeyError(node)
        profile, region = self._profiles[self._profile[node]], self._regions[self._region[node]]
        link = Link(int(node), profile, region, _draw_base_latency_ms(profile, region, seed=self._seed, node=node))
        self._made[int(node)] = link
        self._built[node] = False
        return link

    def region(self, node: int) -> str:
        """A node's region without making its link."""
        return self._regions[self._region[node]] if self._lazy(node) else self[node].region

    def __contains__(self, node: object) -> bool:
        return node in self._made or self._lazy(node)

    def __setitem__(self, node: int, link: Link) -> None:
        if self._lazy(node):
            self._built[node] = False
        self._made[node] = link

    def __delitem__(self, node: int) -> None:
        if self._lazy(node):
            self._built[node] = False
        elif node in self._made:
            del self._made[node]
        else:
            raise KeyError(node)

    def __iter__(self) -> Iterator[int]:
        """Ids in order: built ones (made or not) first, by id, then links added one by one."""
        n = len(self._built)
        mask = self._built.copy()
        mask[[i for i in self._made if i < n]] = True
        yield from np.flatnonzero(mask).tolist()
        yield from (i for i in self._made if i >= n)

    def __len__(self) -> int:
        return int(self._built.sum()) + len(self._made)


class RegionMap(Mapping[int, str]):
    """Node id -> region name, read from the links without making them."""

    def __init__(self, links: Links) -> None:
        self._links = links

    def __getitem__(self, node: int) -> str:
        if node not in self._links:
            raise KeyError(node)
        return self._links.region(node)

    def __iter__(self) -> Iterator[int]:
        return iter(self._links)

    def __len__(self) -> int:
        return len(self._links)


class Network:
    """Links between nodes and the coordinator, plus scheduled events, in virtual time.

    Parameters
    ----------
    links
        Node id -> :class:`Link`.
    retry
        How senders retry lost messages.
    """

    def __init__(self, links: Mapping[int, Link], *, retry: RetryPolicy = RetryPolicy()) -> None:
        if not isinstance(retry, RetryPolicy):
            raise ConfigError("retry", retry, "a RetryPolicy")
        for node, link in links.items():
            if not isinstance(link, Link) or link.node != node:
                raise ConfigError("links", {node: link}, "node id -> Link with that node id")
        self.links: Links = Links()
        self.links.update(links)
        self.retry = retry
        self._events: list[NetworkEvent] = []
        self._by_node: dict[int, list[NetworkEvent]] = {}

    @property
    def regions(self) -> RegionMap:
        """Node id -> region, without making links."""
        return RegionMap(self.links)

    def __repr__(self) -> str:
        return f"Network(links={len(self.links)}, events={len(self._events)}, retry={self.retry!r})"

    @classmethod
    def build(
        cls,
        node_ids: Sequence[int],
        *,
        mix: str | Mapping[str, float] | LinkProfile = "mixed",
        regions: Sequence[str] | None = None,
        seed: int = 0,
        retry: RetryPolicy = RetryPolicy(),
    ) -> Network:
        """Build one link per node from a mix of profiles.

        Profile counts are exact (largest remainder on ``len(node_ids) *
        fraction``), then shuffled with ``seed`` so that node 0 is not always
        the best-connected one. Regions go round-robin over ``regions`` in node
        order (all ``"local"`` when None). Each base latency is drawn from
        ``(seed, node)``; same inputs, same links. For ``range(n)`` the links are
        made when first read (see :class:`Links`), with the same values.
        """
        seed = checks.integer("seed", seed, low=0)
        dense = isinstance(node_ids, range) and node_ids.start == 0 and node_ids.step == 1
        ids = node_ids if dense else list(checks.node_ids("node_ids", node_ids))  # a range needs no check
        if not dense and len(set(ids)) != len(ids):
            raise ConfigError("node_ids", list(node_ids), "distinct node ids")
        region_names = ["local"] if regions is None else list(regions)
        if isinstance(regions, str) or not region_names:
            raise ConfigError("region", regions, f"a non-empty sequence of: {', '.join(REGIONS)}")
        for region in region_names:
            checks.choice("region", region, REGIONS)
        pairs = _resolve_mix(mix)
        counts = _largest_remainder([f for _, f in pairs], len(ids))
        order = np.random.default_rng([seed, _SHUFFLE_TAG]).permutation(len(ids))
        network = cls({}, retry=retry)
        if dense:  # nodes 0..n-1: links as arrays, each made when first read (the same draws)
            kinds = np.repeat(np.arange(len(pairs)), counts)[order]
            network.links.build([p for p, _ in pairs], kinds, region_names, seed)
            return network
        profiles = [p for (p, _), c in zip(pairs, counts) for _ in range(c)]
        for i, node in enumerate(ids):
            network.add_link(node, profiles[order[i]], region=region_names[i % len(region_names)], seed=seed)
        logger.debug("built network of %d links: %s", len(ids), {p.name: c for (p, _), c in zip(pairs, counts)})
        return network

    # ------------------------------------------------------------------ links

    def add_link(self, node: int, profile: str | LinkProfile, *, region: str = "local", seed: int = 0) -> Link:
        """Create and return the link of a new node (e.g. one joining mid-run)."""
        node = checks.integer("node", node, low=0, accepted="a node id (int >= 0)")
        if node in self.links:
            raise ConfigError("node", node, "a node id without a link", "remove_link(node) first")
        if isinstance(profile, str):
            profile = PROFILES[checks.choice("network", profile, PROFILES)]
        checks.choice("region", region, REGIONS)
        link = Link(
            node,
            profile,
            region,
            _draw_base_latency_ms(profile, region, seed=checks.integer("seed", seed, low=0), node=node),
        )
        self.links[node] = link
        return link

    def remove_link(self, node: int) -> Link:
        """Remove and return a node's link; its past events stay in the record."""
        link = self._link(node)
        del self.links[node]
        return link

    def _link(self, node: int) -> Link:
        try:
            return self.links[node]
        except (KeyError, TypeError):
            raise KeyError(f"node {node!r} has no link in this network ({len(self.links)} links)") from None

    # ------------------------------------------------------------------ events

    @property
    def events(self) -> tuple[NetworkEvent, ...]:
        """Scheduled events in the order they were scheduled."""
        return tuple(self._events)

    def schedule(self, event: NetworkEvent) -> None:
        """Add an event; every node it names must have a link."""
        if type(event) not in _EVENT_TYPES.values():
            raise ConfigError("event", event, ", ".join(_EVENT_TYPES))
        missing = [n for n in event.nodes if n not in self.links]
        if missing:
            raise ConfigError("nodes", missing, f"ids of nodes with a link ({len(self.links)} links)")
        self._record(event)
        logger.debug("scheduled %r", event)

    def _record(self, event: NetworkEvent) -> None:
        self._events.append(event)
        for n in event.nodes:
            self._by_node.setdefault(n, []).append(event)

    def events_between(self, t0: float, t1: float) -> list[NetworkEvent]:
        """Events that take effect in ``(t0, t1]``, by time then scheduling order (for reports)."""
        hits = [e for e in self._events if t0 < _event_start(e) <= t1]
        return sorted(hits, key=_event_start)

    def conditions(self, node: int, t: float) -> LinkConditions:
        """Effective state of ``node``'s link at time ``t``.

        A pure function of the link and the event list. A node both
        disconnected and partitioned reports ``"disconnected"`` (its own link
        is down first). Concurrent spikes add up; among profile changes the
        latest ``at <= t`` wins, ties going to the one scheduled last.
        """
        link = self._link(node)
        t = checks.number("t", t, accepted="a finite time in simulated seconds")
        events = self._by_node.get(node, ())
        extra_ms, disconnected, partitioned = 0.0, False, False
        changed: ProfileChange | None = None
        for e in events:
            if isinstance(e, LatencySpike):
                if e.start <= t < e.start + e.duration:
                    extra_ms += e.extra_ms
            elif isinstance(e, Disconnect):
                disconnected = disconnected or e.start <= t < self._disconnect_end(e, node)
            elif isinstance(e, Partition):
                partitioned = partitioned or e.start <= t < e.start + e.duration
            elif isinstance(e, ProfileChange) and e.at <= t and (changed is None or e.at >= changed.at):
                changed = e
        profile, base_ms = link.profile, link.base_latency_ms
        if changed is not None and PROFILES[changed.profile] != link.profile:
            profile = PROFILES[changed.profile]
            base_ms = self._rescaled_base_ms(link, profile)
        reason = "disconnected" if disconnected else "partitioned" if partitioned else None
        return LinkConditions(profile, (base_ms + extra_ms) / 1e3, reason is None, reason)

    def _disconnect_end(self, event: Disconnect, node: int) -> float:
        """End of a disconnect: its duration, cut short by the first Reconnect at or after its start."""
        end = math.inf if event.duration is None else event.start + event.duration
        for e in self._by_node.get(node, ()):
            if isinstance(e, Reconnect) and event.start <= e.at < end:
                end = e.at
        return end

    @staticmethod
    def _rescaled_base_ms(link: Link, profile: LinkProfile) -> float:
        """Base latency under another profile, keeping the link's quantile in the range."""
        region_ms = REGIONS[link.region]
        low, high = link.profile.latency_ms
        u = 0.5 if high == low else min(max((link.base_latency_ms - region_ms - low) / (high - low), 0.0), 1.0)
        new_low, new_high = profile.latency_ms
        return new_low + u * (new_high - new_low) + region_ms

    # ------------------------------------------------------------------ transfers

    def transfer(
        self, node: int, nbytes: int, start: float, rng: np.random.Generator, *, upload: bool = False
    ) -> Transfer:
        """Send ``nbytes`` between ``node`` and the coordinator, starting at ``start``.

        Algorithm, with ``t = start``, ``n = retry.packets(nbytes)`` (1 under the message model),
        ``missing = n`` and attempts ``k = 1 .. 1 + max_retries``:

        1. ``cond = conditions(node, t)`` (events are sampled when the attempt starts);
        2. draw ``z`` (one standard normal) then ``u`` (one uniform), whatever the outcome;
        3. ``d = cond.latency_s + |z| * jitter + b * 8 / bandwidth`` with ``b`` the bytes of the
           missing packets, ``ceil(missing * nbytes / n)`` (``nbytes`` on the first attempt), and
           bandwidth the link's uplink rate for an ``upload`` (``LinkProfile.mbps``);
        4. ``lost = missing`` if disconnected or partitioned, else
           ``lost = _lost_packets(missing, loss, u)``: ``Binomial(missing, loss)`` drawn by inverting
           its distribution at ``u`` (one packet: lost when ``u < loss``, the message model's rule);
        5. if ``lost == 0``: arrive at ``t + d``; otherwise the attempt failed ("lost",
           "disconnected" or "partitioned"): the sender notices after ``timeout = timeout_factor * d``,
           waits ``backoff(k) = min(backoff_s * backoff_factor**(k-1), max_backoff_s)``, and retries
           the ``lost`` packets at ``t += timeout + backoff(k)`` (``missing = lost``).

        After the last failed attempt the sender gives up at ``t + timeout``
        (no trailing backoff). The random stream consumed depends only on the
        number of attempts, in either mode, and a message of one packet takes
        exactly the message model's path. Packets are taken to be of equal size
        (``nbytes / n``): the draw counts lost packets, not which ones.
        """
        self._link(node)
        nbytes = checks.integer("nbytes", nbytes, low=0)
        t0 = checks.number("start", start, accepted="a finite time in simulated seconds")
        retry, t = self.retry, t0
        packets = retry.packets(nbytes)
        missing, sent = packets, 0
        last = 1 + retry.max_retries
        for attempt in range(1, last + 1):
            cond = self.conditions(node, t)
            jitter_s = abs(rng.standard_normal()) * cond.profile.jitter_ms / 1e3
            u = rng.random()
            size = -(-missing * nbytes // packets)  # the missing packets' bytes: nbytes on the first attempt
            sent += size
            d = cond.latency_s + jitter_s + size * 8 / (cond.profile.mbps(upload) * 1e6)
            lost = _lost_packets(missing, cond.profile.loss, u) if cond.connected else missing
            counted = None if retry.loss_unit == "message" else sent
            if lost == 0:
                return Transfer(node, nbytes, t0, t + d, True, attempt, sent_bytes=counted)
            reason = cond.reason if not cond.connected else "lost"
            timeout = retry.timeout_factor * d
            if attempt == last:
                return Transfer(node, nbytes, t0, t + timeout, False, attempt, reason, counted)
            t += timeout + retry.backoff(attempt)
            missing = lost
        raise AssertionError("unreachable: the loop returns on its last attempt")

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict[str, Any]:
        """Links, events and retry policy as plain JSON-serialisable data, for checkpoints."""
        return {
            "links": [
                {
                    "node": link.node,
                    "profile": dataclasses.asdict(link.profile),
                    "region": link.region,
                    "base_latency_ms": link.base_latency_ms,
                }
                for link in self.links.values()
            ],
            "events": [{"kind": type(e).__name__, **dataclasses.asdict(e)} for e in self._events],
            "retry": dataclasses.asdict(self.retry),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Replace links, events and retry policy with a :meth:`state_dict` snapshot."""
        links = {}
        for item in state["links"]:
            link = Link(item["node"], LinkProfile(**item["profile"]), item["region"], item["base_latency_ms"])
            links[link.node] = link
        events = []
        for item in state["events"]:
            fields = dict(item)
            kind = fields.pop("kind")
            if kind not in _EVENT_TYPES:
                raise ConfigError("event", kind, ", ".join(_EVENT_TYPES))
            events.append(_EVENT_TYPES[kind](**fields))
        restored = Network(links, retry=RetryPolicy(**state["retry"]))
        for e in events:  # not schedule(): events of since-removed nodes belong to the record
            restored._record(e)
        self.links, self.retry = restored.links, restored.retry  # every link made: restored values win
        self._events, self._by_node = restored._events, restored._by_node
