"""Entropy-coded positions (``coding``: elias, rice): textbook codes, exact round trips, bytes from the bit streams."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from hypergpu_lab import Coordinator, NodePool, bitcode, checkpoint
from hypergpu_lab.compression import (
    CompressionSpec,
    UpdateCompressor,
    decode,
    decode_many,
    encode,
    encode_many,
    encoded_nbytes,
)
from hypergpu_lab.config import TrainConfig
from hypergpu_lab.errors import ConfigError


def _vector(p: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=p).astype(np.float32)


def _bits(message: np.ndarray, n: int) -> str:
    return "".join(map(str, np.unpackbits(message)[:n]))


def _fixed(spec: CompressionSpec) -> CompressionSpec:
    return CompressionSpec(spec.kind, spec.levels, spec.bucket, spec.ratio, spec.sign, spec.error_feedback)


# -- the prefix codes ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("x", "code"), [(1, "1"), (2, "010"), (3, "011"), (4, "00100"), (5, "00101"), (17, "000010001")]
)
def test_one_elias_gamma_code_is_the_textbook_string(x: int, code: str) -> None:
    """Elias (1975): L - 1 zeros, then x's L bits."""
    (message,) = bitcode.write(1, bitcode.gamma(np.zeros(1, dtype=np.int64), np.array([x])))
    assert _bits(message, len(code)) == code and len(message) == math.ceil(len(code) / 8)
    assert not np.unpackbits(message)[len(code) :].any()  # zero padding to the byte


@pytest.mark.parametrize(("y", "k", "code"), [(0, 0, "1"), (3, 0, "0001"), (9, 2, "00101"), (5, 3, "1101")])
def test_one_rice_code_is_the_textbook_string(y: int, k: int, code: str) -> None:
    """Rice(k): y >> k in unary (zeros, then a one), then y's low k bits."""
    rows = np.zeros(1, dtype=np.int64)
    (message,) = bitcode.write(1, bitcode.rice(rows, np.array([y]), np.array([k])))
    assert _bits(message, len(code)) == code


def test_many_messages_of_codes_read_back_exactly() -> None:
    # Prepare: 6 messages, two of them empty, values from 1 to 2**31 - 1
    rng = np.random.default_rng(3)
    counts = np.array([5, 0, 300, 1, 0, 64])
    rows = np.repeat(np.arange(6), counts)
    x = np.minimum(rng.geometric(0.02, len(rows)), 2**31 - 1)
    x[:3] = [1, 2**31 - 1, 2]
    k = bitcode.rice_parameter(rows, x - 1, 6)

    # Execute
    messages = bitcode.write(
        6, bitcode.gamma(rows, x) + [bitcode.fixed(np.arange(6), k, 5)] + bitcode.rice(rows, x - 1, k)
    )
    reader = bitcode.Reader(messages)
    got_rows, got = reader.gamma(counts)
    got_k = reader.fields(np.arange(6), np.full(6, 5)).astype(np.int64)
    _, got_rice = reader.rice(counts, got_k)

    # Assert: values, and each message's length is its codes' bits rounded up to a byte
    assert np.array_equal(got_rows, rows) and np.array_equal(got, x) and np.array_equal(got_rice, x - 1)
    bits = [
        sum(2 * int(v).bit_length() - 1 + (int(v - 1) >> int(k[r])) + 1 + int(k[r]) for v in x[rows == r]) + 5
        for r in range(6)
    ]
    assert [len(m) for m in messages] == [math.ceil(b / 8) for b in bits]
    assert np.array_equal(reader.cursor, 8 * np.cumsum([len(m) for m in messages]) - [-b % 8 for b in bits])


def test_the_rice_parameter_is_the_cheapest_of_all_32() -> None:
    rng = np.random.default_rng(0)
    rows = np.repeat(np.arange(5), 200)
    y = np.concatenate([rng.geometric(p, 200) - 1 for p in (0.9, 0.3, 0.01, 0.001)] + [rng.integers(0, 2**20, 200)])
    costs = np.array([[np.sum(y[rows == r] >> k) + 200 * (k + 1) for k in range(32)] for r in range(5)])
    best = bitcode.rice_parameter(rows, y, 5)
    assert np.array_equal(costs[np.arange(5), best], costs.min(axis=1))


