"""Typed, validated run configuration that round-trips through JSON and YAML.

Three dataclasses, one per component a person sets up: the node pool (data,
partition, network, GPUs), local training and aggregation, and the run around
them. Every value is checked where it is set, and a bad one raises
:class:`ConfigError` naming the dotted field, the value and what is accepted.

:class:`PoolConfig` lives in the core module :mod:`hypergpu_lab.pool_config` (the
node pool builds from it) and is re-exported here. This module belongs to the
registry layer: it validates strategy and policy names against
:mod:`hypergpu_lab.registry` (one source of truth for names) and fault plans
against :mod:`hypergpu_lab.faults`, so it may import plug-ins but no core module
may import it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from . import availability, checks, privacy
from .compression import CompressionSpec
from .contribution import SCORERS
from .errors import ConfigError
from .pool_config import DATASETS as DATASETS  # re-exported: the pool's settings live in the core
from .pool_config import PARTITIONS as PARTITIONS
from .pool_config import PoolConfig as PoolConfig
from .registry import POLICIES, STRATEGIES

MODELS = ("mlp", "cnn")
MAX_RATE = 1e4  # largest learning rate / weight decay accepted: float32-safe and far past any useful value


def check_against_pool(train: TrainConfig, num_nodes: int) -> None:
    """Refuse settings no round on ``num_nodes`` nodes can satisfy, at construction, by field.

    ``quorum: 100`` on 5 nodes waited forever and exited 0; ``clients_per_round: 100`` silently
    became 5; Krum's ``f=100`` failed only at round 1. The strategy judges its own options
    (:meth:`~hypergpu_lab.strategies.base.Strategy.check_pool`).
    """
    from .strategies import get_strategy

    if train.quorum > num_nodes:
        raise ConfigError(
            "train.quorum", train.quorum, f"an integer in [1, {num_nodes}]", hint=f"the pool has {num_nodes} nodes"
        )
    if train.clients_per_round is not None and train.clients_per_round > num_nodes:
        raise ConfigError(
            "train.clients_per_round",
            train.clients_per_round,
            f"an integer in [1, {num_nodes}], or None",
            hint=f"the pool has {num_nodes} nodes",
        )
    if train.strategy in STRATEGIES:
        get_strategy(train.strategy, **train.strategy_options).check_pool(num_nodes)
    _check_privacy_on_pool(train, num_nodes)


def _check_privacy_on_pool(train: TrainConfig, num_nodes: int) -> None:
    """Adaptive clipping's count noise depends on clients per round (Andrew et al.'s sigma_b = K / 20)."""
    settings = privacy.parse(train.privacy)
    if settings.mode == "central" and settings.adaptive:
        from .privacy import dp

        k = privacy.expected_clients(train.clients_per_round, train.fraction, num_nodes)
        dp.update_noise_multiplier(settings.noise_multiplier, settings.clip_count_stddev or k / 20)


@dataclass
class TrainConfig:
    """Local training, client sampling, deadlines and aggregation."""

    model: str = "cnn"
    strategy: str = "fedavg"
    strategy_options: dict[str, Any] = field(default_factory=dict)  # e.g. {"f": 2} for krum
    policy: str = "uniform"  # who trains each round: "uniform" sampling or "adaptive" (network-aware)
    policy_options: dict[str, Any] = field(default_factory=dict)  # AdaptivePolicy options, e.g. {"mode": "proactive"}
    lr: float = 0.05
    momentum: float = 0.9  # local SGD momentum, reset every round
    weight_decay: float = 0.0
    local_epochs: int = 1
    batch_size: int = 10  # B in McMahan et al.
    clients_per_round: int | None = None  # K nodes per round; overrides fraction
    fraction: float = 1.0  # C in McMahan et al.: share of online nodes per round
    deadline_s: float | None = None  # virtual seconds; later updates are stragglers
    min_completion: float | None = None  # FaultTolerant mode: close once this share of selected updates arrived
    late_updates: str = "drop"  # "buffer": apply stragglers later, weighted 1/sqrt(1 + staleness)
    max_update_norm: float | None = None  # reject updates whose L2 norm exceeds this
    quorum: int = 1  # fewest available nodes a round may start with
    max_wait_s: float = 3600.0  # virtual seconds to wait for a quorum before pausing the run
    heartbeat_interval_s: float = 1.0
    heartbeat_timeout_s: float = 5.0
    eval_every: int = 1
    checkpoint_every: int = 5  # rounds; 0 = never (needs a run folder)
    keep_checkpoints: int = 3
    seed: int | None = None  # None = the pool's seed
    vectorise: bool | None = None  # None = vectorise when the model allows it
    device: str = "auto"  # where local training runs: auto (CUDA when present), cpu, cuda[:N]
    compression: str = "none"  # update codec: none, int8, qsgd, topk, sign (see compression.py)
    compression_options: dict[str, Any] = field(default_factory=dict)  # e.g. {"ratio": 0.01} for topk
    download_compression: str = "none"  # model broadcast codec, same kinds (see broadcast.py)
    download_compression_options: dict[str, Any] = field(default_factory=dict)
    availability: str = "always"  # when nodes are online: always, markov, diurnal, trace (see availability.py)
    availability_options: dict[str, Any] = field(default_factory=dict)  # e.g. {"path": "synthetic"} for trace
    partial_work: float | None = None  # each node completes a fraction ~ U[partial_work, 1] of its local steps
    # Differential privacy and secure aggregation (privacy/settings.py); {} = off. E.g.
    # {"mode": "central", "noise_multiplier": 1.0, "clip": 0.5, "budget": 8.0, "secagg": True}; "secagg":
    # "plus" runs SecAgg+ (k neighbours per node, "secagg_neighbours" to set k) instead of every pair
    privacy: dict[str, Any] = field(default_factory=dict)
    # What each accepted update was worth (contribution/): "shapley" (per-round GTG-Shapley on validation
    # data), "loo", or None = "shapley" when a chain records the run, else nothing.
    contribution: str | None = None
    contribution_options: dict[str, Any] = field(default_factory=dict)  # e.g. {"permutations": 8}

    def __post_init__(self) -> None:
        p = "train."
        if isinstance(self.model, str):
            checks.choice(p + "model", self.model, MODELS)
        elif not hasattr(self.model, "parameters"):
            raise ConfigError(p + "model", self.model, "one of " + ", ".join(MODELS) + " or a torch.nn.Module")
        if isinstance(self.strategy, str):
            checks.choice(p + "strategy", self.strategy, STRATEGIES)
        self.strategy_options = checks.mapping_of_str(p + "strategy_options", self.strategy_options)
        checks.choice(p + "policy", self.policy, POLICIES + ("custom",))
        self.policy_options = checks.mapping_of_str(p + "policy_options", self.policy_options)
        # Upper bounds: the rates become float32 tensors, where 1e308 overflowed mid-training.
        self.lr = checks.number(p + "lr", self.lr, 0, MAX_RATE, open_low=True)
        self.momentum = checks.number(p + "momentum", self.momentum, 0, 0.999)
        self.weight_decay = checks.number(p + "weight_decay", self.weight_decay, 0, MAX_RATE)
        self.local_epochs = checks.integer(p + "local_epochs", self.local_epochs, low=1, high=1000)
        self.batch_size = checks.integer(p + "batch_size", self.batch_size, low=1)
        self.clients_per_round = checks.optional(checks.integer, p + "clients_per_round", self.clients_per_round, low=1)
        self.fraction = checks.number(p + "fraction", self.fraction, 0, 1, open_low=True)
        self.deadline_s = checks.optional(checks.number, p + "deadline_s", self.deadline_s, 0, open_low=True)
        self.min_completion = checks.optional(
            checks.number, p + "min_completion", self.min_completion, 0, 1, open_low=True
        )
        checks.choice(p + "late_updates", self.late_updates, ("drop", "buffer"))
        if self.contribution is not None:
            checks.choice(p + "contribution", self.contribution, tuple(SCORERS))
        self.contribution_options = checks.mapping_of_str(p + "contribution_options", self.contribution_options)
        self.max_update_norm = checks.optional(
            checks.number, p + "max_update_norm", self.max_update_norm, 0, open_low=True
        )
        self.quorum = checks.integer(p + "quorum", self.quorum, low=1)
        self.max_wait_s = checks.number(p + "max_wait_s", self.max_wait_s, 0)
        self.heartbeat_interval_s = checks.number(
            p + "heartbeat_interval_s", self.heartbeat_interval_s, 0, open_low=True
        )
        self.heartbeat_timeout_s = checks.number(
            p + "heartbeat_timeout_s", self.heartbeat_timeout_s, self.heartbeat_interval_s
        )
        self.eval_every = checks.integer(p + "eval_every", self.eval_every, low=1)
        self.checkpoint_every = checks.integer(p + "checkpoint_every", self.checkpoint_every, low=0)
        self.keep_checkpoints = checks.integer(p + "keep_checkpoints", self.keep_checkpoints, low=1)
        self.seed = checks.optional(checks.seed, p + "seed", self.seed)
        if not isinstance(self.device, str) or not (
            self.device in ("auto", "cpu", "cuda") or (self.device.startswith("cuda:") and self.device[5:].isdigit())
        ):
            raise ConfigError(p + "device", self.device, "auto, cpu, cuda or cuda:N")
        checks.optional(checks.boolean, p + "vectorise", self.vectorise)
        self.compression_options = checks.mapping_of_str(p + "compression_options", self.compression_options)
        CompressionSpec.build(self.compression, self.compression_options)  # raises naming the field
        self.download_compression_options = checks.mapping_of_str(
            p + "download_compression_options", self.download_compression_options
        )
        CompressionSpec.build(
            self.download_compression, self.download_compression_options, field=p + "download_compression"
        )
        self.availability_options = checks.mapping_of_str(p + "availability_options", self.availability_options)
        availability.build(self.availability, self.availability_options, seed=0, regions={})  # names the field
        self.partial_work = checks.optional(checks.number, p + "partial_work", self.partial_work, 0, 1, open_low=True)
        self._check_plug_in_options()
        self._check_privacy()

    def _check_privacy(self) -> None:
        """Parse the privacy mapping and refuse what cannot hold with it (a median on a SecAgg sum)."""
        settings = privacy.parse(self.privacy)
        self.privacy = dict(self.privacy)
        privacy.check_train(settings, late_updates=self.late_updates, max_update_norm=self.max_update_norm)
        if settings.secagg and self.compression != "none":
            raise ConfigError(
                "train.compression",
                self.compression,
                "none with secure aggregation",
                hint="masked values are uniform in the ring: a codec cannot shrink them, and decoding breaks the masks",
            )
        if self.strategy in STRATEGIES:
            from .strategies import get_strategy

            privacy.check_strategy(settings, get_strategy(self.strategy, **self.strategy_options))

    def _check_plug_in_options(self) -> None:
        """Build the named strategy and planner once, so a bad or unknown option fails here, by name.

        Options are keyword arguments of plug-in classes; an unknown one used to surface as a
        TypeError traceback when the coordinator was built, after the run folder existed.
        """
        from .registry import make_policy
        from .strategies import get_strategy

        if self.strategy in STRATEGIES:
            try:
                get_strategy(self.strategy, **self.strategy_options)
            except ConfigError as exc:
                field = exc.field if exc.field.startswith("train.") else "train." + exc.field
                raise ConfigError(field, exc.value, exc.accepted, exc.hint) from None
        if self.policy in POLICIES:
            try:
                make_policy(self, self.seed or 0)
            except ConfigError as exc:
                field = exc.field if exc.field.startswith("train.") else "train.policy_options." + exc.field
                raise ConfigError(field, exc.value, exc.accepted, exc.hint) from None


@dataclass
class RunConfig:
    """A whole experiment: what the CLI reads and what a run folder records."""

    name: str = "run"
    rounds: int = 20
    pool: PoolConfig = field(default_factory=PoolConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    faults: list[dict[str, Any]] = field(default_factory=list)  # see faults.Fault: kind, nodes, start, end, ...

    def __post_init__(self) -> None:
        if (
            not isinstance(self.name, str)
            or not self.name
            or not all(c.isalnum() or c in "-_." for c in self.name)
            or self.name.startswith(".")
        ):
            raise ConfigError(
                "name",
                self.name,
                "letters, digits, '-', '_' and '.', not starting with '.'",
                hint="the name becomes a folder under --out",
            )
        self.rounds = checks.integer("rounds", self.rounds, low=1)
        if isinstance(self.pool, dict):
            self.pool = _build(PoolConfig, self.pool, "pool.")
        elif not isinstance(self.pool, PoolConfig):
            raise ConfigError("pool", self.pool, "a mapping of pool fields or a PoolConfig")
        if isinstance(self.train, dict):
            self.train = _build(TrainConfig, self.train, "train.")
        elif not isinstance(self.train, TrainConfig):
            raise ConfigError("train", self.train, "a mapping of train fields or a TrainConfig")
        if not isinstance(self.faults, list) or not all(isinstance(f, dict) for f in self.faults):
            raise ConfigError("faults", self.faults, "a list of mappings (kind, nodes, start, end, unit, magnitude)")
        from .faults import Fault

        for f in self.faults:
            fault = Fault.from_dict(f)
            if bad := [n for n in fault.nodes if n >= self.pool.num_nodes]:
                raise ConfigError(
                    "faults.nodes", bad[0], f"node ids in [0, {self.pool.num_nodes - 1}]", hint="pool.num_nodes"
                )
        check_against_pool(self.train, self.pool.num_nodes)

    # -- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        if not isinstance(data, dict):
            raise ConfigError("config", type(data).__name__, "a mapping with keys " + ", ".join(_names(cls)))
        return _build(cls, data, "")

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> RunConfig:
        """Read a ``.json``, ``.yaml`` or ``.yml`` file."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError("config", str(path), "an existing .json, .yaml or .yml file")
        if path.suffix not in (".json", ".yaml", ".yml"):
            raise ConfigError("config", str(path), "a file ending in .json, .yaml or .yml")
        try:
            text = path.read_text(encoding="utf-8")  # UnicodeDecodeError is a ValueError: reported below
        except ValueError as exc:
            raise ConfigError("config", str(path), "valid JSON or YAML", hint=str(exc).splitlines()[0]) from exc
        return cls.from_text(text, "json" if path.suffix == ".json" else "yaml", source=str(path))

    @classmethod
    def from_text(cls, text: str, kind: str = "yaml", *, source: str = "config") -> RunConfig:
        """Parse JSON or YAML text (a file's, or a notebook cell's) and validate it field by field."""
        try:
            if kind == "yaml":
                import yaml

                try:
                    data = yaml.safe_load(text)
                except yaml.YAMLError as exc:  # not a ValueError: convert it so it is reported as ConfigError
                    mark = getattr(exc, "problem_mark", None)
                    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
                    raise ValueError(f"{getattr(exc, 'problem', None) or exc}{where}") from exc
            elif kind == "json":
                data = json.loads(text)
            else:
                raise ConfigError("kind", kind, "'json' or 'yaml'")
        except (ValueError, ImportError) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError("config", source, "valid JSON or YAML", hint=str(exc).splitlines()[0]) from exc
        return cls.from_dict(data)

    def to_file(self, path: str | os.PathLike) -> None:
        """Write JSON or YAML by suffix, atomically."""
        from .runs import atomic_write_text

        path = Path(path)
        if path.suffix in (".yaml", ".yml"):
            import yaml

            text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        else:
            text = self.to_json()
        atomic_write_text(path, text)


