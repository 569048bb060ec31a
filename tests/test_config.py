"""Tests for the validated run configuration: defaults, field errors, files and presets."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from hypergpu_lab.config import PRESETS, PoolConfig, RunConfig, TrainConfig, preset
from hypergpu_lab.errors import ConfigError


def _assert_names(exc: ConfigError, field: str, value: Any) -> None:
    """The message names the dotted field, the bad value's repr and what is accepted."""
    message = str(exc)
    assert message.startswith(f"{field}: "), message
    assert repr(value) in message
    assert "accepted" in message
    assert exc.field == field


# -- defaults ------------------------------------------------------------------------------------


def test_defaults_are_valid_and_nested() -> None:
    # Execute
    cfg = RunConfig()

    # Assert
    assert isinstance(cfg.pool, PoolConfig) and isinstance(cfg.train, TrainConfig)
    assert cfg.pool.num_nodes >= 1 and cfg.rounds >= 1
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


# -- one bad value per validated field -------------------------------------------------------------

POOL_BAD = [
    ("num_nodes", 0),
    ("num_nodes", True),
    ("num_nodes", 2.5),
    ("dataset", "imagenet"),
    ("partition", "random"),
    ("alpha", 0),
    ("alpha", math.nan),
    ("shards_per_node", 0),
    ("network", 5),
    ("regions", []),
    ("regions", "us-east"),
    ("gpus", 3),
    ("seed", -1),
    ("data_root", 5),
    ("download", "yes"),
    ("test_fraction", 0.0),
    ("test_fraction", 0.95),
    ("max_train", 0),
    ("max_test", -3),
    ("synthetic_alpha", -1.0),
    ("synthetic_beta", math.inf),
    ("loss_unit", "byte"),
    ("mtu_bytes", 0),
    ("mtu_bytes", 1500.5),
]

TRAIN_BAD = [
    ("model", "resnet"),
    ("strategy", "fedsgd"),
    ("strategy_options", [1]),
    ("strategy_options", {1: 2}),
    ("policy", "oort"),
    ("policy_options", [1]),
    ("lr", -1),
    ("lr", 0),
    ("lr", "0.1"),
    ("momentum", 1.0),
    ("weight_decay", -0.1),
    ("local_epochs", 0),
    ("local_epochs", 1001),
    ("batch_size", 0),
    ("clients_per_round", 0),
    ("fraction", 0),
    ("fraction", 1.5),
    ("deadline_s", 0.0),
    ("min_completion", 0),
    ("min_completion", 1.5),
    ("late_updates", "queue"),
    ("max_update_norm", 0.0),
    ("quorum", 0),
    ("max_wait_s", -1.0),
    ("heartbeat_interval_s", 0),
    ("heartbeat_timeout_s", 0.5),  # shorter than the default 1 s heartbeat interval
    ("eval_every", 0),
    ("checkpoint_every", -1),
    ("keep_checkpoints", 0),
    ("seed", -2),
    ("vectorise", "yes"),
    ("device", "tpu"),
    ("compression", "zip"),
    ("compression_options", [1]),
    ("download_compression", "zip"),
    ("download_compression_options", [1]),
    ("availability", "sometimes"),
    ("availability_options", [1]),
    ("partial_work", 1.5),
    ("privacy", "central"),
    ("privacy", [1]),
    ("contribution", "banzhaf"),
    ("contribution_options", [1]),
]


@pytest.mark.parametrize(("name", "value"), POOL_BAD, ids=[f"{n}={v!r}" for n, v in POOL_BAD])
def test_bad_pool_value_names_dotted_field(name: str, value: Any) -> None:
    # Execute
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict({"pool": {name: value}})

    # Assert
    _assert_names(info.value, f"pool.{name}", value)


@pytest.mark.parametrize(("name", "value"), TRAIN_BAD, ids=[f"{n}={v!r}" for n, v in TRAIN_BAD])
def test_bad_train_value_names_dotted_field(name: str, value: Any) -> None:
    # Execute
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict({"train": {name: value}})

    # Assert
    _assert_names(info.value, f"train.{name}", value)


