"""The coordinator: the round loop, run control and checkpoints.

One round, as data flows (virtual time throughout; nothing sleeps)::

    plan     = policy.plan(...)                  who trains, batch sizes, deadline
    down     = network.transfer(model) per node   arrival times or failures
    results  = backend.train(tasks)               local SGD on each node's own shard, where it lives
    up       = network.transfer(update) per node  from download end + simulated compute
    on_time  = clock.pop_until(close)             arrivals in virtual-time order, up to the deadline
    weights  = strategy.aggregate(accepted)       pure function on stacked updates
    bus.emit(RoundReport)                         metrics, run folder, UI and chain listen

Every random draw comes from a stream named by (seed, round, node, ...)
(``streams.py`` for the per-transfer and per-node ones), so a round depends
only on the state a checkpoint holds: a restored run continues bit for bit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import checkpoint
from .backends import Backend, InProcessBackend, Task
from .clock import VirtualClock
from .config import TrainConfig
from .detection import HeartbeatDetector
from .errors import CheckpointError, ConfigError
from .events import EventBus, NodeRecord, RoundReport
from .faults import Fault, FaultInjector, Message
from .metrics import History
from .models import ParamLayout, build_model, measure_cost
from .network import Transfer
from .nodes import NodePool
from .plan import Policy, RoundPlan
from .registry import make_policy
from .runs import RunFolder
from .strategies import get_strategy
from .streams import stream
from .training import LocalResult, SGDConfig, Trainer, node_seed
from .validate import check_updates

log = logging.getLogger(__name__)

_DOWN, _UP = 1, 2
_TRANSFER_TAG = 0x5846_4552  # "XFER": the stream tag of a transfer (see streams.py)
CHECKPOINT_VERSION = 1


class QuorumError(RuntimeError):
    """Too few nodes are available to run a round; the run pauses until nodes return."""


class Coordinator:
    """Runs federated rounds over a :class:`NodePool`; keyword-only, every option a TrainConfig field."""

    def __init__(
        self,
        *,
        pool: NodePool,
        model: str | nn.Module | None = None,
        strategy: Any = None,
        policy: Policy | str | None = None,
        config: TrainConfig | None = None,
        faults: FaultInjector | Sequence[Fault | dict[str, Any]] | None = None,
        chain: Any = None,
        chain_options: dict[str, Any] | None = None,
        backend: Backend | None = None,
        run_dir: str | Path | RunFolder | None = None,
        run_id: str = "run",
        **options: Any,
    ) -> None:
        if isinstance(policy, str):  # a policy by name is a config value, an object is used as is
            options["policy"], policy = policy, None
        known = {f.name for f in dataclasses.fields(TrainConfig)}
        if unknown := sorted(set(options) - known):
            raise ConfigError(unknown[0], options[unknown[0]], "a TrainConfig field: " + ", ".join(sorted(known)))
        base = {**(dataclasses.asdict(config) if config else {}), **options}
        model = model if model is not None else base.get("model", "cnn")
        strategy = strategy if strategy is not None else base.get("strategy", "fedavg")
        # Names are validated by TrainConfig; objects are recorded as "custom".
        base.update(
            model=model if isinstance(model, str) else "cnn",
            strategy=strategy if isinstance(strategy, str) else "fedavg",
        )
        self.config = cfg = TrainConfig(**base)
        cfg.model = model if isinstance(model, str) else "custom"
        cfg.strategy = strategy if isinstance(strategy, str) else "custom"
        self.pool, self.run_id = pool, run_id
        self.seed = cfg.seed if cfg.seed is not None else (pool.config.seed if pool.config else 0)
        self.model = build_model(model, pool.input_shape, pool.num_classes, seed=self.seed)
        self.layout = ParamLayout.of(self.model)
        self.cost = measure_cost(self.model, pool.input_shape, pool.num_classes)
        self.strategy = get_strategy(strategy, **cfg.strategy_options)
        self.policy: Policy = policy or make_policy(cfg, self.seed)
        if policy is not None:
            cfg.policy = "custom"
        # FedProx and its kin act on the clients: a strategy may declare a proximal term for local training.
        prox_mu = float(getattr(self.strategy, "proximal_mu", 0.0))
        self.trainer = Trainer(
            self.model,
            SGDConfig(cfg.lr, cfg.momentum, cfg.weight_decay, cfg.local_epochs, prox_mu),
            vectorise=cfg.vectorise,
            activation_bytes_per_sample=self.cost.activation_bytes_per_sample,
            device=cfg.device,
        )
        # Where local training runs; a pool built with a remote backend (Ray) brings its own.
        self.backend: Backend = backend or getattr(pool, "backend", None) or InProcessBackend(self.trainer, pool)
        if hasattr(self.backend, "bind"):  # a remote backend trains with this coordinator's model and SGD settings
            self.backend.bind(self.trainer, pool)
        self.weights = self.layout.flatten(self.model)
        self.faults = faults if isinstance(faults, FaultInjector) else FaultInjector(faults or (), seed=self.seed)
        self.faults.install(pool.network)
        self.detector = HeartbeatDetector(interval_s=cfg.heartbeat_interval_s, timeout_s=cfg.heartbeat_timeout_s)
        self._outstanding: set[tuple[int, int]] = set()  # (round, node) keys an update may still resolve
        self._late: list[tuple[float, Message]] = []  # stragglers in flight (late_updates="buffer")
        self.clock = VirtualClock()
        self.round = 0
        self.bus = EventBus()
        self.history = History()
        self.bus.subscribe(self.history)
        self.run_folder = run_dir if isinstance(run_dir, RunFolder) or run_dir is None else RunFolder.open(run_dir)
        if self.run_folder is not None:
            self.bus.subscribe(self.run_folder.append)
        # The chain is a subscriber like any other: the coordinator never imports web3.
        self.recorder = chain.attach(self, **(chain_options or {})) if chain is not None else None
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._unpaused = threading.Event()
        self._unpaused.set()
        self._stop = threading.Event()
        self.status = "idle"
        self.error: BaseException | None = None

    # -- one round -----------------------------------------------------------------------------
    def step(self) -> RoundReport:
        """Run one round and return its report (also delivered to every subscriber)."""
        with self._lock:
            r, wall0 = self.round + 1, time.perf_counter()
            detections = self._await_quorum()
            t0 = self.clock.now
            plan = self.policy.plan(r, self.pool, t0, self.cost)
            down = {n: self._send(n, r, _DOWN, t0) for n in plan.nodes}
            tasks = [self._task(n, r, plan, t0) for n in plan.nodes if down[n].ok]
            results = {res.node: self.faults.corrupt(res, r, t0) for res in self.backend.train(self.weights, tasks)}
            for n in {t.node for t in tasks} - results.keys():  # the backend lost it (a Ray actor died)
                self.pool[n].record_failure()
            compute = {n: self._compute_seconds(n, res, r, t0) for n, res in results.items()}
            up = {n: self._send(n, r, _UP, down[n].end + compute[n]) for n in results}
            close, inbox = self._collect(r, t0, plan, down, up, results)
            status, applied, stacked, dropped = self._judge(r, plan, down, up, inbox)
            before = self.weights
            if applied:
                self.weights = self.strategy.aggregate(
                    self.weights,
                    stacked,
                    torch.tensor([m.result.num_samples * w for m, w in applied], dtype=torch.float64),
                )
            records = self._records(
                r, plan, down, up, compute, results, status, close, applied, stacked, self.weights - before
            )
            acc, loss = self.evaluate() if r % self.config.eval_every == 0 else (None, None)
            report = self._report(r, t0, close, wall0, records, applied, acc, loss, plan, dropped, detections)
            self.round = r
            self.policy.observe(report)
            self.bus.emit(report)
            self._maybe_checkpoint()
            return report

    def _await_quorum(self) -> tuple[dict[str, Any], ...]:
        """Run the failure detector; below quorum, wait in virtual time for nodes to come back."""
        found = self.detector.check(self.pool, self.clock.now)
        deadline = self.clock.now + self.config.max_wait_s
        while len(self.pool.available()) < self.config.quorum:
            t = self.detector.next_beat_after(self.clock.now)
            if t > deadline:
                raise QuorumError(
                    f"waiting for quorum: {len(self.pool.available())} of {len(self.pool)} nodes "
                    f"available, {self.config.quorum} needed (waited {self.config.max_wait_s:g}s "
                    "of virtual time); recover nodes, then resume"
                )
            self.clock.advance_to(t)
            found += self.detector.check(self.pool, t)
        return tuple({**dataclasses.asdict(d), "latency": d.latency} for d in found)

    def _send(self, node: int, round_: int, direction: int, start: float) -> Transfer:
        rng = stream(self.seed, _TRANSFER_TAG, round_, node, direction)
        transfer = self.pool.network.transfer(node, self.layout.nbytes, start, rng)
        if transfer.ok:
            self.pool[node].heartbeat(transfer.end)
        else:
            self.pool[node].record_failure()
        return transfer

    def _task(self, node: int, round_: int, plan: RoundPlan, t: float) -> Task:
        self.pool[node].rounds_selected += 1
        return Task(
            node,
            plan.batch_sizes[node],
            node_seed(self.seed, round_, node),
            flip_labels=self.faults.flips_labels(node, round_, t),
        )

    def _compute_seconds(self, node: int, result: LocalResult, round_: int, t: float) -> float:
        seconds = self.pool[node].compute_seconds(result.num_samples * self.config.local_epochs, self.cost)
        return seconds * self.faults.compute_factor(node, round_, t)

    def _collect(
        self,
        r: int,
        t0: float,
        plan: RoundPlan,
        down: dict[int, Transfer],
        up: dict[int, Transfer],
        results: dict[int, LocalResult],
    ) -> tuple[float, list[tuple[float, Message]]]:
        """Advance the clock to the round's close; return the messages that arrived by then, in order.

        The round closes when every selected node has arrived or failed, when ``target_updates``
        have arrived (FaultTolerant mode, over-commitment), or at the deadline, whichever is first.
        """
        deadline = t0 + plan.deadline_s if plan.deadline_s is not None else math.inf
        arrivals = sorted((u.end, n) for n, u in up.items() if u.ok)
        resolved = max((up[n].end if n in up else down[n].end for n in plan.nodes), default=t0)
        close = min(resolved, deadline)
        if plan.target_updates is not None and len(arrivals) >= plan.target_updates:
            close = min(close, arrivals[plan.target_updates - 1][0])
        for t, n in arrivals:
            msg = Message(self.run_id, r, n, 1, results[n])
            self.clock.schedule(t, msg)
            for extra in self.faults.extra_messages(msg, t):
                self.clock.schedule(t + 1e-3, extra)
        for t, msg in self._late:  # buffered stragglers of earlier rounds arrive when they arrive
            self.clock.schedule(t, msg, priority=1)
        inbox = self.clock.pop_until(close)
        # What is still in flight arrived after the close: stragglers. FedBuff mode keeps the
        # original messages for a later round; duplicates and everything in "drop" mode are gone.
        self._late = [
            (t, m)
            for t, m in self.clock.drain()
            if isinstance(m, Message) and m.attempt == 1 and self.config.late_updates == "buffer"
        ]
        return close, inbox

    def _judge(
        self,
        r: int,
        plan: RoundPlan,
        down: dict[int, Transfer],
        up: dict[int, Transfer],
        inbox: list[tuple[float, Message]],
    ) -> tuple[dict[int, tuple[str, str | None]], list[tuple[Message, float]], torch.Tensor, int]:
        """Statuses for the selected nodes, the updates to apply with their weights and stacked deltas, and drops.

        Exactly once: a message is applied only if its (round, node) key is outstanding, i.e.
        selected and not yet resolved; duplicates and replays find the key gone and are dropped.
        """
        status: dict[int, tuple[str, str | None]] = {}
        fresh: list[Message] = []
        dropped = 0
        self._outstanding.update((r, n) for n in plan.nodes)
        for _, msg in inbox:
            key = (msg.round, msg.node)
            if key not in self._outstanding:
                dropped += 1
                continue
            self._outstanding.discard(key)
            fresh.append(msg)
        # Aggregate in a canonical order, not arrival order: float sums and Krum's ties depend on row order.
        fresh.sort(key=lambda m: (m.round, m.node))
        reasons, stacked = check_updates(
            [m.result.delta for m in fresh], self.layout.size, norm_bound=self.config.max_update_norm
        )
        applied: list[tuple[Message, float]] = []
        for msg, reason in zip(fresh, reasons):
            if msg.round == r:
                status[msg.node] = ("rejected", reason) if reason else ("accepted", None)
            if not reason:  # FedBuff staleness weight: 1 for this round's updates
                applied.append((msg, 1.0 / math.sqrt(1 + r - msg.round)))
        for n in plan.nodes:
            if n not in status:
                if not down[n].ok:
                    status[n] = ("failed", f"download {down[n].reason} after {down[n].attempts} attempts")
                elif n not in up:  # downloaded, but the backend returned no result: a crash for this round
                    status[n] = ("failed", "backend: " + getattr(self.backend, "failures", {}).get(n, "no result"))
                elif not up[n].ok:
                    status[n] = ("failed", f"upload {up[n].reason} after {up[n].attempts} attempts")
                else:
                    status[n] = ("straggled", "arrived after the close")
            if status[n][0] != "straggled" or self.config.late_updates != "buffer":
                self._outstanding.discard((r, n))
        return status, applied, stacked, dropped

    def _records(
        self,
        r: int,
        plan: RoundPlan,
        down: dict[int, Transfer],
        up: dict[int, Transfer],
        compute: dict[int, float],
        results: dict[int, LocalResult],
        status: dict[int, tuple[str, str | None]],
        close: float,
        applied: list[tuple[Message, float]],
        stacked: torch.Tensor,
        change: torch.Tensor,
    ) -> list[NodeRecord]:
        """One NodeRecord per selected node, in virtual seconds."""
        applied_norm = float(torch.linalg.vector_norm(change))
        # Each accepted update's alignment with the applied change: one matrix-vector product for all.
        dots = dict(zip(((m.round, m.node) for m, _ in applied), (stacked @ change).tolist())) if applied else {}
        records = []
        for n in plan.nodes:
            d, u, res = down[n], up.get(n), results.get(n)
            arrived = u.end if u is not None and u.ok else None
            kind, reason = status[n]
            if kind == "straggled":
                reason = f"arrived {arrived - close:.3f}s after the close"
            agreement = None
            if kind == "accepted" and applied_norm > 0 and res.update_norm > 0:
                agreement = dots[(r, n)] / (res.update_norm * applied_norm)
            records.append(
                NodeRecord(
                    node=n,
                    status=kind,
                    reason=reason,
                    batch_size=plan.batch_sizes[n],
                    num_samples=self.pool[n].num_samples,
                    download_s=d.duration,
                    compute_s=compute.get(n, 0.0),
                    upload_s=u.duration if u is not None else 0.0,
                    waiting_s=close - arrived if arrived is not None and arrived <= close else 0.0,
                    arrival=arrived,
                    download_attempts=d.attempts,
                    upload_attempts=u.attempts if u is not None else 0,
                    loss=res.loss if res else None,
                    update_norm=res.update_norm if res else None,
                    update_hash=hashlib.sha256(res.delta.numpy().tobytes()).hexdigest() if res else None,
                    agreement=agreement,
                    injected=self.faults.describe(n, r, close),
                )
            )
        return records

    def _report(
        self,
        r: int,
        t0: float,
        close: float,
        wall0: float,
        records: list[NodeRecord],
        applied: list[tuple[Message, float]],
        acc: float | None,
        loss: float | None,
        plan: RoundPlan,
        dropped: int,
        detections: tuple[dict[str, Any], ...],
    ) -> RoundReport:
        count = {s: sum(rec.status == s for rec in records) for s in ("accepted", "straggled", "failed", "rejected")}
        total = sum(m.result.num_samples for m, _ in applied)
        train_loss = sum(m.result.loss * m.result.num_samples for m, _ in applied) / total if total else None
        late = [m for m, _ in applied if m.round < r]
        events = (
            tuple(repr(e) for e in self.pool.network.events_between(t0, close))
            + plan.notes
            + tuple(
                f"late update of node {m.node} from round {m.round} applied (staleness {r - m.round})" for m in late
            )
        )
        return RoundReport(
            run_id=self.run_id,
            round=r,
            t_start=t0,
            t_end=close,
            selected=len(plan.nodes),
            test_accuracy=acc,
            test_loss=loss,
            train_loss=train_loss,
            wall_s=time.perf_counter() - wall0,
            nodes=tuple(records),
            events=events,
            duplicates=dropped,
            late_applied=len(late),
            detections=detections,
            status="ok" if applied else "no updates",
            bytes_moved=self.layout.nbytes * sum(x.download_attempts + x.upload_attempts for x in records),
            **count,
        )

    def evaluate(self, batch_size: int = 2048) -> tuple[float, float]:
        """Accuracy and mean cross-entropy of the global model on the pool's held-out test set."""
        correct, loss_sum = 0, 0.0
        x, y = self.pool.x_test, self.pool.y_test
        for s in range(0, len(y), batch_size):
            logits = self.trainer.logits(self.weights, x[s : s + batch_size])
            loss_sum += float(nn.functional.cross_entropy(logits, y[s : s + batch_size], reduction="sum"))
            correct += int((logits.argmax(1) == y[s : s + batch_size]).sum())
        return correct / len(y), loss_sum / len(y)

    # -- run control ---------------------------------------------------------------------------
    def run(self, rounds: int | None = None, *, until: int | None = None, progress: bool = True) -> History:
        """Run ``rounds`` more rounds (or up to round ``until``), blocking, with a progress bar."""
        target = self._target(rounds, until)
        from tqdm.auto import tqdm

        bar = tqdm(total=target - self.round, disable=not progress, desc="rounds", unit="round")
        self.status = "running"
        try:
            while self.round < target and not self._stop.is_set():
                try:
                    rep = self.step()
                except QuorumError as exc:
                    log.warning("%s", exc)
                    self.status = str(exc)
                    return self.history
                bar.set_postfix(
                    acc=f"{rep.test_accuracy:.3f}" if rep.test_accuracy is not None else "-",
                    sim=f"{rep.t_end:.1f}s",
                    refresh=False,
                )
                bar.update(1)
        except BaseException:
            self.status = "failed"
            raise
        finally:
            bar.close()
        self.status = "finished" if self.round >= target else "stopped"
        self._final_checkpoint()
        return self.history

    def _target(self, rounds: int | None, until: int | None) -> int:
        if (rounds is None) == (until is None):
            raise ConfigError("rounds", rounds, "exactly one of rounds (how many more) or until (last round)")
        if rounds is not None:
            if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0:
                raise ConfigError("rounds", rounds, "an integer >= 0")
            return self.round + rounds
        if isinstance(until, bool) or not isinstance(until, int) or until < self.round:
            raise ConfigError("until", until, f"an integer >= the current round {self.round}")
        return until

    def start(self, rounds: int | None = None, *, until: int | None = None) -> None:
        """Run in a background thread; steer it with pause, resume, stop and wait."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("the coordinator is already running; stop() it first")
        target = self._target(rounds, until)
        self._stop.clear()
        self._unpaused.set()
        self.error, self.status = None, "running"
        self._thread = threading.Thread(target=self._loop, args=(target,), name="hypergpu-rounds", daemon=True)
        self._thread.start()

    def _loop(self, target: int) -> None:
        try:
            while self.round < target:
                self._unpaused.wait()
                if self._stop.is_set():
                    break
                try:
                    self.step()
                except QuorumError as exc:  # pause with a clear status; resume() tries again
                    log.warning("%s", exc)
                    self._unpaused.clear()
                    self.status = str(exc)
            self.status = "finished" if self.round >= target else "stopped"
            self._final_checkpoint()
        except BaseException as exc:  # surfaced by wait() and the status line, never lost
            self.error, self.status = exc, "failed"
            log.exception("round loop failed at round %d", self.round + 1)

    def pause(self) -> None:
        """Finish the current round, then wait."""
        self._unpaused.clear()
        if self.status == "running":
            self.status = "paused"

    def resume(self) -> None:
        """Continue after pause(), or retry after a quorum pause."""
        self._unpaused.set()
        if self.status not in ("idle", "running", "finished", "stopped", "failed"):
            self.status = "running"

    @property
    def round_lock(self) -> threading.RLock:
        """Held for the whole of step(): hold it to change the simulation between rounds."""
        return self._lock

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the current round and wait for the thread."""
        self._stop.set()
        self._unpaused.set()
        self.wait(timeout, raise_error=False)

    def wait(self, timeout: float | None = None, *, raise_error: bool = True) -> History:
        if self._thread is not None:
            self._thread.join(timeout)
        if raise_error and self.error is not None:
            raise self.error
        return self.history

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything a round reads: weights, server, policy, node and network state, the clock."""
        with self._lock:
            return {
                "version": CHECKPOINT_VERSION,
                "run_id": self.run_id,
                "round": self.round,
                "seed": self.seed,
                "weights": self.weights.clone(),
                "strategy": self.strategy.state_dict(),
                "policy": self.policy.state_dict(),
                "clock": self.clock.state_dict(),
                "pool": self.pool.state_dict(),
                "train_config": dataclasses.asdict(self.config),
                "faults": self.faults.state_dict(),
                "outstanding": sorted(self._outstanding),
                "fault_plan": [{**dataclasses.asdict(f), "nodes": list(f.nodes)} for f in self.faults.faults],
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
                    for t, m in self._late
                ],
                "pool_config": dataclasses.asdict(self.pool.config) if self.pool.config else None,
            }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("version") != CHECKPOINT_VERSION:
            raise CheckpointError(f"checkpoint version {state.get('version')!r}; this lab reads {CHECKPOINT_VERSION}")
        if state["weights"].shape != self.weights.shape:
            raise CheckpointError(
                f"checkpoint weights {tuple(state['weights'].shape)} do not fit this model ({self.layout.size} values)"
            )
        with self._lock:
            self.round, self.seed, self.run_id = int(state["round"]), int(state["seed"]), state["run_id"]
            self.weights = state["weights"].clone()
            self.strategy.load_state_dict(state["strategy"])
            self.policy.load_state_dict(state["policy"])
            self.clock.load_state_dict(state["clock"])
            self.pool.load_state_dict(state["pool"])
            self.faults.load_state_dict(state["faults"])
            self._outstanding = {(int(a), int(b)) for a, b in state["outstanding"]}
            self._late = [
                (
                    float(e["t"]),
                    Message(
                        self.run_id,
                        int(e["round"]),
                        int(e["node"]),
                        int(e["attempt"]),
                        LocalResult(
                            int(e["node"]),
                            e["delta"],
                            int(e["num_samples"]),
                            float(e["loss"]),
                            int(e["steps"]),
                            float(torch.linalg.vector_norm(e["delta"])),
                        ),
                    ),
                )
                for e in state["late"]
            ]

    def save_checkpoint(self, path: str | Path) -> Path:
        checkpoint.save(path, self.state_dict())
        return Path(path)

    def _final_checkpoint(self) -> None:
        """The last round is always checkpointed, so a finished run folder holds its final weights."""
        if (
            self.run_folder is not None
            and self.config.checkpoint_every
            and self.round
            and not checkpoint.path_for(self.run_folder.checkpoints, self.round).exists()
        ):
            self.save_checkpoint(checkpoint.path_for(self.run_folder.checkpoints, self.round))
            checkpoint.prune(self.run_folder.checkpoints, self.config.keep_checkpoints)

    def _maybe_checkpoint(self) -> None:
        every = self.config.checkpoint_every
        if self.run_folder is None or not every or self.round % every:
            return
        self.save_checkpoint(checkpoint.path_for(self.run_folder.checkpoints, self.round))
        checkpoint.prune(self.run_folder.checkpoints, self.config.keep_checkpoints)

    @classmethod
    def restore(
        cls,
        path: str | Path,
        *,
        pool: NodePool | None = None,
        model: nn.Module | None = None,
        strategy: Any = None,
        policy: Policy | None = None,
        faults: FaultInjector | Sequence[Fault | dict[str, Any]] | None = None,
    ) -> Coordinator:
        """Continue from a checkpoint file, or from a run folder's newest valid checkpoint.

        The pool is rebuilt from its recorded config unless given; a custom ``nn.Module``
        or strategy object must be passed again (only names are recorded).
        """
        path = Path(path)
        folder = RunFolder.open(path) if path.is_dir() else None
        if folder is not None:
            found = checkpoint.latest_valid(folder.checkpoints)
            if found is None:
                raise CheckpointError(f"no valid checkpoint in {folder.checkpoints}")
            path, state = found
        else:
            state = checkpoint.load(path)
        train = dict(state["train_config"])
        for name, given in (("model", model), ("strategy", strategy), ("policy", policy)):
            if given is not None:
                if name != "policy":
                    train[name] = given
            elif train.get(name) == "custom":
                raise ConfigError(name, "custom", f"the same {name} object passed again to restore(..., {name}=...)")
        if pool is None:
            if state["pool_config"] is None:
                raise ConfigError("pool", None, "the NodePool the run used (it was not built from a config)")
            from .config import PoolConfig

            pool = NodePool.from_config(PoolConfig(**state["pool_config"]))
        faults = faults if faults is not None else state.get("fault_plan", ())
        named_policy = train.pop("policy", "uniform")
        coord = cls(
            pool=pool,
            policy=policy if policy is not None else named_policy,
            faults=faults,
            run_dir=folder,
            run_id=state["run_id"],
            **train,
        )
        coord.load_state_dict(state)
        if folder is not None:
            folder.truncate_metrics(coord.round)
            for row in folder.read_metrics():
                coord.history.rounds.append({k: v for k, v in row.items() if k not in ("nodes", "events")})
        log.info("restored round %d from %s", coord.round, path)
        return coord
