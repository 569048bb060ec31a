"""Datasets for the simulated federation, loaded from local files only.

Every dataset comes back as one :class:`Dataset`: a training set that
:mod:`hypergpu_lab.partition` splits over the nodes, and a held-out test set
that only the coordinator evaluates on.  Nothing is fetched from the network
unless the caller passes ``download=True``: simulations must run on machines
without internet access, so a missing folder is an error that says where the
files belong rather than a silent download.

Sources
-------
``digits``
    scikit-learn's bundled 8x8 digits (no files needed).
``mnist``, ``fashion-mnist``, ``cifar10``
    torchvision's own readers on a local folder (``root`` or the
    ``HYPERGPU_LAB_DATA`` environment variable).
``synthetic``
    The Synthetic(alpha, beta) federated data of Li et al. (2020), generated
    per node, with the natural per-node partition attached.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hypergpu_lab import checks
from hypergpu_lab.errors import ConfigError, DataNotFoundError

logger = logging.getLogger(__name__)

DATASETS: tuple[str, ...] = ("digits", "mnist", "fashion-mnist", "cifar10", "synthetic")

#: Environment variable naming the default data folder for file-backed datasets.
DATA_ROOT_ENV = "HYPERGPU_LAB_DATA"

#: Largest number of samples one synthetic node holds (before its test split).
#: Li et al. draw ``int(lognormal(4, 2)) + 50`` samples per node, a heavy tail
#: whose largest draws reach hundreds of thousands; the cap keeps memory
#: bounded when a pool has many nodes.
SYNTHETIC_MAX_PER_NODE = 1000
SYNTHETIC_DIM = 60
#: Most nodes whose test parts form the synthetic test set (evenly spaced over the ids).
SYNTHETIC_TEST_NODES = 1000
_SYNTHETIC_TAG = 0x53594E54  # "SYNT": node k's stream is (seed, k, tag)
SYNTHETIC_CLASSES = 10

# Standard per-dataset statistics, so that a subsample is normalised exactly
# like the full set (and like published baselines).
_MNIST_STATS = {"mnist": (0.1307, 0.3081), "fashion-mnist": (0.2860, 0.3530)}
_CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
_CIFAR10_STD = (0.2470, 0.2435, 0.2616)
_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_CIFAR10_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train tensors (to be partitioned over nodes) and a held-out test set for the coordinator.

    Attributes
    ----------
    x_train, x_test
        float32; images ``[N, C, H, W]``, synthetic ``[N, 60]``.
    y_train, y_test
        int64 class labels ``[N]``.
    natural_partition
        Per-node int64 index arrays into ``x_train`` when the data has owners
        of its own (synthetic only); ``None`` means "partition it yourself".
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    natural_partition: list[np.ndarray] | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample, which is what a model constructor needs."""
        return tuple(self.x_train.shape[1:])


