"""Node selection: which of the available nodes train this round, and why.

Strategies (``k`` = slots to fill; a node never observed counts with
``prior_score``, optimistic so that unknown nodes get tried):

* ``random``: ``k`` nodes uniformly (FedAvg's sampling), seeded by (seed, round);
* ``all``: every candidate;
* ``threshold``: ``k`` uniformly among nodes with score >= ``min_score``;
* ``top_n``: the ``k`` highest scores;
* ``adaptive_threshold``: like ``threshold`` with the bar set relative to the
  cluster: ``relative_threshold x median score`` of the candidates;
* ``contribution``: the ``k`` highest ``(0.5 x efficiency + 0.5 x reliability) x accepted share``,
  efficiency = compute / (compute + waiting) (prior ``prior_contribution``), accepted share =
  accepted / delivered updates, so a node whose every update is rejected scores 0;
* ``utility``: Oort (Lai et al., OSDI 2021). Statistical utility
  ``|B_i| x loss_i`` (samples times the last local loss), normalised to [0, 1],
  times the system penalty ``(T / t_i) ** alpha`` when the node's expected round
  time ``t_i`` exceeds the preferred duration ``T`` (``preferred_duration_s``,
  default the median expected time), plus Oort's staleness bonus
  ``sqrt(staleness x ln(round) / last_round_selected)``. ``exploration x k``
  slots (and any slot the explored nodes cannot fill) go to never-tried nodes,
  drawn uniformly. Simplification: exploitation takes the top utilities, not
  Oort's probabilistic sampling above a cutoff.

Threshold strategies that find no eligible node fall back to the ``k`` best
scores, so a round is never empty. ``force_include`` nodes are taken first
(when available), ``force_exclude`` nodes never. A ``trend_penalty`` (the
proactive policy) lowers the score of nodes whose trend is degrading before
they fail.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from hypergpu_lab.errors import ConfigError

from ..checks import choice, integer, node_ids, number
from .monitor import NetworkMonitor

log = logging.getLogger(__name__)

SELECTION_STRATEGIES = ("random", "all", "threshold", "top_n", "adaptive_threshold", "contribution", "utility")
_TAG = 0x5E1EC7 + 5


@dataclass(frozen=True)
class Selection:
    """The chosen nodes in order of preference, each with the reason it was picked."""

    nodes: tuple[int, ...]
    reasons: dict[int, str] = field(default_factory=dict)
    summary: str = ""


def jain_index(counts: Sequence[float]) -> float:
    """Jain's fairness index (sum x)^2 / (n sum x^2): 1 when all equal, 1/n when one takes all."""
    x = np.asarray(counts, dtype=float)
    denom = len(x) * float(np.dot(x, x))
    return float(x.sum() ** 2 / denom) if denom > 0 else 1.0


