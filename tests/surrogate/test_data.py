"""Tests of :mod:`surrogate.data`, on tiny files in the real formats written into ``tmp_path``."""

from __future__ import annotations

import gzip
import pickle
import random
import struct
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from surrogate.data import DATASETS, Dataset, Split, load_dataset
from surrogate.errors import DatasetError

CIFAR_NAMES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")


# ------------------------------------------------------------------------- writers of the formats


def idx_bytes(array: np.ndarray) -> bytes:
    """``array`` (uint8 or int32) in the idx format: magic, big-endian dims, big-endian data."""
    code = {np.dtype(np.uint8): 0x08, np.dtype(np.int32): 0x0C}[array.dtype]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_mnist(
    directory: Path, *, gz: bool = False, per_class: tuple[int, int] = (8, 2), side: int = 5
) -> Path:
    """Tiny MNIST-format idx files: ``per_class`` (train, test) images of each of 10 digits."""
    rng = np.random.default_rng(123)
    directory.mkdir(parents=True, exist_ok=True)
    for prefix, count in zip(("train", "t10k"), per_class, strict=True):
        labels = rng.permutation(np.repeat(np.arange(10, dtype=np.uint8), count))
        images = rng.integers(0, 256, (len(labels), side, side), dtype=np.uint8)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            raw = idx_bytes(array)
            path = directory / f"{prefix}-{kind}-ubyte"
            if gz:
                path.with_name(path.name + ".gz").write_bytes(gzip.compress(raw))
            else:
                path.write_bytes(raw)
    return directory


def cifar_batch(rng: np.random.Generator, per_class: int = 2) -> dict[bytes, object]:
    """One CIFAR-10 python batch as the real files hold it: bytes keys, a list of labels."""
    labels = rng.permutation(np.repeat(np.arange(10), per_class)).tolist()
    data = rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)
    return {b"batch_label": b"tiny", b"labels": labels, b"data": data, b"filenames": []}


def legacy_pickle(obj: object) -> bytes:
    """A protocol-2 pickle naming ``numpy.core.multiarray``, as the official files (numpy 1) do."""
    return pickle.dumps(obj, protocol=2).replace(
        b"numpy._core.multiarray", b"numpy.core.multiarray"
    )


def write_cifar(directory: Path, *, protocol: int | None = None) -> Path:
    rng = np.random.default_rng(7)
    directory.mkdir(parents=True, exist_ok=True)
    for name in CIFAR_NAMES:
        batch = cifar_batch(rng)
        raw = legacy_pickle(batch) if protocol is None else pickle.dumps(batch, protocol)
        (directory / name).write_bytes(raw)
    return directory


def write_npz(path: Path, **arrays: object) -> Path:
    with path.open("wb") as handle:
        np.savez(handle, **arrays)
    return path


def id_images(n: int) -> np.ndarray:
    """``(n, 1, 1, 3)`` images ``[0, 1, i + 2]``: example ``i`` is recoverable after any affine
    map ``a * v + b`` as ``(s2 - s0) / (s1 - s0) - 2``."""
    ids = np.arange(n, dtype=np.float64)
    rows = np.stack([np.zeros_like(ids), np.ones_like(ids), ids + 2], axis=1)
    return rows[:, None, None, :]


def recover_ids(split: Split) -> np.ndarray:
    s = split.x.double().numpy()[:, 0, 0, :]
    return np.rint((s[:, 2] - s[:, 0]) / (s[:, 1] - s[:, 0]) - 2).astype(int)


# ---------------------------------------------------------------------------- shared assertions


def splits(data: Dataset) -> tuple[Split, Split, Split]:
    return data.train, data.val, data.test


