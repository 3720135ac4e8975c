"""Datasets as tensors: train / validation / test splits, seeded and stratified, held on a device.

Built-in datasets (:data:`DATASETS`); nothing is ever downloaded:

- ``digits`` (the default): scikit-learn's ``load_digits``, shipped with the package; 1797
  images ``1 x 8 x 8``, 10 classes.
- ``mnist1d``: MNIST-1D generated locally by ``mnist1d.data.make_dataset`` with the package's
  default arguments and ``seed`` as its seed (5000 sequences of length 40, 10 classes), treated
  as ``1 x 1 x 40`` images. With ``limit`` only as many sequences as needed are generated (a
  multiple of 10 at least ``limit``), so they are a different draw from the full 5000.
- ``mnist`` and ``fashion-mnist``: the four standard idx files (``train-images-idx3-ubyte``,
  ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each
  optionally ``.gz``) in the directory ``root`` (or torchvision's ``MNIST/raw`` or
  ``FashionMNIST/raw`` below it); ``1 x 28 x 28``, 10 classes.
- ``cifar10``: the "CIFAR-10 python version" (pickles ``data_batch_1`` .. ``data_batch_5`` and
  ``test_batch``) in ``root`` or in ``root/cifar-10-batches-py``; ``3 x 32 x 32``, 10 classes.
  The pickles are read with an unpickler that accepts only the numpy globals these files use.

A user's own data comes as ``"npz:PATH"`` (or a name ending in ``.npz`` that is a file): an
archive with ``x`` of shape ``N x C x H x W`` (or ``N x H x W``, one channel) and integer labels
``y``; the distinct labels, sorted, become classes ``0 .. K-1``.

Splitting: the official train and test files of mnist, fashion-mnist and cifar10 (and the two
parts that mnist1d generates) are pooled, so every dataset is split the same way. With
``limit``, a stratified subset of ``limit`` examples is kept first. Each class is then dealt
out to train / validation / test in proportion to the fractions (each per-class count is the
floor or ceiling of its exact share; leftovers go to the split furthest below its running
target, so split sizes stay within about one example of exact), shuffled with a numpy
Generator made from ``seed``; global RNG state is never used nor changed. Inputs are
standardised per channel with the *training* split's mean and standard deviation.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dagspace.random import check_random_state
from surrogate.dataset_files import (
    CIFAR_FILES,
    IDX_FILES,
    find_files,
    read_cifar_batch,
    read_idx,
    read_npz,
)
from surrogate.errors import DatasetError

__all__ = ["DATASETS", "Dataset", "Split", "load_dataset"]

DATASETS: tuple[str, ...] = ("digits", "mnist1d", "mnist", "fashion-mnist", "cifar10")

_NUM_DIGIT_CLASSES = 10
_MNIST1D_SAMPLES = 5000  # mnist1d's default num_samples
_ROOT_DATASETS = ("mnist", "fashion-mnist", "cifar10")  # read from files in a data root


@dataclass(frozen=True)
class Split:
    """One split: ``x`` a float32 ``(N, C, H, W)`` tensor, ``y`` an int64 ``(N,)`` tensor."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def to(self, device: torch.device | str) -> Split:
        return Split(self.x.to(device), self.y.to(device))


@dataclass(frozen=True)
class Dataset:
    """A dataset ready for training: three splits on one device, and what a network needs."""

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    input_shape: tuple[int, int, int]  # (C, H, W)

    def to(self, device: torch.device | str) -> Dataset:
        return Dataset(
            self.name,
            self.train.to(device),
            self.val.to(device),
            self.test.to(device),
            self.num_classes,
            self.input_shape,
        )


_Root = str | os.PathLike[str] | None


@dataclass(frozen=True)
class _Arrays:
    """Raw arrays of a whole dataset: ``x`` ``(N, C, H, W)``, ``y`` ints in ``0 .. K-1``."""

    name: str
    x: np.ndarray
    y: np.ndarray
    labels: tuple[Any, ...]  # the original label of each class, for messages