def test_a_truncated_message_is_refused() -> None:
    rows = np.zeros(20, dtype=np.int64)
    (message,) = bitcode.write(1, bitcode.gamma(rows, np.full(20, 1000)))
    with pytest.raises(ValueError, match="ends inside"):
        bitcode.Reader([message[:-2]]).gamma(np.array([20]))


def test_a_message_decoded_at_the_wrong_size_is_refused() -> None:
    """The last of 10 positions of 1000 read as positions of 500: past the end, refused, not written elsewhere."""
    v = np.zeros(1000, dtype=np.float32)
    v[990:] = 1
    spec = CompressionSpec("topk", ratio=0.01, coding="rice")
    enc = encode(v, spec)
    with pytest.raises(ValueError, match="position past 499"):
        decode(dataclasses.replace(enc, size=500), CompressionSpec("topk", ratio=0.02, coding="rice"))


# -- the codecs with coding on ------------------------------------------------------------------------
CODED = [
    CompressionSpec("qsgd", levels=1, coding="elias"),
    CompressionSpec("qsgd", levels=2, coding="elias"),
    CompressionSpec("qsgd", levels=2, coding="rice"),
    CompressionSpec("qsgd", levels=16, bucket=64, coding="rice"),
    CompressionSpec("qsgd", levels=300, bucket=7, coding="elias"),
    CompressionSpec("topk", ratio=0.1, coding="elias"),
    CompressionSpec("topk", ratio=0.1, sign=True, coding="rice"),
    CompressionSpec("topk", ratio=0.003, sign=True, coding="elias"),
    CompressionSpec("topk", ratio=1.0, coding="rice"),
]


@pytest.mark.parametrize("spec", CODED, ids=lambda s: s.label)
@pytest.mark.parametrize("p", [1, 2, 999, 70_000])
def test_decoding_equals_the_fixed_width_decoding_and_bytes_are_the_streams(spec: CompressionSpec, p: int) -> None:
    # Prepare: 4 updates, one all zero
    v = np.stack([_vector(p, seed=s) for s in range(4)])
    v[2] = 0

    # Execute
    coded = encode_many(v, spec, lambda i: np.random.default_rng(i))
    fixed = encode_many(v, _fixed(spec), lambda i: np.random.default_rng(i))

    # Assert: bit for bit the fixed decoding; bytes = the arrays sent, within the planner's bound
    assert np.array_equal(decode_many(coded, spec).view(np.uint32), decode_many(fixed, _fixed(spec)).view(np.uint32))
    for enc in coded:
        assert enc.nbytes == sum(len(a.tobytes()) for a in enc.arrays.values()) <= encoded_nbytes(spec, p)
        assert np.array_equal(decode(enc, spec), decode_many([enc], spec)[0])


@pytest.mark.parametrize("coding", ["elias", "rice"])
@pytest.mark.parametrize(
    "ones", [[0], [0, 1, 2, 3], [69_999], [0, 69_999], [5, 6, 40_000, 65_535, 65_536, 65_537]], ids=str
)
def test_top_k_positions_at_the_edges_round_trip(coding: str, ones: list[int]) -> None:
    """Index 0, consecutive indices, the last index, indices past uint16 (P > 65536)."""
    p = 70_000
    v = np.zeros(p, dtype=np.float32)
    v[ones] = np.arange(1, len(ones) + 1, dtype=np.float32) * 10
    spec = CompressionSpec("topk", ratio=len(ones) / p, coding=coding)
    assert np.array_equal(decode(encode(v, spec), spec), v)


def test_an_all_zero_update_is_a_few_bytes() -> None:
    spec = CompressionSpec("qsgd", levels=2, coding="rice")
    enc = encode(np.zeros(1000, dtype=np.float32), spec, np.random.default_rng(0))
    assert not decode(enc, spec).any()
    assert enc.arrays["stream"].nbytes == 1  # gamma(0 + 1) and the Rice parameter: 6 bits
    assert enc.nbytes == 1 + 4 * 2  # and the two buckets' norms


