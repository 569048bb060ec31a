"""Split a training set over nodes: the data heterogeneity of a federation.

Every partitioner is a pure function of the labels and a seed. It returns one
sorted int64 index array per node; the arrays are disjoint, together cover
every sample, and each holds at least ``min_samples`` indices. A node is given
only its own array, so data never leaves its owner.

Methods
-------
``iid``
    Uniform random split: the baseline without heterogeneity.
``shards``
    Pathological label skew of McMahan et al. (2017), "Communication-Efficient
    Learning of Deep Networks from Decentralized Data": each node holds a few
    label-sorted shards, hence a few classes.
``dirichlet``
    Label skew of Hsu et al. (2019), "Measuring the Effects of Non-Identical
    Data Distribution for Federated Visual Classification", as benchmarked in
    NIID-Bench (Li et al. 2022): per class, node shares ~ Dir(alpha).
``quantity``
    Quantity skew (NIID-Bench): node sizes ~ Dir(alpha), labels IID.

Smaller ``alpha`` means more skew for both Dirichlet methods.
"""

from __future__ import annotations

import logging

import numpy as np

from hypergpu_lab import checks
from hypergpu_lab.errors import ConfigError

logger = logging.getLogger(__name__)

PARTITIONS: tuple[str, ...] = ("iid", "shards", "dirichlet", "quantity")

#: Draws of the Dirichlet label skew before giving up on ``min_samples``.
DIRICHLET_MAX_TRIES = 100


def partition(
    labels: np.ndarray,
    num_nodes: int,
    method: str,
    *,
    alpha: float = 0.5,
    shards_per_node: int = 2,
    min_samples: int = 1,
    seed: int = 0,
) -> list[np.ndarray]:
    """Split sample indices over ``num_nodes`` nodes with the named method.

    Parameters
    ----------
    labels
        Class label per sample (NumPy array or CPU tensor), shape ``[N]``.
    method
        One of :data:`PARTITIONS`.
    alpha
        Dirichlet concentration for ``dirichlet`` and ``quantity``.
    shards_per_node
        Shards per node for ``shards``.
    min_samples
        Fewest samples any node may hold, so every node can train.
    seed
        Same seed, same split.

    Returns
    -------
    list of np.ndarray
        ``num_nodes`` sorted, disjoint int64 index arrays covering ``range(N)``.
    """
    checks.choice("partition", method, PARTITIONS)
    if method == "iid":
        parts = iid(labels, num_nodes, min_samples=min_samples, seed=seed)
    elif method == "shards":
        parts = label_shards(labels, num_nodes, shards_per_node=shards_per_node, min_samples=min_samples, seed=seed)
    elif method == "dirichlet":
        parts = dirichlet_label_skew(labels, num_nodes, alpha=alpha, min_samples=min_samples, seed=seed)
    else:  # quantity
        parts = quantity_skew(labels, num_nodes, alpha=alpha, min_samples=min_samples, seed=seed)
    logger.debug("partition %s over %d nodes: sizes %s", method, num_nodes, [len(p) for p in parts])
    return parts


def iid(labels: np.ndarray, num_nodes: int, *, min_samples: int = 1, seed: int = 0) -> list[np.ndarray]:
    """Shuffle and cut into near-equal parts: every node sees the global distribution."""
    y = _check(labels, num_nodes, min_samples)
    rng = np.random.default_rng(seed)
    return _sorted_parts(np.array_split(rng.permutation(len(y)), num_nodes))