def assert_well_formed(data: Dataset, input_shape: tuple[int, int, int], classes: int) -> None:
    assert data.input_shape == input_shape and data.num_classes == classes
    for split in splits(data):
        assert split.x.dtype == torch.float32 and split.y.dtype == torch.int64
        assert split.x.shape == (len(split), *input_shape) and split.y.shape == (len(split),)
        assert torch.isfinite(split.x).all()
        assert int(split.y.min()) >= 0 and int(split.y.max()) < classes


def assert_stratified(data: Dataset, fractions: tuple[float, float, float]) -> None:
    """Every class count of every split, and every split size, is within 1 of exact."""
    ys = [split.y.numpy() for split in splits(data)]
    per_class = sum(np.bincount(y, minlength=data.num_classes) for y in ys)
    total = int(per_class.sum())
    for y, fraction in zip(ys, fractions, strict=True):
        counts = np.bincount(y, minlength=data.num_classes)
        assert np.all(np.abs(counts - per_class * fraction) <= 1), (counts, per_class, fraction)
        assert abs(len(y) - total * fraction) <= 1


def assert_standardised(data: Dataset) -> None:
    x = data.train.x.double()
    torch.testing.assert_close(
        x.mean(dim=(0, 2, 3)), torch.zeros(x.shape[1]).double(), atol=1e-5, rtol=0
    )
    torch.testing.assert_close(
        x.std(dim=(0, 2, 3), unbiased=False), torch.ones(x.shape[1]).double(), atol=1e-5, rtol=0
    )


# ---------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits")


@pytest.fixture
def mnist_dir(tmp_path: Path) -> Path:
    return write_mnist(tmp_path / "mnist")


@pytest.fixture
def cifar_dir(tmp_path: Path) -> Path:
    return write_cifar(tmp_path / "cifar")


@pytest.fixture
def id_npz(tmp_path: Path) -> Path:
    """An .npz with 3 classes labelled -5, 3 and 100 (20, 30 and 10 examples) and id images."""
    labels = np.random.default_rng(0).permutation(np.repeat([-5, 3, 100], [20, 30, 10]))
    return write_npz(tmp_path / "ids.npz", x=id_images(len(labels)), y=labels)


# ------------------------------------------------------------------------------- real datasets


def test_datasets_lists_the_builtins() -> None:
    assert DATASETS == ("digits", "mnist1d", "mnist", "fashion-mnist", "cifar10")


def test_digits_is_the_default_and_well_formed(digits: Dataset) -> None:
    assert digits.name == "digits"
    assert_well_formed(digits, (1, 8, 8), 10)
    assert len(digits.train) + len(digits.val) + len(digits.test) == 1797
    assert_stratified(digits, (0.6, 0.2, 0.2))
    assert_standardised(digits)
    default = load_dataset(limit=50)
    assert default.name == "digits" and default.input_shape == (1, 8, 8)


def test_digits_limit_keeps_a_stratified_subset() -> None:
    data = load_dataset("digits", limit=100, val_fraction=0.25, test_fraction=0.25)
    sizes = [len(split) for split in splits(data)]
    assert sum(sizes) == 100 and sizes == [50, 25, 25]
    counts = sum(np.bincount(split.y.numpy(), minlength=10) for split in splits(data))
    assert np.all(np.abs(counts - 10) <= 1)  # digits' classes have 174 .. 183 examples
    assert_stratified(data, (0.5, 0.25, 0.25))


def test_mnist1d_small_generation_keeps_global_rng_state() -> None:
    """With ``limit`` only ``10 * ceil(limit / 10)`` sequences are generated (fast)."""
    random.seed(99)
    np.random.seed(99)  # noqa: NPY002 (the global state that must survive)
    python_state, numpy_state = random.getstate(), np.random.get_state()  # noqa: NPY002
    data = load_dataset("mnist1d", limit=195, seed=3)
    assert random.getstate() == python_state
    after = np.random.get_state()  # noqa: NPY002
    assert after[0] == numpy_state[0] and np.array_equal(after[1], numpy_state[1])
    assert_well_formed(data, (1, 1, 40), 10)
    assert sum(len(split) for split in splits(data)) == 195
    assert_stratified(data, (0.6, 0.2, 0.2))
    assert_standardised(data)
    again = load_dataset("mnist1d", limit=195, seed=3)
    assert torch.equal(again.train.x, data.train.x)
    other = load_dataset("mnist1d", limit=195, seed=4)
    assert not torch.equal(other.train.x, data.train.x)


