"""The adaptive policy: plan each round from what the network monitor learned, judge it afterwards.

Before a round, :meth:`AdaptivePolicy.plan` releases finished quarantines,
picks nodes (over-committing: ``ceil(K x over_commit)`` selected, the round
closing at the first ``K`` updates through ``RoundPlan.target_updates``), sets
per-node batch sizes and a deadline (``slack x`` the expected time of the K-th
fastest selected node). After it, :meth:`observe` feeds the monitor and the
quarantine, adapts the over-commitment and deadline slack, takes configuration
snapshots, rolls back when accuracy or round time degrades past a threshold,
and moves between phases:

* ``warmup``: no adaptation; uniform sampling and the base batch, so every
  mechanism starts from what FedAvg would do;
* ``adaptive``: everything adapts;
* ``convergence``: accuracy has not improved by ``plateau_delta`` for
  ``plateau_window`` rounds; batch sizes, over-commitment and slack are frozen
  (selection and quarantine go on). A drop of ``acc_drop`` below the best
  accuracy returns to ``adaptive``;
* ``completed``: ``target_accuracy`` reached or ``max_rounds`` done; nothing adapts.

Modes are presets of how boldly it adapts (:data:`MODES`); ``proactive`` also
deprioritises nodes whose score trend is degrading before they fail.

Every change is logged with its reason in ``policy.decisions`` (bounded list of
dicts) and summarised in ``RoundPlan.notes`` (they land in the round's report
events). ``state_dict`` holds everything plan/observe read, so a restored run
plans exactly as an uninterrupted one; wall-clock planning overhead is
measured but never feeds a decision.
"""

from __future__ import annotations

import copy
import inspect
import logging
import math
import time
from dataclasses import asdict, dataclass
from typing import Any

from hypergpu_lab.compression import LADDER, encoded_nbytes
from hypergpu_lab.errors import ConfigError
from hypergpu_lab.events import Decision, RoundReport
from hypergpu_lab.models import ModelCost
from hypergpu_lab.nodes import NodePool
from hypergpu_lab.plan import RoundPlan, memory_limits

from ..checks import boolean, choice, integer, number
from .batch_size import BatchSizeController
from .monitor import NetworkMonitor
from .quarantine import Quarantine
from .selection import NodeSelector, jain_index

log = logging.getLogger(__name__)

PHASES = ("warmup", "adaptive", "convergence", "completed")


@dataclass(frozen=True)
class Mode:
    """How boldly the policy adapts."""

    name: str
    over_commit: float  # starting over-commitment, and the floor it decays back to
    max_over_commit: float  # ceiling when rounds keep falling short of K updates
    max_step: float  # batch size may change by at most this factor per round
    quarantine_after: int  # consecutive failures before quarantine
    warmup_rounds: int
    deadline_slack: float  # deadline = slack x expected time of the K-th fastest selected node
    acc_drop: float  # roll back when smoothed accuracy falls this far below the snapshot's
    time_growth: float  # roll back when mean round time exceeds the snapshot's by this factor
    trend_penalty: float  # score points taken from nodes whose trend is degrading (proactive)


MODES: dict[str, Mode] = {
    m.name: m
    for m in (
        Mode("conservative", 1.1, 1.3, 2.0, 4, 3, 4.0, 0.02, 1.5, 0.0),
        Mode("reactive", 1.3, 1.6, 2.0, 3, 1, 3.0, 0.05, 2.0, 0.0),
        Mode("aggressive", 1.5, 2.0, 4.0, 2, 1, 2.0, 0.08, 3.0, 0.0),
        Mode("proactive", 1.3, 1.6, 2.0, 3, 1, 3.0, 0.05, 2.0, 15.0),
    )
}


def _build(kind: type, prefix: str, options: dict[str, Any] | None, **defaults: Any) -> Any:
    """Construct a component from defaults plus user options; an unknown option is a ConfigError."""
    options = dict(options or {})
    known = sorted(inspect.signature(kind).parameters)
    if bad := sorted(set(options) - set(known)):
        raise ConfigError(
            f"{prefix}.{bad[0]}", options[bad[0]], "an option of " + kind.__name__ + ": " + ", ".join(known)
        )
    return kind(**{**defaults, **options})


