"""A table of malformed configs and API calls: each must fail by name, with exit 2, before writing anything.

Every CLI case is a valid small config with one field broken (or one impossible combination). The
oracle for each is the same three facts: ``hypergpu-lab run`` returns 2, stderr is one line naming
the field, and ``--out`` holds nothing afterwards (so the corrected rerun needs no ``--resume``).
API cases check that construction raises :class:`ConfigError` naming the field, before any round.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from hypergpu_lab import ConfigError
from hypergpu_lab.cli import main

BASE: dict[str, Any] = {
    "name": "fuzz",
    "rounds": 1,
    "pool": {"num_nodes": 5, "dataset": "synthetic", "max_train": 200, "max_test": 50},
    "train": {"model": "mlp"},
}

# (section, field, value, the field the error must name); section None = top level.
_CASES: list[tuple[str | None, str, Any, str]] = [
    # -- the cases of issue 17 -------------------------------------------------------------------
    ("pool", "seed", 2**64, "pool.seed"),
    ("train", "lr", 1e308, "train.lr"),
    ("train", "policy_options", {"bogus": 1}, "train.policy_options"),
    ("train", "quorum", 100, "train.quorum"),
    ("train", "clients_per_round", 100, "train.clients_per_round"),
    ("train", "strategy_options", {"f": 100}, "train.strategy_options.f"),
    # -- top level -------------------------------------------------------------------------------
    (None, "name", "", "name"),
    (None, "name", "../up", "name"),
    (None, "name", ".hidden", "name"),
    (None, "name", "a/b", "name"),
    (None, "name", 7, "name"),
    (None, "name", None, "name"),
    (None, "rounds", 0, "rounds"),
    (None, "rounds", -3, "rounds"),
    (None, "rounds", 1.5, "rounds"),
    (None, "rounds", "10", "rounds"),
    (None, "rounds", True, "rounds"),
    (None, "rounds", None, "rounds"),
    (None, "pool", [], "pool"),
    (None, "pool", "x", "pool"),
    (None, "train", 3, "train"),
    (None, "faults", {"kind": "crash"}, "faults"),
    (None, "faults", ["crash"], "faults"),
    (None, "unknown_top", 1, "unknown_top"),
    # -- pool ------------------------------------------------------------------------------------
    ("pool", "num_nodes", 0, "pool.num_nodes"),
    ("pool", "num_nodes", -1, "pool.num_nodes"),
    ("pool", "num_nodes", 2.5, "pool.num_nodes"),
    ("pool", "num_nodes", "5", "pool.num_nodes"),
    ("pool", "num_nodes", None, "pool.num_nodes"),
    ("pool", "dataset", "imagenet", "pool.dataset"),
    ("pool", "dataset", 1, "pool.dataset"),
    ("pool", "partition", "random", "pool.partition"),
    ("pool", "alpha", 0, "pool.alpha"),
    ("pool", "alpha", -1.0, "pool.alpha"),
    ("pool", "alpha", float("nan"), "pool.alpha"),
    ("pool", "alpha", "0.5", "pool.alpha"),
    ("pool", "shards_per_node", 0, "pool.shards_per_node"),
    ("pool", "network", 5, "pool.network"),
    ("pool", "network", ["lan"], "pool.network"),
    ("pool", "gpus", 3, "pool.gpus"),
    ("pool", "regions", [], "pool.regions"),
    ("pool", "regions", "eu", "pool.regions"),
    ("pool", "seed", -1, "pool.seed"),
    ("pool", "seed", 1.0, "pool.seed"),
    ("pool", "seed", "0", "pool.seed"),
    ("pool", "seed", 2**63, "pool.seed"),
    ("pool", "data_root", 5, "pool.data_root"),
    ("pool", "download", "yes", "pool.download"),
    ("pool", "download", 1, "pool.download"),
    ("pool", "test_fraction", 0, "pool.test_fraction"),
    ("pool", "test_fraction", 0.95, "pool.test_fraction"),
    ("pool", "test_fraction", 1e308, "pool.test_fraction"),
    ("pool", "max_train", 0, "pool.max_train"),
    ("pool", "max_test", -5, "pool.max_test"),
    ("pool", "synthetic_alpha", -1, "pool.synthetic_alpha"),
    ("pool", "synthetic_beta", float("inf"), "pool.synthetic_beta"),
    ("pool", "loss_unit", "packets", "pool.loss_unit"),
    ("pool", "mtu_bytes", 0, "pool.mtu_bytes"),
    ("pool", "mtu_bytes", "1500", "pool.mtu_bytes"),
    ("pool", "bogus", 1, "pool.bogus"),
    # -- train -----------------------------------------------------------------------------------
    ("train", "model", "resnet", "train.model"),
    ("train", "model", 3, "train.model"),
    ("train", "strategy", "fedsgd", "train.strategy"),
    ("train", "strategy_options", [1], "train.strategy_options"),
    ("train", "strategy_options", {"bogus": 1}, "train.strategy_options.bogus"),
    ("train", "policy", "random", "train.policy"),
    ("train", "policy_options", "x", "train.policy_options"),
    ("train", "lr", 0, "train.lr"),
    ("train", "lr", -0.1, "train.lr"),
    ("train", "lr", float("nan"), "train.lr"),
    ("train", "lr", float("inf"), "train.lr"),
    ("train", "lr", "0.1", "train.lr"),
    ("train", "lr", True, "train.lr"),
    ("train", "lr", None, "train.lr"),
    ("train", "momentum", 1.0, "train.momentum"),
    ("train", "momentum", -0.5, "train.momentum"),
    ("train", "weight_decay", -1, "train.weight_decay"),
    ("train", "weight_decay", 1e300, "train.weight_decay"),
    ("train", "local_epochs", 0, "train.local_epochs"),
    ("train", "local_epochs", 10**6, "train.local_epochs"),
    ("train", "local_epochs", 1.5, "train.local_epochs"),
    ("train", "batch_size", 0, "train.batch_size"),
    ("train", "batch_size", "10", "train.batch_size"),
    ("train", "clients_per_round", 0, "train.clients_per_round"),
    ("train", "clients_per_round", 6, "train.clients_per_round"),
    ("train", "fraction", 0, "train.fraction"),
    ("train", "fraction", 1.5, "train.fraction"),
    ("train", "deadline_s", 0, "train.deadline_s"),
    ("train", "deadline_s", -1, "train.deadline_s"),
    ("train", "deadline_s", float("inf"), "train.deadline_s"),
    ("train", "min_completion", 0, "train.min_completion"),
    ("train", "min_completion", 2, "train.min_completion"),
    ("train", "late_updates", "keep", "train.late_updates"),
    ("train", "max_update_norm", 0, "train.max_update_norm"),
    ("train", "quorum", 0, "train.quorum"),
    ("train", "quorum", 6, "train.quorum"),
    ("train", "max_wait_s", -1, "train.max_wait_s"),
    ("train", "heartbeat_interval_s", 0, "train.heartbeat_interval_s"),
    ("train", "heartbeat_timeout_s", 0.5, "train.heartbeat_timeout_s"),
    ("train", "eval_every", 0, "train.eval_every"),
    ("train", "checkpoint_every", -1, "train.checkpoint_every"),
    ("train", "keep_checkpoints", 0, "train.keep_checkpoints"),
    ("train", "seed", -1, "train.seed"),
    ("train", "seed", 2**64, "train.seed"),
    ("train", "vectorise", "yes", "train.vectorise"),
    ("train", "device", "tpu", "train.device"),
    ("train", "device", "cuda:x", "train.device"),
    ("train", "bogus", 1, "train.bogus"),
]

# Whole-config variants: an impossible combination or a broken fault plan.
_COMBOS: list[tuple[str, dict[str, Any], str]] = [
    ("krum f=100", {"train": {"model": "mlp", "strategy": "krum", "strategy_options": {"f": 100}}}, "f"),
    ("krum f=2 on 5", {"train": {"model": "mlp", "strategy": "krum", "strategy_options": {"f": 2}}}, "f"),
    ("multi-krum m", {"train": {"model": "mlp", "strategy": "multi-krum", "strategy_options": {"m": 9}}}, "m"),
    ("trimmed beta", {"train": {"model": "mlp", "strategy": "trimmed-mean", "strategy_options": {"beta": 0.5}}}, ""),
    ("adaptive bogus", {"train": {"model": "mlp", "policy": "adaptive", "policy_options": {"bogus": 1}}}, "bogus"),
    ("adaptive mode", {"train": {"model": "mlp", "policy": "adaptive", "policy_options": {"mode": "x"}}}, "mode"),
    ("natural digits", {"pool": {**BASE["pool"], "dataset": "digits", "partition": "natural"}}, "partition"),
    ("fault magnitude", {"faults": [{"kind": "straggler", "nodes": [0], "magnitude": "big"}]}, "magnitude"),
    ("fault magnitude huge", {"faults": [{"kind": "straggler", "nodes": [0], "magnitude": 1e300}]}, "magnitude"),
    ("fault kind", {"faults": [{"kind": "meteor", "nodes": [0]}]}, "kind"),
    ("fault nodes empty", {"faults": [{"kind": "sign_flip", "nodes": []}]}, "nodes"),
    ("fault node outside", {"faults": [{"kind": "sign_flip", "nodes": [9]}]}, "nodes"),
    ("fault nodes str", {"faults": [{"kind": "sign_flip", "nodes": "0"}]}, "nodes"),
    ("fault start", {"faults": [{"kind": "sign_flip", "nodes": [0], "start": -1}]}, "start"),
    ("fault end", {"faults": [{"kind": "sign_flip", "nodes": [0], "start": 5, "end": 2}]}, "end"),
    ("fault unit", {"faults": [{"kind": "sign_flip", "nodes": [0], "unit": "hours"}]}, "unit"),
    ("fault crash rounds", {"faults": [{"kind": "crash", "nodes": [0], "unit": "round"}]}, "unit"),
    ("fault extra key", {"faults": [{"kind": "sign_flip", "nodes": [0], "when": 1}]}, "when"),
]


def _config(section: str | None, field: str, value: Any) -> dict[str, Any]:
    cfg = copy.deepcopy(BASE)
    (cfg if section is None else cfg[section])[field] = value
    return cfg


def _params() -> list[Any]:
    out = [pytest.param(_config(s, f, v), expect, id=f"{s or 'top'}.{f}={v!r}"[:60]) for s, f, v, expect in _CASES]
    out += [pytest.param({**copy.deepcopy(BASE), **patch}, expect, id=name) for name, patch, expect in _COMBOS]
    return out


CLI_CASES = _params()


def test_the_table_has_at_least_100_cli_cases() -> None:
    assert len(CLI_CASES) >= 100


def _assert_nothing_written(out: Path) -> None:
    assert not out.exists() or list(out.iterdir()) == [], sorted(p.name for p in out.iterdir())


@pytest.mark.parametrize("config, field", CLI_CASES)
def test_malformed_config_exits_2_naming_the_field_and_writes_nothing(
    config: dict[str, Any], field: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Prepare: JSON cannot hold NaN / inf strictly; Python's json writes them and reads them back
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    out = tmp_path / "out"

    # Execute
    rc = main(["run", "--config", str(path), "--out", str(out), "--no-progress"])

    # Assert
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("hypergpu-lab: error: ") and err.count("\n") == 1, err
    assert field in err.split("; accepted:")[0], err
    assert "accepted:" in err
    _assert_nothing_written(out)


@pytest.mark.parametrize(
    "argv, field",
    [
        (["--rounds", "0"], "rounds"),
        (["--seed", "-1"], "pool.seed"),
        (["--seed", str(2**64)], "pool.seed"),
        (["--name", "../x"], "name"),
        (["--name", ".x"], "name"),
        (["--resume"], "--resume"),
    ],
)
def test_malformed_overrides_exit_2(
    argv: list[str], field: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(BASE))
    out = [] if "--resume" in argv else ["--out", str(tmp_path / "out")]

    rc = main(["run", "--config", str(path), *out, *argv, "--no-progress"])

    err = capsys.readouterr().err
    assert rc == 2 and f"error: {field}" in err, err
    _assert_nothing_written(tmp_path / "out")


def test_out_naming_a_file_or_an_impossible_place_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Prepare
    path = tmp_path / "config.json"
    path.write_text(json.dumps(BASE))
    a_file = tmp_path / "file.txt"
    a_file.write_text("keep me")

    for out in (a_file, a_file / "below", Path("/proc/hypergpu-lab-x")):
        # Execute
        rc = main(["run", "--config", str(path), "--out", str(out), "--no-progress"])

        # Assert
        err = capsys.readouterr().err
        assert rc == 2 and "error: --out: got" in err and "writable folder" in err, err
    assert a_file.read_text() == "keep me"


def test_a_failed_start_leaves_no_folder_and_the_corrected_rerun_works(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Prepare: an unknown policy option used to fail after the run folder existed
    path = tmp_path / "config.json"
    path.write_text(json.dumps(_config("train", "policy_options", {"bogus": 1})))
    out = tmp_path / "out"
    assert main(["run", "--config", str(path), "--out", str(out), "--no-progress"]) == 2

    # Execute
    path.write_text(json.dumps(BASE))
    rc = main(["run", "--config", str(path), "--out", str(out), "--no-progress"])

    # Assert
    capsys.readouterr()
    assert rc == 0
    assert (out / "fuzz" / "metrics.jsonl").read_text().count("\n") == 1


# -- the API -----------------------------------------------------------------------------------


def _pool():  # type: ignore[no-untyped-def]
    from hypergpu_lab import NodePool

    return NodePool.simulated(5, dataset="synthetic", max_train=200, max_test=50)


def _api_cases() -> list[Any]:
    from hypergpu_lab import Coordinator
    from hypergpu_lab.faults import Fault, FaultInjector
    from hypergpu_lab.network import Disconnect, LatencySpike, LinkProfile, Partition, Reconnect
    from hypergpu_lab.nodes import NodePool

    def coord(**kw: Any) -> Any:
        return lambda: Coordinator(pool=_pool(), model="mlp", **kw)

    return [
        (lambda: Coordinator(pool=None), "pool"),
        (lambda: Coordinator(pool="nodes"), "pool"),
        (coord(quorum=100), "train.quorum"),
        (coord(clients_per_round=100), "train.clients_per_round"),
        (coord(strategy="krum", strategy_options={"f": 100}), "train.strategy_options.f"),
        (coord(strategy="multi-krum", strategy_options={"f": 1, "m": 5}), "train.strategy_options.m"),
        (coord(lr=1e308), "train.lr"),
        (coord(lr=-1), "train.lr"),
        (coord(seed=2**64), "train.seed"),
        (coord(policy_options={"bogus": 1}), "train.policy_options"),
        (coord(policy="adaptive", policy_options={"bogus": 1}), "train.policy_options.bogus"),
        (coord(bogus=1), "bogus"),
        (coord(batch_size=0), "train.batch_size"),
        (coord(faults=[{"kind": "crash", "nodes": [0], "unit": "round"}]), "fault.unit"),
        (coord(faults=[{"kind": "sign_flip", "nodes": [7]}]), "fault.nodes"),
        (lambda: Disconnect(nodes=[0], start=-1), "start"),
        (lambda: Disconnect(nodes=[0], start=float("nan")), "start"),
        (lambda: Disconnect(nodes=[], start=0), "nodes"),
        (lambda: Disconnect(nodes=[0], start=0, duration=0), "duration"),
        (lambda: LatencySpike(nodes=[0], start=0, duration=1, extra_ms=1e300), "extra_ms"),
        (lambda: LatencySpike(nodes=[0], start=0, duration=1, extra_ms=-1), "extra_ms"),
        (lambda: LatencySpike(nodes=[0], start=-5, duration=1, extra_ms=1), "start"),
        (lambda: LatencySpike(nodes=[0], start=0, duration=-1, extra_ms=1), "duration"),
        (lambda: Partition(nodes=[0], start=-1, duration=1), "start"),
        (lambda: Reconnect(nodes=[0], at=float("inf")), "at"),
        (lambda: LinkProfile("x", (1.0, 1e300), 0.0, 10.0), "latency_ms"),
        (lambda: LinkProfile("x", (5.0, 1.0), 0.0, 10.0), "latency_ms"),
        (lambda: LinkProfile("x", (1.0, 2.0), 1.0, 10.0), "loss"),
        (lambda: LinkProfile("x", (1.0, 2.0), 0.0, 0.0), "bandwidth_mbps"),
        (lambda: LinkProfile("x", (1.0, 2.0), 0.0, 10.0, 1e300), "jitter_ms"),
        (lambda: Fault("straggler", (0,), magnitude=0.5), "fault.magnitude"),
        (lambda: Fault("straggler", (0,), magnitude=1e300), "fault.magnitude"),
        (lambda: Fault("noise", (0,), magnitude=float("nan")), "fault.magnitude"),
        (lambda: Fault("sign_flip", (0,), start=-1), "fault.start"),
        (lambda: Fault("sign_flip", (-1,)), "fault.nodes"),
        (lambda: Fault("sign_flip", "0"), "fault.nodes"),
        (lambda: FaultInjector([{"kind": "x", "nodes": [0]}]), "fault.kind"),
        (lambda: NodePool.simulated(0), "pool.num_nodes"),
        (lambda: NodePool.simulated(5, bogus=1), "bogus"),
        (lambda: NodePool.simulated(5, seed=2**64), "pool.seed"),
        (lambda: NodePool.simulated(5, dataset="synthetic", partition="iid", alpha=-1), "pool.alpha"),
        (lambda: NodePool.simulated(5, network="moon"), "network"),
        (lambda: NodePool.simulated(5, network={"lan": 2.0}), "network"),
        (lambda: NodePool.simulated(5, gpus="tpu-v9"), "gpu"),
        (lambda: _pool() and Coordinator(pool=_pool(), model="mlp").run(rounds=-1), "rounds"),
        (lambda: Coordinator(pool=_pool(), model="mlp").run(rounds=1, until=2), "rounds"),
        (lambda: Coordinator(pool=_pool(), model="mlp").run(until=-1), "until"),
        (lambda: Coordinator(pool=_pool(), model="mlp").run(rounds=True), "rounds"),
    ]


API_CASES = _api_cases()


def test_the_table_has_at_least_40_api_cases() -> None:
    assert len(API_CASES) >= 40


@pytest.mark.parametrize("index", range(len(API_CASES)))
def test_malformed_api_call_raises_config_error_naming_the_field(index: int) -> None:
    call, field = API_CASES[index]

    with pytest.raises(ConfigError) as info:
        call()

    assert field in info.value.field, str(info.value)
    assert info.value.accepted