class NodeSelector:
    """Picks nodes by one strategy; stateless apart from its options (the monitor holds the history)."""

    def __init__(
        self,
        *,
        strategy: str = "utility",
        seed: int = 0,
        min_score: float = 50.0,
        relative_threshold: float = 0.8,
        prior_score: float = 75.0,
        prior_contribution: float = 1.0,
        alpha: float = 2.0,
        preferred_duration_s: float | None = None,
        exploration: float = 0.2,
        staleness: float = 0.1,
        trend_penalty: float = 0.0,
        force_include: Sequence[int] = (),
        force_exclude: Sequence[int] = (),
    ) -> None:
        self.strategy = choice("selection.strategy", strategy, SELECTION_STRATEGIES)
        self.seed = integer("seed", seed, low=0)
        self.min_score = number("selection.min_score", min_score, low=0.0, high=100.0)
        self.relative_threshold = number("selection.relative_threshold", relative_threshold, low=0.0, high=2.0)
        self.prior_score = number("selection.prior_score", prior_score, low=0.0, high=100.0)
        self.prior_contribution = number("selection.prior_contribution", prior_contribution, low=0.0, high=1.0)
        self.alpha = number("selection.alpha", alpha, low=0.0)
        self.preferred_duration_s = (
            None
            if preferred_duration_s is None
            else number("selection.preferred_duration_s", preferred_duration_s, low=0.0, open_low=True)
        )
        self.exploration = number("selection.exploration", exploration, low=0.0, high=1.0)
        self.staleness = number("selection.staleness", staleness, low=0.0)
        self.trend_penalty = number("selection.trend_penalty", trend_penalty, low=0.0, high=100.0)
        self.force_include = frozenset(node_ids("selection.force_include", force_include))
        self.force_exclude = frozenset(node_ids("selection.force_exclude", force_exclude))
        if both := sorted(self.force_include & self.force_exclude):
            raise ConfigError("selection.force_include", both, "nodes not also in force_exclude")

    # -- scores --------------------------------------------------------------------------------
    def quality(self, node: int, monitor: NetworkMonitor) -> float:
        """Monitor score (prior if unobserved), less the trend penalty when degrading."""
        s = monitor.score(node)
        s = self.prior_score if s is None else s
        return s - self.trend_penalty if monitor.trend(node) == "degrading" else s

    def contribution(self, node: int, monitor: NetworkMonitor) -> float:
        """(0.5 x efficiency + 0.5 x reliability) x accepted share; the prior for a node never observed.

        The accepted share makes a node whose updates are all rejected score 0: its link delivers on
        time (reliability 1) but it contributes nothing.
        """
        if not monitor.observed(node):
            c = self.prior_contribution
        else:
            eff = monitor.efficiency(node)
            c = 0.5 * (self.prior_contribution if eff is None else eff) + 0.5 * (monitor.reliability(node) or 0.0)
            share = monitor.accepted_share(node)
            c *= 1.0 if share is None else share
        return c - self.trend_penalty / 100 if monitor.trend(node) == "degrading" else c

    def utilities(self, nodes: Sequence[int], monitor: NetworkMonitor, round_: int) -> dict[int, float]:
        """Oort utility of each observed node (see the module docstring)."""
        stat = {n: (monitor.num_samples(n) or 0) * (monitor.recent_loss(n) or 0.0) for n in nodes}
        top = max(stat.values(), default=0.0) or 1.0
        dur = {n: monitor.expected_duration(n) for n in nodes}
        known = [d for d in dur.values() if d is not None]
        pref = self.preferred_duration_s or (statistics.median(known) if known else None)
        log_round = math.log(max(round_, 1))
        out = {}
        for n in nodes:
            t = dur[n]
            penalty = 1.0
            if pref is not None and (t is None or t > pref):
                penalty = 0.0 if t is None else (pref / t) ** self.alpha
            bonus = math.sqrt(self.staleness * log_round / max(monitor.last_selected(n), 1))
            u = stat[n] / top * penalty + bonus
            out[n] = u * (1 - self.trend_penalty / 100) if monitor.trend(n) == "degrading" else u
        return out

    # -- selection -----------------------------------------------------------------------------
    def _sample(self, pool: Sequence[int], k: int, round_: int, salt: int = 0) -> list[int]:
        pool = sorted(pool)
        if k >= len(pool):
            return pool
        rng = np.random.default_rng([self.seed, round_, _TAG, salt])
        return sorted(int(i) for i in rng.choice(pool, size=k, replace=False))

    def select(self, candidates: Sequence[int], k: int, monitor: NetworkMonitor, round_: int) -> Selection:
        """Choose up to ``k`` of ``candidates`` (all of them for ``all``)."""
        cands = sorted(set(candidates) - self.force_exclude)
        forced = [n for n in cands if n in self.force_include]
        reasons = {n: "forced include" for n in forced}
        rest = [n for n in cands if n not in self.force_include]
        k_left = max(0, min(k, len(cands)) - len(forced))
        picked, why, summary = self._pick(rest, k_left, monitor, round_)
        reasons.update(why)
        return Selection(tuple(forced + picked), reasons, summary)

    def _pick(
        self, cands: list[int], k: int, monitor: NetworkMonitor, round_: int
    ) -> tuple[list[int], dict[int, str], str]:
        s = self.strategy
        if s == "all":
            return cands, {n: "all available" for n in cands}, f"all {len(cands)} available"
        if k <= 0 or not cands:
            return [], {}, "no slot left"
        if s == "random":
            chosen = self._sample(cands, k, round_)
            return chosen, {n: "uniform sample" for n in chosen}, f"random {len(chosen)} of {len(cands)}"
        if s == "contribution":
            c = {n: self.contribution(n, monitor) for n in cands}
            chosen = sorted(cands, key=lambda n: (-c[n], n))[:k]
            return chosen, {n: f"contribution {c[n]:.2f}" for n in chosen}, f"top {k} by contribution"
        if s == "utility":
            return self._oort(cands, k, monitor, round_)
        score = {n: self.quality(n, monitor) for n in cands}
        best = sorted(cands, key=lambda n: (-score[n], n))
        if s == "top_n":
            chosen = best[:k]
            return chosen, {n: f"score {score[n]:.1f} in top {k}" for n in chosen}, f"top {k} by score"
        # threshold / adaptive_threshold
        bar = self.min_score if s == "threshold" else self.relative_threshold * statistics.median(score.values())
        eligible = [n for n in cands if score[n] >= bar]
        if not eligible:
            chosen = best[:k]
            return (
                chosen,
                {n: f"no node >= {bar:.1f}; best score {score[n]:.1f}" for n in chosen},
                f"no node above {bar:.1f}: best {len(chosen)}",
            )
        chosen = self._sample(eligible, k, round_)
        return (
            chosen,
            {n: f"score {score[n]:.1f} >= {bar:.1f}" for n in chosen},
            f"{len(chosen)} of {len(eligible)} nodes with score >= {bar:.1f}",
        )

    def _oort(
        self, cands: list[int], k: int, monitor: NetworkMonitor, round_: int
    ) -> tuple[list[int], dict[int, str], str]:
        explored = [n for n in cands if monitor.observed(n)]
        unexplored = [n for n in cands if not monitor.observed(n)]
        n_explore = min(len(unexplored), max(k - len(explored), math.ceil(self.exploration * k)))
        explore = self._sample(unexplored, n_explore, round_, salt=1)
        util = self.utilities(explored, monitor, round_)
        exploit = sorted(explored, key=lambda n: (-util[n], n))[: k - n_explore]
        reasons = {n: f"utility {util[n]:.3f}" for n in exploit} | {n: "explore (never tried)" for n in explore}
        return exploit + explore, reasons, f"Oort: {len(exploit)} by utility, {len(explore)} explored"