RUN_BAD = [
    ("name", "../escape"),
    ("name", ".hidden"),
    ("name", ""),
    ("name", 7),
    ("rounds", 0),
    ("rounds", "10"),
    ("faults", "crash"),
    ("faults", [1]),
]


@pytest.mark.parametrize(("name", "value"), RUN_BAD, ids=[f"{n}={v!r}" for n, v in RUN_BAD])
def test_bad_run_value_names_field(name: str, value: Any) -> None:
    # Execute
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict({name: value})

    # Assert
    _assert_names(info.value, name, value)


def test_every_validated_field_is_covered() -> None:
    # Prepare: every dataclass field is either validated above or a plain, unvalidated one
    pool_fields = set(PoolConfig.__dataclass_fields__)
    train_fields = set(TrainConfig.__dataclass_fields__)

    run_fields = set(RunConfig.__dataclass_fields__) - {"pool", "train"}  # sections: see the mapping test

    # Assert: a field added later without a bad-value case here makes this fail
    assert {n for n, _ in POOL_BAD} == pool_fields
    assert {n for n, _ in TRAIN_BAD} == train_fields
    assert {n for n, _ in RUN_BAD} == run_fields


def test_boundary_values_are_accepted() -> None:
    # Execute
    cfg = RunConfig.from_dict(
        {
            "rounds": 1,
            "pool": {"num_nodes": 1, "test_fraction": 0.9, "synthetic_alpha": 0, "max_train": 1},
            "train": {"momentum": 0.999, "fraction": 1, "checkpoint_every": 0, "local_epochs": 1000, "weight_decay": 0},
        }
    )

    # Assert
    assert cfg.train.checkpoint_every == 0 and cfg.pool.test_fraction == 0.9


# -- unknown keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"colour": "red"}, "colour"),
        ({"pool": {"foo": 1}}, "pool.foo"),
        ({"train": {"learning_rate": 0.1}}, "train.learning_rate"),
    ],
)
def test_unknown_keys_are_refused_by_name(data: dict[str, Any], field: str) -> None:
    # Execute
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict(data)

    # Assert
    assert info.value.field == field
    assert str(info.value).startswith(field + ": ")


@pytest.mark.parametrize("data", [["rounds", 3], None, "quickstart"])
def test_from_dict_refuses_non_mappings(data: Any) -> None:
    with pytest.raises(ConfigError, match=r"^config: "):
        RunConfig.from_dict(data)


@pytest.mark.parametrize(("section", "value"), [("pool", [1, 2]), ("pool", None), ("train", "fast"), ("train", 0.1)])
def test_nested_section_must_be_a_mapping(section: str, value: Any) -> None:
    # Execute
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict({section: value})

    # Assert
    _assert_names(info.value, section, value)


# -- partition rules -------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["digits", "mnist", "cifar10"])
def test_natural_partition_needs_synthetic(dataset: str) -> None:
    # Execute
    with pytest.raises(ConfigError) as info:
        PoolConfig(dataset=dataset, partition="natural")

    # Assert
    assert info.value.field == "pool.partition"
    assert "synthetic" in str(info.value)


def test_synthetic_always_uses_its_natural_partition() -> None:
    # Execute
    explicit = PoolConfig(dataset="synthetic", partition="natural")
    implied = PoolConfig(dataset="synthetic", partition="iid")

    # Assert
    assert explicit.partition == "natural"
    assert implied.partition == "natural"


# -- files -----------------------------------------------------------------------------------------


