"""The coordinator: the round loop, over a pool, a strategy, a planner and a backend.

One round, as data flows (virtual time throughout; nothing sleeps)::

    plan     = planner.plan(...)                  who trains, batch sizes, deadline
    down     = network.transfer(model) per node   arrival times or failures
    results  = backend.train(tasks)               local SGD on each node's own shard, where it lives
    up       = network.transfer(update) per node  from download end + simulated compute
    inbox    = delivery.collect(round)            arrivals in virtual-time order, up to the close
    fresh    = delivery.admit(round, inbox)       exactly once: duplicates and replays dropped
    weights  = strategy.aggregate(accepted)       pure function on stacked updates
    bus.emit(round.report(...))                   metrics, run folder, UI and chain listen

The facts of a round travel in one :class:`~hypergpu_lab.round.Round`. Run control (start, pause,
resume, stop, wait) is :class:`~hypergpu_lab.run_control.RunControl`; what is saved and when is
``persistence.py``. Every random draw comes from a stream named by (seed, round, node, ...), so a
round depends only on the state a checkpoint holds: a restored run continues bit for bit.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from . import availability, checkpoint, compression, persistence
from .backends import InProcessBackend, Task
from .broadcast import Broadcast
from .clock import VirtualClock
from .config import check_against_pool, resolve_train_config
from .contribution import make_scorer
from .delivery import Delivery
from .detection import HeartbeatDetector
from .errors import ConfigError
from .events import EventBus, RoundReport
from .faults import Fault, FaultInjector
from .metrics import History, NodeMonitor
from .models import ParamLayout, build_model, measure_cost
from .network import Transfer
from .nodes import NodePool
from .privacy import PrivacyPipeline, check_strategy, expected_clients, parse
from .registry import make_policy
from .round import Round
from .run_control import RunControl, RunState, Waiting
from .runs import RunFolder
from .strategies import UpdateContext, get_strategy
from .streams import stream
from .threads import intra_op_threads, threads_for
from .training import SGDConfig, Trainer, node_seed
from .validate import check_updates

if TYPE_CHECKING:  # names in signatures only
    from .backends import Backend
    from .config import RunConfig, TrainConfig
    from .faults import Fault
    from .plan import Policy

log = logging.getLogger(__name__)

_DOWN, _UP = 1, 2
_TRANSFER_TAG = 0x5846_4552  # "XFER": the stream tag of a transfer (see streams.py)
_WORK_TAG = 0x574F_524B  # "WORK": the share of its local steps a node completes (partial work)


class QuorumError(Waiting):
    """Too few nodes are available to run a round; the run waits until nodes return."""


class PrivacyBudgetExhausted(RuntimeError):
    """The next round would spend more privacy than ``privacy.budget`` allows; no round runs."""


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
        if not isinstance(pool, NodePool):
            raise ConfigError(
                "pool",
                pool,
                "a NodePool (NodePool.from_config, NodePool.simulated or NodePool.from_arrays)",
            )
        self.config = cfg = resolve_train_config(config, options, model=model, strategy=strategy, policy=policy)
        check_against_pool(cfg, len(pool))
        self.pool, self.run_id = pool, run_id
        self.seed = cfg.seed if cfg.seed is not None else (pool.config.seed if pool.config else 0)
        self.model = build_model(
            model if model is not None else cfg.model, pool.input_shape, pool.num_classes, seed=self.seed
        )
        self.layout = ParamLayout.of(self.model)
        self.cost = measure_cost(self.model, pool.input_shape, pool.num_classes)
        self.strategy = get_strategy(strategy if strategy is not None else cfg.strategy, **cfg.strategy_options)
        self.strategy.check_pool(len(pool))
        self.privacy = self._privacy(cfg, len(pool))
        self.policy: Policy = (
            policy if policy is not None and not isinstance(policy, str) else make_policy(cfg, self.seed)
        )
        self.objective = self.strategy.client_objective()  # what local training adds (FedProx, SCAFFOLD)
        sgd = SGDConfig(cfg.lr, cfg.momentum, cfg.weight_decay, cfg.local_epochs, self.objective.proximal_mu)
        self.trainer = Trainer(
            self.model,
            sgd,
            vectorise=cfg.vectorise,
            activation_bytes_per_sample=self.cost.activation_bytes_per_sample,
            train_flops_per_sample=self.cost.train_flops_per_sample,
            device=cfg.device,
        )
        # Where local training runs; a pool attached to a remote backend (Ray) brings its own.
        self.backend: Backend = backend or pool.backend or InProcessBackend()
        self.backend.bind(self.trainer, pool)
        self.weights = self.layout.flatten(self.model)
        self.availability = availability.build(
            cfg.availability, cfg.availability_options, seed=self.seed, regions=pool.network.regions
        )
        self.codec = compression.CompressionSpec.build(cfg.compression, cfg.compression_options)
        self.compressor = compression.UpdateCompressor(self.codec, seed=self.seed)
        down = compression.CompressionSpec.build(
            cfg.download_compression, cfg.download_compression_options, field="train.download_compression"
        )
        # The compressed broadcast (downlink): nodes train from its replica; None sends the float32 weights.
        self.broadcast = Broadcast(down, self.weights, seed=self.seed) if down.kind != "none" else None
        self.faults = faults if isinstance(faults, FaultInjector) else FaultInjector(faults or (), seed=self.seed)
        self.faults.install(pool.network)
        self.detector = HeartbeatDetector(interval_s=cfg.heartbeat_interval_s, timeout_s=cfg.heartbeat_timeout_s)
        self.delivery = Delivery(run_id, buffer_late=cfg.late_updates == "buffer")
        self.clock = VirtualClock()
        self.round = 0
        self.bus = EventBus()
        self.history = History()
        self.bus.subscribe(self.history)
        self.monitor = NodeMonitor()  # per-node series and anomalies; anomalies become report events
        self.run_folder: RunFolder | None = None
        self.checkpoints = persistence.Checkpoints(None, every=cfg.checkpoint_every, keep=cfg.keep_checkpoints)
        if run_dir is not None:
            self.attach_run_folder(run_dir if isinstance(run_dir, RunFolder) else RunFolder.open(run_dir))
        self.control = RunControl(
            self.step,
            lambda: self.round,
            on_pause=lambda: self.checkpoints.save(self),
            on_end=lambda: self.checkpoints.at_end(self),
        )
        self.control.on_change(self._record_stuck)
        self.scorer: Any = None  # contribution measure (contribution/): on request, or when a chain records
        self.score_contributions(cfg.contribution if cfg.contribution is not None or chain is None else "shapley")
        # The chain is a subscriber like any other: the coordinator never imports web3.
        self.recorder = chain.attach(self, **(chain_options or {})) if chain is not None else None

    def score_contributions(self, name: str | None = "shapley", **options: Any) -> None:
        """Value every accepted update from now on (``NodeRecord.contribution``); None stops scoring.

        The validation set is a seeded part of the held-out set, kept by the coordinator: nodes never see it.
        """
        if name is None:
            self.scorer = None
            return
        self.scorer = make_scorer(
            name,
            {**self.config.contribution_options, **options},
            logits=self.trainer.coalition_logits,
            x=self.pool.x_test,
            y=self.pool.y_test,
            seed=self.seed,
        )

    def _privacy(self, cfg: TrainConfig, num_nodes: int) -> PrivacyPipeline:
        """DP and SecAgg hooks for this run (identity when ``cfg.privacy`` is empty)."""
        settings = parse(cfg.privacy)
        check_strategy(settings, self.strategy)  # a Strategy instance is judged here, a name in TrainConfig
        k = expected_clients(cfg.clients_per_round, cfg.fraction, num_nodes)
        return PrivacyPipeline(settings, seed=self.seed, num_nodes=num_nodes, expected_clients=k, size=self.layout.size)

    def attach_run_folder(self, folder: RunFolder) -> None:
        """Record every round into ``folder`` and checkpoint there from now on.

        The CLI builds the coordinator first and attaches the folder after: everything that can
        refuse a configuration has then run, so a failed start leaves no run folder behind.
        """
        if self.run_folder is not None:
            raise ConfigError("run_dir", str(folder.path), f"none: already recording into {self.run_folder.path}")
        self.run_folder = folder
        self.bus.subscribe(folder.append)
        self.checkpoints.folder = folder.checkpoints

    def attach_chain(self, chain: Any, chain_options: dict[str, Any] | None = None) -> None:
        """Record contributions on ``chain`` (a Ledger) from now on; after :meth:`attach_run_folder`, so the
        chain's outbox lives in the run folder. ``None`` attaches nothing."""
        if chain is None:
            return
        if self.recorder is not None:
            raise ConfigError("chain", repr(chain), "none: a chain is already attached")
        if self.scorer is None:  # rewards need what each update was worth
            self.score_contributions("shapley")
        self.recorder = chain.attach(self, **(chain_options or {}))

    def _record_stuck(self, control: RunControl) -> None:
        """Write why a stuck run was paused or stopped into the run folder's log (once per reason)."""
        reason = control.stuck_reason
        if reason and self.run_folder is not None and reason != getattr(self, "_stuck_recorded", None):
            self._stuck_recorded = reason
            with open(self.run_folder.log_path, "a", encoding="utf-8") as f:
                when = time.strftime("%Y-%m-%d %H:%M:%S")
                f.write(f"{when} WARNING run control: {reason}; {control.detail}\n")

    # -- one round -----------------------------------------------------------------------------
    def step(self) -> RoundReport | None:
        """Run one round and return its report (also delivered to every subscriber).

        None, and no round, when the privacy budget forbids the next round inside a run (the run
        stops, with the reason in ``control.detail``); called directly, that raises PrivacyBudgetExhausted.
        """
        # One intra-op thread (unless the user fixed a count) for the round's small ops: aggregation,
        # checks, codecs, evaluation's loss. A second thread that waits for a busy core stalls each of
        # them. Training and the batched forwards pick their own count from their work (threads.py).
        with self.control.lock, intra_op_threads(threads_for(0)):
            if reason := self.privacy.stop_reason():  # e.g. a resumed run, or a budget below one round
                if not self.control.active:
                    raise PrivacyBudgetExhausted(reason)
                self.control.stuck(reason, action="stop")  # in the run loop: a clean stop, reason in the detail
                return None
            self._set_online(self.clock.now)
            detections = self._await_quorum()
            t0 = self.clock.now
            rnd = Round(self.round + 1, t0, self.policy.plan(self.round + 1, self.pool, t0, self.cost), detections)
            rnd.masked = self.privacy.masked
            if self.broadcast is not None:  # this round's compressed model message (downlink compression)
                self.broadcast.publish(rnd.number, self.weights)
            rnd.down = {n: self._send(n, rnd.number, _DOWN, t0, self._download_bytes(n), t0) for n in rnd.plan.nodes}
            self.privacy.before_training(rnd, self.pool.network)  # SecAgg keys: a node trains once it has them
            tasks = [self._task(n, rnd) for n in rnd.plan.nodes if rnd.down[n].ok]
            start = self.weights if self.broadcast is None else self.broadcast.replica
            for res in self.backend.train(start, tasks):
                rnd.results[res.node] = self.faults.corrupt(res, rnd.number, t0)
            for n in {t.node for t in tasks} - rnd.results.keys():  # the backend lost it (a Ray actor died)
                self.pool[n].record_failure()
            rnd.compute = {n: self._compute_seconds(n, rnd) for n in rnd.results}
            self.privacy.on_nodes(rnd)  # on the node, before upload: local DP noise, SecAgg masking
            # What crosses the network: the encoded update (compression), or SecAgg's ring vector.
            sizes = self._encode(rnd)
            if self.privacy.masked:
                sizes = dict.fromkeys(sizes, self.privacy.upload_bytes(self.layout.nbytes))
            rnd.up = {
                n: self._send(n, rnd.number, _UP, rnd.down[n].end + rnd.compute[n], sizes[n], t0) for n in rnd.results
            }
            for n in (n for n, u in rnd.up.items() if not u.ok and n in rnd.codec):  # the node knows it failed
                self.compressor.undelivered(n, rnd.results[n].delta)
            fresh = self.delivery.admit(rnd, self.delivery.collect(rnd, self.clock, self.faults))
            norm_bound = None if rnd.masked else self.config.max_update_norm
            size = self.privacy.sent_size(self.layout.size)
            reasons, rnd.stacked = check_updates([m.result.delta for m in fresh], size, norm_bound=norm_bound)
            self.delivery.judge(rnd, fresh, reasons, self.backend.failures)
            before = self.weights
            if rnd.applied and self.scorer is not None and not rnd.masked:
                samples = [m.result.num_samples for m, _ in rnd.applied]
                rnd.contribution = self.scorer(rnd.number, before, rnd.stacked, samples)
            if rnd.applied:
                self._aggregate(rnd)
            rnd.change = self.weights - before
            rnd.epsilon = self.privacy.account(rnd)
            report = self._report(rnd)
            self.round = rnd.number
            self.policy.observe(report)
            self.bus.emit(report)
            self.checkpoints.after_round(self)
            if reason := self.privacy.stop_reason():  # a clean stop before the budget would be exceeded
                self.control.stuck(reason, action="stop")
            self.control.boundary()
        self.control.round_ended()
        return report

    def _aggregate(self, rnd: Round) -> None:
        """New global weights from the round's accepted updates, through the privacy hook (DP, SecAgg)."""
        weights = rnd.aggregation_weights()
        released = self.privacy.aggregate_input(rnd, rnd.stacked, weights, self.pool.network)
        self.clock.advance_to(max(rnd.close, self.clock.now))  # SecAgg's recovery step takes time
        if released is not None:
            self.weights = self.strategy.aggregate_updates(self.weights, *released, self._context(rnd))
            rnd.notes += self.strategy.take_notes()

    def _await_quorum(self) -> tuple[dict[str, Any], ...]:
        """Run the failure detector; below quorum, wait in virtual time for nodes to come back."""
        found = self.detector.check(self.pool, self.clock.now)
        deadline = self.clock.now + self.config.max_wait_s
        while len(self.pool.available_ids()) < self.config.quorum:
            t = min(
                self.detector.next_beat_after(self.clock.now),
                self.availability.next_change(self.clock.now, list(self.pool.nodes)),
            )
            if t > deadline:
                raise QuorumError(
                    f"waiting for quorum: {len(self.pool.available_ids())} of {len(self.pool)} nodes "
                    f"available, {self.config.quorum} needed (waited {self.config.max_wait_s:g}s "
                    "of virtual time); recover nodes, then resume"
                )
            self.clock.advance_to(t)
            self._set_online(t)
            found += self.detector.check(self.pool, t)
        return tuple({**dataclasses.asdict(d), "latency": d.latency} for d in found)

    def _set_online(self, t: float) -> None:
        """Mark the nodes the availability model has offline at ``t`` (planners select only online ones)."""
        if self.availability.kind != "always":
            self.pool.offline = frozenset(n for n in self.pool.nodes if not self.availability.online(n, t))

    def _send(
        self,
        node: int,
        round_: int,
        direction: int,
        start: float,
        nbytes: int | None = None,
        since: float | None = None,
    ) -> Transfer:
        """One transfer; a node that goes offline after ``since`` (the round's start) before it arrives fails it."""
        rng = stream(self.seed, _TRANSFER_TAG, round_, node, direction)
        size = self.layout.nbytes if nbytes is None else nbytes
        transfer = self.pool.network.transfer(node, size, start, rng, upload=direction == _UP)
        if since is not None and transfer.ok and transfer.end > (off := self.availability.offline_from(node, since)):
            transfer = dataclasses.replace(transfer, end=max(start, off), ok=False, reason="offline")
        if transfer.ok:
            self.pool[node].heartbeat(transfer.end)
            if direction == _DOWN and self.broadcast is not None:
                self.broadcast.delivered(node)
        else:
            self.pool[node].record_failure()
        return transfer

    def _download_bytes(self, node: int) -> int:
        """What node's download carries: the float32 model, or the broadcast messages it missed (downlink
        compression, see broadcast.py); a strategy's extra copies (SCAFFOLD's c) go at full size."""
        extra = self.layout.nbytes * (self.objective.download_copies - 1)
        if self.broadcast is None:
            return self.layout.nbytes + extra
        return self.broadcast.download_bytes(node) + extra

    def _encode(self, rnd: Round) -> dict[int, int]:
        """Compress each update as its node would; the server's decoded copy replaces it. Returns bytes sent.

        The codec is the plan's choice for a node (the adaptive policy's per-link level) or the
        config's; the nodes sharing a codec are encoded as one stack. A non-finite update cannot be
        encoded and goes raw, for the update checks to refuse.
        """
        sizes = dict.fromkeys(rnd.results, self.layout.nbytes)
        groups: dict[compression.CompressionSpec, list[int]] = {}
        for n, res in rnd.results.items():
            spec = compression.LADDER[rnd.plan.compression[n]] if n in rnd.plan.compression else self.codec
            if (spec.kind != "none" or n in self.compressor.residual) and bool(res.delta.isfinite().all()):
                groups.setdefault(spec, []).append(n)
        for spec, nodes in groups.items():
            deltas = torch.stack([rnd.results[n].delta for n in nodes])  # a scratch copy: decoded in its place
            encs, decoded = self.compressor.compress_many(nodes, rnd.number, deltas, spec, out=deltas)
            norms = torch.linalg.vector_norm(decoded, dim=1).tolist()
            for n, enc, d, norm in zip(nodes, encs, decoded.unbind(), norms):
                rnd.results[n] = dataclasses.replace(rnd.results[n], delta=d, update_norm=norm)
                rnd.codec[n], sizes[n] = spec.label, enc.nbytes
        return sizes

    def _task(self, node: int, rnd: Round) -> Task:
        self.pool[node].rounds_selected += 1
        flip = self.faults.flips_labels(node, rnd.number, rnd.t0)
        correction = self.objective.correction(node) if self.objective.correction is not None else None
        seed, batch = node_seed(self.seed, rnd.number, node), rnd.plan.batch_sizes[node]
        max_steps = None
        if self.config.partial_work is not None:  # FLGo's completeness: a share ~ U[partial_work, 1] of the steps
            full = -(-self.pool[node].num_samples // batch) * self.config.local_epochs
            share = stream(self.seed, _WORK_TAG, rnd.number, node).uniform(self.config.partial_work, 1.0)
            max_steps = max(1, math.ceil(share * full))
            rnd.work[node] = max_steps / full
        return Task(node, batch, seed, flip_labels=flip, correction=correction, max_steps=max_steps)

    def _context(self, rnd: Round) -> UpdateContext:
        """Who sent each applied update and how many local steps it holds (FedNova, SCAFFOLD read it)."""
        return UpdateContext(
            nodes=tuple(m.node for m, _ in rnd.applied),
            steps=torch.tensor([m.result.steps for m, _ in rnd.applied], dtype=torch.int64),
            lr=self.config.lr,
            momentum=self.config.momentum,
            population=len(self.pool),
        )

    def _compute_seconds(self, node: int, rnd: Round) -> float:
        samples = rnd.results[node].num_samples * self.config.local_epochs
        if node in rnd.work:  # partial work: the node computed only the steps it completed
            samples *= rnd.work[node]
        seconds = self.pool[node].compute_seconds(samples, self.cost)
        return seconds * self.faults.compute_factor(node, rnd.number, rnd.t0)

    def _report(self, rnd: Round) -> RoundReport:
        injected = {n: self.faults.describe(n, rnd.number, rnd.close) for n in rnd.plan.nodes}
        records = rnd.records({n: self.pool[n].num_samples for n in rnd.plan.nodes}, injected)
        memory_gb = {n: self.pool[n].gpu.memory_gb for n in rnd.plan.nodes}
        anomalies = self.monitor.observe(rnd.number, records, rnd.close - rnd.t0, memory_gb, self.cost)
        rnd.notes += tuple(a.describe() for a in anomalies)
        acc, loss = self.evaluate() if rnd.number % self.config.eval_every == 0 else (None, None)
        events = tuple(repr(e) for e in self.pool.network.events_between(rnd.t0, rnd.close))
        return rnd.report(self.run_id, records, acc, loss, events)

    def evaluate(self, batch_size: int = 2048) -> tuple[float, float]:
        """Accuracy and mean cross-entropy of the global model on the pool's held-out test set."""
        correct, loss_sum = 0, 0.0
        x, y = self.pool.x_test, self.pool.y_test
        for s in range(0, len(y), batch_size):
            logits = self.trainer.logits(self.weights, x[s : s + batch_size])
            loss_sum += float(nn.functional.cross_entropy(logits, y[s : s + batch_size], reduction="sum"))
            correct += int((logits.argmax(1) == y[s : s + batch_size]).sum())
        return correct / len(y), loss_sum / len(y)

    # -- run control (one RunControl, shared with the CLI and the dashboard) -------------------
    @property
    def status(self) -> RunState:
        """idle | running | paused | waiting | finished | stopped | failed (a str enum); why: ``control.detail``."""
        return self.control.state

    @property
    def error(self) -> BaseException | None:
        """The exception that ended a failed background run."""
        return self.control.error

    @property
    def round_lock(self) -> Any:
        """Held for the whole of step(): hold it to change the simulation between rounds."""
        return self.control.lock

    def run(self, rounds: int | None = None, *, until: int | None = None, progress: bool = True) -> History:
        """Run ``rounds`` more rounds (or up to round ``until``), blocking, with a progress bar.

        Ctrl-C (or a kernel interrupt) stops at the end of the round in progress, with the final checkpoint.
        """
        target = self._target(rounds, until)
        from tqdm.auto import tqdm

        bar = tqdm(total=target - self.round, disable=not progress, desc="rounds", unit="round")

        def tick(rep: RoundReport) -> None:
            acc = f"{rep.test_accuracy:.3f}" if rep.test_accuracy is not None else "-"
            bar.set_postfix(acc=acc, sim=f"{rep.t_end:.1f}s", refresh=False)
            bar.update(1)

        unsubscribe = self.bus.subscribe(tick)
        try:
            self.control.run(target)
        finally:
            unsubscribe()
            bar.close()
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
        self.control.start(self._target(rounds, until))

    def pause(self) -> None:
        """Finish the current round, then wait (and checkpoint, with a run folder)."""
        self.control.pause()

    def resume(self) -> None:
        """Continue after pause(), or try again after a wait for quorum."""
        self.control.resume()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the current round and wait up to ``timeout`` seconds for it."""
        self.control.stop(timeout)

    def wait(self, timeout: float | None = None, *, raise_error: bool = True) -> History:
        self.control.wait(timeout, raise_error=raise_error)
        return self.history

    # -- checkpoints (persistence.py) ----------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return persistence.state_dict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        persistence.load_state_dict(self, state)

    def save_checkpoint(self, path: str | Path) -> Path:
        checkpoint.save(path, self.state_dict())
        return Path(path)

    @classmethod
    def from_config(
        cls,
        config: RunConfig,
        *,
        pool: NodePool | None = None,
        run_dir: str | Path | RunFolder | None = None,
        chain: Any = None,
        chain_options: dict[str, Any] | None = None,
    ) -> Coordinator:
        """The coordinator a :class:`~hypergpu_lab.config.RunConfig` describes (the CLI, the dashboard and
        the run process all build through here, so a config means the same run everywhere).

        ``pool`` is the config's pool when the caller built it already (to fail on missing data before
        it made a run folder). The run id is the run folder's name when there is one, else the
        config's name.
        """
        pool = pool if pool is not None else NodePool.from_config(config.pool)
        folder = run_dir if run_dir is None or isinstance(run_dir, RunFolder) else RunFolder.open(run_dir)
        return cls(
            pool=pool,
            config=config.train,
            faults=config.faults,
            run_dir=folder,
            run_id=folder.path.name if folder is not None else config.name,
            chain=chain,
            chain_options=chain_options,
        )

    @classmethod
    def restore(cls, path: str | Path, **given: Any) -> Coordinator:
        """Continue from a checkpoint file or a run folder; see :func:`hypergpu_lab.persistence.restore`."""
        return persistence.restore(cls, path, **given)