@pytest.mark.slow
def test_mnist1d_full_pools_the_5000_generated_sequences() -> None:
    data = load_dataset("mnist1d", seed=42)  # mnist1d's own default seed; about 2 s
    assert [len(split) for split in splits(data)] == [3000, 1000, 1000]
    assert_stratified(data, (0.6, 0.2, 0.2))


# ------------------------------------------------------------------------------ file datasets


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_idx_datasets_pool_train_and_test(tmp_path: Path, name: str, gz: bool) -> None:
    root = write_mnist(tmp_path / name, gz=gz)
    data = load_dataset(name, root=root)
    assert data.name == name
    assert_well_formed(data, (1, 5, 5), 10)
    assert [len(split) for split in splits(data)] == [60, 20, 20]  # 8 + 2 of each digit
    assert_stratified(data, (0.6, 0.2, 0.2))
    assert_standardised(data)


def test_idx_datasets_are_found_in_torchvision_layout(tmp_path: Path) -> None:
    write_mnist(tmp_path / "MNIST" / "raw", gz=True)
    write_mnist(tmp_path / "FashionMNIST" / "raw")
    assert len(load_dataset("mnist", root=tmp_path).train) == 60
    assert len(load_dataset("fashion-mnist", root=str(tmp_path)).train) == 60


def test_idx_labels_keep_their_images(tmp_path: Path) -> None:
    """Each image's label survives parsing, pooling and splitting (images encode their label)."""
    root = write_mnist(tmp_path / "mnist")
    for prefix in ("train", "t10k"):
        labels = np.frombuffer((root / f"{prefix}-labels-idx1-ubyte").read_bytes()[8:], np.uint8)
        images = np.broadcast_to(labels[:, None, None] * 20, (len(labels), 5, 5)).astype(np.uint8)
        (root / f"{prefix}-images-idx3-ubyte").write_bytes(idx_bytes(np.ascontiguousarray(images)))
    data = load_dataset("mnist", root=root)
    for split in splits(data):
        pixel = split.x[:, 0, 0, 0].numpy()
        order = np.argsort(pixel, kind="stable")
        assert np.all(np.diff(split.y.numpy()[order]) >= 0)  # label increases with intensity


@pytest.mark.parametrize("protocol", [None, 5])
def test_cifar10_from_root_or_its_batches_subdirectory(
    tmp_path: Path, protocol: int | None
) -> None:
    write_cifar(tmp_path / "here", protocol=protocol)
    write_cifar(tmp_path / "nested" / "cifar-10-batches-py", protocol=protocol)
    for root in (tmp_path / "here", tmp_path / "nested"):
        data = load_dataset("cifar10", root=root, seed=5)
        assert data.name == "cifar10"
        assert_well_formed(data, (3, 32, 32), 10)
        assert sum(len(split) for split in splits(data)) == 120
        assert_stratified(data, (0.6, 0.2, 0.2))
        assert_standardised(data)  # per channel: three means and stds


def test_npz_three_dimensional_gets_one_channel(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1, 2, 3], 10)
    path = write_npz(tmp_path / "three.npz", x=rng.normal(size=(40, 6, 7)), y=y)
    data = load_dataset(str(path))
    assert_well_formed(data, (1, 6, 7), 4)
    assert data.name == f"npz:{path}"
    assert_stratified(data, (0.6, 0.2, 0.2))


