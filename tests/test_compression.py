"""Update compression against each codec's paper definition, bytes from the encoding, EF across checkpoints."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from hypergpu_lab import Coordinator, NodePool, checkpoint
from hypergpu_lab.compression import (
    CompressionSpec,
    UpdateCompressor,
    decode,
    encode,
    pack_bits,
    qsgd_bits,
    top_indices,
    unpack_bits,
)
from hypergpu_lab.config import TrainConfig
from hypergpu_lab.errors import ConfigError
from hypergpu_lab.runs import RunFolder


def _vector(p: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=p).astype(np.float32)


@pytest.mark.parametrize("bits", [1, 2, 3, 5, 8, 11, 16])
def test_bit_packing_round_trips_in_bits_planes_of_ceil_n_over_8_bytes(bits: int) -> None:
    codes = np.random.default_rng(bits).integers(0, 2**bits, size=1001)
    packed = pack_bits(codes, bits)
    assert packed.nbytes == bits * math.ceil(1001 / 8)
    assert np.array_equal(unpack_bits(packed, bits, 1001), codes)


def test_int8_error_is_at_most_half_a_step_and_bytes_are_codes_plus_scales() -> None:
    # Prepare
    v, spec = _vector(1300), CompressionSpec("int8", bucket=512)

    # Execute
    enc = encode(v, spec)
    out = decode(enc, spec)

    # Assert: per bucket, step = max|v| / 127 and |v - q step| <= step / 2 (round to nearest)
    step = np.repeat(np.abs(np.pad(v, (0, 236))).reshape(-1, 512).max(1) / 127, 512)[:1300]
    assert np.all(np.abs(out - v) <= step / 2 * (1 + 1e-6))
    assert enc.nbytes == 1300 * 1 + 3 * 4  # one int8 per value, one float32 scale per bucket


def test_qsgd_is_unbiased_and_takes_only_the_two_nearest_levels() -> None:
    """QSGD (Alistarh et al. 2017, Lemma 3.1): E[Q_s(v)] = v, each value ||v|| sgn(v_i) l / s with l in {floor(r), floor(r)+1}."""
    # Prepare
    v, s, draws = _vector(40, seed=1), 4, 4000
    spec = CompressionSpec("qsgd", levels=s, bucket=64)
    norm = np.linalg.norm(v.astype(np.float64))
    r = np.abs(v) / norm * s

    # Execute
    out = np.stack([decode(encode(v, spec, np.random.default_rng(i)), spec) for i in range(draws)]).astype(np.float64)

    # Assert: levels are the two nearest; the mean is v within 5 standard errors of the known variance
    levels = np.abs(out) / norm * s
    assert np.all((np.abs(levels - np.floor(r)) < 1e-4) | (np.abs(levels - np.floor(r) - 1) < 1e-4))
    p = r - np.floor(r)
    sd = norm / s * np.sqrt(p * (1 - p))
    assert np.all(np.abs(out.mean(0) - v) <= 5 * sd / np.sqrt(draws) + 1e-6)
    enc = encode(v, spec, np.random.default_rng(0))
    assert enc.nbytes == qsgd_bits(s) * math.ceil(40 / 8) + 4  # 4 bit planes (codes -4..4), one norm


@pytest.mark.parametrize("sign", [False, True])
def test_topk_keeps_the_k_largest_magnitudes_and_bytes_are_index_plus_value(sign: bool) -> None:
    # Prepare
    v, spec = _vector(5000, seed=2), CompressionSpec("topk", ratio=0.01, sign=sign)
    k = 50
    top = np.sort(np.argsort(-np.abs(v))[:k])

    # Execute
    enc = encode(v, spec)
    out = decode(enc, spec)

    # Assert
    assert np.array_equal(np.flatnonzero(out), top)
    if sign:
        assert np.allclose(out[top], np.sign(v[top]) * np.abs(v[top]).mean())
        assert enc.nbytes == k * 2 + math.ceil(k / 8) + 4  # uint16 indices, 1-bit signs, one scale
    else:
        assert np.array_equal(out[top], v[top])
        assert enc.nbytes == k * (2 + 4)  # uint16 index + float32 value


@pytest.mark.parametrize("m", [1, 7, 30, 400, 2999])
def test_top_indices_are_the_m_largest_with_ties_to_the_lowest_columns(m: int) -> None:
    """The sampled threshold is a shortcut only: the selection equals a full sort by (-|v|, column)."""
    # Prepare: plain rows, rows full of ties, a row whose strided sample misjudges it, a NaN
    rng = np.random.default_rng(7)
    a = np.abs(rng.normal(size=(8, 3000))).astype(np.float32)
    a[1] = np.round(a[1], 1)
    a[2] = 1.0
    a[3] *= 0.001
    a[3, ::16] += 10  # the sample sees only the large values: fewer than m candidates above its threshold
    a[4, 5] = np.nan  # the largest magnitude, as torch.topk orders it
    cols = np.broadcast_to(np.arange(3000), a.shape)

    # Execute
    got = top_indices(a, m)

    # Assert
    expected = np.sort(np.lexsort((cols, -np.nan_to_num(a, nan=np.inf)), axis=1)[:, :m], axis=1)
    assert np.array_equal(got, expected)


def test_sign_is_scaled_sign_with_l1_scale() -> None:
    v, spec = _vector(999, seed=3), CompressionSpec("sign")
    enc = encode(v, spec)
    assert np.allclose(decode(enc, spec), np.where(v >= 0, 1, -1) * np.abs(v.astype(np.float64)).mean())
    assert enc.nbytes == math.ceil(999 / 8) + 4


@pytest.mark.parametrize(
    "spec",
    [
        CompressionSpec("int8", bucket=100),
        CompressionSpec("qsgd", levels=3, bucket=64),
        CompressionSpec("topk", ratio=0.05),
        CompressionSpec("topk", ratio=0.05, sign=True),
        CompressionSpec("sign"),
    ],
    ids=lambda s: s.label,
)
def test_a_stack_compresses_exactly_as_one_node_at_a_time(spec: CompressionSpec) -> None:
    """compress_many is the vectorised form of compress: same bytes, decodings and residuals, row by row."""
    # Prepare: 30 nodes (several blocks of rows at P = 9000), residuals owed by some of them
    nodes, p = list(range(30)), 9000
    one, many, aliased = (UpdateCompressor(spec, seed=5) for _ in range(3))
    for t in (1, 2):
        deltas = torch.from_numpy(np.stack([_vector(p, seed=100 * t + n) for n in nodes]))
        part = nodes[::2] if t == 1 else nodes
        scratch = deltas[part].clone()

        # Execute (the aliased one decodes into its input, as the coordinator does)
        singles = [one.compress(n, t, deltas[n], spec) for n in part]
        encs, decoded = many.compress_many(part, t, deltas[part], spec)
        encs_in_place, decoded_in_place = aliased.compress_many(part, t, scratch, spec, out=scratch)

        # Assert
        for i, (enc, dec) in enumerate(singles):
            for got in (encs[i], encs_in_place[i]):
                assert enc.nbytes == got.nbytes
                assert all(np.array_equal(enc.arrays[a], got.arrays[a]) for a in enc.arrays)
            assert torch.equal(dec, decoded[i])
        assert decoded_in_place is scratch and torch.equal(decoded_in_place, decoded)
        for other in (many, aliased):
            assert one.residual.keys() == other.residual.keys()
            assert all(torch.equal(one.residual[n], other.residual[n]) for n in one.residual)


def test_error_feedback_residual_accounting_is_exact_across_rounds() -> None:
    """EF (Karimireddy et al. 2019, Alg. 2): v_t = delta_t + e_t; send C(v_t); e_{t+1} = v_t - C(v_t).

    So Sum_t C(v_t) + e_T = Sum_t delta_t: nothing is lost, only delayed.
    """
    # Prepare
    comp = UpdateCompressor(CompressionSpec("topk", ratio=0.05), seed=0)
    deltas = [torch.from_numpy(_vector(800, seed=10 + t)) for t in range(6)]
    sent = torch.zeros(800, dtype=torch.float64)

    # Execute / Assert, round by round
    for t, d in enumerate(deltas):
        before = comp.residual.get(3, torch.zeros(800))
        _, decoded = comp.compress(3, t + 1, d)
        assert torch.equal(comp.residual[3], (d + before) - decoded)  # exactly what was owed minus what went
        sent += decoded.double()
    total = torch.stack(deltas).double().sum(0)
    torch.testing.assert_close(sent + comp.residual[3].double(), total, atol=1e-5, rtol=0)


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ConfigError, match=r"train\.compression: got 'zip'"):
        TrainConfig(compression="zip")
    with pytest.raises(ConfigError, match=r"train\.compression_options\.ratio"):
        TrainConfig(compression="topk", compression_options={"ratio": 0.0})
    with pytest.raises(ConfigError, match=r"train\.compression_options\.levels: .*options of int8: bucket"):
        TrainConfig(compression="int8", compression_options={"levels": 4})
    with pytest.raises(ConfigError, match=r"train\.compression_options\.error_feedback"):
        TrainConfig(compression="qsgd", compression_options={"error_feedback": "yes"})


def _coord(**options: object) -> Coordinator:
    pool = NodePool.simulated(5, dataset="digits", partition="iid", network="mixed", seed=4)
    return Coordinator(pool=pool, model="mlp", batch_size=32, **options)


def test_the_network_carries_the_encoded_size_and_the_server_applies_the_decoded_update() -> None:
    # Prepare
    coord = _coord(compression="topk", compression_options={"ratio": 0.02})
    k = math.ceil(0.02 * coord.layout.size)

    # Execute
    rep = coord.step()

    # Assert: uploads carry k uint16 indices and k float32 values; downloads the float32 model
    for rec in rep.nodes:
        assert rec.upload_bytes == k * 6 and rec.compression == "topk-2%"
    assert rep.bytes_moved == sum(
        coord.layout.nbytes * r.download_attempts + k * 6 * r.upload_attempts for r in rep.nodes
    )
    assert set(coord.compressor.residual) == {r.node for r in rep.nodes}


def test_resume_restores_residuals_and_continues_bit_for_bit(tmp_path: Path) -> None:
    # Prepare
    opts = {"compression": "topk", "compression_options": {"ratio": 0.05}}
    whole = _coord(**opts)
    whole.run(rounds=4, progress=False)
    half = _coord(**opts)
    half.run(rounds=2, progress=False)
    half.save_checkpoint(tmp_path / "c.ckpt")

    # Execute
    resumed = _coord(**opts)
    resumed.load_state_dict(checkpoint.load(tmp_path / "c.ckpt"))
    assert resumed.compressor.residual.keys() == half.compressor.residual.keys()
    resumed.run(rounds=2, progress=False)

    # Assert
    assert torch.equal(resumed.weights, whole.weights)
    for n, r in whole.compressor.residual.items():
        assert torch.equal(resumed.compressor.residual[n], r)


@pytest.mark.slow
def test_sigkill_then_resume_with_error_feedback_equals_uninterrupted_run(tmp_path: Path) -> None:
    # Prepare
    config = {
        "name": "ef",
        "rounds": 12,
        "pool": {"num_nodes": 6, "dataset": "digits", "partition": "iid", "network": "unstable-wan"},
        "train": {
            "model": "mlp",
            "batch_size": 32,
            "checkpoint_every": 2,
            "compression": "topk",
            "compression_options": {"ratio": 0.05},
            "download_compression": "topk",  # the server's replica and sync rounds are checkpointed too
            "download_compression_options": {"ratio": 0.1},
        },
    }
    cfg = tmp_path / "run.json"
    cfg.write_text(json.dumps(config))
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}

    def cli(out: str, *more: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "hypergpu_lab.cli",
            "run",
            "--config",
            str(cfg),
            "--out",
            out,
            "--no-progress",
            *more,
        ]

    subprocess.run(cli(str(tmp_path / "a")), check=True, env=env, capture_output=True, timeout=300)

    # Execute: kill -9 once round 5 is on disk (checkpoint at round 4), then resume
    proc = subprocess.Popen(cli(str(tmp_path / "b")), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = tmp_path / "b" / "ef" / "metrics.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.exists() and metrics.read_text().count("\n") >= 5:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    assert proc.wait(timeout=60) == -signal.SIGKILL, "the run finished before it could be killed"
    resumed = subprocess.run(cli(str(tmp_path / "b"), "--resume"), env=env, capture_output=True, text=True, timeout=300)

    # Assert: final weights and residuals bit for bit, the same metrics for every round
    assert resumed.returncode == 0, resumed.stderr
    final = [checkpoint.load(checkpoint.list_checkpoints(tmp_path / x / "ef" / "checkpoints")[-1][1]) for x in "ab"]
    assert final[0]["round"] == final[1]["round"] == 12
    assert torch.equal(final[0]["weights"], final[1]["weights"])
    ra, rb = (f["compression"]["residual"] for f in final)
    assert ra.keys() == rb.keys() and all(torch.equal(ra[n], rb[n]) for n in ra)
    ba, bb = (f["broadcast"] for f in final)
    assert torch.equal(ba["replica"], bb["replica"]) and ba["sent"] == bb["sent"] and ba["synced"] == bb["synced"]

    def rows(x: str) -> list[dict]:
        return [
            {k: v for k, v in r.items() if k != "wall_s"} for r in RunFolder.open(tmp_path / x / "ef").read_metrics()
        ]

    assert rows("a") == rows("b")


@pytest.mark.parametrize(
    "spec",
    [
        CompressionSpec("none"),
        CompressionSpec("int8", bucket=100),
        CompressionSpec("qsgd", levels=1),
        CompressionSpec("qsgd", levels=100, bucket=7),
        CompressionSpec("topk", ratio=0.003),
        CompressionSpec("topk", ratio=0.2, sign=True),
        CompressionSpec("sign"),
    ],
    ids=lambda s: s.label,
)
@pytest.mark.parametrize("p", [1, 999, 70_000])
def test_encoded_nbytes_prices_exactly_what_encode_produces(spec: CompressionSpec, p: int) -> None:
    from hypergpu_lab.compression import encoded_nbytes

    assert encoded_nbytes(spec, p) == encode(_vector(p), spec, np.random.default_rng(0)).nbytes


def test_a_failed_upload_is_owed_again_through_the_residual(tmp_path: Path) -> None:
    """EF accounting counts only what arrived: a node whose upload failed adds it back to its residual."""
    # Prepare: node 1 goes offline at 1 ms: after its download (0.78 ms here), before its upload arrives (1.57 ms)
    trace = tmp_path / "t.trace"
    trace.write_text("1 0 0.001\n1 50 100\n")
    pool = NodePool.simulated(3, dataset="digits", partition="iid", network="lan", seed=4)
    coord = Coordinator(
        pool=pool,
        model="mlp",
        compression="topk",
        compression_options={"ratio": 0.05},
        availability="trace",
        availability_options={"path": str(trace)},
    )
    comp = coord.compressor
    sent: dict[int, torch.Tensor] = {}
    real = comp.compress_many

    def spy(nodes: list[int], round_: int, deltas: torch.Tensor, spec: CompressionSpec | None = None, **kw):
        sent.update(zip(nodes, deltas.clone().unbind()))
        return real(nodes, round_, deltas, spec, **kw)

    comp.compress_many = spy  # type: ignore[method-assign]

    # Execute
    rep = coord.step()

    # Assert: the offline node's whole update is still owed; the others owe only what top-k left out
    status = {r.node: r for r in rep.nodes}
    assert status[1].status == "failed" and "offline" in status[1].reason
    torch.testing.assert_close(comp.residual[1], sent[1], atol=1e-6, rtol=0)
    for n in (0, 2):
        assert status[n].status == "accepted"
        assert float(comp.residual[n].abs().max()) < float(sent[n].abs().max())