# (root, seed, limit) -> the whole dataset as arrays
_Loader = Callable[[_Root, int, int | None], _Arrays]


# ----------------------------------------------------------------------------- argument checks


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _check_fractions(val_fraction: float, test_fraction: float) -> np.ndarray:
    """Return the ``(3,)`` fractions of train, validation and test."""
    for param, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not _is_number(value) or not 0 < value < 1:
            raise DatasetError(
                f"The '{param}' parameter of load_dataset must be a number in the open interval "
                f"(0, 1); got {value!r} instead."
            )
    if val_fraction + test_fraction >= 1:
        raise DatasetError(
            "The 'val_fraction' and 'test_fraction' parameters of load_dataset must sum to less "
            f"than 1 (the rest is the training split); got {val_fraction!r} + {test_fraction!r} "
            f"= {val_fraction + test_fraction!r} instead."
        )
    return np.array([1.0 - val_fraction - test_fraction, val_fraction, test_fraction])


def _check_seed(seed: int) -> np.random.Generator:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise DatasetError(
            f"The 'seed' parameter of load_dataset must be a non-negative int; got {seed!r} "
            "instead."
        )
    return check_random_state(int(seed))


def _check_limit(limit: int | None) -> None:
    if limit is None:
        return
    if not isinstance(limit, (int, np.integer)) or isinstance(limit, bool) or limit < 1:
        raise DatasetError(
            f"The 'limit' parameter of load_dataset must be None or a positive int; got "
            f"{limit!r} instead."
        )


def _check_device(device: torch.device | str) -> torch.device:
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise DatasetError(
            f"The 'device' parameter of load_dataset must name a torch device such as 'cpu' or "
            f"'cuda:0'; got {device!r} ({err})."
        ) from err


def _check_root(root: str | os.PathLike[str] | None, name: str) -> Path:
    if root is None:
        raise DatasetError(
            f"The {name!r} dataset is read from local files: set the directory holding them "
            "(--data-root DIR, or data_root in the config's [supernet] section)."
        )
    try:
        path = Path(root).expanduser()
    except (TypeError, RuntimeError) as err:
        raise DatasetError(
            f"The 'root' of the {name!r} dataset must be a path; got {root!r} ({err})."
        ) from err
    if not path.is_dir():
        raise DatasetError(
            f"The data root (--data-root, data_root) of the {name!r} dataset must be an existing "
            f"directory; got {str(path)!r}."
        )
    return path


# ------------------------------------------------------------------------------ array checks


def _as_images(x: Any, source: str) -> np.ndarray:
    """Check ``x`` and return it as ``(N, C, H, W)`` (a 3-D ``x`` gets one channel)."""
    x = np.asarray(x)
    if x.ndim not in (3, 4):
        raise DatasetError(
            f"{source}: 'x' must be an N x C x H x W or N x H x W array; got shape "
            f"{tuple(x.shape)}."
        )
    if x.dtype.kind not in "biuf":
        raise DatasetError(f"{source}: 'x' must hold real numbers; got dtype {x.dtype}.")
    if 0 in x.shape[1:]:
        raise DatasetError(
            f"{source}: every image dimension of 'x' must be positive; got shape {tuple(x.shape)}."
        )
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        bad = int(np.count_nonzero(~np.isfinite(x)))
        raise DatasetError(f"{source}: 'x' must be finite; got {bad} NaN or infinite values.")
    return x if x.ndim == 4 else x[:, None]