def test_qsgd_coded_is_unbiased_with_the_same_draws_as_fixed() -> None:
    """Alistarh et al. 2017, Lemma 3.1 with Elias coding: the same rounding, so E[Q_s(v)] = v still."""
    v, s, draws = _vector(40, seed=1), 2, 3000
    spec = CompressionSpec("qsgd", levels=s, bucket=64, coding="elias")
    out = np.stack([decode(encode(v, spec, np.random.default_rng(i)), spec) for i in range(draws)]).astype(np.float64)
    norm = np.linalg.norm(v.astype(np.float64))
    p = np.abs(v) / norm * s - np.floor(np.abs(v) / norm * s)
    sd = norm / s * np.sqrt(p * (1 - p))
    assert np.all(np.abs(out.mean(0) - v) <= 5 * sd / np.sqrt(draws) + 1e-6)


def test_coded_qsgd_of_a_cnn_sized_update_fits_one_packet() -> None:
    """s = 2, bucket 512: E[nonzeros] <= s ||b||_1 / ||b||_2 per bucket, about 0.07 P for Gaussian values."""
    spec = CompressionSpec("qsgd", levels=2, coding="rice")
    enc = encode(_vector(13_706, seed=9), spec, np.random.default_rng(0))
    assert enc.nbytes < 1500 < encoded_nbytes(_fixed(spec), 13_706)


@pytest.mark.parametrize("spec", CODED[1:4] + CODED[6:7], ids=lambda s: s.label)
def test_a_stack_compresses_exactly_as_one_node_at_a_time(spec: CompressionSpec) -> None:
    nodes, p = list(range(30)), 9000
    deltas = torch.from_numpy(np.stack([_vector(p, seed=n) for n in nodes]))
    one, many = UpdateCompressor(spec, seed=5), UpdateCompressor(spec, seed=5)
    singles = [one.compress(n, 1, deltas[n], spec) for n in nodes]
    encs, decoded = many.compress_many(nodes, 1, deltas.clone(), spec)
    for i, (enc, dec) in enumerate(singles):
        assert enc.nbytes == encs[i].nbytes
        assert all(np.array_equal(enc.arrays[a], encs[i].arrays[a]) for a in enc.arrays)
        assert torch.equal(dec, decoded[i])
    assert all(torch.equal(one.residual[n], many.residual[n]) for n in one.residual)


def test_bad_coding_options_name_the_field() -> None:
    with pytest.raises(ConfigError, match=r"train\.compression_options\.coding: got 'zip'.*fixed, elias, rice"):
        TrainConfig(compression="qsgd", compression_options={"coding": "zip"})
    with pytest.raises(ConfigError, match=r"train\.compression_options\.coding: .*options of int8: bucket"):
        TrainConfig(compression="int8", compression_options={"coding": "rice"})
    with pytest.raises(ConfigError, match=r"train\.download_compression_options\.coding: got 1"):
        TrainConfig(download_compression="topk", download_compression_options={"coding": 1})
    with pytest.raises(ConfigError, match=r"coding: got 'rice'.*only qsgd and topk"):
        CompressionSpec("sign", coding="rice")


def _coord(**options: object) -> Coordinator:
    pool = NodePool.simulated(5, dataset="digits", partition="iid", network="mixed", seed=4)
    return Coordinator(pool=pool, model="mlp", batch_size=32, **options)


def test_the_network_carries_the_coded_bytes_and_resume_continues_bit_for_bit(tmp_path: Path) -> None:
    # Prepare: coded both ways (node and server error feedback)
    opts = {
        "compression": "topk",
        "compression_options": {"ratio": 0.05, "sign": True, "coding": "rice"},
        "download_compression": "qsgd",
        "download_compression_options": {"levels": 2, "coding": "elias"},
    }
    whole = _coord(**opts)
    whole.run(rounds=4, progress=False)
    half = _coord(**opts)
    first = half.step()
    half.step()
    half.save_checkpoint(tmp_path / "c.ckpt")

    # Execute
    resumed = _coord(**opts)
    resumed.load_state_dict(checkpoint.load(tmp_path / "c.ckpt"))
    resumed.run(rounds=2, progress=False)

    # Assert: uploads are the coded sizes (below the fixed 6-byte-per-index form), and resume == uninterrupted
    m = math.ceil(0.05 * whole.layout.size)
    assert all(r.compression == "topk-5%-sign-rice" and r.upload_bytes < 2 * m for r in first.nodes)
    assert torch.equal(resumed.weights, whole.weights)
    assert torch.equal(resumed.broadcast.replica, whole.broadcast.replica)
    assert resumed.broadcast.sent == whole.broadcast.sent
    for n, r in whole.compressor.residual.items():
        assert torch.equal(resumed.compressor.residual[n], r)
