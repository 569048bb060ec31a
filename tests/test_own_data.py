"""Own data: NodePool.from_arrays / from_dataset with a partitioner; float64 models refused by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hypergpu_lab import ConfigError, Coordinator, NodePool


def _blobs(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three well-separated Gaussian blobs in 8 dimensions, in float64 as numpy makes them."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(size=(n, 8)) + 4.0 * np.eye(3, 8)[y]
    return x, y


def test_from_arrays_splits_partitions_and_trains() -> None:
    # Prepare
    x, y = _blobs()

    # Execute
    pool = NodePool.from_arrays(x, y, num_nodes=4, partition="dirichlet", alpha=0.5, test_fraction=0.2, seed=1)
    coord = Coordinator(pool=pool, model="mlp", lr=0.1)
    history = coord.run(rounds=5, progress=False)

    # Assert: every training row on exactly one node, the stratified test share held out, float32
    assert sum(n.num_samples for n in pool) + len(pool.y_test) == 300 and len(pool.y_test) == 60
    assert pool.num_classes == 3 and pool.input_shape == (8,) and pool.x_test.dtype == torch.float32
    assert history.final["test_accuracy"] > 0.9


def test_from_arrays_with_a_partition_function_and_a_given_test_set() -> None:
    x, y = _blobs()
    by_label = lambda labels, k: [np.flatnonzero(labels % k == i) for i in range(k)]  # noqa: E731

    pool = NodePool.from_arrays(x[:240], y[:240], x_test=x[240:], y_test=y[240:], num_nodes=3, partition=by_label)

    assert [sorted(set(pool[i].y.tolist())) for i in range(3)] == [[0], [1], [2]]
    assert len(pool.y_test) == 60


def test_from_dataset_reads_any_map_style_torch_dataset() -> None:
    x, y = _blobs(120)
    ds = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))

    pool = NodePool.from_dataset(ds, num_nodes=3, partition="iid")

    assert sum(n.num_samples for n in pool) + len(pool.y_test) == 120
    Coordinator(pool=pool, model="mlp").run(rounds=1, progress=False)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"y": np.zeros(5, dtype=int)}, "y"),
        ({"y": np.linspace(0, 1, 300)}, "y"),
        ({"x": np.zeros(300)}, "x"),
        ({"x": np.full((300, 8), np.nan)}, "x"),
        ({"partition": "natural"}, "partition"),
        ({"partition": lambda labels, k: [np.arange(10)] * k}, "partition"),
        ({"num_nodes": 0}, "num_nodes"),
        ({"num_nodes": 10_000}, "num_nodes"),
        ({"x_test": np.zeros((5, 8))}, "x_test"),
        ({"seed": 2**64}, "seed"),
    ],
)
def test_from_arrays_refuses_bad_input_by_field(kwargs: dict, field: str) -> None:
    x, y = _blobs()
    args = {"x": x, "y": y, "num_nodes": 3, **kwargs}
    with pytest.raises(ConfigError) as info:
        NodePool.from_arrays(args.pop("x"), args.pop("y"), **args)
    assert info.value.field == field


def test_a_float64_model_is_refused_with_a_clear_error_and_float32_trains() -> None:
    x, y = _blobs()
    pool = NodePool.from_arrays(x, y, num_nodes=3)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3)).double()

    with pytest.raises(ConfigError, match=r"model: .*torch.float64.*float32.*model.float\(\)"):
        Coordinator(pool=pool, model=model)

    Coordinator(pool=pool, model=model.float()).run(rounds=1, progress=False)
