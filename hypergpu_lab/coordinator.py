"""The coordinator: the round loop, run control and checkpoints.

One round, as data flows (virtual time throughout; nothing sleeps)::

    plan     = policy.plan(...)                  who trains, batch sizes, deadline
    down     = network.transfer(model) per node   arrival times or failures
    results  = trainer.train(jobs)                local SGD on each node's own shard
    up       = network.transfer(update) per node  from download end + simulated compute
    on_time  = clock.pop_until(close)             arrivals in virtual-time order, up to the deadline
    weights  = strategy.aggregate(accepted)       pure function on stacked updates
    bus.emit(RoundReport)                         metrics, run folder, UI and chain listen

Every random draw comes from a generator seeded by (seed, round, node, ...),
so a round depends only on the state a checkpoint holds: a restored run
continues bit for bit.
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

import numpy as np
import torch
from torch import nn

from . import checkpoint
from .clock import VirtualClock
from .config import TrainConfig
from .errors import CheckpointError, ConfigError
from .events import EventBus, NodeRecord, RoundReport
from .metrics import History
from .models import ParamLayout, build_model, measure_cost
from .network import Transfer
from .nodes import NodePool
from .policy import Policy, RoundPlan, UniformPolicy
from .runs import RunFolder
from .strategies import get_strategy
from .training import Job, LocalResult, SGDConfig, Trainer, node_seed
from .validate import check_update

log = logging.getLogger(__name__)

_DOWN, _UP = 1, 2
CHECKPOINT_VERSION = 1


class Coordinator:
    """Runs federated rounds over a :class:`NodePool`; keyword-only, every option a TrainConfig field."""

    def __init__(self, *, pool: NodePool, model: str | nn.Module | None = None, strategy: Any = None,
                 policy: Policy | None = None, config: TrainConfig | None = None,
                 run_dir: str | Path | RunFolder | None = None, run_id: str = "run", **options: Any) -> None:
        known = {f.name for f in dataclasses.fields(TrainConfig)}
        if unknown := sorted(set(options) - known):
            raise ConfigError(unknown[0], options[unknown[0]], "a TrainConfig field: " + ", ".join(sorted(known)))
        base = {**(dataclasses.asdict(config) if config else {}), **options}
        model = model if model is not None else base.get("model", "cnn")
        strategy = strategy if strategy is not None else base.get("strategy", "fedavg")
        # Names are validated by TrainConfig; objects are recorded as "custom".
        base.update(model=model if isinstance(model, str) else "cnn",
                    strategy=strategy if isinstance(strategy, str) else "fedavg")
        self.config = cfg = TrainConfig(**base)
        cfg.model = model if isinstance(model, str) else "custom"
        cfg.strategy = strategy if isinstance(strategy, str) else "custom"
        self.pool, self.run_id = pool, run_id
        self.seed = cfg.seed if cfg.seed is not None else (pool.config.seed if pool.config else 0)
        self.model = build_model(model, pool.input_shape, pool.num_classes, seed=self.seed)
        self.layout = ParamLayout.of(self.model)
        self.cost = measure_cost(self.model, pool.input_shape, pool.num_classes)
        self.strategy = get_strategy(strategy, **cfg.strategy_options)
        self.policy: Policy = policy or UniformPolicy(seed=self.seed, batch_size=cfg.batch_size,
                                                      clients_per_round=cfg.clients_per_round,
                                                      fraction=cfg.fraction, deadline_s=cfg.deadline_s)
        self.trainer = Trainer(self.model, SGDConfig(cfg.lr, cfg.momentum, cfg.weight_decay, cfg.local_epochs),
                               vectorise=cfg.vectorise,
                               activation_bytes_per_sample=self.cost.activation_bytes_per_sample)
        self.weights = self.layout.flatten(self.model)
        self.clock = VirtualClock()
        self.round = 0
        self.bus = EventBus()
        self.history = History()
        self.bus.subscribe(self.history)
        self.run_folder = run_dir if isinstance(run_dir, RunFolder) or run_dir is None else RunFolder.open(run_dir)
        if self.run_folder is not None:
            self.bus.subscribe(self.run_folder.append)
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
            r, t0, wall0 = self.round + 1, self.clock.now, time.perf_counter()
            plan = self.policy.plan(r, self.pool, t0, self.cost)
            down = {n: self._send(n, r, _DOWN, t0) for n in plan.nodes}
            jobs = [self._job(n, r, plan) for n in plan.nodes if down[n].ok]
            results = {res.node: res for res in self.trainer.train(self.weights, jobs)}
            compute = {n: self.pool[n].compute_seconds(res.num_samples * self.config.local_epochs, self.cost)
                       for n, res in results.items()}
            up = {n: self._send(n, r, _UP, down[n].end + compute[n]) for n in results}
            close, on_time = self._collect(t0, plan, down, up)
            status = self._judge(plan, down, up, results, on_time)
            accepted = [results[n] for n, (s, _) in status.items() if s == "accepted"]
            before = self.weights
            if accepted:
                self.weights = self.strategy.aggregate(
                    self.weights, torch.stack([a.delta for a in accepted]),
                    torch.tensor([a.num_samples for a in accepted], dtype=torch.float64))
            records = self._records(plan, down, up, compute, results, status, close, self.weights - before)
            acc, loss = self.evaluate() if r % self.config.eval_every == 0 else (None, None)
            report = self._report(r, t0, close, wall0, records, accepted, acc, loss, plan)
            self.round = r
            self.policy.observe(report)
            self.bus.emit(report)
            self._maybe_checkpoint()
            return report

    def _send(self, node: int, round_: int, direction: int, start: float) -> Transfer:
        rng = np.random.default_rng([self.seed, round_, node, direction])
        transfer = self.pool.network.transfer(node, self.layout.nbytes, start, rng)
        if transfer.ok:
            self.pool[node].heartbeat(transfer.end)
        else:
            self.pool[node].record_failure()
        return transfer

    def _job(self, node: int, round_: int, plan: RoundPlan) -> Job:
        n = self.pool[node]
        n.rounds_selected += 1
        return Job(node, n.x, n.y, plan.batch_sizes[node], node_seed(self.seed, round_, node))

    def _collect(self, t0: float, plan: RoundPlan, down: dict[int, Transfer],
                 up: dict[int, Transfer]) -> tuple[float, list[int]]:
        """Advance the clock to the round's close; return it and the on-time arrivals in order."""
        deadline = t0 + plan.deadline_s if plan.deadline_s is not None else math.inf
        resolved = [up[n].end if n in up else down[n].end for n in plan.nodes]
        close = min(max(resolved, default=t0), deadline)
        for n, transfer in up.items():
            if transfer.ok:
                self.clock.schedule(transfer.end, n)
        on_time = [n for _, n in self.clock.pop_until(close)]
        self.clock.clear()  # what is left arrived after the deadline: stragglers, never applied
        return close, on_time

    def _judge(self, plan: RoundPlan, down: dict[int, Transfer], up: dict[int, Transfer],
               results: dict[int, LocalResult], on_time: Sequence[int]) -> dict[int, tuple[str, str | None]]:
        """Give every selected node a status; validate on-time updates; each is applied at most once."""
        status: dict[int, tuple[str, str | None]] = {}
        for n in on_time:
            if n in status:
                status[n] = ("rejected", "duplicate")
                continue
            reason = check_update(results[n].delta, self.layout.size)
            status[n] = ("rejected", reason) if reason else ("accepted", None)
        for n in plan.nodes:
            if n not in status:
                if not down[n].ok:
                    status[n] = ("failed", f"download {down[n].reason} after {down[n].attempts} attempts")
                elif not up[n].ok:
                    status[n] = ("failed", f"upload {up[n].reason} after {up[n].attempts} attempts")
                else:
                    status[n] = ("straggled", "arrived after the deadline")
        return status

    def _records(self, plan: RoundPlan, down: dict[int, Transfer], up: dict[int, Transfer],
                 compute: dict[int, float], results: dict[int, LocalResult],
                 status: dict[int, tuple[str, str | None]], close: float, applied: torch.Tensor) -> list[NodeRecord]:
        """One NodeRecord per selected node, in virtual seconds."""
        applied_norm = float(torch.linalg.vector_norm(applied))
        records = []
        for n in plan.nodes:
            d, u, res = down[n], up.get(n), results.get(n)
            arrived = u.end if u is not None and u.ok else None
            reason = status[n][1]
            if status[n][0] == "straggled":
                reason = f"arrived {arrived - close:.3f}s after the deadline"
            agreement = None
            if status[n][0] == "accepted" and applied_norm > 0 and res.update_norm > 0:
                agreement = float(res.delta @ applied) / (res.update_norm * applied_norm)
            records.append(NodeRecord(
                node=n, status=status[n][0], reason=reason, batch_size=plan.batch_sizes[n],
                num_samples=self.pool[n].num_samples, download_s=d.duration, compute_s=compute.get(n, 0.0),
                upload_s=u.duration if u is not None else 0.0,
                waiting_s=close - arrived if arrived is not None and arrived <= close else 0.0, arrival=arrived,
                download_attempts=d.attempts, upload_attempts=u.attempts if u is not None else 0,
                loss=res.loss if res else None, update_norm=res.update_norm if res else None,
                update_hash=hashlib.sha256(res.delta.numpy().tobytes()).hexdigest() if res else None,
                agreement=agreement))
        return records

    def _report(self, r: int, t0: float, close: float, wall0: float, records: list[NodeRecord],
                accepted: list[LocalResult], acc: float | None, loss: float | None, plan: RoundPlan) -> RoundReport:
        count = {s: sum(rec.status == s for rec in records) for s in ("accepted", "straggled", "failed", "rejected")}
        total = sum(a.num_samples for a in accepted)
        train_loss = sum(a.loss * a.num_samples for a in accepted) / total if total else None
        events = tuple(repr(e) for e in self.pool.network.events_between(t0, close)) + plan.notes
        return RoundReport(run_id=self.run_id, round=r, t_start=t0, t_end=close, selected=len(plan.nodes),
                           test_accuracy=acc, test_loss=loss, train_loss=train_loss,
                           wall_s=time.perf_counter() - wall0, nodes=tuple(records), events=events, **count)

    def evaluate(self, batch_size: int = 2048) -> tuple[float, float]:
        """Accuracy and mean cross-entropy of the global model on the pool's held-out test set."""
        self.layout.load_into(self.model, self.weights)
        self.model.eval()
        correct, loss_sum = 0, 0.0
        x, y = self.pool.x_test, self.pool.y_test
        with torch.no_grad():
            for s in range(0, len(y), batch_size):
                logits = self.model(x[s:s + batch_size])
                loss_sum += float(nn.functional.cross_entropy(logits, y[s:s + batch_size], reduction="sum"))
                correct += int((logits.argmax(1) == y[s:s + batch_size]).sum())
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
                rep = self.step()
                bar.set_postfix(acc=f"{rep.test_accuracy:.3f}" if rep.test_accuracy is not None else "-",
                                sim=f"{rep.t_end:.1f}s", refresh=False)
                bar.update(1)
        except BaseException:
            self.status = "failed"
            raise
        finally:
            bar.close()
        self.status = "finished" if self.round >= target else "stopped"
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
                self.step()
            self.status = "finished" if self.round >= target else "stopped"
        except BaseException as exc:  # surfaced by wait() and the status line, never lost
            self.error, self.status = exc, "failed"
            log.exception("round loop failed at round %d", self.round + 1)

    def pause(self) -> None:
        """Finish the current round, then wait."""
        self._unpaused.clear()
        if self.status == "running":
            self.status = "paused"

    def resume(self) -> None:
        self._unpaused.set()
        if self.status == "paused":
            self.status = "running"

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
            return {"version": CHECKPOINT_VERSION, "run_id": self.run_id, "round": self.round, "seed": self.seed,
                    "weights": self.weights.clone(), "strategy": self.strategy.state_dict(),
                    "policy": self.policy.state_dict(), "clock": self.clock.state_dict(),
                    "pool": self.pool.state_dict(), "train_config": dataclasses.asdict(self.config),
                    "pool_config": dataclasses.asdict(self.pool.config) if self.pool.config else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("version") != CHECKPOINT_VERSION:
            raise CheckpointError(f"checkpoint version {state.get('version')!r}; this lab reads {CHECKPOINT_VERSION}")
        if state["weights"].shape != self.weights.shape:
            raise CheckpointError(f"checkpoint weights {tuple(state['weights'].shape)} do not fit this model "
                                  f"({self.layout.size} values)")
        with self._lock:
            self.round, self.seed, self.run_id = int(state["round"]), int(state["seed"]), state["run_id"]
            self.weights = state["weights"].clone()
            self.strategy.load_state_dict(state["strategy"])
            self.policy.load_state_dict(state["policy"])
            self.clock.load_state_dict(state["clock"])
            self.pool.load_state_dict(state["pool"])

    def save_checkpoint(self, path: str | Path) -> Path:
        checkpoint.save(path, self.state_dict())
        return Path(path)

    def _maybe_checkpoint(self) -> None:
        every = self.config.checkpoint_every
        if self.run_folder is None or not every or self.round % every:
            return
        self.save_checkpoint(checkpoint.path_for(self.run_folder.checkpoints, self.round))
        checkpoint.prune(self.run_folder.checkpoints, self.config.keep_checkpoints)

    @classmethod
    def restore(cls, path: str | Path, *, pool: NodePool | None = None, model: nn.Module | None = None,
                strategy: Any = None, policy: Policy | None = None) -> Coordinator:
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
        for name, given in (("model", model), ("strategy", strategy)):
            if given is not None:
                train[name] = given
            elif train[name] == "custom":
                raise ConfigError(name, "custom", f"the same {name} object passed again to restore(..., {name}=...)")
        if pool is None:
            if state["pool_config"] is None:
                raise ConfigError("pool", None, "the NodePool the run used (it was not built from a config)")
            from .config import PoolConfig

            pool = NodePool.from_config(PoolConfig(**state["pool_config"]))
        coord = cls(pool=pool, policy=policy, run_dir=folder, run_id=state["run_id"], **train)
        coord.load_state_dict(state)
        if folder is not None:
            folder.truncate_metrics(coord.round)
            for row in folder.read_metrics():
                coord.history.rounds.append({k: v for k, v in row.items() if k not in ("nodes", "events")})
        log.info("restored round %d from %s", coord.round, path)
        return coord
