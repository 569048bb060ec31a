"""Partitioners: every method yields a disjoint, complete, seeded split with the skew it promises."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from hypergpu_lab.errors import ConfigError
from hypergpu_lab.partition import (
    PARTITIONS,
    dirichlet_label_skew,
    iid,
    label_distribution,
    label_shards,
    partition,
    quantity_skew,
)

NUM_CLASSES = 10


def _balanced_labels(per_class: int, seed: int = 0) -> np.ndarray:
    """Shuffled labels with exactly ``per_class`` samples of each class."""
    return np.random.default_rng(seed).permutation(np.repeat(np.arange(NUM_CLASSES), per_class))


def _mean_tv_to_global(labels: np.ndarray, parts: list[np.ndarray], *, weighted: bool = False) -> float:
    """Mean total-variation distance between each node's label distribution and the global one."""
    counts = label_distribution(labels, parts, NUM_CLASSES)
    node_p = counts / counts.sum(axis=1, keepdims=True)
    global_p = np.bincount(labels, minlength=NUM_CLASSES) / len(labels)
    tv = 0.5 * np.abs(node_p - global_p).sum(axis=1)
    weights = counts.sum(axis=1) if weighted else np.ones(len(parts))
    return float(np.average(tv, weights=weights))


@pytest.mark.parametrize("method", PARTITIONS)
def test_every_method_gives_a_disjoint_complete_cover_with_min_samples(method: str) -> None:
    # Prepare
    labels = _balanced_labels(100)

    # Execute
    parts = partition(labels, 10, method, alpha=0.5, min_samples=5, seed=3)

    # Assert
    assert len(parts) == 10
    assert all(p.dtype == np.int64 for p in parts)
    joined = np.concatenate(parts)
    assert len(joined) == len(labels), "overlap or missing samples"
    np.testing.assert_array_equal(np.sort(joined), np.arange(len(labels)))
    assert min(len(p) for p in parts) >= 5


@pytest.mark.parametrize("method", PARTITIONS)
def test_every_method_is_deterministic_for_a_seed_and_changes_with_it(method: str) -> None:
    # Prepare
    labels = _balanced_labels(100)

    # Execute
    first = partition(labels, 10, method, seed=7)
    again = partition(labels, 10, method, seed=7)
    other = partition(labels, 10, method, seed=8)

    # Assert
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


def test_partition_dispatches_to_the_named_function() -> None:
    # Prepare
    labels = _balanced_labels(50)
    expected = {
        "iid": iid(labels, 5, seed=2),
        "shards": label_shards(labels, 5, shards_per_node=3, seed=2),
        "dirichlet": dirichlet_label_skew(labels, 5, alpha=0.3, seed=2),
        "quantity": quantity_skew(labels, 5, alpha=0.3, seed=2),
    }

    # Execute
    got = {m: partition(labels, 5, m, alpha=0.3, shards_per_node=3, seed=2) for m in PARTITIONS}

    # Assert
    for method in PARTITIONS:
        assert all(np.array_equal(a, b) for a, b in zip(got[method], expected[method])), method


def test_iid_sizes_differ_by_at_most_one_and_follow_the_global_distribution() -> None:
    # Prepare
    labels = _balanced_labels(1000)

    # Execute
    parts = iid(labels, 7, seed=0)

    # Assert
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1
    assert _mean_tv_to_global(labels, parts) < 0.05


def test_shards_give_each_node_at_most_shards_per_node_labels() -> None:
    # Prepare: 20 shards of 50 over 10 classes of 100, so every shard lies inside one class.
    labels = _balanced_labels(100)

    # Execute
    parts = label_shards(labels, 10, shards_per_node=2, seed=1)

    # Assert
    distinct = [len(np.unique(labels[p])) for p in parts]
    assert max(distinct) <= 2
    assert all(len(p) == 100 for p in parts)


def test_shards_cover_every_sample_when_sizes_do_not_divide() -> None:
    # Prepare: 1003 samples over 3 * 4 shards leaves a remainder that must not be dropped.
    labels = np.random.default_rng(0).integers(0, NUM_CLASSES, 1003)

    # Execute
    parts = label_shards(labels, 3, shards_per_node=4, seed=0)

    # Assert
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(1003))


