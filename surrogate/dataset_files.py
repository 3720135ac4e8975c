"""Readers of the dataset files on disk: MNIST-style idx files (optionally gzipped), CIFAR-10
python batch pickles (through an unpickler that admits only the numpy globals they use), and
``.npz`` archives (pickles refused). They return raw arrays and raise
:class:`~surrogate.errors.DatasetError` naming the file; :mod:`surrogate.data` checks the arrays
and splits them. Nothing is ever downloaded.
"""

from __future__ import annotations

import gzip
import importlib
import math
import pickle
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from surrogate.errors import DatasetError

__all__ = [
    "CIFAR_FILES",
    "CIFAR_SHAPE",
    "IDX_FILES",
    "find_files",
    "one_line",
    "parse_idx",
    "read_cifar_batch",
    "read_idx",
    "read_npz",
]

IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
CIFAR_FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")
CIFAR_SHAPE = (3, 32, 32)
# idx type codes (third byte of the magic number) -> big-endian numpy dtypes
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
# (module, name) globals that CIFAR-10 python pickles reference -> where they live now
_PICKLE_GLOBALS = {
    ("_codecs", "encode"): "_codecs",
    ("numpy", "ndarray"): "numpy",
    ("numpy", "dtype"): "numpy",
    ("numpy.core.multiarray", "_reconstruct"): "numpy._core.multiarray",
    ("numpy._core.multiarray", "_reconstruct"): "numpy._core.multiarray",
    ("numpy.core.multiarray", "scalar"): "numpy._core.multiarray",
    ("numpy._core.multiarray", "scalar"): "numpy._core.multiarray",
    ("numpy.core.numeric", "_frombuffer"): "numpy._core.numeric",
    ("numpy._core.numeric", "_frombuffer"): "numpy._core.numeric",
}


def _find_file(directory: Path, name: str, *, gz: bool) -> Path | None:
    """``directory/name`` (or, with ``gz``, ``directory/name.gz``) if it is a file."""
    candidates = (directory / name, directory / f"{name}.gz") if gz else (directory / name,)
    return next((path for path in candidates if path.is_file()), None)


def find_files(
    root: Path, subdirs: Sequence[str], names: Sequence[str], dataset: str, *, gz: bool
) -> list[Path]:
    """The files ``names`` from ``root``, or from the first ``root/subdir`` that has them all."""
    for directory in (root, *(root / sub for sub in subdirs)):
        found = [_find_file(directory, name, gz=gz) for name in names]
        if all(path is not None for path in found):
            return [path for path in found if path is not None]
    missing = [str(root / name) for name in names if _find_file(root, name, gz=gz) is None]
    also = ", ".join(repr(str(root / sub)) for sub in subdirs)
    raise DatasetError(
        f"The {dataset!r} dataset needs the files {', '.join(names)}"
        f"{' (each optionally .gz)' if gz else ''} in root (or in {also}); "
        f"missing {', '.join(missing)}."
    )


def parse_idx(raw: bytes, source: str) -> np.ndarray:
    """Decode an idx file: magic ``00 00 TT DD``, ``DD`` big-endian uint32 dims, the payload."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        codes = ", ".join(f"0x{code:02X}" for code in _IDX_DTYPES)
        raise DatasetError(
            f"{source}: bad idx magic number: expected two zero bytes, a type code in "
            f"({codes}) and the number of dimensions; got bytes {raw[:4].hex(' ') or 'none'}."
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(
            f"{source}: truncated idx header: expected {header} bytes for {ndim} dimensions; got "
            f"{len(raw)}."
        )
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = math.prod(dims) * dtype.itemsize
    if len(raw) - header != expected:
        raise DatasetError(
            f"{source}: idx payload of the wrong size: expected {expected} bytes for shape "
            f"{dims} of {dtype.name}; got {len(raw) - header}."
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read an idx file (gzip-compressed if it ends in ``.gz``) of ``ndim`` dimensions."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                raw = handle.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:
        raise DatasetError(f"{path}: cannot read the idx file ({err}).") from err
    array = parse_idx(raw, str(path))
    if array.ndim != ndim:
        raise DatasetError(
            f"{path}: expected an idx file of {ndim} dimensions; got shape {array.shape}."
        )
    return array


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles only the plain containers and numpy arrays of CIFAR-10 python batches."""

    def find_class(self, module: str, name: str) -> Any:
        home = _PICKLE_GLOBALS.get((module, name))
        if home is None:
            raise pickle.UnpicklingError(
                f"global {module}.{name} is not allowed in a CIFAR-10 batch"
            )
        return getattr(importlib.import_module(home), name)


def one_line(err: BaseException) -> str:
    """A foreign error's message on one line (numpy quotes file headers, newlines and all)."""
    return " ".join(str(err).split())[:300]


def _unpickle(path: Path) -> Any:
    try:
        with path.open("rb") as handle:
            return _CifarUnpickler(handle, encoding="bytes").load()
    except Exception as err:  # a corrupt pickle can raise almost any exception type
        raise DatasetError(
            f"{path}: cannot read a CIFAR-10 python batch pickle ({type(err).__name__}: "
            f"{one_line(err)})."
        ) from err


def _batch_item(batch: Any, key: str, path: Path) -> Any:
    if isinstance(batch, dict):
        for candidate in (key.encode(), key):
            if candidate in batch:
                return batch[candidate]
    keys = sorted(map(repr, batch)) if isinstance(batch, dict) else type(batch).__name__
    raise DatasetError(
        f"{path}: a CIFAR-10 batch must be a dict with keys b'data' and b'labels'; got {keys}."
    )


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The images ``(N, 3, 32, 32)`` and labels ``(N,)`` of a CIFAR-10 python batch, unchecked
    beyond their shapes."""
    batch = _unpickle(path)
    data, labels = _batch_item(batch, "data", path), _batch_item(batch, "labels", path)
    try:
        data = np.asarray(data)
    except (TypeError, ValueError) as err:
        raise DatasetError(f"{path}: b'data' is not an array ({err}).") from err
    size = math.prod(CIFAR_SHAPE)
    if data.ndim != 2 or data.shape[1] != size:
        raise DatasetError(
            f"{path}: b'data' must be an N x {size} array; got shape {tuple(data.shape)}."
        )
    try:
        labels = np.asarray(labels)
    except (TypeError, ValueError) as err:
        raise DatasetError(f"{path}: b'labels' is not a list of integers ({err}).") from err
    return data.reshape(-1, *CIFAR_SHAPE), labels


def read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The arrays ``x`` and ``y`` of the ``.npz`` archive at ``path`` (pickles refused)."""
    try:
        with path.open("rb") as handle:  # ours to close, even when numpy fails half-way
            archive = np.load(handle, allow_pickle=False)
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise DatasetError(
                    f"{path}: expected an .npz archive with 'x' and 'y'; got a .npy array."
                )
            missing = [key for key in ("x", "y") if key not in archive.files]
            if missing:
                raise DatasetError(
                    f"{path}: an .npz dataset must hold the arrays 'x' and 'y'; missing "
                    f"{missing}, found {sorted(archive.files)}."
                )
            return archive["x"], archive["y"]
    except DatasetError:
        raise
    except Exception as err:  # zipfile, pickle refusal, OSError, bad headers: all malformed
        raise DatasetError(
            f"{path}: cannot read the .npz archive ({type(err).__name__}: {one_line(err)})."
        ) from err