def _as_labels(y: Any, num_examples: int, source: str) -> np.ndarray:
    """Check ``y``: ``(N,)`` integer labels (integral floats accepted); return it as int64."""
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != num_examples:
        raise DatasetError(
            f"{source}: 'y' must be a 1-D array with one label for each of the {num_examples} "
            f"examples of 'x'; got shape {tuple(y.shape)}."
        )
    if y.dtype.kind == "f":
        with np.errstate(over="ignore"):  # a long double beyond float64 becomes inf: refused
            y = y.astype(np.float64)
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise DatasetError(
                f"{source}: 'y' must hold integer labels; got non-integral values such as "
                f"{y[~np.isfinite(y) | (y != np.round(y))][0].item()!r}."
            )
        if np.any(np.abs(y) >= 2.0**63):
            raise DatasetError(
                f"{source}: 'y' labels must fit in int64; got {np.abs(y).max().item()!r}."
            )
        return y.astype(np.int64)
    if y.dtype.kind not in "biu":
        raise DatasetError(f"{source}: 'y' must hold integer labels; got dtype {y.dtype}.")
    if y.dtype == np.uint64 and y.size and int(y.max()) >= 2**63:
        raise DatasetError(f"{source}: 'y' labels must fit in int64; got {int(y.max())}.")
    return y.astype(np.int64)


def _relabel(y: np.ndarray, source: str) -> tuple[np.ndarray, tuple[int, ...]]:
    """Map the distinct labels of ``y``, sorted, to ``0 .. K-1``; ``K`` must be at least 2."""
    labels, codes = np.unique(y, return_inverse=True)
    if len(labels) < 2:
        raise DatasetError(
            f"{source}: 'y' must hold at least 2 distinct labels; got {len(labels)} "
            f"({[int(v) for v in labels]})."
        )
    return codes.reshape(-1).astype(np.int64), tuple(int(v) for v in labels)


def _check_digit_labels(y: np.ndarray, source: str) -> np.ndarray:
    """Labels of a 10-class dataset must lie in ``0 .. 9``."""
    bad = (y < 0) | (y >= _NUM_DIGIT_CLASSES)
    if np.any(bad):
        raise DatasetError(
            f"{source}: labels must lie in 0 .. {_NUM_DIGIT_CLASSES - 1}; got {int(y[bad][0])}."
        )
    return y


# ------------------------------------------------------------------------------- the loaders


def _load_digits(root: _Root, seed: int, limit: int | None) -> _Arrays:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = np.asarray(bunch.images)[:, None]  # (N, 1, 8, 8)
    y = np.asarray(bunch.target, dtype=np.int64)
    return _Arrays("digits", x, y, tuple(range(_NUM_DIGIT_CLASSES)))