def test_dirichlet_skew_grows_as_alpha_shrinks() -> None:
    # Prepare
    labels = _balanced_labels(100)

    # Execute
    near_iid = dirichlet_label_skew(labels, 10, alpha=100.0, seed=0)
    skewed = dirichlet_label_skew(labels, 10, alpha=0.1, seed=0)

    # Assert: measured values are about 0.04 and 0.69.
    assert _mean_tv_to_global(labels, near_iid) < 0.1
    assert _mean_tv_to_global(labels, skewed) > 0.4


def test_dirichlet_redraws_until_min_samples_holds() -> None:
    # Prepare: with alpha=0.1, about 65% of single draws leave one of 10 nodes below 20
    # samples, so ten seeds all passing without redraws would have odds near 3e-5.
    labels = _balanced_labels(100)

    # Execute
    splits = [dirichlet_label_skew(labels, 10, alpha=0.1, min_samples=20, seed=s) for s in range(10)]
    smallest = [min(len(p) for p in parts) for parts in splits]

    # Assert
    assert min(smallest) >= 20


def test_dirichlet_impossible_min_samples_names_alpha_and_num_nodes() -> None:
    # Prepare
    labels = _balanced_labels(20)

    # Execute
    with pytest.raises(ConfigError) as caught:
        dirichlet_label_skew(labels, 100, alpha=0.001, min_samples=2, seed=0)

    # Assert
    assert caught.value.field == "alpha"
    assert "num_nodes" in str(caught.value)


def test_quantity_skew_varies_sizes_but_keeps_labels_near_global() -> None:
    # Prepare
    labels = _balanced_labels(1000)

    # Execute
    parts = quantity_skew(labels, 10, alpha=0.5, min_samples=100, seed=0)
    label_skewed = dirichlet_label_skew(labels, 10, alpha=0.5, seed=0)

    # Assert
    sizes = np.array([len(p) for p in parts])
    assert sizes.min() >= 100
    assert sizes.max() > 3 * sizes.min()
    assert _mean_tv_to_global(labels, parts, weighted=True) < 0.1
    assert _mean_tv_to_global(labels, label_skewed, weighted=True) > 0.3


def test_label_distribution_matches_a_direct_count() -> None:
    # Prepare
    labels = np.array([0, 1, 1, 2, 2, 2, 0, 1])
    parts = [np.array([0, 1, 2]), np.array([3, 4, 5, 6]), np.array([7])]

    # Execute
    counts = label_distribution(labels, parts, 4)

    # Assert
    expected = np.zeros((3, 4), dtype=np.int64)
    for node, part in enumerate(parts):
        for label, n in Counter(labels[part].tolist()).items():
            expected[node, label] = n
    np.testing.assert_array_equal(counts, expected)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"method": "random"}, "partition"),
        ({"num_nodes": 0}, "num_nodes"),
        ({"num_nodes": 101, "min_samples": 10}, "num_nodes"),
        ({"min_samples": 0}, "min_samples"),
        ({"method": "dirichlet", "alpha": 0.0}, "alpha"),
        ({"method": "quantity", "alpha": -1.0}, "alpha"),
        ({"method": "dirichlet", "alpha": float("nan")}, "alpha"),
        ({"method": "shards", "shards_per_node": 0}, "shards_per_node"),
        ({"method": "shards", "shards_per_node": 101}, "shards_per_node"),
        ({"method": "shards", "shards_per_node": 30, "min_samples": 95}, "shards_per_node"),
    ],
)
def test_bad_arguments_raise_config_error_naming_the_field(kwargs: dict[str, object], field: str) -> None:
    # Prepare
    labels = _balanced_labels(100)
    args: dict[str, object] = {"num_nodes": 10, "method": "iid", **kwargs}

    # Execute
    with pytest.raises(ConfigError) as caught:
        partition(labels, **args)  # type: ignore[arg-type]

    # Assert
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: got ")


def test_unknown_method_lists_the_accepted_methods() -> None:
    # Prepare
    labels = _balanced_labels(10)

    # Execute
    with pytest.raises(ConfigError) as caught:
        partition(labels, 2, "pathological")

    # Assert
    assert "iid, shards, dirichlet, quantity" in str(caught.value)


def test_label_distribution_rejects_labels_beyond_num_classes() -> None:
    # Prepare
    labels = np.array([0, 5])

    # Execute
    with pytest.raises(ConfigError) as caught:
        label_distribution(labels, [np.array([0, 1])], 3)

    # Assert
    assert caught.value.field == "num_classes"