def label_shards(
    labels: np.ndarray, num_nodes: int, *, shards_per_node: int = 2, min_samples: int = 1, seed: int = 0
) -> list[np.ndarray]:
    """McMahan et al. (2017): sort by label, cut ``num_nodes * shards_per_node`` shards, deal them out.

    Shard sizes differ by at most one, so every sample is assigned. Ties
    within a class are broken randomly, so the seed also picks which samples
    of a class land in which shard.
    """
    y = _check(labels, num_nodes, min_samples)
    shards_per_node = checks.integer(
        "shards_per_node",
        shards_per_node,
        low=1,
        high=len(y) // num_nodes,
        accepted=f"an integer from 1 to {len(y) // num_nodes} (len(labels) // num_nodes)",
        hint="every shard needs at least one sample",
    )
    num_shards = num_nodes * shards_per_node
    if shards_per_node * (len(y) // num_shards) < min_samples:
        raise ConfigError(
            "shards_per_node",
            shards_per_node,
            f"shards large enough that each node gets min_samples={min_samples}",
            hint="use fewer shards per node, fewer nodes or a smaller min_samples",
        )
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(len(y))
    by_label = shuffled[np.argsort(y[shuffled], kind="stable")]
    shards = np.array_split(by_label, num_shards)
    deal = rng.permutation(num_shards).reshape(num_nodes, shards_per_node)
    return _sorted_parts([np.concatenate([shards[s] for s in row]) for row in deal])


def dirichlet_label_skew(
    labels: np.ndarray, num_nodes: int, *, alpha: float = 0.5, min_samples: int = 1, seed: int = 0
) -> list[np.ndarray]:
    """Hsu et al. (2019): for each class, split its samples over nodes in Dir(alpha) shares.

    A draw in which some node ends with fewer than ``min_samples`` is redrawn
    (up to :data:`DIRICHLET_MAX_TRIES` times, continuing the same random
    stream, so the result stays deterministic).

    Raises
    ------
    ConfigError
        On ``alpha`` when no draw satisfies ``min_samples``: very small alpha
        with many nodes leaves some nodes empty almost surely.
    """
    y = _check(labels, num_nodes, min_samples)
    _check_alpha(alpha)
    rng = np.random.default_rng(seed)
    class_indices = [np.flatnonzero(y == c) for c in np.unique(y)]
    for _ in range(DIRICHLET_MAX_TRIES):
        buckets: list[list[np.ndarray]] = [[] for _ in range(num_nodes)]
        for idx in class_indices:
            shares = rng.dirichlet(np.full(num_nodes, float(alpha)))
            cuts = (np.cumsum(shares)[:-1] * len(idx)).astype(np.int64)
            for node, piece in enumerate(np.split(rng.permutation(idx), cuts)):
                buckets[node].append(piece)
        parts = [np.concatenate(b) for b in buckets]
        if min(len(p) for p in parts) >= min_samples:
            return _sorted_parts(parts)
    raise ConfigError(
        "alpha",
        alpha,
        "a value large enough that every node gets min_samples",
        hint=(
            f"after {DIRICHLET_MAX_TRIES} draws some node still had fewer than min_samples={min_samples} "
            f"samples; raise alpha, lower num_nodes ({num_nodes}) or lower min_samples"
        ),
    )


def quantity_skew(
    labels: np.ndarray, num_nodes: int, *, alpha: float = 0.5, min_samples: int = 1, seed: int = 0
) -> list[np.ndarray]:
    """Node sizes ~ ``min_samples`` + Multinomial(rest, Dir(alpha)); samples drawn IID.

    Reserving ``min_samples`` per node first makes the guarantee exact, with
    no redraws, while the remainder keeps the Dirichlet size skew.
    """
    y = _check(labels, num_nodes, min_samples)
    _check_alpha(alpha)
    rng = np.random.default_rng(seed)
    shares = rng.dirichlet(np.full(num_nodes, float(alpha)))
    sizes = min_samples + rng.multinomial(len(y) - num_nodes * min_samples, shares)
    return _sorted_parts(np.split(rng.permutation(len(y)), np.cumsum(sizes)[:-1]))


def label_distribution(labels: np.ndarray, parts: list[np.ndarray], num_classes: int) -> np.ndarray:
    """Per-node class counts ``[num_nodes, num_classes]``: what the UI plots and tests measure skew on."""
    y = np.asarray(labels)
    largest = int(y.max()) if y.size else 0
    num_classes = checks.integer(
        "num_classes",
        num_classes,
        low=largest + 1 if y.size else 1,
        accepted=f"an integer > the largest label ({largest})",
    )
    counts = np.zeros((len(parts), num_classes), dtype=np.int64)
    for node, part in enumerate(parts):
        counts[node] = np.bincount(y[np.asarray(part, dtype=np.int64)], minlength=num_classes)
    return counts


def _check(labels: np.ndarray, num_nodes: int, min_samples: int) -> np.ndarray:
    """Validate the arguments every method shares; return labels as a 1-D int64 array."""
    y = np.asarray(labels)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or (y.size and y.min() < 0):
        got = f"array of dtype {y.dtype}, shape {y.shape}"
        raise ConfigError("labels", got, "a 1-D array of non-negative integers")
    min_samples = checks.integer("min_samples", min_samples, low=1)
    most = len(y) // min_samples
    checks.integer(
        "num_nodes",
        num_nodes,
        low=1,
        high=most,
        accepted=f"an integer from 1 to {most} (len(labels) // min_samples)",
        hint=f"{len(y)} samples, at least {min_samples} per node",
    )
    return y.astype(np.int64, copy=False)


def _check_alpha(alpha: float) -> None:
    checks.number("alpha", alpha, 0, open_low=True, hint="smaller alpha means more skew")


def _sorted_parts(parts: list[np.ndarray]) -> list[np.ndarray]:
    """Sorted int64 copies: order inside a node carries no meaning, and sorted arrays compare simply."""
    return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]