def test_npz_four_dimensional_with_prefix(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    x = rng.integers(0, 9, size=(30, 2, 3, 4)).astype(np.int16)
    path = write_npz(tmp_path / "four.data", x=x, y=np.tile([7, 9], 15).astype(np.float32))
    data = load_dataset(f"npz:{path}", val_fraction=0.1, test_fraction=0.3)
    assert_well_formed(data, (2, 3, 4), 2)
    assert_stratified(data, (0.6, 0.1, 0.3))
    assert_standardised(data)


def test_npz_labels_map_to_sorted_order_and_splits_partition(id_npz: Path) -> None:
    raw = np.load(id_npz)["y"]
    data = load_dataset(f"npz:{id_npz}", seed=11)
    ids = [recover_ids(split) for split in splits(data)]
    assert sorted(np.concatenate(ids).tolist()) == list(range(len(raw)))  # a partition
    mapping = {-5: 0, 3: 1, 100: 2}
    for split, split_ids in zip(splits(data), ids, strict=True):
        assert split.y.tolist() == [mapping[int(v)] for v in raw[split_ids]]


def test_val_and_test_use_the_training_statistics(id_npz: Path) -> None:
    data = load_dataset(f"npz:{id_npz}", seed=4)
    raw_train = id_images(60)[recover_ids(data.train)]
    mean, std = raw_train.mean(), raw_train.std()
    for split in splits(data):
        raw = id_images(60)[recover_ids(split)]
        expected = torch.from_numpy((raw - mean) / std).float()
        torch.testing.assert_close(split.x, expected, atol=1e-5, rtol=1e-5)


# -------------------------------------------------------------------------- seeds and devices


def test_same_seed_same_tensors_other_seed_other_split(id_npz: Path) -> None:
    first, second = (load_dataset(f"npz:{id_npz}", seed=8) for _ in range(2))
    for a, b in zip(splits(first), splits(second), strict=True):
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    other = load_dataset(f"npz:{id_npz}", seed=9)
    assert set(recover_ids(other.test)) != set(recover_ids(first.test))


def test_seed_does_not_touch_global_rng(id_npz: Path) -> None:
    numpy_state = np.random.get_state()  # noqa: NPY002
    torch_state = torch.random.get_rng_state()
    load_dataset(f"npz:{id_npz}", seed=1)
    after = np.random.get_state()  # noqa: NPY002
    assert after[0] == numpy_state[0] and np.array_equal(after[1], numpy_state[1])
    assert torch.equal(torch.random.get_rng_state(), torch_state)


def test_device_accepts_a_torch_device(id_npz: Path) -> None:
    data = load_dataset(f"npz:{id_npz}", device=torch.device("cpu"))
    assert all(split.x.device.type == "cpu" for split in splits(data))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_device_is_a_dataset_error(id_npz: Path) -> None:
    with pytest.raises(DatasetError, match="must be an available device; got 'cuda'"):
        load_dataset(f"npz:{id_npz}", device="cuda")


# ------------------------------------------------------------------------------- error paths


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"val_fraction": 0.0}, r"'val_fraction' .* open interval \(0, 1\); got 0.0"),
        ({"val_fraction": 1.0}, r"'val_fraction' .* got 1.0"),
        ({"test_fraction": -0.1}, r"'test_fraction' .* got -0.1"),
        ({"test_fraction": float("nan")}, r"'test_fraction' .* got nan"),
        ({"test_fraction": "0.2"}, r"'test_fraction' .* got '0.2'"),
        ({"val_fraction": True}, r"'val_fraction' .* got True"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, r"sum to less than 1.*0.5 \+ 0.5 = 1.0"),
        ({"seed": -1}, r"'seed' .* non-negative int; got -1"),
        ({"seed": 1.5}, r"'seed' .* got 1.5"),
        ({"seed": True}, r"'seed' .* got True"),
        ({"limit": 0}, r"'limit' .* None or a positive int; got 0"),
        ({"limit": 2.5}, r"'limit' .* got 2.5"),
        ({"limit": False}, r"'limit' .* got False"),
        ({"limit": 1798}, r"'limit' .* at most the 1797 examples of 'digits'; got 1798"),
        ({"device": "nope"}, r"'device' .* torch device .*got 'nope'"),
        ({"device": None}, r"'device' .* got None"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(DatasetError, match=match):
        load_dataset("digits", **kwargs)


def test_mnist1d_argument_limits() -> None:
    with pytest.raises(DatasetError, match=r"below 2\*\*32; got seed=4294967296"):
        load_dataset("mnist1d", seed=2**32)
    with pytest.raises(DatasetError, match="at most the 5000 examples of 'mnist1d'; got 5001"):
        load_dataset("mnist1d", limit=5001)


def test_mnist1d_without_its_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)  # makes the import fail
    with pytest.raises(DatasetError, match=r"needs the mnist1d package \(pip install mnist1d\)"):
        load_dataset("mnist1d", limit=20)


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(
        DatasetError,
        match=r"Unknown dataset 'imagenet'; expected one of digits, "
        r"mnist1d, mnist, fashion-mnist, cifar10, 'npz:PATH'",
    ):
        load_dataset("imagenet")
    with pytest.raises(DatasetError, match="must be a string; got int"):
        load_dataset(3)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "cifar10"])