def _names(cls: type) -> list[str]:
    return [f.name for f in fields(cls)]


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(prefix.rstrip(".") or "config", data, "a mapping")
    unknown = sorted(set(data) - set(_names(cls)))
    if unknown:
        raise ConfigError(prefix + unknown[0], data[unknown[0]], "a known field: " + ", ".join(_names(cls)))
    return cls(**data)


PRESETS: dict[str, dict[str, Any]] = {
    "quickstart": {
        "name": "quickstart",
        "rounds": 20,
        "pool": {"num_nodes": 10, "dataset": "digits", "partition": "dirichlet", "alpha": 0.5, "network": "mixed"},
        "train": {"model": "cnn", "strategy": "fedavg", "lr": 0.05, "batch_size": 10},
    },
    "iid-lan": {
        "name": "iid-lan",
        "rounds": 10,
        "pool": {"num_nodes": 10, "dataset": "digits", "partition": "iid", "network": "lan"},
        "train": {"model": "cnn", "lr": 0.05, "batch_size": 10},
    },
    "unstable-wan": {
        "name": "unstable-wan",
        "rounds": 20,
        "pool": {
            "num_nodes": 20,
            "dataset": "digits",
            "partition": "dirichlet",
            "alpha": 0.5,
            "network": "unstable-wan",
        },
        "train": {"model": "cnn", "lr": 0.05, "batch_size": 10, "deadline_s": 5.0},
    },
    "many-nodes": {
        "name": "many-nodes",
        "rounds": 10,
        "pool": {"num_nodes": 1000, "dataset": "synthetic", "network": "mixed"},
        "train": {"model": "mlp", "lr": 0.05, "batch_size": 10, "clients_per_round": 100},
    },
    "mnist": {
        "name": "mnist",
        "rounds": 20,
        "pool": {"num_nodes": 20, "dataset": "mnist", "partition": "shards", "network": "mixed", "data_root": "data"},
        "train": {"model": "cnn", "lr": 0.05, "batch_size": 10, "fraction": 0.5},
    },
}