def _custom_config() -> RunConfig:
    return RunConfig.from_dict(
        {
            "name": "trip_1.a",
            "rounds": 7,
            "pool": {
                "num_nodes": 4,
                "partition": "dirichlet",
                "alpha": 0.25,
                "network": {"good": 0.5, "poor": 0.5},
                "regions": ["us-east", "eu-west"],
                "gpus": {"t4": 0.75, "h100": 0.25},
                "seed": 3,
                "data_root": "some/folder",
                "max_train": 100,
            },
            "train": {
                "model": "mlp",
                "lr": 0.125,
                "clients_per_round": 2,
                "deadline_s": 2.5,
                "seed": 11,
                "vectorise": False,
            },
        }
    )


@pytest.mark.parametrize("suffix", [".json", ".yaml", ".yml"])
def test_file_round_trip_gives_equal_dict(tmp_path: Path, suffix: str) -> None:
    # Prepare
    cfg = _custom_config()
    path = tmp_path / f"cfg{suffix}"

    # Execute
    cfg.to_file(path)
    back = RunConfig.from_file(path)

    # Assert
    assert back.to_dict() == cfg.to_dict()
    assert back == cfg
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temp file left beside it


def test_to_file_writes_the_format_of_its_suffix(tmp_path: Path) -> None:
    # Prepare
    cfg = _custom_config()

    # Execute
    cfg.to_file(tmp_path / "a.json")
    cfg.to_file(tmp_path / "a.yaml")

    # Assert: each parses with the other library's plain reader
    assert json.loads((tmp_path / "a.json").read_text()) == cfg.to_dict()
    assert yaml.safe_load((tmp_path / "a.yaml").read_text()) == cfg.to_dict()


def test_from_file_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^config: .*missing\.yaml"):
        RunConfig.from_file(tmp_path / "missing.yaml")


def test_from_file_wrong_suffix(tmp_path: Path) -> None:
    # Prepare
    path = tmp_path / "cfg.txt"
    path.write_text(json.dumps(RunConfig().to_dict()))

    # Execute / Assert
    with pytest.raises(ConfigError, match=r"\.json, \.yaml or \.yml"):
        RunConfig.from_file(path)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("bad.yaml", "pool: {num_nodes: 3\ntrain: [\n"),
        ("bad.yml", "rounds: 3\n  name: x\n"),
        ("bad.json", '{"rounds": 3,'),
        ("empty.yaml", ""),
        ("list.json", "[1, 2]"),
    ],
)
def test_from_file_malformed(tmp_path: Path, name: str, text: str) -> None:
    # Prepare
    path = tmp_path / name
    path.write_text(text)

    # Execute
    with pytest.raises(ConfigError) as info:
        RunConfig.from_file(path)

    # Assert
    assert info.value.field == "config"
    assert "accepted" in str(info.value)


def test_from_file_reports_bad_value_inside(tmp_path: Path) -> None:
    # Prepare
    path = tmp_path / "cfg.yaml"
    path.write_text("train:\n  lr: -1\n")

    # Execute
    with pytest.raises(ConfigError) as info:
        RunConfig.from_file(path)

    # Assert
    _assert_names(info.value, "train.lr", -1)


# -- presets ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_builds(name: str) -> None:
    # Execute
    cfg = preset(name)

    # Assert
    assert cfg.name == name
    assert cfg.rounds == PRESETS[name]["rounds"]
    assert cfg.pool.num_nodes == PRESETS[name]["pool"]["num_nodes"]


def test_preset_overrides_and_leaves_presets_untouched() -> None:
    # Prepare
    before = json.dumps(PRESETS, sort_keys=True)

    # Execute
    cfg = preset("iid-lan", rounds=2, name="other")
    cfg.pool.num_nodes = 99

    # Assert
    assert (cfg.rounds, cfg.name) == (2, "other")
    assert json.dumps(PRESETS, sort_keys=True) == before


def test_unknown_preset() -> None:
    # Execute
    with pytest.raises(ConfigError) as info:
        preset("nope")

    # Assert
    _assert_names(info.value, "preset", "nope")
    for name in PRESETS:
        assert name in str(info.value)


def test_preset_override_is_validated() -> None:
    with pytest.raises(ConfigError, match=r"^rounds: got 0"):
        preset("quickstart", rounds=0)