def test_file_datasets_need_an_existing_root(tmp_path: Path, name: str) -> None:
    with pytest.raises(  # flag and config key, not load_dataset's parameter (issue 20)
        DatasetError, match=rf"'{name}' dataset is read from local files: set the directory "
        r"holding them \(--data-root DIR, or data_root in the config's \[supernet\] section\)"
    ):  # fmt: skip
        load_dataset(name)
    with pytest.raises(DatasetError, match=rf"--data-root, data_root\) of the '{name}' dataset "
                       "must be an existing"):  # fmt: skip
        load_dataset(name, root=tmp_path / "absent")
    with pytest.raises(
        DatasetError, match=rf"'root' of the '{name}' dataset must be a path; got 3"
    ):
        load_dataset(name, root=3)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["digits", "mnist1d", "npz:/data/mine.npz"])
def test_a_data_root_is_refused_where_it_would_be_ignored(name: str) -> None:
    """Issue 20, item 8: `--data-root /nonexistent` with digits was accepted and ignored."""
    match = rf"'{name}' dataset reads no files from a data root, so --data-root .* must be left "
    with pytest.raises(DatasetError, match=match + r"unset for it; got '/nonexistent'"):
        load_dataset(name, root="/nonexistent")


def test_missing_idx_file_names_path_and_expected_files(mnist_dir: Path) -> None:
    (mnist_dir / "t10k-labels-idx1-ubyte").unlink()
    missing = str(mnist_dir / "t10k-labels-idx1-ubyte")
    with pytest.raises(
        DatasetError,
        match=rf"needs the files train-images-idx3-ubyte, .*"
        rf"\(each optionally .gz\).*missing {missing}\.$",
    ):
        load_dataset("mnist", root=mnist_dir)


def test_missing_cifar_batch_names_path_and_expected_files(cifar_dir: Path) -> None:
    (cifar_dir / "data_batch_3").unlink()
    with pytest.raises(
        DatasetError,
        match=rf"data_batch_1, .*test_batch in root .*cifar-10-"
        rf"batches-py.*missing {cifar_dir / 'data_batch_3'}\.$",
    ):
        load_dataset("cifar10", root=cifar_dir)


def corrupt_header(raw: bytes) -> bytes:
    return b"\x08\x03" + raw[2:]


