"""What a run saves and restores, and when: the state a round reads, checkpoint cadence and pruning.

A round depends only on the state :func:`state_dict` collects (weights, server, planner, node and
network state, the clock, updates in flight), so a run restored from a checkpoint continues bit for
bit. :class:`Checkpoints` decides when a run folder gets one (every ``every`` rounds, at a pause,
at the end) and keeps the newest ``keep``. The file format itself is ``checkpoint.py``.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import checkpoint
from .config import PoolConfig
from .errors import CheckpointError, ConfigError
from .nodes import NodePool
from .runs import RunFolder

if TYPE_CHECKING:
    from .coordinator import Coordinator

log = logging.getLogger(__name__)

VERSION = 1


class Checkpoints:
    """The checkpoint cadence of one run folder (none without a folder)."""

    def __init__(self, folder: Path | None, *, every: int, keep: int) -> None:
        self.folder, self.every, self.keep = folder, every, keep
        self.last: Path | None = None

    def after_round(self, coord: Coordinator) -> None:
        """Every ``every`` rounds (0 = never)."""
        if self.folder is not None and self.every and coord.round % self.every == 0:
            self.save(coord, overwrite=True)

    def at_end(self, coord: Coordinator) -> None:
        """The last round is always checkpointed when checkpoints are on, so a run folder holds its final weights."""
        if self.every:
            self.save(coord)

    def save(self, coord: Coordinator, *, overwrite: bool = False) -> Path | None:
        """Checkpoint the current round into the folder (once, unless ``overwrite``) and prune old ones."""
        if self.folder is None or not coord.round:
            return None
        path = checkpoint.path_for(self.folder, coord.round)
        if overwrite or not path.exists():
            checkpoint.save(path, state_dict(coord))
            prune(self.folder, self.keep)
        self.last = path
        return path


def prune(folder: str | Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints."""
    found = checkpoint.list_checkpoints(folder)
    for _, path in found[: max(len(found) - keep, 0)]:  # not [:-keep]: that deletes nothing when keep == 0
        path.unlink(missing_ok=True)


def state_dict(coord: Coordinator) -> dict[str, Any]:
    """Everything a round reads: weights, server, planner, node and network state, the clock, updates in flight."""
    with coord.round_lock:
        pool = coord.pool
        return {
            "version": VERSION,
            "run_id": coord.run_id,
            "round": coord.round,
            "seed": coord.seed,
            "weights": coord.weights.clone(),
            "strategy": coord.strategy.state_dict(),
            "policy": coord.policy.state_dict(),
            "clock": coord.clock.state_dict(),
            "pool": pool.state_dict(),
            "train_config": dataclasses.asdict(coord.config),
            "faults": coord.faults.state_dict(),
            "compression": coord.compressor.state_dict(),  # error-feedback residuals, per node
            "broadcast": coord.broadcast.state_dict() if coord.broadcast is not None else None,  # downlink replica
            "fault_plan": [{**dataclasses.asdict(f), "nodes": list(f.nodes)} for f in coord.faults.faults],
            **coord.delivery.state_dict(),
            "pool_config": dataclasses.asdict(pool.config) if pool.config else None,
            "monitor": coord.monitor.state_dict(),
            "privacy": coord.privacy.state_dict(),  # rounds accounted, adaptive clip norm, local releases
        }


def load_state_dict(coord: Coordinator, state: dict[str, Any]) -> None:
    """Put ``state`` (from :func:`state_dict`) back into a coordinator built with the same config."""
    if state.get("version") != VERSION:
        raise CheckpointError(f"checkpoint version {state.get('version')!r}; this lab reads {VERSION}")
    if state["weights"].shape != coord.weights.shape:
        raise CheckpointError(
            f"checkpoint weights {tuple(state['weights'].shape)} do not fit this model ({coord.layout.size} values)"
        )
    with coord.round_lock:
        coord.round, coord.seed, coord.run_id = int(state["round"]), int(state["seed"]), state["run_id"]
        coord.weights = state["weights"].clone()
        coord.strategy.load_state_dict(state["strategy"])
        coord.policy.load_state_dict(state["policy"])
        coord.clock.load_state_dict(state["clock"])
        coord.pool.load_state_dict(state["pool"])
        coord.faults.load_state_dict(state["faults"])
        coord.compressor.load_state_dict(state.get("compression", {}))  # absent before compression existed
        if coord.broadcast is not None and state.get("broadcast") is not None:
            coord.broadcast.load_state_dict(state["broadcast"])
        coord.delivery.run_id = coord.run_id
        coord.delivery.load_state_dict(state)
        coord.monitor.load_state_dict(state.get("monitor", {}))  # absent in checkpoints from before it
        coord.privacy.load_state_dict(state.get("privacy", {}))


def restore(
    cls: type[Coordinator],
    path: str | Path,
    *,
    pool: NodePool | None = None,
    model: Any = None,
    strategy: Any = None,
    policy: Any = None,
    faults: Any = None,
    chain: Any = None,
    chain_options: dict[str, Any] | None = None,
) -> Coordinator:
    """A coordinator continued from a checkpoint file, or from a run folder's newest valid checkpoint.

    The pool is rebuilt from its recorded config unless given; a custom ``nn.Module`` or strategy
    object must be passed again (only names are recorded). A run folder's metrics are cut back to
    the restored round, so the rounds that follow are not recorded twice.

    ``chain`` (a Ledger) and ``chain_options`` are what ``Coordinator(chain=..., chain_options=...)``
    takes: the recorder is attached once the state is restored, and in a run folder it reopens the
    folder's ``chain-outbox.jsonl``: pending rounds are sent, replayed rounds are not queued again, and
    a different or fresh ledger gets a new session with every round (see ``chain/outbox.py``).
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
    load_state_dict(coord, state)
    if folder is not None:
        folder.truncate_metrics(coord.round)
        for row in folder.read_metrics():
            coord.history.rounds.append({k: v for k, v in row.items() if k not in ("nodes", "events")})
    if chain is not None:  # after the state: a new session is described by the run it continues
        coord.recorder = chain.attach(coord, **(chain_options or {}))
    log.info("restored round %d from %s", coord.round, path)
    return coord
