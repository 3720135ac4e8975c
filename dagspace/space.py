"""The enumerated space: stacked arrays of every distinct pruned cell, saved as one ``.npz``."""

from __future__ import annotations

import os
import time
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dagspace.cell import INPUT, OUTPUT, CellSpec
from dagspace.enumeration import (
    MAX_ENUMERATION_VERTICES,
    check_ops,
    enumerate_topologies,
    labelled_cells,
)
from dagspace.errors import CellNotInSpaceError, InvalidCellError, InvalidSpaceError
from dagspace.features import FEATURES, compute_features, num_vertices, unique_topologies
from dagspace.hashing import canonical_hash
from dagspace.io import atomic_write

__all__ = ["PAD", "Space", "enumerate_space"]

PAD = -1  # operation code of a padding vertex
_FORMAT = "dagrank-space-1"
_NPZ_MAGIC, _NPY_MAGIC = b"PK\x03\x04", b"\x93NUMPY"


@dataclass(frozen=True, eq=False)
class Space:
    """Every distinct pruned cell of a space, as stacked read-only arrays.

    Attributes:
        matrices: ``(N, V, V)`` uint8. A cell on ``v <= V`` vertices occupies rows and columns
            ``0..v-1`` (its output at ``v - 1``); the rest is zero padding.
        ops: ``(N, V)`` int8 codes into ``vocabulary`` (``PAD = -1`` on padding vertices), or
            ``None`` for an unlabelled (topology-only) space.
        vocabulary: ``("input", "output", *interior ops)`` for a labelled space, else ``None``.
        hashes: ``(N,)`` canonical hashes (:func:`dagspace.canonical_hash`), all distinct.
        features: ``(N, F)`` float64 graph features, named by ``feature_names``.
        max_vertices, max_edges: the enumeration's bounds (``max_edges`` may be ``None``).
    """

    matrices: np.ndarray
    ops: np.ndarray | None
    vocabulary: tuple[str, ...] | None
    hashes: np.ndarray
    features: np.ndarray
    feature_names: tuple[str, ...]
    max_vertices: int
    max_edges: int | None = None
    _index: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _cache: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        n = len(self.hashes)
        if self.matrices.shape != (n, self.max_vertices, self.max_vertices):
            raise InvalidSpaceError(
                f"A space's 'matrices' must have shape ({n}, {self.max_vertices}, "
                f"{self.max_vertices}); got {self.matrices.shape}."
            )
        if self.features.shape != (n, len(self.feature_names)):
            raise InvalidSpaceError(
                f"A space's 'features' must have shape ({n}, {len(self.feature_names)}); "
                f"got {self.features.shape}."
            )
        if (self.ops is None) != (self.vocabulary is None) or (
            self.ops is not None and self.ops.shape != (n, self.max_vertices)
        ):
            raise InvalidSpaceError(
                "A labelled space needs 'ops' of shape (N, V) and a 'vocabulary'; an unlabelled "
                f"one neither. Got ops {None if self.ops is None else self.ops.shape}, "
                f"vocabulary {self.vocabulary}."
            )
        for array in (self.matrices, self.ops, self.hashes, self.features):
            if array is not None:
                array.flags.writeable = False

    # -- container protocol ------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.hashes)

    def __getitem__(self, index: int) -> CellSpec:
        if not isinstance(index, (int, np.integer)):
            raise TypeError(f"A space is indexed by an int; got {type(index).__name__}.")
        if not -len(self) <= index < len(self):
            raise IndexError(f"Cell index {index} out of range for a space of {len(self)} cells.")
        v = int(self._vertex_counts()[index])
        matrix = self.matrices[index, :v, :v]
        if self.ops is None:
            return CellSpec(matrix)
        return CellSpec(matrix, [self.vocabulary[c] for c in self.ops[index, :v]])

    def __iter__(self) -> Iterator[CellSpec]:
        return (self[i] for i in range(len(self)))

    def _vertex_counts(self) -> np.ndarray:
        """The vertex-count column, computed once (indexing stays O(1) per cell)."""
        if "num_vertices" not in self._cache:
            self._cache["num_vertices"] = self.num_vertices
        return self._cache["num_vertices"]

    def nasbench101_hashes(self) -> np.ndarray:
        """``(N,)`` every cell's NAS-Bench-101 module hash (:func:`dagspace.nasbench101_hash`),
        computed once per space and kept with it (:meth:`save` writes it once computed).

        Raises:
            InvalidSpaceError: the space is unlabelled or has operations NAS-Bench-101 lacks.
        """
        if "nasbench101_hashes" not in self._cache:
            from dagspace.nasbench import nasbench101_hashes, nasbench101_labels

            if self.ops is None:
                raise InvalidSpaceError(
                    "NAS-Bench-101 hashes need a labelled space (ops); this one is unlabelled."
                )
            labels = nasbench101_labels(self.ops, self.vocabulary)
            hashes = nasbench101_hashes(self.matrices, labels, self._vertex_counts())
            hashes.flags.writeable = False
            self._cache["nasbench101_hashes"] = hashes
        return self._cache["nasbench101_hashes"]

    def subset(self, indices: Sequence[int] | np.ndarray) -> Space:
        """The space restricted to the cells ``indices`` (distinct, in the order given).

        The result is a space like any other (its own indices ``0..n-1``; it saves and loads);
        the enumeration bounds are kept, so it describes a part of the same space.

        Raises:
            InvalidSpaceError: an index is not an int in ``[0, N)`` or repeats.
        """
        index = np.asarray(indices)
        if index.ndim != 1 or (index.size and index.dtype.kind not in "iu"):
            raise InvalidSpaceError(
                f"The 'indices' of Space.subset must be a 1-D sequence of ints; got an array "
                f"of shape {index.shape} and dtype {index.dtype}."
            )
        index = index.astype(np.int64)
        bad = index[(index < 0) | (index >= len(self))]
        if bad.size:
            raise InvalidSpaceError(
                f"The 'indices' of Space.subset must lie in [0, {len(self)}); got {int(bad[0])}."
            )
        if len(np.unique(index)) != len(index):
            raise InvalidSpaceError("The 'indices' of Space.subset must be distinct; got repeats.")
        part = Space(
            matrices=self.matrices[index],
            ops=None if self.ops is None else self.ops[index],
            vocabulary=self.vocabulary,
            hashes=self.hashes[index],
            features=self.features[index],
            feature_names=self.feature_names,
            max_vertices=self.max_vertices,
            max_edges=self.max_edges,
        )
        for name, column in self._cache.items():
            part._cache[name] = column[index]
        return part

    def __contains__(self, spec: object) -> bool:
        return isinstance(spec, CellSpec) and self.find(spec) is not None

    @property
    def is_labelled(self) -> bool:
        return self.ops is not None

    @property
    def op_names(self) -> tuple[str, ...] | None:
        """The interior operations of a labelled space, in the order given at enumeration."""
        return None if self.vocabulary is None else self.vocabulary[2:]

    @property
    def num_vertices(self) -> np.ndarray:
        """``(N,)`` int: each cell's vertex count."""
        return self.feature("num_vertices").astype(np.int64)

    def feature(self, name: str) -> np.ndarray:
        """One feature column ``(N,)``: a stored one, or an operation-aware one
        (:data:`dagspace.op_features.OP_FEATURES`) of a labelled space, computed once."""
        if name not in self.feature_names and self.ops is not None:
            from dagspace.op_features import OP_FEATURES, compute_op_feature

            if name in OP_FEATURES:
                key = f"feature:{name}"
                if key not in self._cache:
                    column = compute_op_feature(name, self.matrices, self.ops, self.vocabulary)
                    column.flags.writeable = False
                    self._cache[key] = column
                return self._cache[key]
        if name not in self.feature_names:
            raise InvalidSpaceError(
                f"Unknown feature {name!r}; this space has {list(self.feature_names)}."
            )
        return self.features[:, self.feature_names.index(name)]

    # -- lookup ---------------------------------------------------------------------------------
    def find(self, spec: CellSpec) -> int | None:
        """The index of the cell isomorphic to ``spec``, or ``None``."""
        if spec.is_labelled != self.is_labelled:
            return None
        try:
            index = int(self.find_hashes([canonical_hash(spec)])[0])
        except InvalidCellError:
            return None
        return None if index < 0 else index

    def find_hashes(self, hashes: Sequence[str]) -> np.ndarray:
        """``(n,)`` int64: the index of the cell of each canonical hash, ``-1`` where the space
        has none (the hash -> index map is built on first use)."""
        if not self._index:
            self._index.update((h, i) for i, h in enumerate(self.hashes.tolist()))
        return np.fromiter((self._index.get(h, -1) for h in hashes), dtype=np.int64)

    def index_of(self, spec: CellSpec) -> int:
        """The index of the cell isomorphic to ``spec``.

        Raises:
            CellNotInSpaceError: no cell of the space is isomorphic to ``spec``.
        """
        index = self.find(spec)
        if index is None:
            raise CellNotInSpaceError(
                f"The cell {spec!r} (after pruning) is not in this space of {len(self)} cells "
                f"(at most {self.max_vertices} vertices, max_edges={self.max_edges}, "
                f"ops={list(self.op_names) if self.op_names else None})."
            )
        return index

    # -- persistence ----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the space to one compressed ``.npz`` file, atomically (temp file, fsync,
        rename). :meth:`load` reads compressed and uncompressed files alike."""
        path = Path(path)
        arrays = {
            "format": np.asarray(_FORMAT),
            "matrices": self.matrices,
            "hashes": self.hashes.astype("S32"),
            "features": self.features,
            "feature_names": np.asarray(self.feature_names),
            "max_vertices": np.asarray(self.max_vertices),
            "max_edges": np.asarray(-1 if self.max_edges is None else self.max_edges),
        }
        if self.ops is not None:
            arrays["ops"] = self.ops
            arrays["vocabulary"] = np.asarray(self.vocabulary)
        if "nasbench101_hashes" in self._cache:  # an optional column, once computed
            arrays["nasbench101_hashes"] = self._cache["nasbench101_hashes"].astype("S32")
        with atomic_write(path, "wb") as handle:
            np.savez_compressed(handle, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Space:
        """Read a space written by :meth:`save`.

        Raises:
            InvalidSpaceError: the file is missing, not a space file, or inconsistent.
        """
        path = Path(path)
        try:
            with open(path, "rb") as handle:
                head = handle.read(len(_NPY_MAGIC))
        except FileNotFoundError:
            raise InvalidSpaceError(f"No space file at {path}.") from None
        except IsADirectoryError:
            raise InvalidSpaceError(f"{path} is a directory, not a space file.") from None
        if not (head.startswith(_NPZ_MAGIC) or head == _NPY_MAGIC):
            raise InvalidSpaceError(  # numpy would call any other file "pickled (object) data"
                f"{path} is not a space file: a .npz archive starts with {_NPZ_MAGIC!r}, this "
                f"file with {head[:4]!r}" + (" (it is empty)." if not head else ".")
            )
        try:
            data = np.load(path, allow_pickle=False)
        except Exception as err:  # numpy's header parser raises what its tokenizer raises
            detail = " ".join(str(err).split())
            raise InvalidSpaceError(f"{path} is not a readable .npz space file: {detail}") from None
        if not isinstance(data, np.lib.npyio.NpzFile):  # a lone .npy array
            raise InvalidSpaceError(
                f"{path} is not a dagrank space file: expected an .npz archive, got a single "
                f"array of shape {getattr(data, 'shape', '?')}."
            )
        try:
            with data:
                if "format" not in data.files or str(data["format"]) != _FORMAT:
                    raise InvalidSpaceError(
                        f"{path} is not a dagrank space file (expected format {_FORMAT!r})."
                    )
                fields = {name: data[name] for name in data.files}
        except InvalidSpaceError:
            raise
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
            detail = " ".join(str(err).split())
            raise InvalidSpaceError(f"{path} is not a readable .npz space file: {detail}") from None
        _check_arrays(path, fields)
        try:
            max_edges = int(fields["max_edges"])
            space = cls(
                matrices=fields["matrices"].astype(np.uint8, copy=False),
                ops=fields["ops"].astype(np.int8, copy=False) if "ops" in fields else None,
                vocabulary=tuple(fields["vocabulary"].tolist()) if "vocabulary" in fields else None,
                hashes=fields["hashes"].astype("U32"),
                features=fields["features"].astype(np.float64, copy=False),
                feature_names=tuple(fields["feature_names"].tolist()),
                max_vertices=int(fields["max_vertices"]),
                max_edges=None if max_edges < 0 else max_edges,
            )
            if "nasbench101_hashes" in fields:
                space._cache["nasbench101_hashes"] = _optional_column(
                    fields["nasbench101_hashes"].astype("U32"), len(space), "nasbench101_hashes"
                )
            return space
        except KeyError as err:
            raise InvalidSpaceError(f"{path} lacks the array {err} of a space file.") from None
        except (TypeError, ValueError) as err:
            if isinstance(err, InvalidSpaceError):
                raise InvalidSpaceError(f"{path}: {err}") from None
            raise InvalidSpaceError(f"{path} holds malformed space arrays: {err}") from None

    # -- export ---------------------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """One row per cell: ``hash``, the features, and (labelled) the interior ``ops``."""
        frame = pd.DataFrame(self.features, columns=list(self.feature_names))
        frame.insert(0, "hash", self.hashes)
        frame["edges"] = self._edge_strings()
        if self.ops is not None:
            names = np.asarray([*self.vocabulary, ""], dtype=object)  # PAD -> ""
            interior = names[self.ops[:, 1:]]  # (N, V-1)
            frame["ops"] = [
                ",".join(op for op in row if op and op != OUTPUT) for row in interior.tolist()
            ]
        return frame

    def _edge_strings(self) -> list[str]:
        """Each cell's matrix as its rows joined by '/' ("0110/0001/0001/0000")."""
        distinct, inverse = unique_topologies(self.matrices)
        sizes = num_vertices(distinct).astype(int)
        text = [
            "/".join("".join(map(str, row[:v])) for row in m[:v])
            for m, v in zip(distinct.tolist(), sizes.tolist(), strict=True)
        ]
        return np.asarray(text, dtype=object)[inverse].tolist()