def load_dataset(
    name: str,
    *,
    root: str | os.PathLike[str] | None = None,
    download: bool = False,
    verify: bool = False,
    seed: int = 0,
    test_fraction: float = 0.2,
    num_nodes: int = 10,
    synthetic_alpha: float = 1.0,
    synthetic_beta: float = 1.0,
    max_train: int | None = None,
    max_test: int | None = None,
) -> Dataset:
    """Load a dataset by name, normalised and ready to partition.

    Parameters
    ----------
    name
        One of :data:`DATASETS`.
    root
        Folder holding the files of ``mnist``, ``fashion-mnist`` and
        ``cifar10``; defaults to ``$HYPERGPU_LAB_DATA``. Ignored otherwise.
    download
        Let torchvision fetch missing files (needs a network).
    verify
        Check CIFAR-10 batch files against the official md5 sums (always done
        when ``download`` is true); see ``_unchecked_cifar10_class``.
    seed
        Seeds the digits split, the synthetic generator and the subsamples,
        so the same arguments give the same tensors.
    test_fraction
        Held-out share for ``digits`` and per node for ``synthetic``; the
        torchvision datasets keep their official test split.
    num_nodes, synthetic_alpha, synthetic_beta
        Synthetic(alpha, beta) parameters; ignored by the other datasets.
    max_train, max_test
        Keep at most this many samples (seeded, order preserved), so demos and
        tests stay fast on small machines.

    Raises
    ------
    ConfigError
        For an unknown name, an out-of-range argument or no data folder.
    DataNotFoundError
        When a file-backed dataset is missing and ``download`` is false.
    """
    _validate_args(
        name=name,
        seed=seed,
        test_fraction=test_fraction,
        num_nodes=num_nodes,
        synthetic_alpha=synthetic_alpha,
        synthetic_beta=synthetic_beta,
        max_train=max_train,
        max_test=max_test,
    )
    # Independent streams, so subsampling the test set never shifts the train subsample.
    train_rng, test_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))

    if name == "digits":
        dataset = _load_digits(seed=seed, test_fraction=test_fraction)
        dataset = _subsample(dataset, max_train=max_train, max_test=max_test, train_rng=train_rng, test_rng=test_rng)
    elif name == "synthetic":
        dataset = synthetic(
            num_nodes=num_nodes, alpha=synthetic_alpha, beta=synthetic_beta, test_fraction=test_fraction, seed=seed
        )
        dataset = _subsample(dataset, max_train=max_train, max_test=max_test, train_rng=train_rng, test_rng=test_rng)
    elif name == "cifar10":
        # File-backed sets subsample the uint8 arrays before converting, to keep peak memory low.
        dataset = _load_cifar10(
            _resolve_root(root),
            download=download,
            verify=verify,
            max_train=max_train,
            max_test=max_test,
            train_rng=train_rng,
            test_rng=test_rng,
        )
    else:
        dataset = _load_mnist_like(
            name,
            _resolve_root(root),
            download=download,
            max_train=max_train,
            max_test=max_test,
            train_rng=train_rng,
            test_rng=test_rng,
        )
    logger.info(
        "loaded %s: %d train, %d test, input shape %s",
        dataset.name,
        len(dataset.y_train),
        len(dataset.y_test),
        dataset.input_shape,
    )
    return dataset


def synthetic(
    *,
    num_nodes: int = 10,
    alpha: float = 1.0,
    beta: float = 1.0,
    test_fraction: float = 0.2,
    seed: int = 0,
    max_per_node: int = SYNTHETIC_MAX_PER_NODE,
) -> Dataset:
    r"""Generate Synthetic(alpha, beta), the federated benchmark of Li et al. (2020).

    T. Li, A. K. Sahu, M. Zaheer, M. Sanjabi, A. Talwalkar, V. Smith,
    "Federated Optimization in Heterogeneous Networks" (FedProx), MLSys 2020,
    section 5.1 and their generator ``data/synthetic_*/generate_niid.py``.
    For node :math:`k`, with :math:`d = 60` features and :math:`C = 10` classes:

    .. math::

        u_k \sim N(0, \alpha),\quad B_k \sim N(0, \beta),\quad
        W_k \in R^{d \times C} \sim N(u_k, 1),\quad b_k \in R^C \sim N(u_k, 1),

        v_k \in R^d \sim N(B_k, 1),\quad x \sim N(v_k, \Sigma),\
        \Sigma = \mathrm{diag}(j^{-1.2})_{j=1..d},\quad
        y = \arg\max \mathrm{softmax}(x W_k + b_k).

    As in their code, the second argument of :math:`N` for ``u_k`` and ``B_k``
    is used as the standard deviation (``np.random.normal(0, alpha)``).
    alpha makes each node's labelling model differ, beta each node's inputs.
    Node sizes are ``int(lognormal(4, 2)) + 50``, capped at ``max_per_node``
    (the original has no cap; its heavy tail would make memory unbounded for
    large pools). Each node's samples are split into train and test by
    ``test_fraction`` (at least one of each); the test set is the union of the
    test parts of at most :data:`SYNTHETIC_TEST_NODES` evenly spaced nodes and
    ``natural_partition[k]`` lists node ``k``'s train rows. Each node draws from
    its own stream (see :class:`SyntheticShards`, which a pool uses to generate
    a node's shard only when it trains).
    """
    _validate_args(
        name="synthetic",
        seed=seed,
        test_fraction=test_fraction,
        num_nodes=num_nodes,
        synthetic_alpha=alpha,
        synthetic_beta=beta,
        max_train=None,
        max_test=None,
    )
    checks.integer("max_per_node", max_per_node, low=50, hint="every node holds at least 50 samples")
    gen = SyntheticShards(
        num_nodes, alpha=alpha, beta=beta, test_fraction=test_fraction, seed=seed, max_per_node=max_per_node
    )
    parts = [gen.load(k) for k in range(num_nodes)]
    train_at = np.concatenate([[0], np.cumsum(gen.n_train)])
    x_test, y_test = gen.test_set()
    return Dataset(
        name="synthetic",
        x_train=torch.cat([x for x, _ in parts]),
        y_train=torch.cat([y for _, y in parts]),
        x_test=x_test,
        y_test=y_test,
        num_classes=SYNTHETIC_CLASSES,
        natural_partition=[np.arange(train_at[k], train_at[k + 1], dtype=np.int64) for k in range(num_nodes)],
    )