@pytest.mark.parametrize(
    ("name", "mutate", "match"),
    [
        ("train-images-idx3-ubyte", corrupt_header, r"bad idx magic number.*got bytes 08 03 08 03"),
        ("train-labels-idx1-ubyte", lambda raw: b"\x00\x00\x07\x01" + raw[4:], "type code in"),
        (
            "train-images-idx3-ubyte",
            lambda raw: raw[:-3],
            r"wrong size: expected 2000 bytes .*got 1997",
        ),
        ("train-images-idx3-ubyte", lambda raw: raw + b"\x00", "expected 2000 bytes .*got 2001"),
        ("t10k-images-idx3-ubyte", lambda raw: raw[:9], "truncated idx header: expected 16 bytes"),
        ("t10k-labels-idx1-ubyte", lambda raw: b"", "got bytes none"),
        (
            "train-labels-idx1-ubyte",
            lambda raw: idx_bytes(np.zeros((80, 2), np.uint8)),
            r"expected an idx file of 1 dimensions; got shape \(80, 2\)",
        ),
        (
            "train-labels-idx1-ubyte",
            lambda raw: idx_bytes(np.zeros(79, np.uint8)),
            r"one label for each of the 80 examples of 'x'; got shape \(79,\)",
        ),
        (
            "t10k-labels-idx1-ubyte",
            lambda raw: idx_bytes(np.full(20, 10, np.uint8)),
            r"labels must lie in 0 \.\. 9; got 10",
        ),
        (
            "t10k-images-idx3-ubyte",
            lambda raw: idx_bytes(np.zeros((20, 4, 5), np.uint8)),
            r"train and test images must have the same shape; got \(1, 5, 5\) and \(1, 4, 5\)",
        ),
    ],
)
def test_malformed_idx_files(
    mnist_dir: Path, name: str, mutate: Callable[[bytes], bytes], match: str
) -> None:
    path = mnist_dir / name
    path.write_bytes(mutate(path.read_bytes()))
    with pytest.raises(DatasetError, match=match):
        load_dataset("mnist", root=mnist_dir)


def test_corrupt_gzip_is_a_dataset_error(tmp_path: Path) -> None:
    root = write_mnist(tmp_path, gz=True)
    path = root / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:30])
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte.gz: cannot read the idx file"):
        load_dataset("fashion-mnist", root=root)
    path.write_bytes(b"not gzip at all")
    with pytest.raises(DatasetError, match="cannot read the idx file"):
        load_dataset("fashion-mnist", root=root)


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("pwned",))


def batch(data: object, labels: object) -> bytes:
    return pickle.dumps({b"data": data, b"labels": labels})