class AdaptivePolicy:
    """A :class:`~hypergpu_lab.plan.Planner` that adapts selection, batch sizes and deadlines."""

    def __init__(
        self,
        *,
        seed: int = 0,
        clients_per_round: int | None = None,
        fraction: float = 1.0,
        mode: str = "reactive",
        selection: str = "utility",
        batch_strategy: str = "hybrid",
        base_batch: int = 32,
        min_batch: int = 8,
        max_batch: int = 256,
        powers_of_two: bool = True,
        over_commit: float | None = None,
        max_over_commit: float | None = None,
        deadline: str | float | None = "adaptive",
        min_deadline_s: float = 0.0,
        warmup_rounds: int | None = None,
        target_accuracy: float | None = None,
        max_rounds: int | None = None,
        plateau_window: int = 5,
        plateau_delta: float = 0.005,
        snapshot_every: int = 5,
        keep_snapshots: int = 3,
        cooldown: int = 3,
        acc_drop: float | None = None,
        time_growth: float | None = None,
        quarantine_after: int | None = None,
        quarantine_for: float = 5,
        quarantine_unit: str = "rounds",
        keep_available: int = 1,
        force_include: tuple[int, ...] = (),
        force_exclude: tuple[int, ...] = (),
        monitor_options: dict[str, Any] | None = None,
        selection_options: dict[str, Any] | None = None,
        batch_options: dict[str, Any] | None = None,
        max_decisions: int = 2000,
        max_notes: int = 12,
        compression_by_link: bool = False,
        compression_target_s: float = 0.5,
    ) -> None:
        m = MODES[choice("mode", mode, MODES)]
        self.mode, self.seed = m, integer("seed", seed, low=0)
        self.clients_per_round = (
            None if clients_per_round is None else integer("clients_per_round", clients_per_round, low=1)
        )
        self.fraction = number("fraction", fraction, low=0.0, high=1.0, open_low=True)
        self.min_over_commit = number("over_commit", m.over_commit if over_commit is None else over_commit, low=1.0)
        self.max_over_commit = number(
            "max_over_commit",
            max(m.max_over_commit, self.min_over_commit) if max_over_commit is None else max_over_commit,
            low=self.min_over_commit,
        )
        if isinstance(deadline, str):
            choice("deadline", deadline, ("adaptive",))
        elif deadline is not None:
            deadline = number("deadline", deadline, low=0.0, open_low=True)
        self.deadline = deadline
        self.min_deadline_s = number("min_deadline_s", min_deadline_s, low=0.0)
        self.warmup_rounds = integer(
            "warmup_rounds", m.warmup_rounds if warmup_rounds is None else warmup_rounds, low=0
        )
        self.target_accuracy = (
            None if target_accuracy is None else number("target_accuracy", target_accuracy, low=0.0, high=1.0)
        )
        self.max_rounds = None if max_rounds is None else integer("max_rounds", max_rounds, low=1)
        self.plateau_window = integer("plateau_window", plateau_window, low=1)
        self.plateau_delta = number("plateau_delta", plateau_delta, low=0.0)
        self.snapshot_every = integer("snapshot_every", snapshot_every, low=1)
        self.keep_snapshots = integer("keep_snapshots", keep_snapshots, low=1)
        self.cooldown_rounds = integer("cooldown", cooldown, low=0)
        self.acc_drop = number("acc_drop", m.acc_drop if acc_drop is None else acc_drop, low=0.0)
        self.time_growth = number("time_growth", m.time_growth if time_growth is None else time_growth, low=1.0)
        self.max_decisions = integer("max_decisions", max_decisions, low=1)
        self.max_notes = integer("max_notes", max_notes, low=1)
        self.compression_by_link = boolean("compression_by_link", compression_by_link)
        self.compression_target_s = number("compression_target_s", compression_target_s, low=0.0, open_low=True)
        self.monitor = _build(NetworkMonitor, "monitor", monitor_options)
        self.batch = _build(
            BatchSizeController,
            "batch",
            batch_options,
            strategy=batch_strategy,
            base=base_batch,
            min_batch=min_batch,
            max_batch=max_batch,
            powers_of_two=powers_of_two,
            max_step=max(m.max_step, 2.0 if powers_of_two else 1.0),
        )
        self.selector = _build(
            NodeSelector,
            "selection",
            selection_options,
            strategy=selection,
            seed=seed,
            trend_penalty=m.trend_penalty,
            force_include=force_include,
            force_exclude=force_exclude,
        )
        self._warmup_selector = NodeSelector(
            strategy="random", seed=seed, force_include=force_include, force_exclude=force_exclude
        )
        self.quarantine = Quarantine(
            after=m.quarantine_after if quarantine_after is None else quarantine_after,
            duration=quarantine_for,
            unit=quarantine_unit,
            keep_available=keep_available,
        )
        self._pool: NodePool | None = None
        self._plan_wall: tuple[int, float] | None = None
        self.overhead: list[dict[str, float]] = []
        self._reset_state()

    @classmethod
    def from_train_config(cls, config: Any, *, seed: int, **options: Any) -> AdaptivePolicy:
        """The policy a TrainConfig asks for: its batch size, K or C and deadline, plus ``options``.

        ``min_completion`` is not carried over: over-commitment sets ``target_updates`` itself.
        """
        b = int(config.batch_size)
        base = {
            "seed": seed,
            "base_batch": b,
            "powers_of_two": b & (b - 1) == 0,
            "min_batch": min(8, b),
            "max_batch": max(256, b),
            "clients_per_round": config.clients_per_round,
            "fraction": config.fraction,
            "deadline": config.deadline_s or "adaptive",
        }
        return cls(**{**base, **options})

    def _reset_state(self) -> None:
        self.phase = "warmup" if self.warmup_rounds > 0 else "adaptive"
        self.over_commit, self.slack = self.min_over_commit, self.mode.deadline_slack
        self.cooldown, self.rebaseline, self.calm = 0, False, 0
        self.accuracy: list[tuple[int, float]] = []
        self.durations: list[tuple[int, float]] = []
        self.best_acc, self.best_round = -1.0, 0
        self.snapshots: list[dict[str, Any]] = []
        self.decisions: list[Decision] = []
        self._last: dict[str, Any] = {}
        self._pending: list[str] = []
        self.codec_level: dict[int, str] = {}  # node -> compression.LADDER level last chosen (per-link choice)

    # -- before a round ------------------------------------------------------------------------
    def plan(self, round_: int, pool: NodePool, now: float, cost: ModelCost) -> RoundPlan:
        wall0 = time.perf_counter()
        self._pool = pool
        decisions = self.quarantine.release(round_, now, pool)
        limits, notes = memory_limits(pool, cost)
        cands = sorted(limits)
        k = min(self.clients_per_round or max(1, round(self.fraction * len(cands))), len(cands))
        adapting = self.phase == "adaptive" and self.cooldown == 0
        if self.phase == "warmup":
            sel = self._warmup_selector.select(cands, k, self.monitor, round_)
        else:
            sel = self.selector.select(
                cands, min(len(cands), math.ceil(k * self.over_commit - 1e-9)), self.monitor, round_
            )
        chosen = sorted(sel.nodes)
        target = k if len(chosen) > k else None
        before = {n: self.batch.current.get(n, self.batch.base) for n in chosen}
        batches = self.batch.plan(chosen, self.monitor, limits, round_, adapt=adapting)
        deadline = self._deadline(chosen, k)
        levels = self._compression(round_, chosen, pool, now, cost, decisions) if self.compression_by_link else {}
        decisions.append(
            self._decision(
                round_,
                None,
                "select",
                None,
                chosen,
                f"{self.phase}: {sel.summary}" + (f"; close at first {target} of {len(chosen)}" if target else ""),
            )
        )
        for n in chosen:
            if sel.reasons.get(n, "").startswith(("explore", "forced")):
                decisions.append(self._decision(round_, n, "select", None, True, sel.reasons[n]))
            b, why = batches[n]
            if why:
                decisions.append(self._decision(round_, n, "batch", before[n], b, why))
        if self.mode.trend_penalty:
            for n in cands:
                if n not in chosen and self.monitor.trend(n) == "degrading":
                    decisions.append(
                        self._decision(round_, n, "deprioritise", None, False, "score trend degrading (proactive)")
                    )
        if deadline is not None and self.deadline == "adaptive":
            decisions.append(
                self._decision(
                    round_,
                    None,
                    "deadline",
                    None,
                    round(deadline, 6),
                    f"{self.slack:.2f} x expected time of the K-th fastest",
                )
            )
        self._log(decisions)
        notes += self._pending + [self._note(d) for d in decisions]
        self._pending = []
        if len(notes) > self.max_notes:
            notes = notes[: self.max_notes - 1] + [f"... {len(notes) - self.max_notes + 1} more in policy.decisions"]
        self._last = {"round": round_, "k": k, "selected": len(chosen), "target": target, "deadline": deadline}
        self._plan_wall = (round_, time.perf_counter() - wall0)
        return RoundPlan(
            round_,
            tuple(chosen),
            {n: batches[n][0] for n in chosen},
            deadline,
            tuple(notes),
            target_updates=target,
            compression=levels,
        )

    def _compression(
        self, round_: int, chosen: list[int], pool: NodePool, now: float, cost: ModelCost, decisions: list[Decision]
    ) -> dict[int, str]:
        """Per node, the lightest compression level whose transfer cost fits ``compression_target_s`` on its link.

        A level's cost is its transmission time: its encoded size (exact, from
        ``compression.encoded_nbytes``) over the bandwidth of the link's current profile (scheduled
        profile changes included: a device knows its connection). Under the default per-message loss
        the latency, jitter and retries are left out: no codec shortens them, and observed transfer
        times are dominated by them on the lossy links (estimating the rate from observed downloads
        picked top-1% for most unstable links, which cost accuracy in ``bench/communication.py``).
        Under per-packet loss (``RetryPolicy.loss_unit="packet"``) a smaller message needs fewer
        sending rounds, so the cost adds the retries' expected time
        (:meth:`~hypergpu_lab.network.RetryPolicy.expected_retry_s`, from the profile's loss and an
        attempt of latency + transmission). A slow or lossy link gets more compression; where no level
        fits, the heaviest.
        """
        size = cost.param_bytes // 4
        retry = pool.network.retry
        per_packet = retry.loss_unit == "packet"
        out = {}
        for n in chosen:
            cond = pool.network.conditions(n, now)
            rate = cond.profile.mbps(upload=True) * 1e6 / 8  # bytes per second, uplink
            nbytes = {name: encoded_nbytes(spec, size) for name, spec in LADDER.items()}
            est = {name: b / rate for name, b in nbytes.items()}
            if per_packet:
                loss = cond.profile.loss
                est = {k: t + retry.expected_retry_s(nbytes[k], loss, cond.latency_s + t) for k, t in est.items()}
            level = next((name for name, t in est.items() if t <= self.compression_target_s), list(LADDER)[-1])
            out[n] = level
            before = self.codec_level.get(n, "none")
            if level != before:
                fits = "fits" if est[level] <= self.compression_target_s else "is the heaviest; none fits"
                priced = (
                    f", {cond.profile.loss:g} packet loss over {retry.mtu_bytes}-byte packets (retries priced)"
                    if per_packet
                    else ""
                )
                why = (
                    f"{cond.profile.name} link, {cond.profile.mbps(upload=True):g} Mbps up{priced}: "
                    f"full update {est['none']:.3f}s; "
                    f"{level} {est[level]:.3f}s {fits} the {self.compression_target_s:g}s target"
                )
                decisions.append(self._decision(round_, n, "compression", before, level, why))
            self.codec_level[n] = level
        return out

    def _deadline(self, chosen: list[int], k: int) -> float | None:
        if self.deadline is None or (self.deadline == "adaptive" and self.phase == "warmup"):
            return None
        if self.deadline != "adaptive":
            return float(self.deadline)
        est = sorted(d for n in chosen if (d := self.monitor.expected_duration(n)) is not None)
        return max(self.min_deadline_s, self.slack * est[k - 1]) if len(est) >= k and k > 0 else None

    # -- after a round -------------------------------------------------------------------------
    def observe(self, report: RoundReport) -> None:
        r = report.round
        self.monitor.observe(report)
        decisions = self.quarantine.observe(report, self._pool)
        if self._plan_wall is not None and self._plan_wall[0] == r and report.wall_s > 0:
            self.overhead = (
                self.overhead
                + [
                    {
                        "round": r,
                        "plan_s": self._plan_wall[1],
                        "round_s": report.wall_s,
                        "share": self._plan_wall[1] / report.wall_s,
                    }
                ]
            )[-1000:]
        if report.test_accuracy is not None:
            self.accuracy = (self.accuracy + [(r, float(report.test_accuracy))])[-50:]
        self.durations = (self.durations + [(r, float(report.duration))])[-50:]
        if self.phase == "adaptive" and self.cooldown == 0:
            decisions += self._adapt_commitment(report)
        decisions += self._evaluate(r)
        decisions += self._phase(r)
        self._log(decisions)
        self._pending = [self._note(d) for d in decisions]

    def _adapt_commitment(self, report: RoundReport) -> list[Decision]:
        """More over-commitment (and deadline slack) when a round fell short of K updates; decay when calm."""
        k, r, out = self._last.get("k", 0), report.round, []
        if self._last.get("round") != r or not k:
            return out
        if report.accepted < k:
            self.calm = 0
            if self.over_commit < self.max_over_commit:
                new = min(self.max_over_commit, round(self.over_commit + 0.1, 6))
                out.append(
                    self._decision(
                        r, None, "over_commit", self.over_commit, new, f"only {report.accepted} of {k} updates arrived"
                    )
                )
                self.over_commit = new
            if (
                self._last.get("deadline") is not None
                and report.straggled
                and self.deadline == "adaptive"
                and report.duration >= self._last["deadline"] - 1e-9
            ):
                new = min(10.0, round(self.slack * 1.25, 6))
                out.append(
                    self._decision(
                        r,
                        None,
                        "deadline_slack",
                        self.slack,
                        new,
                        f"deadline cut the round at {report.accepted} of {k} updates",
                    )
                )
                self.slack = new
        else:
            self.calm += 1
            if self.calm >= 3 and (self.over_commit > self.min_over_commit or self.slack > self.mode.deadline_slack):
                self.calm = 0
                old = (self.over_commit, self.slack)
                self.over_commit = max(self.min_over_commit, round(self.over_commit - 0.05, 6))
                self.slack = max(self.mode.deadline_slack, round(self.slack * 0.95, 6))
                out.append(
                    self._decision(
                        r,
                        None,
                        "over_commit",
                        old[0],
                        self.over_commit,
                        f"3 rounds reached K updates; slack {old[1]:.2f} -> {self.slack:.2f}",
                    )
                )
        return out

    def _config(self) -> dict[str, Any]:
        return {"batch": dict(self.batch.current), "over_commit": self.over_commit, "slack": self.slack}

    def _recent(self) -> tuple[float | None, float | None]:
        """Smoothed accuracy (mean of the last 2 evaluations) and mean duration of the last 3 rounds."""
        acc = [a for _, a in self.accuracy[-2:]]
        dur = [d for _, d in self.durations[-3:]]
        return (sum(acc) / len(acc) if acc else None), (sum(dur) / len(dur) if dur else None)

    def _evaluate(self, r: int) -> list[Decision]:
        """Roll back to the last snapshot on degradation; otherwise snapshot the configuration now and then."""
        if self.phase not in ("adaptive", "convergence") and not (self.phase == "warmup" and r >= self.warmup_rounds):
            return []
        acc, dur = self._recent()
        snap = self.snapshots[-1] if self.snapshots else None
        if self.cooldown > 0:
            self.cooldown -= 1
            if self.cooldown > 0 or not self.rebaseline:
                return []
            snap = None  # cool-down over: what we see now is the new reference
        why = None
        if (
            snap is not None
            and acc is not None
            and snap["accuracy"] is not None
            and acc < snap["accuracy"] - self.acc_drop
        ):
            why = f"accuracy {acc:.3f} < {snap['accuracy']:.3f} - {self.acc_drop:g} at round {snap['round']}"
        elif snap is not None and dur is not None and dur > snap["duration"] * self.time_growth:
            why = f"round time {dur:.3f}s > {self.time_growth:g} x {snap['duration']:.3f}s at round {snap['round']}"
        if why:
            cfg = copy.deepcopy(snap["config"])
            self.batch.current = {int(n): int(b) for n, b in cfg["batch"].items()}
            self.over_commit, self.slack = cfg["over_commit"], cfg["slack"]
            self.cooldown, self.rebaseline, self.calm = self.cooldown_rounds, True, 0
            log.warning("round %d: rollback to the configuration of round %d: %s", r, snap["round"], why)
            return [self._decision(r, None, "rollback", r, snap["round"], why)]
        if self.rebaseline or snap is None or (self.phase == "adaptive" and r - snap["round"] >= self.snapshot_every):
            self.rebaseline = False
            self.snapshots = (
                self.snapshots + [{"round": r, "config": self._config(), "accuracy": acc, "duration": dur}]
            )[-self.keep_snapshots :]
            return [
                self._decision(
                    r,
                    None,
                    "snapshot",
                    None,
                    r,
                    f"accuracy {acc if acc is None else round(acc, 4)}, "
                    f"round time {dur:.3f}s"
                    + (
                        " (new reference after a rollback)"
                        if self.cooldown_rounds and snap is None and len(self.snapshots) > 1
                        else ""
                    ),
                )
            ]
        return []

    def _phase(self, r: int) -> list[Decision]:
        acc = self.accuracy[-1][1] if self.accuracy and self.accuracy[-1][0] == r else None
        if acc is not None and acc > self.best_acc + self.plateau_delta:
            self.best_acc, self.best_round = acc, r
        new, why = self.phase, ""
        if self.phase != "completed" and (
            (self.target_accuracy is not None and acc is not None and acc >= self.target_accuracy)
            or (self.max_rounds is not None and r >= self.max_rounds)
        ):
            new, why = (
                "completed",
                f"accuracy {acc} reached {self.target_accuracy}"
                if acc is not None and self.target_accuracy is not None and acc >= self.target_accuracy
                else f"round {r} of {self.max_rounds}",
            )
        elif self.phase == "warmup" and r >= self.warmup_rounds:
            new, why = "adaptive", f"{self.warmup_rounds} warm-up rounds done"
        elif self.phase == "adaptive" and self.best_round and r - self.best_round >= self.plateau_window:
            new, why = "convergence", f"no gain of {self.plateau_delta:g} since round {self.best_round}"
        elif self.phase == "convergence" and acc is not None and acc < self.best_acc - self.acc_drop:
            new, why = "adaptive", f"accuracy {acc:.3f} fell below best {self.best_acc:.3f} - {self.acc_drop:g}"
            self.best_round = r
        if new == self.phase:
            return []
        old, self.phase = self.phase, new
        log.info("round %d: phase %s -> %s (%s)", r, old, new, why)
        return [self._decision(r, None, "phase", old, new, why)]

    # -- records -------------------------------------------------------------------------------
    @staticmethod
    def _decision(round_: int, node: int | None, action: str, before: Any, after: Any, reason: str) -> Decision:
        return Decision(round_, node, action, before, after, reason)

    def _log(self, decisions: list[Decision]) -> None:
        self.decisions = (self.decisions + decisions)[-self.max_decisions :]

    @staticmethod
    def _note(d: Decision) -> str:
        """One short line per decision for RoundPlan.notes (and so the round's report events)."""
        what, who = d.action, f"node {d.node} " if d.node is not None else ""
        if what == "select":
            head = f"select {d.after}" if d.node is None else f"{who}selected"
        elif what == "deprioritise":
            head = f"{who}set aside"
        elif what in ("snapshot", "deadline"):
            head = f"{what} {d.after}"
        elif what == "rollback":
            head = f"rollback to the configuration of round {d.after}"
        else:
            head = f"{who}{what} {d.before} -> {d.after}"
        return f"adaptive: {head} ({d.reason})"

    def planning_overhead(self) -> dict[str, float]:
        """Wall time of plan() as a share of the round's wall time (RoundReport.wall_s)."""
        if not self.overhead:
            return {"rounds": 0, "mean_plan_ms": 0.0, "mean_share": 0.0, "median_share": 0.0, "max_share": 0.0}
        n, shares = len(self.overhead), sorted(o["share"] for o in self.overhead)
        return {
            "rounds": n,
            "mean_plan_ms": 1e3 * sum(o["plan_s"] for o in self.overhead) / n,
            "mean_share": sum(shares) / n,
            "median_share": shares[n // 2] if n % 2 else (shares[n // 2 - 1] + shares[n // 2]) / 2,
            "max_share": shares[-1],
        }

    def fairness(self, nodes: list[int] | None = None) -> dict[str, Any]:
        """Participation counts (rounds selected) and Jain's index over ``nodes`` (default: the pool's)."""
        counts = self.monitor.participation()
        ids = sorted(nodes if nodes is not None else (self._pool.nodes if self._pool is not None else counts))
        per = {n: counts.get(n, 0) for n in ids}
        return {"participation": per, "jain": jain_index(list(per.values()))}

    def summary(self) -> dict[str, Any]:
        return {
            "mode": self.mode.name,
            "phase": self.phase,
            "over_commit": self.over_commit,
            "slack": self.slack,
            "quarantined": sorted(self.quarantine.held),
            "probation": sorted(self.quarantine.probation),
            "snapshots": [s["round"] for s in self.snapshots],
            "rollbacks": sum(d.action == "rollback" for d in self.decisions),
            "network": self.monitor.summary(),
            "fairness": self.fairness(),
            "overhead": self.planning_overhead(),
            "batch": dict(self.batch.current),
        }

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return copy.deepcopy(
            {
                "mode": asdict(self.mode),
                "phase": self.phase,
                "over_commit": self.over_commit,
                "slack": self.slack,
                "cooldown": self.cooldown,
                "rebaseline": self.rebaseline,
                "calm": self.calm,
                "accuracy": [list(a) for a in self.accuracy],
                "durations": [list(d) for d in self.durations],
                "best_acc": self.best_acc,
                "best_round": self.best_round,
                "snapshots": self.snapshots,
                "decisions": [d.to_dict() for d in self.decisions],
                "last": self._last,
                "pending": self._pending,
                "overhead": self.overhead,
                "monitor": self.monitor.state_dict(),
                "batch": self.batch.state_dict(),
                "quarantine": self.quarantine.state_dict(),
                "codec_level": {int(n): v for n, v in self.codec_level.items()},
            }
        )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("mode", {}).get("name") != self.mode.name:
            raise ConfigError(
                "mode",
                self.mode.name,
                f"the mode the checkpoint was written with ({state.get('mode', {}).get('name')!r})",
            )
        state = copy.deepcopy(state)
        self.phase, self.over_commit, self.slack = state["phase"], float(state["over_commit"]), float(state["slack"])
        self.cooldown, self.calm = int(state["cooldown"]), int(state["calm"])
        self.rebaseline = bool(state["rebaseline"])
        self.accuracy = [(int(r), float(a)) for r, a in state["accuracy"]]
        self.durations = [(int(r), float(d)) for r, d in state["durations"]]
        self.best_acc, self.best_round = float(state["best_acc"]), int(state["best_round"])
        self.snapshots = [
            {**s, "config": {**s["config"], "batch": {int(n): int(b) for n, b in s["config"]["batch"].items()}}}
            for s in state["snapshots"]
        ]
        self.decisions = [Decision.from_dict(d) for d in state["decisions"]]
        self._last, self._pending = state["last"], state["pending"]
        self.overhead = state["overhead"]
        self.monitor.load_state_dict(state["monitor"])
        self.batch.load_state_dict(state["batch"])
        self.quarantine.load_state_dict(state["quarantine"])
        self.codec_level = {int(n): str(v) for n, v in state.get("codec_level", {}).items()}