class SyntheticShards:
    """Synthetic(alpha, beta) node by node: node ``k``'s samples come from its own seeded stream.

    Why: a pool of a million nodes cannot hold ~150 million samples. The per-node draws (sizes,
    priors u_k and B_k) are three arrays made once; everything else of node ``k`` (v_k, W_k, b_k and
    its samples) is drawn from the stream (seed, k) when the node trains, so node ``k`` is the same
    whether it is generated alone, lazily, or with all the others (:func:`synthetic`).
    The test set is the union of the test parts of at most :data:`SYNTHETIC_TEST_NODES` nodes,
    evenly spaced over the ids (all nodes when there are no more than that).
    """

    sample_shape = (SYNTHETIC_DIM,)

    def __init__(
        self,
        num_nodes: int,
        *,
        alpha: float,
        beta: float,
        test_fraction: float,
        seed: int,
        max_per_node: int = SYNTHETIC_MAX_PER_NODE,
    ) -> None:
        self.seed, self.alpha, self.beta = seed, alpha, beta
        rng = np.random.default_rng(seed)
        # Draw order follows the authors' generator: sizes, priors, then per-node feature means and models.
        sizes = np.minimum(rng.lognormal(4.0, 2.0, num_nodes), max_per_node - 50).astype(np.int64) + 50
        self.mean_w = rng.normal(0.0, alpha, num_nodes)  # u_k (b_k shares it, as in the authors' code)
        self.feature_shift = rng.normal(0.0, beta, num_nodes)  # B_k
        self.n_test = np.clip(np.rint(sizes * test_fraction).astype(np.int64), 1, sizes - 1)
        self.n_train = sizes - self.n_test
        # Diagonal covariance: sampling N(v, Sigma) is v + sqrt(diag) * N(0, 1).
        self._x_scale = np.power(np.arange(1, SYNTHETIC_DIM + 1, dtype=np.float64), -1.2) ** 0.5

    def __len__(self) -> int:
        return len(self.n_train)

    def _samples(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """All of node ``k``'s samples (train rows first), from its own stream."""
        rng = np.random.default_rng([self.seed, k, _SYNTHETIC_TAG])
        mean_x = rng.normal(self.feature_shift[k], 1.0, SYNTHETIC_DIM)
        w = rng.normal(self.mean_w[k], 1.0, (SYNTHETIC_DIM, SYNTHETIC_CLASSES))
        b = rng.normal(self.mean_w[k], 1.0, SYNTHETIC_CLASSES)
        x = mean_x + self._x_scale * rng.standard_normal((int(self.n_train[k] + self.n_test[k]), SYNTHETIC_DIM))
        y = np.argmax(x @ w + b, axis=1)  # softmax is monotone, argmax of logits is the same
        return x.astype(np.float32), y.astype(np.int64)

    def load(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Node ``k``'s training shard ``(x [n, 60] float32, y [n] int64)``."""
        x, y = self._samples(k)
        n = int(self.n_train[k])
        return torch.from_numpy(x[:n]), torch.from_numpy(y[:n])

    def test_nodes(self) -> np.ndarray:
        """The nodes whose test parts make the held-out test set."""
        n = len(self)
        return np.arange(n) if n <= SYNTHETIC_TEST_NODES else np.linspace(0, n - 1, SYNTHETIC_TEST_NODES).astype(int)

    def test_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = [], []
        for k in self.test_nodes():
            x, y = self._samples(int(k))
            xs.append(x[self.n_train[k] :])
            ys.append(y[self.n_train[k] :])
        return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))