@pytest.mark.parametrize(
    ("content", "match"),
    [
        pytest.param(
            pickle.dumps({b"labels": [0]}),
            r"keys b'data' and b'labels'; got \[\"b'labels'\"\]",
            id="missing-key",
        ),
        pytest.param(pickle.dumps([1, 2, 3]), r"must be a dict .*; got list", id="not-a-dict"),
        pytest.param(
            b"\x80\x04garbage",
            r"cannot read a CIFAR-10 python batch pickle \(UnpicklingError",
            id="garbage",
        ),
        pytest.param(b"", r"cannot read a CIFAR-10 python batch pickle \(EOFError", id="empty"),
        pytest.param(
            batch(_Evil(), []), "global builtins.print is not allowed", id="forbidden-global"
        ),
        pytest.param(batch([[1, 2], [3]], [0, 1]), r"b'data' is not an array", id="ragged-data"),
        pytest.param(
            batch(np.zeros((2, 100), np.uint8), [0, 1]),
            r"b'data' must be an N x 3072 array; got shape \(2, 100\)",
            id="data-shape",
        ),
        pytest.param(
            batch(np.zeros((2, 3072), np.uint8), [[0], [1, 2]]),
            r"b'labels' is not a list of integers",
            id="ragged-labels",
        ),
        pytest.param(
            batch(np.zeros((2, 3072), np.uint8), [0, 1, 2]),
            r"one label for each of the 2 examples of 'x'; got shape \(3,\)",
            id="labels-length",
        ),
        pytest.param(
            batch(np.zeros((2, 3072), np.uint8), [0.5, 1]),
            "must hold integer labels; got non-integral values such as 0.5",
            id="float-labels",
        ),
        pytest.param(
            batch(np.zeros((1, 3072), np.uint8), [-1]),
            r"labels must lie in 0 \.\. 9; got -1",
            id="label-range",
        ),
    ],
)
def test_malformed_cifar_batches(cifar_dir: Path, content: bytes, match: str) -> None:
    (cifar_dir / "test_batch").write_bytes(content)
    with pytest.raises(DatasetError, match=match):
        load_dataset("cifar10", root=cifar_dir)


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        (
            {"x": np.zeros((10, 4)), "y": np.arange(10) % 2},
            r"N x C x H x W or N x H x W.*\(10, 4\)",
        ),
        ({"x": np.zeros((4, 1, 1, 2, 2)), "y": np.arange(4) % 2}, r"got shape \(4, 1, 1, 2, 2\)"),
        (
            {"x": np.zeros((4, 0, 2)), "y": np.arange(4) % 2},
            r"every image dimension of 'x' must be positive; got shape \(4, 0, 2\)",
        ),
        (
            {"x": np.zeros((4, 2, 2), complex), "y": np.arange(4) % 2},
            "real numbers; got dtype complex128",
        ),
        (
            {"x": np.zeros((4, 2, 2)), "y": np.arange(5) % 2},
            r"each of the 4 examples of 'x'; got shape \(5,\)",
        ),
        ({"x": np.zeros((4, 2, 2)), "y": np.zeros((4, 1))}, r"1-D array .*got shape \(4, 1\)"),
        (
            {"x": np.zeros((4, 2, 2)), "y": np.array([0, 1, 0.5, 1])},
            "integer labels; got non-integral values such as 0.5",
        ),
        (
            {"x": np.zeros((4, 2, 2)), "y": np.array([0, 1, np.nan, 1])},
            "non-integral values such as nan",
        ),
        (
            {"x": np.zeros((4, 2, 2)), "y": np.array(["a", "b", "a", "b"])},
            "integer labels; got dtype <U1",
        ),
        ({"x": np.zeros((4, 2, 2)), "y": np.array([0, 1, 1e19, 1])}, "must fit in int64"),
        (
            {"x": np.zeros((4, 2, 2)), "y": np.array([0, 1, 2**63, 1], np.uint64)},
            "must fit in int64",
        ),
        (
            {"x": np.full((4, 2, 2), np.nan), "y": np.arange(4) % 2},
            "must be finite; got 16 NaN or infinite",
        ),
        (
            {"x": np.array([np.inf, 0, 0, 0]).reshape(4, 1, 1), "y": np.arange(4) % 2},
            "got 1 NaN or infinite",
        ),
        (
            {"x": np.zeros((6, 2, 2)), "y": np.full(6, 7)},
            r"at least 2 distinct labels; got 1 \(\[7\]\)",
        ),
        ({"x": np.zeros((0, 2, 2)), "y": np.zeros(0, int)}, "at least 2 distinct labels; got 0"),
        (
            {"x": np.zeros((4, 2, 2))},
            r"must hold the arrays 'x' and 'y'; missing \['y'\], found \['x'\]",
        ),
        (
            {"x": np.full((6, 1, 1), 1.5e308), "y": np.arange(6) % 2},
            "standardised inputs are not finite",
        ),
    ],
)
def test_malformed_npz_arrays(tmp_path: Path, arrays: dict[str, np.ndarray], match: str) -> None:
    path = write_npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DatasetError, match=match):
        load_dataset(f"npz:{path}")


