"""A coordinator from a RunConfig, a RunConfig from a coordinator, and the policy names the form offers.

The settings form edits a :class:`~hypergpu_lab.config.RunConfig`; the policy is part of it
(``train.policy`` and ``train.policy_options``), offered as one name per choice: ``"uniform"`` or
``"adaptive-<mode>"``. :func:`build_coordinator` rebuilds from it when settings change and the run
is idle. No widgets here.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from ..adaptation import MODES
from ..config import PoolConfig, RunConfig
from ..coordinator import Coordinator
from ..errors import ConfigError
from ..nodes import NodePool
from ..registry import make_policy
from ..runs import RunFolder, safe_child

log = logging.getLogger(__name__)

POLICIES = ("uniform", *(f"adaptive-{m}" for m in MODES))


def policy_name(train: dict[str, Any]) -> str:
    """The form's name for a train config's policy: uniform, adaptive-<mode>, or custom (an object)."""
    if train.get("policy") == "adaptive":
        return f"adaptive-{(train.get('policy_options') or {}).get('mode', 'reactive')}"
    return train.get("policy", "uniform")


def with_policy(train: dict[str, Any], name: str) -> None:
    """Set the policy named ``name`` in a train config dict (other policy options are kept)."""
    if name not in POLICIES and name != "custom":
        raise ConfigError("train.policy", name, "one of " + ", ".join(POLICIES))
    options = dict(train.get("policy_options") or {})
    if name.startswith("adaptive-"):
        train["policy"], options["mode"] = "adaptive", name.split("-", 1)[1]
    else:
        train["policy"] = name
        options.pop("mode", None)
    train["policy_options"] = options


def check_policy(config: RunConfig) -> None:
    """Build the policy once so that bad policy options are reported now, not when the run starts."""
    if config.train.policy != "custom":
        make_policy(config.train, config.train.seed if config.train.seed is not None else config.pool.seed)


def config_of(coord: Any, rounds: int | None = None) -> RunConfig:
    """The RunConfig that describes ``coord`` (its pool config, or defaults sized to its pool)."""
    pool = coord.pool.config if coord.pool.config is not None else PoolConfig(num_nodes=max(1, len(coord.pool)))
    train = dataclasses.asdict(coord.config)
    for name, default in (("model", "cnn"), ("strategy", "fedavg")):
        if train[name] == "custom":  # an object the config cannot name: a rebuilt run uses the default
            train[name] = default
    faults = [{**dataclasses.asdict(f), "nodes": list(f.nodes)} for f in coord.faults.faults]
    return RunConfig.from_dict(
        {
            "name": _name(coord.run_id),
            "rounds": rounds or max(coord.round, 20),
            "pool": dataclasses.asdict(pool),
            "train": train,
            "faults": faults,
        }
    )


def _name(run_id: str) -> str:
    clean = "".join(c if c.isalnum() or c in "-_." else "-" for c in str(run_id)).lstrip(".")
    return clean or "run"


def unique_name(out: str | Path, name: str) -> str:
    """``name``, or ``name-2``, ``name-3`` ... whichever is not yet a folder under ``out``."""
    candidate, k = name, 1
    while safe_child(out, candidate, field="run name").exists():
        k += 1
        candidate = f"{name}-{k}"
    return candidate


def build_coordinator(
    config: RunConfig, *, out: str | Path | None = None, chain: Any = None, chain_options: dict[str, Any] | None = None
) -> Coordinator:
    """A fresh coordinator for ``config``; with ``out``, in a new run folder ``out/<name>[-k]``."""
    if config.train.policy == "custom":
        raise ConfigError("train.policy", "custom", "a named policy (uniform or adaptive) for a rebuilt run")
    check_policy(config)
    pool = NodePool.from_config(config.pool)  # missing data fails here, before a run folder exists
    folder = None
    if out is not None:
        name = unique_name(out, config.name)
        folder = RunFolder.create(out, name, {**config.to_dict(), "name": name})
    coord = Coordinator.from_config(config, pool=pool, run_dir=folder, chain=chain, chain_options=chain_options)
    log.info(
        "built coordinator %s: %d nodes, %s/%s, %s, policy %s",
        coord.run_id,
        len(pool),
        config.pool.dataset,
        config.pool.partition,
        config.train.model,
        policy_name(dataclasses.asdict(config.train)),
    )
    return coord
