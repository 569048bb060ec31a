"""Adaptive batch sizes: per node, from its link latency and observed throughput, within hard limits.

Strategies (``target`` before limits; ``L`` = the monitor's mean transfer
latency, ``S`` = observed samples per compute second, ``ref`` = the median
over every node observed so far (a cluster reference that does not move with
who was selected), a node never observed gets ``base``):

* ``fixed``: ``base`` (the baseline);
* ``latency``: ``base * L / L_ref``: a slow link gets a larger batch, i.e.
  more samples per step so that each communication carries more work;
* ``throughput``: ``base * S / S_ref``: follow what the GPU actually delivers;
* ``hybrid``: ``0.6 * latency target + 0.4 * throughput target``.

A target within a factor ``1 + tolerance`` of the current size keeps the
current size (a dead band, so sizes do not flap between two powers of two).
Limits, applied in this order: gradual change (at most ``max_step`` times up
or down from the node's current batch per round), the ``[min_batch,
max_batch]`` bounds, optional powers of two (nearest in log scale, kept inside
both windows), then the node's GPU memory (``Node.max_batch(cost)``) as a hard
ceiling that overrides everything else, even ``min_batch``.

Note: in this lab's cost model a node's compute time is ``samples x epochs x
FLOPs / throughput``, independent of the batch size, so batch size changes the
number of SGD steps per round (learning dynamics), not the round's duration.
"""

from __future__ import annotations

import logging
import math
import statistics
from typing import Any

from hypergpu_lab.errors import ConfigError

from ..checks import boolean, choice, integer, number
from .monitor import NetworkMonitor

log = logging.getLogger(__name__)

BATCH_STRATEGIES = ("fixed", "latency", "throughput", "hybrid")


def _floor_pow2(x: float) -> int:
    return 1 << max(0, int(math.floor(math.log2(max(x, 1.0)))))