def test_malformed_npz_files(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"PK\x03\x04 this is not a zip")
    with pytest.raises(
        DatasetError, match=r"garbage.npz: cannot read the .npz archive \(BadZipFile"
    ):
        load_dataset(str(garbage))
    single = tmp_path / "single.npz"
    with single.open("wb") as handle:
        np.save(handle, np.zeros(3))
    with pytest.raises(DatasetError, match="expected an .npz archive with 'x' and 'y'; got a .npy"):
        load_dataset(str(single))
    objects = write_npz(tmp_path / "objects.npz", x=np.array([None, 1], dtype=object), y=[0, 1])
    with pytest.raises(
        DatasetError, match=r"objects.npz: cannot read the .npz archive \(ValueError: Object arrays"
    ):
        load_dataset(str(objects))
    with pytest.raises(DatasetError, match=r"No .npz file at '.*absent.npz'"):
        load_dataset(str(tmp_path / "absent.npz"))
    with pytest.raises(DatasetError, match="No .npz file at"):
        load_dataset(f"npz:{tmp_path}")  # a directory


def test_a_class_without_a_training_example(tmp_path: Path) -> None:
    y = np.array([0] * 10 + [1] * 10 + [7])
    path = write_npz(tmp_path / "rare.npz", x=np.arange(21.0).reshape(21, 1, 1), y=y)
    with pytest.raises(
        DatasetError,
        match=r"leave class\(es\) \[7\] with no training example; "
        r"examples per class: 0: 10, 1: 10, 7: 1\.",
    ):
        load_dataset(str(path), val_fraction=0.45, test_fraction=0.45)


def test_a_split_without_examples(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "tiny.npz", x=np.arange(4.0).reshape(4, 1, 1), y=[0, 0, 1, 1])
    with pytest.raises(DatasetError, match=r"split sizes \(train, val, test\) = \(3, 1, 0\)"):
        load_dataset(str(path), val_fraction=0.1, test_fraction=0.1)


def test_limit_can_starve_a_class() -> None:
    with pytest.raises(DatasetError, match=r"no training example; examples per class: 0: 1, 1: 1"):
        load_dataset("digits", limit=10)


# --------------------------------------------------------------------------- property: npz fuzz

X_DTYPES = ["f8", "f4", "f2", "i1", "u1", "i8", "?", "f8", "f4", "u1", "c8", "U2"]
Y_DTYPES = ["i8", "i1", "u8", "i8", "f8", "f4", "?", "U1"]


@st.composite
def npz_contents(draw: st.DrawFn) -> dict[str, np.ndarray]:
    """Random ``x`` / ``y`` pairs: often malformed (shapes, dtypes, values, keys), often not."""
    n = draw(st.integers(0, 30))
    if draw(st.sampled_from([True, True, True, False])):  # N x H x W or N x C x H x W
        x_shape = (n, *draw(st.lists(st.integers(1, 3), min_size=2, max_size=3)))
    else:
        x_shape = tuple(draw(st.lists(st.integers(0, 3), max_size=5)))
    x = draw(hnp.arrays(st.sampled_from(X_DTYPES).map(np.dtype), x_shape))
    y_dtype = np.dtype(draw(st.sampled_from(Y_DTYPES)))
    y_shape = draw(
        st.one_of(
            st.just((n,)),
            st.just((n,)),
            hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=13),
        )
    )
    labels = {"i": st.integers(-1, 2), "u": st.integers(0, 2)}.get(y_dtype.kind)
    y = draw(hnp.arrays(y_dtype, y_shape, elements=labels, fill=st.nothing()))
    return {"x": x, draw(st.sampled_from(["y", "y", "y", "label"])): y}


@settings(max_examples=120, deadline=None)
@given(contents=npz_contents(), seed=st.integers(0, 3))
def test_npz_loader_raises_only_dataset_error(
    tmp_path_factory: pytest.TempPathFactory, contents: dict[str, np.ndarray], seed: int
) -> None:
    path = write_npz(tmp_path_factory.mktemp("fuzz") / "data.npz", **contents)
    try:
        data = load_dataset(f"npz:{path}", seed=seed)
    except DatasetError:
        return
    assert_well_formed(data, data.input_shape, data.num_classes)
