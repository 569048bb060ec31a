"""Datasets: shapes, splits, normalisation, and byte-exact round trips through torchvision's readers."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from hypergpu_lab.data import DATASETS, SYNTHETIC_MAX_PER_NODE, Dataset, load_dataset
from hypergpu_lab.errors import ConfigError, DataNotFoundError

MNIST_LIKE = [
    # name, folder torchvision reads, normalisation mean and std
    ("mnist", "MNIST", 0.1307, 0.3081),
    ("fashion-mnist", "FashionMNIST", 0.2860, 0.3530),
]
CIFAR_MEAN = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
CIFAR_STD = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)


def _write_idx_images(path: Path, pixels: np.ndarray) -> None:
    """IDX3 as published by LeCun: magic 0x00000803, big-endian dims, uint8 payload."""
    n, rows, cols = pixels.shape
    path.write_bytes(struct.pack(">IIII", 0x00000803, n, rows, cols) + pixels.astype(np.uint8).tobytes())


def _write_idx_labels(path: Path, labels: np.ndarray) -> None:
    """IDX1: magic 0x00000801, big-endian count, uint8 payload."""
    path.write_bytes(struct.pack(">II", 0x00000801, len(labels)) + labels.astype(np.uint8).tobytes())


def _write_mnist(root: Path, folder: str, *, n_train: int, n_test: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Write a tiny MNIST-format set where torchvision looks for it; return what was written."""
    rng = np.random.default_rng(seed)
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    written = {
        "train_x": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_y": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_x": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_y": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    written["train_x"][0, 0, :2] = (0, 255)  # the extremes must survive too
    _write_idx_images(raw / "train-images-idx3-ubyte", written["train_x"])
    _write_idx_labels(raw / "train-labels-idx1-ubyte", written["train_y"])
    _write_idx_images(raw / "t10k-images-idx3-ubyte", written["test_x"])
    _write_idx_labels(raw / "t10k-labels-idx1-ubyte", written["test_y"])
    return written


def _write_cifar10(root: Path, *, per_batch: int, n_test: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Write the python-version CIFAR-10 batches: pickled dicts, data uint8 [n, 3072] channel-planar.

    Keys are the ones torchvision reads ("data", "labels", "label_names"): the
    official files are Python 2 pickles whose str keys load as these strings.
    """
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    train_x, train_y = [], []
    for i in range(1, 6):
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, per_batch).tolist()
        batch = {"batch_label": f"training batch {i} of 5", "data": data, "labels": labels}
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch, protocol=2))
        train_x.append(data)
        train_y.extend(labels)
    test_x = rng.integers(0, 256, (n_test, 3072), dtype=np.uint8)
    test_y = rng.integers(0, 10, n_test).tolist()
    test_batch = {"batch_label": "testing batch 1 of 1", "data": test_x, "labels": test_y}
    (folder / "test_batch").write_bytes(pickle.dumps(test_batch, protocol=2))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    meta = {"label_names": names, "num_cases_per_batch": per_batch, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return {
        "train_x": np.concatenate(train_x).reshape(-1, 3, 32, 32),
        "train_y": np.array(train_y),
        "test_x": test_x.reshape(-1, 3, 32, 32),
        "test_y": np.array(test_y),
    }


def _pixels_back(x: torch.Tensor, mean: torch.Tensor | float, std: torch.Tensor | float) -> np.ndarray:
    """Undo the normalisation and recover the uint8 pixels that were written."""
    return torch.round((x * std + mean) * 255.0).to(torch.uint8).numpy()


# --- digits -----------------------------------------------------------------------------------


def test_digits_shapes_dtypes_and_stratified_split() -> None:
    # Prepare
    targets = load_digits().target
    class_counts = np.bincount(targets)

    # Execute
    ds = load_dataset("digits", test_fraction=0.25, seed=1)

    # Assert
    assert isinstance(ds, Dataset)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert ds.input_shape == (1, 8, 8) and ds.x_test.shape[1:] == (1, 8, 8)
    assert len(ds.y_train) + len(ds.y_test) == len(targets)
    assert len(ds.y_test) == int(np.ceil(0.25 * len(targets)))
    test_counts = np.bincount(ds.y_test.numpy(), minlength=10)
    assert np.all(np.abs(test_counts - 0.25 * class_counts) <= 1), "test split is not stratified"
    assert ds.num_classes == 10 and ds.natural_partition is None


def test_digits_are_standardised_with_train_statistics() -> None:
    # Prepare: the raw pixels are integers 0..16, so the affine map back to them can be recovered.
    bunch = load_digits()

    # Execute
    ds = load_dataset("digits", seed=4)

    # Assert: train standardised with its own statistics; test through the same map; rows are real digits.
    assert abs(float(ds.x_train.mean())) < 1e-5
    assert abs(float(ds.x_train.std(unbiased=False)) - 1.0) < 1e-5
    lo = float(ds.x_train.min())  # pixel value 0
    step = (float(ds.x_train.max()) - lo) / 16  # one pixel unit
    for x in (ds.x_train, ds.x_test):
        raw = (x - lo) / step
        np.testing.assert_allclose(raw.numpy(), np.round(raw.numpy()), atol=1e-3)
    rows = {r.tobytes() for r in bunch.images.astype(np.float32)}
    raw_test = np.round(((ds.x_test[:, 0] - lo) / step).numpy()).astype(np.float32)
    assert all(r.tobytes() in rows for r in raw_test)
    assert len(ds.y_train) + len(ds.y_test) == len(bunch.target)


def test_digits_load_without_importing_scikit_learn() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from hypergpu_lab.data import load_dataset; load_dataset('digits'); "
        "print('sklearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "False"


def test_digits_are_deterministic_for_a_seed_and_change_with_it() -> None:
    # Execute
    first = load_dataset("digits", seed=5)
    again = load_dataset("digits", seed=5)
    other = load_dataset("digits", seed=6)

    # Assert
    assert torch.equal(first.x_train, again.x_train) and torch.equal(first.y_test, again.y_test)
    assert not torch.equal(first.y_train, other.y_train)


def test_max_train_and_max_test_keep_a_seeded_subset() -> None:
    # Prepare
    full = load_dataset("digits", seed=2)

    # Execute
    small = load_dataset("digits", seed=2, max_train=100, max_test=30)
    again = load_dataset("digits", seed=2, max_train=100, max_test=30)

    # Assert
    assert len(small.y_train) == 100 and len(small.y_test) == 30
    assert torch.equal(small.x_train, again.x_train)
    full_rows = {row.numpy().tobytes() for row in full.x_train}
    assert all(row.numpy().tobytes() in full_rows for row in small.x_train)


# --- MNIST, Fashion-MNIST -------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "folder", "mean", "std"), MNIST_LIKE)
def test_mnist_like_round_trips_idx_files_through_torchvision(
    tmp_path: Path, name: str, folder: str, mean: float, std: float
) -> None:
    # Prepare
    written = _write_mnist(tmp_path, folder, n_train=7, n_test=5)

    # Execute
    ds = load_dataset(name, root=tmp_path)

    # Assert
    assert ds.x_train.shape == (7, 1, 28, 28) and ds.x_test.shape == (5, 1, 28, 28)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert float(ds.x_train[0, 0, 0, 1]) == pytest.approx((1.0 - mean) / std, rel=1e-6)
    np.testing.assert_array_equal(_pixels_back(ds.x_train[:, 0], mean, std), written["train_x"])
    np.testing.assert_array_equal(_pixels_back(ds.x_test[:, 0], mean, std), written["test_x"])
    np.testing.assert_array_equal(ds.y_train.numpy(), written["train_y"])
    np.testing.assert_array_equal(ds.y_test.numpy(), written["test_y"])


def test_mnist_root_defaults_to_the_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare
    written = _write_mnist(tmp_path, "MNIST", n_train=3, n_test=2)
    monkeypatch.setenv("HYPERGPU_LAB_DATA", str(tmp_path))

    # Execute
    ds = load_dataset("mnist")

    # Assert
    np.testing.assert_array_equal(ds.y_train.numpy(), written["train_y"])


def test_mnist_max_train_keeps_written_images_in_order(tmp_path: Path) -> None:
    # Prepare
    written = _write_mnist(tmp_path, "MNIST", n_train=20, n_test=4)

    # Execute
    ds = load_dataset("mnist", root=tmp_path, max_train=6, seed=3)

    # Assert
    pixels = _pixels_back(ds.x_train[:, 0], 0.1307, 0.3081)
    rows = [int(np.flatnonzero((written["train_x"] == img).all(axis=(1, 2)))[0]) for img in pixels]
    assert len(rows) == 6 and rows == sorted(rows)
    np.testing.assert_array_equal(ds.y_train.numpy(), written["train_y"][rows])


# --- CIFAR-10 -------------------------------------------------------------------------------------


def test_cifar10_round_trips_pickled_batches_through_torchvision(tmp_path: Path) -> None:
    # Prepare
    written = _write_cifar10(tmp_path, per_batch=2, n_test=3)

    # Execute
    ds = load_dataset("cifar10", root=tmp_path)

    # Assert
    assert ds.x_train.shape == (10, 3, 32, 32) and ds.x_test.shape == (3, 3, 32, 32)
    assert ds.input_shape == (3, 32, 32)
    np.testing.assert_array_equal(_pixels_back(ds.x_train, CIFAR_MEAN, CIFAR_STD), written["train_x"])
    np.testing.assert_array_equal(_pixels_back(ds.x_test, CIFAR_MEAN, CIFAR_STD), written["test_x"])
    np.testing.assert_array_equal(ds.y_train.numpy(), written["train_y"])  # batch 1 first, in file order
    np.testing.assert_array_equal(ds.y_test.numpy(), written["test_y"])


def test_cifar10_verify_applies_torchvisions_md5_check(tmp_path: Path) -> None:
    # Prepare: well-formed files, but not the official bytes.
    _write_cifar10(tmp_path, per_batch=1, n_test=1)

    # Execute
    with pytest.raises(RuntimeError, match="corrupted"):
        load_dataset("cifar10", root=tmp_path, verify=True)


# --- missing data and bad arguments ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected_folder", "expected_file"),
    [
        ("mnist", Path("MNIST") / "raw", "train-images-idx3-ubyte"),
        ("fashion-mnist", Path("FashionMNIST") / "raw", "t10k-labels-idx1-ubyte"),
        ("cifar10", Path("cifar-10-batches-py"), "data_batch_1"),
    ],
)
def test_missing_files_name_the_expected_folder(
    tmp_path: Path, name: str, expected_folder: Path, expected_file: str
) -> None:
    # Execute
    with pytest.raises(DataNotFoundError) as caught:
        load_dataset(name, root=tmp_path)

    # Assert
    message = str(caught.value)
    assert name in message
    assert str(tmp_path / expected_folder) in message
    assert expected_file in message
    assert "download=True" in message


def test_missing_root_is_a_config_error_on_data_root(monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare
    monkeypatch.delenv("HYPERGPU_LAB_DATA", raising=False)

    # Execute
    with pytest.raises(ConfigError) as caught:
        load_dataset("mnist")

    # Assert
    assert caught.value.field == "data_root"
    assert "HYPERGPU_LAB_DATA" in str(caught.value)


def test_unknown_dataset_names_the_field_and_the_accepted_list() -> None:
    # Execute
    with pytest.raises(ConfigError) as caught:
        load_dataset("imagenet")

    # Assert
    message = str(caught.value)
    assert message.startswith("dataset: got 'imagenet'")
    assert ", ".join(DATASETS) in message


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"test_fraction": 0.0}, "test_fraction"),
        ({"test_fraction": 1.0}, "test_fraction"),
        ({"num_nodes": 0}, "num_nodes"),
        ({"synthetic_alpha": -0.5}, "synthetic_alpha"),
        ({"synthetic_beta": float("inf")}, "synthetic_beta"),
        ({"max_train": 0}, "max_train"),
        ({"max_test": 0}, "max_test"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_numeric_arguments_name_the_field(kwargs: dict[str, object], field: str) -> None:
    # Execute
    with pytest.raises(ConfigError) as caught:
        load_dataset("synthetic", **kwargs)  # type: ignore[arg-type]

    # Assert
    assert str(caught.value).startswith(f"{field}: got ")


# --- synthetic ------------------------------------------------------------------------------------


def test_synthetic_shapes_labels_and_natural_partition() -> None:
    # Execute
    ds = load_dataset("synthetic", num_nodes=12, test_fraction=0.2, seed=0)

    # Assert
    assert ds.input_shape == (60,) and ds.x_test.shape[1] == 60
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert ds.num_classes == 10
    assert int(ds.y_train.min()) >= 0 and int(ds.y_train.max()) < 10
    assert ds.natural_partition is not None and len(ds.natural_partition) == 12
    np.testing.assert_array_equal(np.concatenate(ds.natural_partition), np.arange(len(ds.y_train)))
    # Each node holds 50..cap samples; 20% (rounded) of them went to the test set.
    train_sizes = np.array([len(p) for p in ds.natural_partition])
    assert train_sizes.min() >= 40 and train_sizes.max() <= 0.8 * SYNTHETIC_MAX_PER_NODE
    total = len(ds.y_train) + len(ds.y_test)
    assert 50 * 12 <= total <= SYNTHETIC_MAX_PER_NODE * 12
    assert len(ds.y_test) == pytest.approx(0.25 * len(ds.y_train), abs=12)


def test_synthetic_caps_the_lognormal_tail() -> None:
    # Prepare: P(lognormal(4, 2) + 50 > 1000) is about 8%, so 200 nodes hit the cap many times.
    cap_train = SYNTHETIC_MAX_PER_NODE - round(0.2 * SYNTHETIC_MAX_PER_NODE)

    # Execute
    ds = load_dataset("synthetic", num_nodes=200, seed=0)

    # Assert
    sizes = np.array([len(p) for p in ds.natural_partition or []])
    assert sizes.max() == cap_train
    assert (sizes == cap_train).sum() >= 5


def test_synthetic_features_have_the_papers_diagonal_covariance() -> None:
    # Prepare
    ds = load_dataset("synthetic", num_nodes=30, seed=1)
    x = ds.x_train.double().numpy()
    parts = ds.natural_partition or []

    # Execute: pooled within-node variance, since each node has its own mean v_k.
    centred = np.concatenate([x[p] - x[p].mean(axis=0) for p in parts])
    variance = centred.var(axis=0)

    # Assert
    expected = np.arange(1, 61, dtype=np.float64) ** -1.2
    np.testing.assert_allclose(variance, expected, rtol=0.1)


def test_synthetic_beta_spreads_node_feature_means() -> None:
    # Execute
    def spread(beta: float) -> float:
        ds = load_dataset("synthetic", num_nodes=30, synthetic_beta=beta, seed=2)
        return float(np.std([ds.x_train[p].mean().item() for p in ds.natural_partition or []]))

    # Assert: beta=0 leaves only the N(0, 1) draw of v_k (std about 1/sqrt(60)); beta=3 adds B_k.
    assert spread(0.0) < 0.3
    assert spread(3.0) > 5 * spread(0.0)


def test_synthetic_nodes_have_skewed_label_distributions() -> None:
    # Prepare
    ds = load_dataset("synthetic", num_nodes=20, seed=3)
    y = ds.y_train.numpy()
    global_p = np.bincount(y, minlength=10) / len(y)

    # Execute
    tv = [0.5 * np.abs(np.bincount(y[p], minlength=10) / len(p) - global_p).sum() for p in ds.natural_partition or []]

    # Assert: a random split of the same labels would give about 0.1 for these node sizes.
    assert float(np.mean(tv)) > 0.4


def test_synthetic_is_deterministic_for_a_seed_and_changes_with_it() -> None:
    # Execute
    first = load_dataset("synthetic", num_nodes=5, seed=9)
    again = load_dataset("synthetic", num_nodes=5, seed=9)
    other = load_dataset("synthetic", num_nodes=5, seed=10)

    # Assert
    assert torch.equal(first.x_train, again.x_train) and torch.equal(first.y_test, again.y_test)
    assert all(np.array_equal(a, b) for a, b in zip(first.natural_partition or [], again.natural_partition or []))
    assert first.x_train.shape != other.x_train.shape or not torch.equal(first.x_train, other.x_train)


def test_synthetic_max_train_shrinks_every_node_and_keeps_the_partition_valid() -> None:
    # Prepare
    full = load_dataset("synthetic", num_nodes=8, seed=4)

    # Execute
    small = load_dataset("synthetic", num_nodes=8, seed=4, max_train=100)

    # Assert
    parts = small.natural_partition or []
    assert len(small.y_train) == 100 and len(parts) == 8
    np.testing.assert_array_equal(np.concatenate(parts), np.arange(100))
    assert min(len(p) for p in parts) >= 1
    # Each node's kept rows come from that node's own rows in the full set.
    for full_part, part in zip(full.natural_partition or [], parts):
        own = {row.numpy().tobytes() for row in full.x_train[full_part]}
        assert all(row.numpy().tobytes() in own for row in small.x_train[part])