class BatchSizeController:
    """Proposes one batch size per node and round; remembers each node's current size and history."""

    def __init__(
        self,
        *,
        strategy: str = "hybrid",
        base: int = 32,
        min_batch: int = 8,
        max_batch: int = 256,
        powers_of_two: bool = True,
        max_step: float = 2.0,
        latency_weight: float = 0.6,
        tolerance: float = 0.5,
        history: int = 50,
    ) -> None:
        self.strategy = choice("batch.strategy", strategy, BATCH_STRATEGIES)
        self.min_batch = integer("batch.min_batch", min_batch, low=1)
        self.max_batch = integer("batch.max_batch", max_batch, low=self.min_batch)
        self.base = integer("batch.base", base, low=1)
        if not self.min_batch <= self.base <= self.max_batch:
            raise ConfigError(
                "batch.base", base, f"an integer in [min_batch, max_batch] = [{self.min_batch}, {self.max_batch}]"
            )
        self.powers_of_two = boolean("batch.powers_of_two", powers_of_two)
        self.max_step = number("batch.max_step", max_step, low=1.0)
        if powers_of_two:
            if _floor_pow2(self.max_batch) < self.min_batch:
                raise ConfigError("batch.max_batch", max_batch, "bounds that hold a power of two")
            if self.base & (self.base - 1):
                raise ConfigError("batch.base", base, "a power of two (powers_of_two=True)")
            if self.max_step < 2.0:
                raise ConfigError("batch.max_step", max_step, ">= 2 when powers_of_two (one doubling)")
        self.latency_weight = number("batch.latency_weight", latency_weight, low=0.0, high=1.0)
        self.tolerance = number("batch.tolerance", tolerance, low=0.0)
        self.history_len = integer("batch.history", history, low=1)
        self.current: dict[int, int] = {}
        self.history: dict[int, list[tuple[int, int]]] = {}

    # -- targets -------------------------------------------------------------------------------
    def targets(self, nodes: list[int], monitor: NetworkMonitor) -> dict[int, tuple[float, str]]:
        """Unbounded target batch and its reason for each node, by the chosen strategy."""
        cluster = sorted(set(monitor.nodes()) | set(nodes))
        lat = {n: monitor.latency(n) for n in cluster}
        thr = {n: monitor.throughput(n) for n in cluster}
        known_lat = [v for v in lat.values() if v is not None and v > 0]
        known_thr = [v for v in thr.values() if v is not None and v > 0]
        lat_ref = statistics.median(known_lat) if known_lat else None
        thr_ref = statistics.median(known_thr) if known_thr else None
        out = {}
        for n in nodes:
            by_lat = self.base * lat[n] / lat_ref if lat_ref and lat[n] else None
            by_thr = self.base * thr[n] / thr_ref if thr_ref and thr[n] else None
            if self.strategy == "fixed" or (by_lat is None and by_thr is None):
                out[n] = (float(self.base), "base" if self.strategy == "fixed" else "not yet observed")
            elif self.strategy == "latency" or (self.strategy == "hybrid" and by_thr is None):
                out[n] = (by_lat or float(self.base), f"link {lat[n] or 0:.3f}s vs median {lat_ref or 0:.3f}s")
            elif self.strategy == "throughput" or by_lat is None:
                out[n] = (by_thr or float(self.base), f"{thr[n] or 0:.3g} samples/s vs median {thr_ref or 0:.3g}")
            else:
                w = self.latency_weight
                out[n] = (
                    w * by_lat + (1 - w) * by_thr,
                    f"link {lat[n]:.3f}s vs {lat_ref:.3f}s, {thr[n]:.3g} vs {thr_ref:.3g} samples/s",
                )
        return out

    # -- limits --------------------------------------------------------------------------------
    def bounded(self, desired: float, current: int) -> int:
        """``desired`` after gradual change, the bounds and (optionally) powers of two."""
        lo, hi = self.min_batch, self.max_batch
        x = min(max(desired, current / self.max_step), current * self.max_step)
        x = min(max(x, lo), hi)
        if not self.powers_of_two:
            return int(round(x))
        e_lo = math.ceil(math.log2(max(lo, current / self.max_step)) - 1e-9)
        e_hi = math.floor(math.log2(min(hi, current * self.max_step)) + 1e-9)
        if e_lo > e_hi:  # the current size sits outside the bounds (memory forced it): bounds only
            e_lo, e_hi = math.ceil(math.log2(lo) - 1e-9), math.floor(math.log2(hi) + 1e-9)
        return 1 << min(max(round(math.log2(x)), e_lo), e_hi)

    def ceiling(self, batch: int, memory_limit: int) -> int:
        """The GPU memory is a hard ceiling (0 when not even one sample fits)."""
        if memory_limit < 1:
            return 0
        if batch <= memory_limit:
            return batch
        return _floor_pow2(memory_limit) if self.powers_of_two else memory_limit

    def plan(
        self, nodes: list[int], monitor: NetworkMonitor, limits: dict[int, int], round_: int, *, adapt: bool = True
    ) -> dict[int, tuple[int, str | None]]:
        """Batch size per node and, where it changed, why. ``adapt=False`` keeps current sizes."""
        targets = self.targets(nodes, monitor) if adapt else {}
        out: dict[int, tuple[int, str | None]] = {}
        for n in nodes:
            cur = self.current.get(n, self.base)
            desired, why = targets.get(n, (float(cur), "frozen"))
            keep = not adapt or cur / (1 + self.tolerance) <= desired <= cur * (1 + self.tolerance)
            wanted = cur if keep and self.min_batch <= cur <= self.max_batch else self.bounded(desired, cur)
            b = self.ceiling(wanted, limits[n])
            reason = None
            if b != cur:
                reason = f"GPU memory ceiling ({limits[n]} samples)" if b < wanted else f"{why}: target {desired:.0f}"
            self.current[n] = b
            self.history[n] = (self.history.get(n, []) + [(round_, b)])[-self.history_len :]
            out[n] = (b, reason)
        return out

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"current": dict(self.current), "history": {n: list(h) for n, h in self.history.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.current = {int(n): int(b) for n, b in state["current"].items()}
        self.history = {int(n): [(int(r), int(b)) for r, b in h] for n, h in state["history"].items()}