def _load_digits(*, seed: int, test_fraction: float) -> Dataset:
    """Bundled 8x8 digits, so the lab runs with no data folder at all.

    The CSV that scikit-learn ships is read directly: importing scikit-learn (and
    scipy) would cost about a second of every run's start-up for one small file.
    """
    images, labels = _digits_arrays()
    images = images / 16.0
    train_idx, test_idx = stratified_split(labels, test_fraction, seed)
    # Statistics of the train split only: the test set must not leak into preprocessing.
    mean = float(images[train_idx].mean())
    std = float(images[train_idx].std())
    images = (images - mean) / std
    return Dataset(
        name="digits",
        x_train=torch.from_numpy(images[train_idx][:, None]),
        y_train=torch.from_numpy(labels[train_idx]),
        x_test=torch.from_numpy(images[test_idx][:, None]),
        y_test=torch.from_numpy(labels[test_idx]),
        num_classes=10,
    )


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(images [1797, 8, 8] float32 in 0..16, labels int64) from scikit-learn's digits.csv.gz."""
    import gzip
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        raise DataNotFoundError("the digits dataset ships with scikit-learn: pip install scikit-learn")
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)
    return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/test indices with each class's test share as close to ``test_fraction`` as counts allow.

    The test set has ``ceil(test_fraction * n)`` samples; classes get their share by largest remainder.
    """
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    n_test = int(np.ceil(test_fraction * len(labels)))
    raw = counts * n_test / len(labels)
    take = np.floor(raw).astype(np.int64)
    for i in np.argsort(-(raw - take), kind="stable")[: n_test - int(take.sum())]:
        take[i] += 1
    test = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take)])
    test = np.sort(test)
    train = np.setdiff1d(np.arange(len(labels)), test)
    return rng.permutation(train), rng.permutation(test)


def _load_mnist_like(
    name: str,
    root: Path,
    *,
    download: bool,
    max_train: int | None,
    max_test: int | None,
    train_rng: np.random.Generator,
    test_rng: np.random.Generator,
) -> Dataset:
    """MNIST or Fashion-MNIST through torchvision's IDX reader, official split."""
    from torchvision.datasets import MNIST, FashionMNIST

    cls = MNIST if name == "mnist" else FashionMNIST
    raw = root / cls.__name__ / "raw"
    legacy = root / cls.__name__ / "processed"
    has_legacy = all((legacy / f).is_file() for f in (cls.training_file, cls.test_file))
    missing = [f for f in _MNIST_FILES if not (raw / f).is_file()]
    if missing and not has_legacy and not download:
        raise DataNotFoundError(
            f"{name}: files not found in {raw}{os.sep}; expected the uncompressed IDX files "
            f"{', '.join(_MNIST_FILES)} (missing: {', '.join(missing)}). Copy them there, "
            "or pass download=True to fetch them when a network is available."
        )
    mean, std = _MNIST_STATS[name]
    splits = []
    for train, cap, rng in ((True, max_train, train_rng), (False, max_test, test_rng)):
        ds = cls(root=str(root), train=train, download=download)
        keep = _subsample_indices(len(ds.targets), cap, rng)
        # .data is the uint8 tensor torchvision parsed; indexing it skips per-sample PIL conversion.
        x = ds.data[keep].to(torch.float32).div_(255.0).sub_(mean).div_(std).unsqueeze(1)
        splits.append((x.contiguous(), ds.targets[keep].to(torch.int64)))
    (x_train, y_train), (x_test, y_test) = splits
    return Dataset(name=name, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, num_classes=10)