def _mnist1d_arrays(num_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Generate MNIST-1D, pooled: ``x`` ``(N, 40)``, ``y`` ``(N,)``; global RNG state is kept.

    ``make_dataset`` reseeds Python's and numpy's global generators; their states are saved
    before and restored after, so callers see no change (not thread-safe, like the package).
    """
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as err:
        raise DatasetError(
            f"The 'mnist1d' dataset needs the mnist1d package (pip install mnist1d); {err}."
        ) from err
    args = get_dataset_args()
    args.num_samples = num_samples
    args.seed = seed
    python_state = random.getstate()
    numpy_state = np.random.get_state()  # noqa: NPY002 (saved, to undo mnist1d's reseeding)
    try:
        data = make_dataset(args)
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)  # noqa: NPY002
    x = np.concatenate([data["x"], data["x_test"]])
    y = np.concatenate([data["y"], data["y_test"]])
    return x, y


def _load_mnist1d(root: _Root, seed: int, limit: int | None) -> _Arrays:
    if seed >= 2**32:
        raise DatasetError(
            f"The 'mnist1d' dataset is generated with seed as numpy's legacy seed, which must "
            f"be below 2**32; got seed={seed}."
        )
    if limit is not None and limit > _MNIST1D_SAMPLES:
        raise DatasetError(
            f"The 'limit' parameter of load_dataset must be at most the {_MNIST1D_SAMPLES} "
            f"examples of 'mnist1d'; got {limit}."
        )
    num_samples = (  # make_dataset makes num_samples // 10 of each class
        _MNIST1D_SAMPLES
        if limit is None
        else _NUM_DIGIT_CLASSES * math.ceil(limit / _NUM_DIGIT_CLASSES)
    )
    x, y = _mnist1d_arrays(num_samples, seed)
    x = _as_images(x[:, None, :], "mnist1d")  # (N, 1, 1, 40)
    y = _check_digit_labels(_as_labels(y, len(x), "mnist1d"), "mnist1d")
    return _Arrays("mnist1d", x, y, tuple(range(_NUM_DIGIT_CLASSES)))


def _load_idx_pair(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    x = _as_images(read_idx(images, 3), str(images))  # (N, 1, H, W)
    y = _as_labels(read_idx(labels, 1), len(x), f"{labels} (for {images.name})")
    return x, _check_digit_labels(y, str(labels))


def _load_mnist_like(dataset: str, subdir: str) -> _Loader:
    def load(root: _Root, seed: int, limit: int | None) -> _Arrays:
        directory = _check_root(root, dataset)
        train_x, train_y, test_x, test_y = find_files(
            directory, [f"{subdir}/raw"], IDX_FILES, dataset, gz=True
        )
        x_a, y_a = _load_idx_pair(train_x, train_y)
        x_b, y_b = _load_idx_pair(test_x, test_y)
        if x_a.shape[1:] != x_b.shape[1:]:
            raise DatasetError(
                f"{dataset}: train and test images must have the same shape; got "
                f"{x_a.shape[1:]} and {x_b.shape[1:]}."
            )
        x, y = np.concatenate([x_a, x_b]), np.concatenate([y_a, y_b])
        return _Arrays(dataset, x, y, tuple(range(_NUM_DIGIT_CLASSES)))

    return load


def _load_cifar10(root: _Root, seed: int, limit: int | None) -> _Arrays:
    directory = _check_root(root, "cifar10")
    paths = find_files(directory, ["cifar-10-batches-py"], CIFAR_FILES, "cifar10", gz=False)
    batches = []
    for path in paths:
        data, labels = read_cifar_batch(path)
        x = _as_images(data, str(path))
        batches.append((x, _check_digit_labels(_as_labels(labels, len(x), str(path)), str(path))))
    x = np.concatenate([bx for bx, _ in batches])
    y = np.concatenate([by for _, by in batches])
    return _Arrays("cifar10", x, y, tuple(range(_NUM_DIGIT_CLASSES)))


def _expand(text: str) -> Path:
    """``text`` as a path, with ``~`` and ``~user`` expanded."""
    try:
        return Path(text).expanduser()
    except RuntimeError as err:  # "~someone" who has no home directory here
        raise DatasetError(f"Cannot expand the dataset path {text!r} ({err}).") from None


def _load_npz(path: Path) -> _Arrays:
    if not path.is_file():
        raise DatasetError(f"No .npz file at {str(path)!r} (expected an archive with 'x' and 'y').")
    raw_x, raw_y = read_npz(path)
    x = _as_images(raw_x, str(path))
    codes, labels = _relabel(_as_labels(raw_y, len(x), str(path)), str(path))
    return _Arrays(f"npz:{path}", x, codes, labels)


_LOADERS: dict[str, _Loader] = {
    "digits": _load_digits,
    "mnist1d": _load_mnist1d,
    "mnist": _load_mnist_like("mnist", "MNIST"),
    "fashion-mnist": _load_mnist_like("fashion-mnist", "FashionMNIST"),
    "cifar10": _load_cifar10,
}


def _load_arrays(
    name: str, root: str | os.PathLike[str] | None, seed: int, limit: int | None
) -> _Arrays:
    if not isinstance(name, str):
        raise DatasetError(f"A dataset name must be a string; got {type(name).__name__}.")
    check_data_root(name, root)
    if name.startswith("npz:"):
        return _load_npz(_expand(name[4:]))
    if name.endswith(".npz"):
        return _load_npz(_expand(name))
    loader = _LOADERS.get(name)
    if loader is None:
        raise DatasetError(
            f"Unknown dataset {name!r}; expected one of {', '.join(DATASETS)}, 'npz:PATH' or a "
            "path ending in '.npz'."
        )
    return loader(root, seed, limit)


def check_data_root(name: str, root: str | os.PathLike[str] | None) -> None:
    """Refuse a data root given to a dataset that reads no files from one (``digits`` ships
    with scikit-learn, ``mnist1d`` is generated, ``npz:PATH`` names its file): it would be
    silently ignored."""
    if root is None or name in _ROOT_DATASETS:
        return
    raise DatasetError(
        f"The {name!r} dataset reads no files from a data root, so --data-root (data_root in "
        f"the config's [supernet] section) must be left unset for it; got {str(root)!r}. "
        f"Datasets read from a data root: {', '.join(_ROOT_DATASETS)}."
    )


# ------------------------------------------------------------------------- splitting helpers


def _allocate(counts: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Deal each class's examples out to the splits in proportion to ``fractions``.

    ``counts``: ``(K,)`` examples per class; ``fractions``: ``(S,)`` summing to 1. Returns a
    ``(K, S)`` int array whose rows sum to ``counts`` and whose entries are the floor or ceiling
    of ``counts[k] * fractions[s]``. A class's leftover examples go to the splits with the
    largest running deficit plus remainder, which keeps every split total within about one
    example of exact (exact for two splits when the target total is an integer).
    """
    exact = counts[:, None] * fractions[None, :]  # (K, S)
    alloc = np.floor(exact).astype(np.int64)
    deficit = np.zeros(len(fractions))
    for k in range(len(counts)):
        leftover = int(counts[k] - alloc[k].sum())
        if leftover > 0:
            remainder = exact[k] - alloc[k]
            score = np.where(remainder > 0, deficit + remainder, -np.inf)
            alloc[k, np.argsort(-score, kind="stable")[:leftover]] += 1
        deficit += exact[k] - alloc[k]
    return alloc


def _deal(
    y: np.ndarray, num_classes: int, alloc: np.ndarray, rng: np.random.Generator
) -> list[np.ndarray]:
    """Index arrays, one per split, taking ``alloc[k, s]`` random examples of class ``k``."""
    parts: list[list[np.ndarray]] = [[] for _ in range(alloc.shape[1])]
    for k in range(num_classes):
        members = rng.permutation(np.flatnonzero(y == k))
        for s, chunk in enumerate(np.split(members, np.cumsum(alloc[k])[:-1])):
            parts[s].append(chunk)
    return [rng.permutation(np.concatenate(chunks)) for chunks in parts]


def _class_counts(y: np.ndarray, labels: Sequence[Any]) -> str:
    counts = np.bincount(y, minlength=len(labels))
    return ", ".join(f"{label}: {int(n)}" for label, n in zip(labels, counts, strict=True))


def _stratified_subset(arrays: _Arrays, limit: int, rng: np.random.Generator) -> _Arrays:
    """Keep ``limit`` examples of ``arrays``, each class in proportion to its size."""
    total = len(arrays.y)
    if limit > total:
        raise DatasetError(
            f"The 'limit' parameter of load_dataset must be at most the {total} examples of "
            f"{arrays.name!r}; got {limit}."
        )
    counts = np.bincount(arrays.y, minlength=len(arrays.labels))
    alloc = _allocate(counts, np.array([limit / total, 1.0 - limit / total]))
    keep = _deal(arrays.y, len(arrays.labels), alloc, rng)[0]
    return _Arrays(arrays.name, arrays.x[keep], arrays.y[keep], arrays.labels)


def _stratified_split(
    arrays: _Arrays, fractions: np.ndarray, rng: np.random.Generator
) -> list[np.ndarray]:
    """Train, validation and test index arrays; every class must get a training example."""
    counts = np.bincount(arrays.y, minlength=len(arrays.labels))
    alloc = _allocate(counts, fractions)
    if np.any(alloc[:, 0] == 0):
        starved = [arrays.labels[k] for k in np.flatnonzero(alloc[:, 0] == 0)]
        per_class = _class_counts(arrays.y, arrays.labels)
        raise DatasetError(
            f"Splitting {arrays.name!r} with fractions (train, val, test) = "
            f"{tuple(round(float(f), 4) for f in fractions)} would leave class(es) {starved} "
            f"with no training example; examples per class: {per_class}."
        )
    sizes = alloc.sum(axis=0)
    if np.any(sizes == 0):
        raise DatasetError(
            f"Splitting the {len(arrays.y)} examples of {arrays.name!r} would give split sizes "
            f"(train, val, test) = {tuple(int(n) for n in sizes)}; every split needs an example."
        )
    return _deal(arrays.y, len(arrays.labels), alloc, rng)


def _channel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std (1 where it is 0) of ``x`` ``(N, C, H, W)``, as ``(1, C, 1, 1)``."""
    with np.errstate(over="ignore", invalid="ignore"):
        mean = np.array([x[:, c].mean(dtype=np.float64) for c in range(x.shape[1])])
        std = np.array([x[:, c].std(dtype=np.float64) for c in range(x.shape[1])])
    std = np.where(std > 0, std, 1.0)
    return mean.reshape(1, -1, 1, 1), std.reshape(1, -1, 1, 1)


def _to_split(x: np.ndarray, y: np.ndarray, mean: np.ndarray, std: np.ndarray, name: str) -> Split:
    """Standardise ``x`` ``(N, C, H, W)`` and wrap it with ``y`` as CPU tensors."""
    work = np.result_type(x.dtype, np.float32)  # float32 for images, float64 for wide inputs
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        standard = ((x.astype(work) - mean.astype(work)) / std.astype(work)).astype(np.float32)
    if not np.all(np.isfinite(standard)):
        raise DatasetError(
            f"{name}: the standardised inputs are not finite in float32; got raw values from "
            f"{float(np.min(x))!r} to {float(np.max(x))!r}."
        )
    return Split(torch.from_numpy(standard), torch.from_numpy(y.astype(np.int64)))


# ------------------------------------------------------------------------------ the entry point


def load_dataset(
    name: str = "digits",
    *,
    seed: int = 0,
    root: str | os.PathLike[str] | None = None,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    limit: int | None = None,
    device: torch.device | str = "cpu",
) -> Dataset:
    """Load ``name`` as seeded, stratified, standardised train / validation / test splits.

    Args:
        name: one of :data:`DATASETS`, ``"npz:PATH"`` or a path ending in ``.npz``.
        seed: seeds the split (and the generation of ``mnist1d``); same seed, same tensors.
        root: the directory holding the files of ``mnist``, ``fashion-mnist`` or ``cifar10``.
        val_fraction: the share of each class that goes to the validation split, in (0, 1).
        test_fraction: the share that goes to the test split; the two sum to less than 1.
        limit: if given, a stratified subset of this many examples is kept before splitting.
        device: where the tensors are put (small datasets live on the training device).

    Returns:
        A :class:`Dataset` whose splits hold ``x`` a float32 ``N x C x H x W`` tensor
        (standardised per channel with the training split's mean and std) and ``y`` an int64
        ``N`` tensor of classes ``0 .. num_classes - 1``.

    Raises:
        DatasetError: for an unknown name, bad arguments, missing or malformed files, or a split
            that leaves a class without a training example (or a split without examples).
    """
    fractions = _check_fractions(val_fraction, test_fraction)
    rng = _check_seed(seed)
    _check_limit(limit)
    target = _check_device(device)
    arrays = _load_arrays(name, root, int(seed), None if limit is None else int(limit))
    if limit is not None:
        arrays = _stratified_subset(arrays, int(limit), rng)
    train, val, test = _stratified_split(arrays, fractions, rng)
    mean, std = _channel_stats(arrays.x[train])
    splits = [
        _to_split(arrays.x[i], arrays.y[i], mean, std, arrays.name) for i in (train, val, test)
    ]
    try:
        splits = [split.to(target) for split in splits]
    except (RuntimeError, AssertionError) as err:  # torch raises AssertionError without CUDA
        raise DatasetError(
            f"The 'device' parameter of load_dataset must be an available device; got "
            f"{str(target)!r} ({err})."
        ) from err
    channels, height, width = (int(n) for n in arrays.x.shape[1:])
    return Dataset(
        arrays.name, *splits, num_classes=len(arrays.labels), input_shape=(channels, height, width)
    )
