"""Downlink compression: the replica's error feedback is exact, catch-ups are priced from the missed messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hypergpu_lab import Coordinator, NodePool, checkpoint
from hypergpu_lab.broadcast import Broadcast
from hypergpu_lab.compression import CompressionSpec, encoded_nbytes
from hypergpu_lab.config import TrainConfig
from hypergpu_lab.errors import ConfigError


def _weights(p: int, seed: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(size=p).astype(np.float32))


def test_the_replica_moves_by_the_decoded_message_and_keeps_the_rest_as_the_server_residual() -> None:
    # Prepare: top-10% on the downlink, the model drifting each round
    spec, p = CompressionSpec("topk", ratio=0.1), 1000
    w = _weights(p, 0)
    b = Broadcast(spec, w, seed=0)
    k = 100

    for t in range(1, 6):
        w = w + 0.1 * _weights(p, t)
        before = b.replica.clone()
        owed = w - before  # this round's change plus what earlier messages left out (server-side EF)

        # Execute
        b.publish(t, w)

        # Assert: the message holds exactly the k largest entries of what is owed, the rest stays owed
        moved = b.replica - before
        assert int((moved != 0).sum()) == k
        top = torch.topk(owed.abs(), k).indices
        assert torch.equal(moved[top], owed[top])
        rest = torch.ones(p, dtype=torch.bool)
        rest[top] = False
        assert torch.equal((w - b.replica)[rest], owed[rest])  # not sent: owed, exactly
        assert torch.allclose((w - b.replica)[top], torch.zeros(k), atol=1e-6)  # sent: paid (float rounding)
        assert b.sent[t] - b.sent[t - 1] == encoded_nbytes(spec, p)


def test_a_node_that_missed_rounds_pays_the_missed_messages_or_the_float32_model() -> None:
    # Prepare: int8 messages are a quarter of the model (plus scales)
    spec, p = CompressionSpec("int8"), 4096
    w = _weights(p, 0)
    b = Broadcast(spec, w, seed=0)
    msg = encoded_nbytes(spec, p)

    # Execute / Assert: round 1 changes nothing (every node holds the initial model): an empty message
    b.publish(1, w)
    assert b.download_bytes(0) == 0
    b.delivered(0)
    for t in range(2, 8):
        w = w + _weights(p, t)
        b.publish(t, w)
        if t == 2:
            assert b.download_bytes(0) == msg
            b.delivered(0)
    # node 0 synced at round 2 missed rounds 3..7 (5 messages > the model): the float32 model is cheaper
    assert b.download_bytes(0) == min(5 * msg, 4 * p) == 4 * p
    b.delivered(0)
    assert b.download_bytes(0) == 0
    w = w + _weights(p, 99)
    b.publish(8, w)
    assert b.download_bytes(0) == msg
    assert b.download_bytes(1) == 4 * p  # never synced: missed 7 messages


def _coord(**options) -> Coordinator:
    pool = NodePool.simulated(6, dataset="digits", partition="iid", network="mixed", seed=3)
    return Coordinator(pool=pool, model="mlp", batch_size=32, clients_per_round=3, **options)


def test_downloads_carry_the_broadcast_and_nodes_train_from_the_replica() -> None:
    # Prepare
    coord = _coord(download_compression="int8")
    coord.run(rounds=3, progress=False)
    b = coord.broadcast
    assert b is not None
    synced = dict(b.synced)
    replica = b.replica.clone()

    # Execute
    rep = coord.step()

    # Assert: each download is the messages its node missed (capped at the model), and the round's
    # updates were trained from the new replica, not from the server's weights
    for rec in rep.nodes:
        missed = b.sent[4] - b.sent[synced.get(rec.node, 0)]
        assert rec.download_bytes == min(missed, coord.layout.nbytes)
    assert not torch.equal(b.replica, replica)
    assert not torch.equal(b.replica, coord.weights)
    assert rep.bytes_moved == sum(
        r.download_bytes * r.download_attempts + r.upload_bytes * r.upload_attempts for r in rep.nodes
    )


def test_resume_restores_the_replica_and_sync_rounds_bit_for_bit(tmp_path: Path) -> None:
    # Prepare
    opts = {"download_compression": "qsgd", "compression": "topk", "compression_options": {"ratio": 0.05}}
    whole = _coord(**opts)
    whole.run(rounds=5, progress=False)
    half = _coord(**opts)
    half.run(rounds=2, progress=False)
    half.save_checkpoint(tmp_path / "c.ckpt")

    # Execute
    resumed = _coord(**opts)
    resumed.load_state_dict(checkpoint.load(tmp_path / "c.ckpt"))
    resumed.run(rounds=3, progress=False)

    # Assert
    assert torch.equal(resumed.weights, whole.weights)
    assert torch.equal(resumed.broadcast.replica, whole.broadcast.replica)
    assert resumed.broadcast.sent == whole.broadcast.sent and resumed.broadcast.synced == whole.broadcast.synced
    assert [r["bytes_moved"] for r in resumed.history.rounds] == [r["bytes_moved"] for r in whole.history.rounds][2:]


def test_config_errors_name_the_download_field() -> None:
    with pytest.raises(ConfigError, match=r"train\.download_compression: got 'zip'"):
        TrainConfig(download_compression="zip")
    with pytest.raises(ConfigError, match=r"train\.download_compression_options\.ratio"):
        TrainConfig(download_compression="topk", download_compression_options={"ratio": 2})
    with pytest.raises(ConfigError, match=r"train\.download_compression_options\.levels"):
        TrainConfig(download_compression="int8", download_compression_options={"levels": 2})