def _optional_column(column: np.ndarray, n: int, name: str) -> np.ndarray:
    if column.shape != (n,):
        raise InvalidSpaceError(f"A space's {name!r} must have shape ({n},); got {column.shape}.")
    column.flags.writeable = False
    return column


def _check_arrays(path: Path, fields: dict[str, np.ndarray]) -> None:
    """Refuse arrays that do not describe distinct cells: matrices that are not strictly
    upper-triangular 0/1 (a lower-triangular entry, a self-loop or a cycle), operation codes
    outside the vocabulary, repeated hashes, features that are not finite. Vectorised; the
    first offending cell is named. (Shapes are checked by :class:`Space` itself.)"""

    def fail(what: str) -> None:
        raise InvalidSpaceError(f"{path} does not hold a valid space: {what}.")

    matrices = fields.get("matrices")
    if matrices is not None and matrices.ndim == 3 and matrices.size:
        if matrices.dtype.kind not in "biu":
            fail(f"the matrices must be 0/1 integers; got dtype {matrices.dtype}")
        if matrices.max() > 1 or matrices.min() < 0:  # the fast test first, then the culprit
            i, r, c = np.argwhere((matrices != 0) & (matrices != 1))[0]
            fail(f"cell {i} holds {matrices[i, r, c]} at row {r}, column {c}; expected 0 or 1")
        v = matrices.shape[1]
        lower = np.tril(np.ones((v, v), dtype=bool))
        if np.logical_and(matrices, lower).any():
            i, r, c = np.argwhere(np.logical_and(matrices, lower))[0]
            fail(
                f"cell {i} has an edge {r} -> {c} on or below the diagonal (a self-loop, a "
                f"lower-triangular or cyclic matrix); expected strictly upper-triangular matrices"
            )
    ops, vocabulary = fields.get("ops"), fields.get("vocabulary")
    if ops is not None and vocabulary is not None and ops.size:
        if ops.dtype.kind not in "iu":
            fail(f"the operation codes must be integers; got dtype {ops.dtype}")
        bad = np.argwhere((ops < PAD) | (ops >= len(vocabulary)))
        if len(bad):
            i, v = bad[0]
            fail(
                f"cell {i} has operation code {ops[i, v]} at vertex {v}; expected -1 (padding) "
                f"to {len(vocabulary) - 1} (the vocabulary's {len(vocabulary)} names)"
            )
    hashes = fields.get("hashes")
    if hashes is not None and hashes.ndim == 1 and len(hashes) > 1:
        pair = _repeated_hash(hashes)
        if pair is not None:
            i, j = pair
            value = hashes[i].decode() if isinstance(hashes[i], bytes) else hashes[i]
            fail(f"cells {i} and {j} have the same hash {value}; expected distinct cells")
    features = fields.get("features")
    if features is not None and features.dtype.kind in "fiu" and features.size:
        bad = np.argwhere(~np.isfinite(features.astype(np.float64, copy=False)))
        if len(bad):
            i, f = bad[0]
            names = fields.get("feature_names")
            name = str(names[f]) if names is not None and f < len(names) else f"#{f}"
            fail(f"the feature {name!r} of cell {i} is {features[i, f]}; expected finite values")