def preset(name: str, /, **overrides: Any) -> RunConfig:
    """A named starting point; ``overrides`` replace top-level keys (e.g. ``rounds=5``)."""
    if name not in PRESETS:
        raise ConfigError("preset", name, "one of " + ", ".join(PRESETS))
    data = json.loads(json.dumps(PRESETS[name]))
    data.update(overrides)
    return RunConfig.from_dict(data)


def resolve_train_config(config: TrainConfig | None, options: dict[str, Any], **objects: Any) -> TrainConfig:
    """One TrainConfig from a base config, keyword overrides and the user's objects.

    ``objects`` are ``model``, ``strategy`` and ``policy``, each a name (a config value) or an object
    (an ``nn.Module``, a Strategy, a planner): a name is validated like any field; an object is used
    as is and recorded as ``"custom"``, since a config can only name things.
    """
    known = {f.name for f in fields(TrainConfig)}
    if unknown := sorted(set(options) - known):
        raise ConfigError(unknown[0], options[unknown[0]], "a TrainConfig field: " + ", ".join(sorted(known)))
    base = {**(dataclasses.asdict(config) if config else {}), **options}
    custom = []
    for name, value in objects.items():
        if value is None:
            continue
        if isinstance(value, str):
            base[name] = value
        else:
            custom.append(name)
            base.pop(name, None)  # validated as the default name, recorded as "custom" below
    cfg = TrainConfig(**base)
    for name in custom:
        setattr(cfg, name, "custom")
    return cfg
