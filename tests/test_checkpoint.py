"""Tests for checkpoints: verified round trips, refused damage, fallback and pruning."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import torch

from hypergpu_lab import checkpoint
from hypergpu_lab.checkpoint import MAGIC, latest_valid, list_checkpoints, path_for
from hypergpu_lab.errors import CheckpointError
from hypergpu_lab.persistence import prune


def _state(round_: int) -> dict[str, Any]:
    g = torch.Generator().manual_seed(round_)
    return {
        "round": round_,
        "weights": torch.randn(50, generator=g),
        "counts": torch.arange(6, dtype=torch.int64).reshape(2, 3),
        "double": torch.tensor([1.0 / 3.0], dtype=torch.float64),
        "name": f"run-{round_}",
        "ratio": 0.125,
        "nothing": None,
        "flag": True,
        "nested": {"ids": [1, 2, 3], "pair": (4, "x"), 7: {"deep": [0.5]}},
    }


def _assert_same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a.keys() == b.keys()
    for key, value in a.items():
        if isinstance(value, torch.Tensor):
            assert isinstance(b[key], torch.Tensor) and b[key].dtype == value.dtype
            assert torch.equal(b[key], value)
        else:
            assert b[key] == value


def _save_rounds(folder: Path, rounds: list[int]) -> None:
    for r in rounds:
        checkpoint.save(path_for(folder, r), _state(r))


def test_save_load_round_trip(tmp_path: Path) -> None:
    # Prepare
    state = _state(3)
    path = tmp_path / "ckpts" / "round-000003.ckpt"

    # Execute
    checkpoint.save(path, state)
    loaded = checkpoint.load(path)

    # Assert
    _assert_same(state, loaded)
    assert path.read_bytes()[:8] == MAGIC
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # written atomically, no temp left


def test_save_overwrites_whole(tmp_path: Path) -> None:
    # Prepare
    path = tmp_path / "c.ckpt"
    checkpoint.save(path, {"weights": torch.zeros(10_000)})

    # Execute
    checkpoint.save(path, _state(1))

    # Assert
    _assert_same(_state(1), checkpoint.load(path))


@pytest.mark.parametrize("keep_bytes", [-10, -1, 45, 41])
def test_truncated_file_fails_checksum(tmp_path: Path, keep_bytes: int) -> None:
    # Prepare
    path = tmp_path / "c.ckpt"
    checkpoint.save(path, _state(1))
    blob = path.read_bytes()
    path.write_bytes(blob[:keep_bytes])

    # Execute / Assert
    with pytest.raises(CheckpointError, match=r"checksum.*truncated"):
        checkpoint.load(path)


@pytest.mark.parametrize("keep_bytes", [0, 8, 39])
def test_file_shorter_than_header_is_truncated(tmp_path: Path, keep_bytes: int) -> None:
    # Prepare
    path = tmp_path / "c.ckpt"
    checkpoint.save(path, _state(1))
    path.write_bytes(path.read_bytes()[:keep_bytes])

    # Execute / Assert
    with pytest.raises(CheckpointError, match="truncated"):
        checkpoint.load(path)


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_one_flipped_payload_byte_fails_checksum(tmp_path: Path, where: str) -> None:
    # Prepare
    path = tmp_path / "c.ckpt"
    checkpoint.save(path, _state(1))
    blob = bytearray(path.read_bytes())
    offset = {"first": 40, "middle": (40 + len(blob)) // 2, "last": len(blob) - 1}[where]
    blob[offset] ^= 0x01
    path.write_bytes(bytes(blob))

    # Execute / Assert
    with pytest.raises(CheckpointError, match="checksum"):
        checkpoint.load(path)


def test_wrong_magic_and_missing_file(tmp_path: Path) -> None:
    # Prepare
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"weights": torch.zeros(3)}, foreign)  # a plain torch file, no header

    # Execute / Assert
    with pytest.raises(CheckpointError, match="not a HyperGPU Lab checkpoint"):
        checkpoint.load(foreign)
    with pytest.raises(CheckpointError, match="cannot read"):
        checkpoint.load(tmp_path / "missing.ckpt")


def test_load_refuses_arbitrary_objects(tmp_path: Path) -> None:
    # Prepare: a checksum-valid file whose payload pickles a non-tensor class
    path = tmp_path / "c.ckpt"
    checkpoint.save(path, {"path": Path("/etc")})

    # Execute / Assert: weights_only unpickling refuses it, as a CheckpointError
    with pytest.raises(CheckpointError, match="passes its checksum but cannot be loaded"):
        checkpoint.load(path)


def test_latest_valid_skips_checkpoint_that_cannot_be_unpickled(tmp_path: Path) -> None:
    # Prepare
    _save_rounds(tmp_path, [1])
    checkpoint.save(path_for(tmp_path, 2), {"path": Path("/etc")})

    # Execute
    found = latest_valid(tmp_path)

    # Assert
    assert found is not None and found[0] == path_for(tmp_path, 1)


def test_path_for_and_list_checkpoints_ignore_unrelated_files(tmp_path: Path) -> None:
    # Prepare
    _save_rounds(tmp_path, [12, 3, 100])
    for name in (
        "notes.txt",
        "round-5.ckpt",
        "round-000007.ckpt.tmp",
        ".round-000008.ckpt.abc.tmp",
        "round-0000009.ckpt",
        "xround-000010.ckpt",
        "round-000011.CKPT",
    ):
        (tmp_path / name).write_bytes(b"junk")
    (tmp_path / "sub").mkdir()

    # Execute
    found = list_checkpoints(tmp_path)

    # Assert
    assert path_for(tmp_path, 3).name == "round-000000000003.ckpt"
    assert found == [(3, path_for(tmp_path, 3)), (12, path_for(tmp_path, 12)), (100, path_for(tmp_path, 100))]
    assert list_checkpoints(tmp_path / "missing") == []


def test_latest_valid_returns_newest(tmp_path: Path) -> None:
    # Prepare
    _save_rounds(tmp_path, [1, 2, 3])

    # Execute
    found = latest_valid(tmp_path)

    # Assert
    assert found is not None
    path, state = found
    assert path == path_for(tmp_path, 3)
    _assert_same(_state(3), state)


def test_latest_valid_skips_corrupted_newest_with_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Prepare: round 3 has one flipped byte, round 4 is cut short
    _save_rounds(tmp_path, [1, 2, 3, 4])
    blob = bytearray(path_for(tmp_path, 3).read_bytes())
    blob[-5] ^= 0xFF
    path_for(tmp_path, 3).write_bytes(bytes(blob))
    path_for(tmp_path, 4).write_bytes(path_for(tmp_path, 4).read_bytes()[:-100])

    # Execute
    with caplog.at_level(logging.WARNING, logger="hypergpu_lab.checkpoint"):
        found = latest_valid(tmp_path)

    # Assert
    assert found is not None
    assert found[0] == path_for(tmp_path, 2)
    _assert_same(_state(2), found[1])
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "round-000000000004.ckpt" in warnings[0] and "round-000000000003.ckpt" in warnings[1]


def test_latest_valid_none_when_nothing_verifies(tmp_path: Path) -> None:
    # Prepare
    _save_rounds(tmp_path, [1])
    path_for(tmp_path, 1).write_bytes(b"HGLCKPT1")

    # Execute / Assert
    assert latest_valid(tmp_path) is None
    assert latest_valid(tmp_path / "missing") is None


@pytest.mark.parametrize(("keep", "left"), [(1, [5]), (2, [4, 5]), (3, [2, 4, 5]), (10, [1, 2, 4, 5]), (0, [])])
def test_prune_keeps_the_newest_k(tmp_path: Path, keep: int, left: list[int]) -> None:
    # Prepare
    _save_rounds(tmp_path, [2, 5, 1, 4])
    (tmp_path / "notes.txt").write_text("keep me")

    # Execute
    prune(tmp_path, keep)

    # Assert
    assert [r for r, _ in list_checkpoints(tmp_path)] == left
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_names_match_and_sort_past_a_million_rounds_and_legacy_names_are_found(tmp_path: Path) -> None:
    # Prepare: new names across the old 6-digit boundary, plus two legacy six-digit spellings
    _save_rounds(tmp_path, [999_999, 1_000_000, 12_345_678])
    checkpoint.save(tmp_path / "round-000007.ckpt", _state(7))
    checkpoint.save(tmp_path / "round-1000001.ckpt", _state(1_000_001))

    # Execute
    found = list_checkpoints(tmp_path)

    # Assert: every round found, in numeric order; new names also sort as plain strings
    assert [n for n, _ in found] == [7, 999_999, 1_000_000, 1_000_001, 12_345_678]
    new = [path_for(tmp_path, n).name for n in (999_999, 1_000_000, 12_345_678)]
    assert sorted(new) == new
    assert latest_valid(tmp_path)[0] == path_for(tmp_path, 12_345_678)
    assert checkpoint.round_of("round-0000009.ckpt") is None  # neither spelling: not round 9


def test_prune_keeps_the_newest_across_the_million_boundary(tmp_path: Path) -> None:
    from hypergpu_lab.persistence import prune

    _save_rounds(tmp_path, [999_998, 999_999, 1_000_000, 1_000_001])
    prune(tmp_path, keep=2)
    assert [n for n, _ in list_checkpoints(tmp_path)] == [1_000_000, 1_000_001]