def _repeated_hash(hashes: np.ndarray) -> tuple[int, int] | None:
    """The first two indices with the same hash, or ``None``: sorted by an 8-byte prefix
    (a uint64 sort, fast), then the few prefixes that repeat compared in full."""
    try:
        raw = np.ascontiguousarray(hashes.astype("S32"))
    except (UnicodeError, ValueError):  # not ASCII: no canonical hash, but say where it repeats
        text = hashes.astype(str)
        values, counts = np.unique(text, return_counts=True)
        if not (counts > 1).any():
            return None
        same = np.flatnonzero(text == values[np.argmax(counts > 1)])
        return int(same[0]), int(same[1])
    padded = np.zeros((len(raw), 8), dtype=np.uint8)
    width = min(8, raw.dtype.itemsize)
    padded[:, :width] = raw.view(np.uint8).reshape(len(raw), -1)[:, :width]
    prefix = padded.view(np.uint64).ravel()
    order = np.argsort(prefix, kind="stable")
    ties = prefix[order][1:] == prefix[order][:-1]
    if not ties.any():
        return None
    suspects = np.unique(np.concatenate([order[1:][ties], order[:-1][ties]]))
    values, counts = np.unique(raw[suspects], return_counts=True)
    if not (counts > 1).any():
        return None
    same = np.sort(suspects[raw[suspects] == values[np.argmax(counts > 1)]])
    return int(same[0]), int(same[1])