def _unchecked_cifar10_class() -> type:
    """Build the CIFAR-10 reader lazily, so importing this module does not import torchvision."""
    from torchvision.datasets import CIFAR10

    class _UncheckedCIFAR10(CIFAR10):
        """torchvision's CIFAR-10 reader with the md5 comparison replaced by an existence check.

        torchvision compares every batch file (and ``batches.meta``) with the
        md5 sum of the official archive before reading it. Files that are
        genuine CIFAR pickles but not byte-identical to the archive (written by
        a test, re-pickled, or a reduced copy for a demo) are then refused as
        "not found or corrupted". Giving each file an md5 of ``None`` uses
        torchvision's own contract of ``check_integrity(path, None)``: the file
        must exist. Everything else, the unpickling, stacking and class names,
        is torchvision's code unchanged. ``load_dataset(..., verify=True)`` or
        ``download=True`` uses the stock, checksummed class instead.
        """

        train_list = [[filename, None] for filename, _ in CIFAR10.train_list]
        test_list = [[filename, None] for filename, _ in CIFAR10.test_list]
        meta = {**CIFAR10.meta, "md5": None}

    return _UncheckedCIFAR10


def _load_cifar10(
    root: Path,
    *,
    download: bool,
    verify: bool,
    max_train: int | None,
    max_test: int | None,
    train_rng: np.random.Generator,
    test_rng: np.random.Generator,
) -> Dataset:
    """CIFAR-10 through torchvision's pickle reader, official split, per-channel normalisation."""
    from torchvision.datasets import CIFAR10

    folder = root / CIFAR10.base_folder
    missing = [f for f in _CIFAR10_FILES if not (folder / f).is_file()]
    if missing and not download:
        raise DataNotFoundError(
            f"cifar10: files not found in {folder}{os.sep}; expected the python-version batches "
            f"{', '.join(_CIFAR10_FILES)} (missing: {', '.join(missing)}). Extract "
            "cifar-10-python.tar.gz into the data folder, or pass download=True to fetch it "
            "when a network is available."
        )
    cls = CIFAR10 if (verify or download) else _unchecked_cifar10_class()
    mean = torch.tensor(_CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(_CIFAR10_STD).view(1, 3, 1, 1)
    splits = []
    for train, cap, rng in ((True, max_train, train_rng), (False, max_test, test_rng)):
        ds = cls(root=str(root), train=train, download=download)
        keep = _subsample_indices(len(ds.targets), cap, rng)
        # torchvision stores HWC uint8 for PIL; models want CHW floats.
        pixels = torch.from_numpy(np.ascontiguousarray(ds.data[keep].transpose(0, 3, 1, 2)))
        x = (pixels.to(torch.float32) / 255.0 - mean) / std
        y = torch.as_tensor(np.asarray(ds.targets, dtype=np.int64)[keep])
        splits.append((x.contiguous(), y))
    (x_train, y_train), (x_test, y_test) = splits
    return Dataset(name="cifar10", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, num_classes=10)


def subsample_test(
    x: torch.Tensor, y: torch.Tensor, *, max_test: int | None, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The test subsample :func:`load_dataset` takes for ``max_test`` and ``seed`` (the same stream)."""
    test_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[1])
    keep = torch.from_numpy(_subsample_indices(len(y), max_test, test_rng))
    return (x, y) if max_test is None or max_test >= len(y) else (x[keep], y[keep])


def _subsample_indices(n: int, cap: int | None, rng: np.random.Generator) -> np.ndarray:
    """Sorted random subset of ``range(n)`` of size ``min(n, cap)``; order is kept for reproducible batches."""
    if cap is None or cap >= n:
        return np.arange(n, dtype=np.int64)
    return np.sort(rng.choice(n, size=cap, replace=False)).astype(np.int64)


def _subsample(
    dataset: Dataset,
    *,
    max_train: int | None,
    max_test: int | None,
    train_rng: np.random.Generator,
    test_rng: np.random.Generator,
) -> Dataset:
    """Cap an in-memory dataset; a natural partition is shrunk node by node so it stays valid."""
    if (max_train is None or max_train >= len(dataset.y_train)) and (
        max_test is None or max_test >= len(dataset.y_test)
    ):
        return dataset  # nothing to cap: no copy (10,000-node synthetic pools are ~0.5 GB)
    if dataset.natural_partition is None:
        keep_train = _subsample_indices(len(dataset.y_train), max_train, train_rng)
        parts = None
    else:
        keep_train, parts = _subsample_parts(dataset.natural_partition, max_train, train_rng)
    keep_test = _subsample_indices(len(dataset.y_test), max_test, test_rng)
    return Dataset(
        name=dataset.name,
        x_train=dataset.x_train[keep_train],
        y_train=dataset.y_train[keep_train],
        x_test=dataset.x_test[keep_test],
        y_test=dataset.y_test[keep_test],
        num_classes=dataset.num_classes,
        natural_partition=parts,
    )


def _subsample_parts(
    parts: list[np.ndarray], cap: int | None, rng: np.random.Generator
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Rows to keep and the re-indexed partition, with every node keeping at least one row.

    Each node keeps a share proportional to its size, so the quantity skew
    of the natural partition survives the subsample.
    """
    sizes = np.array([len(p) for p in parts], dtype=np.int64)
    if cap is None or cap >= sizes.sum():
        return np.concatenate(parts), [p.copy() for p in parts]
    if cap < len(parts):
        raise ConfigError(
            "max_train",
            cap,
            f"an integer >= num_nodes ({len(parts)}) for a naturally partitioned dataset",
            hint="every node keeps at least one training sample",
        )
    # Largest-remainder apportionment: exactly `cap` rows, at least one per node.
    total = int(sizes.sum())
    floors = sizes * cap // total
    keep_sizes = np.maximum(1, floors)
    shortfall = cap - int(keep_sizes.sum())
    if shortfall > 0:
        # Fewer rows are short than there are nodes with floor >= 1, and floor + 1 <= size as cap < total.
        remainders = np.where(floors > 0, sizes * cap % total, -1)
        keep_sizes[np.argsort(-remainders, kind="stable")[:shortfall]] += 1
    while keep_sizes.sum() > cap:  # only the max(1, .) floor overshoots, so at most num_nodes steps
        keep_sizes[np.argmax(keep_sizes)] -= 1
    offsets = np.concatenate([[0], np.cumsum(keep_sizes)])
    kept = [np.sort(rng.choice(part, size=int(k), replace=False)) for part, k in zip(parts, keep_sizes)]
    new_parts = [np.arange(offsets[i], offsets[i + 1], dtype=np.int64) for i in range(len(parts))]
    return np.concatenate(kept).astype(np.int64), new_parts


def _resolve_root(root: str | os.PathLike[str] | None) -> Path:
    """The explicit root, else ``$HYPERGPU_LAB_DATA``; file-backed datasets need one of them."""
    if root is None:
        root = os.environ.get(DATA_ROOT_ENV) or None
    if root is None:
        raise ConfigError(
            "data_root",
            None,
            "a folder path",
            hint=f"pass root=... or set the {DATA_ROOT_ENV} environment variable",
        )
    return Path(root).expanduser()


def _validate_args(
    *,
    name: object,
    seed: object,
    test_fraction: object,
    num_nodes: object,
    synthetic_alpha: object,
    synthetic_beta: object,
    max_train: object,
    max_test: object,
) -> None:
    """Reject bad arguments up front, naming the field, before any file is touched."""
    checks.choice("dataset", name, DATASETS)
    checks.integer("seed", seed, low=0)
    checks.number("test_fraction", test_fraction, 0.0, 1.0, open_low=True, open_high=True)
    checks.integer("num_nodes", num_nodes, low=1)
    checks.number("synthetic_alpha", synthetic_alpha, 0.0)
    checks.number("synthetic_beta", synthetic_beta, 0.0)
    checks.optional(checks.integer, "max_train", max_train, low=1)
    checks.optional(checks.integer, "max_test", max_test, low=1)