def _check_bounds(num_vertices: object, max_edges: object) -> None:
    if not isinstance(num_vertices, int) or not 2 <= num_vertices <= MAX_ENUMERATION_VERTICES:
        raise InvalidSpaceError(
            f"The 'num_vertices' of enumerate_space must be an int in [2, "
            f"{MAX_ENUMERATION_VERTICES}]; got {num_vertices!r}."
        )
    if max_edges is not None and (not isinstance(max_edges, int) or max_edges < 1):
        raise InvalidSpaceError(
            f"The 'max_edges' of enumerate_space must be a positive int or None; got {max_edges!r}."
        )


def enumerate_space(
    num_vertices: int,
    ops: Sequence[str] | None = None,
    max_edges: int | None = None,
    features: Sequence[str] = tuple(FEATURES),
) -> Space:
    """Every distinct pruned cell on at most ``num_vertices`` vertices (see
    :mod:`dagspace.enumeration` for the algorithm and the known counts).

    Args:
        num_vertices: the largest cell, input and output included (2..7).
        ops: interior operation names for a labelled space, or ``None`` for topologies only.
        max_edges: keep cells with at most this many edges (NAS-Bench-101 uses 9).
        features: the graph features to compute (names of :data:`dagspace.FEATURES`);
            ``num_vertices`` is always included.
    """
    _check_bounds(num_vertices, max_edges)
    ops = check_ops(ops)
    names = tuple(dict.fromkeys(["num_vertices", *features]))
    vocabulary = None if ops is None else (INPUT, OUTPUT, *ops)
    rank_to_code = None if ops is None else np.asarray([2 + ops.index(o) for o in sorted(ops)])
    mats, codes, hashes = [], [], []
    for v in range(2, num_vertices + 1):
        topologies = enumerate_topologies(v, max_edges)
        index, labels, cell_hashes = labelled_cells(topologies, ops)
        padded = np.zeros((len(index), num_vertices, num_vertices), dtype=np.uint8)
        padded[:, :v, :v] = topologies.matrices[index]
        mats.append(padded)
        hashes.append(cell_hashes)
        if ops is not None:
            op_codes = np.full((len(index), num_vertices), PAD, dtype=np.int8)
            op_codes[:, 0], op_codes[:, v - 1] = 0, 1
            op_codes[:, 1 : v - 1] = rank_to_code[labels]
            codes.append(op_codes)
    matrices = np.concatenate(mats)
    return Space(
        matrices=matrices,
        ops=None if ops is None else np.concatenate(codes),
        vocabulary=vocabulary,
        hashes=np.concatenate(hashes),
        features=compute_features(matrices, names),
        feature_names=names,
        max_vertices=num_vertices,
        max_edges=max_edges,
    )


def timed_enumeration(*args: object, **kwargs: object) -> tuple[Space, float]:
    """``enumerate_space`` and its wall time in seconds."""
    start = time.perf_counter()
    space = enumerate_space(*args, **kwargs)
    return space, time.perf_counter() - start
