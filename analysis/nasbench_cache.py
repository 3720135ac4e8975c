"""The columnar cache of a NAS-Bench-101 file, written once, and its join to a space.

The first read of ``nasbench_only108.tfrecord`` (:mod:`analysis.nasbench_file`) converts it into
``nasbench_only108.tfrecord.dagrank.npz`` beside it (or in a directory the user names); later
loads read that file (uncompressed ``.npz``: seconds, not minutes). Per cell of the file (one
row per module hash):

- ``module_hash``, and the cell's ``canonical_hash`` (:func:`dagspace.canonical_hash`, found from
  the record's matrix and operations in whatever vertex order the record gives them) and its
  ``space_index`` in the project's NAS-Bench-101 space (``enumerate_space(7, NASBENCH101_OPS,
  max_edges=9)``; ``-1`` for a cell outside it);
- ``trainable_parameters`` (of the cell's first record);
- per budget (``budgets``, the file's distinct epochs) and repeat (the records of one cell and
  budget in file order): ``validation_accuracy``, ``test_accuracy``, ``train_accuracy`` and
  ``training_time`` of the end of training, ``(cells, budgets, repeats)`` arrays (NaN past a
  cell's ``counts``), stored as float32 where that is exact for every value, float64 otherwise.

The cache records the source's path, size and a SHA-256 of its first and last MiB: a source that
changed is noticed (the cache is rebuilt when the source is read again, and a cache given
directly whose source changed is an error), as is a cache of another format. A cache built with
``skip_damaged`` lists what was skipped, and is used only when skipping is asked for again.

As a table (:func:`nasbench_results`), every budget gives the columns
``{budget}_final_validation_accuracy``, ``_test_accuracy``, ``_train_accuracy`` and
``_training_time`` (each the mean over the cell's repeats, summed in repeat order), and
``trainable_parameters``; the repeats themselves stay available for a search that draws one per
query (``COLUMN@sample``, :mod:`analysis.tables`).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import time
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.nasbench_file import (
    METRICS,
    NasbenchRecordError,
    NasbenchRecords,
    read_nasbench_records,
)
from analysis.tables import TableError, TabularResults, check_missing, covered_space
from analysis.tfrecord import Damage, TFRecordError
from dagspace import NASBENCH101_OPS, Space

__all__ = [
    "CACHE_SUFFIX",
    "NasbenchCacheError",
    "NasbenchTable",
    "build_table",
    "cache_path",
    "is_nasbench_file",
    "load_cache",
    "nasbench101_space",
    "nasbench_results",
    "open_nasbench",
    "repeat_mean",
    "save_cache",
    "source_fingerprint",
]

CACHE_SUFFIX = ".dagrank.npz"
_FORMAT = "dagrank-nasbench101-cache-1"
_EDGE = 1 << 20  # bytes of the source's head and tail that are hashed
_NAMES = sorted(NASBENCH101_OPS)
_log = logging.getLogger("dagrank")


class NasbenchCacheError(TableError):
    """A NAS-Bench-101 cache cannot be used: unreadable, of another format, stale, or not
    writable where it should go."""


def is_nasbench_file(path: str | os.PathLike) -> bool:
    """Whether a table path names a NAS-Bench-101 file (``.tfrecord``) or its cache (``.npz``)."""
    return Path(path).suffix.lower() in (".tfrecord", ".npz")


@lru_cache(maxsize=1)
def nasbench101_space() -> Space:
    """The project's NAS-Bench-101 space (7 vertices, its three operations, at most 9 edges;
    423,624 cells), enumerated once per process."""
    from dagspace import enumerate_space

    return enumerate_space(7, NASBENCH101_OPS, max_edges=9)


def source_fingerprint(path: str | os.PathLike) -> tuple[int, str]:
    """A file's size and the SHA-256 of its first and last MiB (hex)."""
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        digest.update(handle.read(_EDGE))
        if size > _EDGE:
            handle.seek(max(_EDGE, size - _EDGE))
            digest.update(handle.read(_EDGE))
    return size, digest.hexdigest()


def cache_path(source: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the cache of ``source`` goes: beside it, or in ``cache_dir``."""
    source = Path(source)
    return Path(cache_dir or source.parent) / (source.name + CACHE_SUFFIX)


def repeat_mean(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The mean over the first ``counts`` repeats: ``values`` ``(..., R)``, ``counts`` ``(...)``;
    summed in repeat order, then divided (NaN where a count is 0). One definition, so that a
    file built to have a given mean (the tests, the benchmark) reproduces it to the bit."""
    total = np.zeros(values.shape[:-1])
    for r in range(values.shape[-1]):
        total = total + np.where(counts > r, values[..., r], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, total / np.maximum(counts, 1), np.nan)


@dataclass(frozen=True, eq=False)
class NasbenchTable:
    """A NAS-Bench-101 file as per-cell columns (see the module docstring).

    Attributes: ``module_hash``, ``canonical_hash`` ``(N,)`` U32; ``space_index``,
    ``trainable_parameters`` ``(N,)`` int64; ``budgets`` ``(B,)`` int64; ``counts`` ``(N, B)``
    repeats per cell and budget; ``values``: metric name -> ``(N, B, R)`` array; ``source``,
    ``source_size``, ``source_digest``: the file it came from; ``records``: records read;
    ``damage``: what was skipped; ``path``: the cache file (``""`` until saved).
    """

    module_hash: np.ndarray
    canonical_hash: np.ndarray
    space_index: np.ndarray
    trainable_parameters: np.ndarray
    budgets: np.ndarray
    counts: np.ndarray
    values: dict[str, np.ndarray]
    source: str
    source_size: int
    source_digest: str
    records: int
    damage: list[Damage] = field(default_factory=list)
    path: str = ""

    def __len__(self) -> int:
        return len(self.module_hash)

    @property
    def repeats(self) -> int:
        return int(self.counts.max()) if self.counts.size else 0

    def column_names(self) -> list[str]:
        """The table's metric columns, in order."""
        names = [f"{int(b)}_final_{m}" for b in self.budgets for m in METRICS]
        return [*names, "trainable_parameters"]

    def locate(self, name: str) -> tuple[str, int] | None:
        """``(metric, budget position)`` of a column name, or ``None`` (``trainable_parameters``
        or an unknown name)."""
        budget, _, rest = name.partition("_final_")
        if rest in METRICS and budget.isdigit():
            hits = np.flatnonzero(self.budgets == int(budget))
            if len(hits):
                return rest, int(hits[0])
        return None


# -- building --------------------------------------------------------------------------------------
def _fail(records: NasbenchRecords, record: int, reason: str) -> NasbenchRecordError:
    offset = int(records.offsets[record])
    return NasbenchRecordError(f"The record at byte {offset} of {records.path} {reason}.",
                               records.path, offset)  # fmt: skip


def _cell_hashes(records: NasbenchRecords) -> tuple[np.ndarray, np.ndarray]:
    """Each distinct ``(raw_adjacency, raw_operations)`` pair's canonical hash (``""``: not a
    cell) and the reason it is not one."""
    from dagspace.neighbours import canonical_hashes

    rank = {name: i for i, name in enumerate(_NAMES)}
    n = len(records.cells)
    hashes = np.full(n, "", dtype="U32")
    reasons = np.full(n, "", dtype=object)
    sizes = np.asarray([len(a) for a, _ in records.cells], dtype=np.int64)
    dims = np.rint(np.sqrt(sizes)).astype(np.int64)
    for d in np.unique(dims).tolist():
        members = np.flatnonzero(dims == d)
        square = sizes[members] == d * d
        for i in members[~square].tolist():
            reasons[i] = f"has a raw_adjacency of {sizes[i]} digits, not a square number"
        members = members[square]
        if d < 2 or not len(members):
            reasons[members] = "has a cell of fewer than 2 vertices"
            continue
        text = "".join(records.cells[i][0] for i in members.tolist()).encode("ascii", "replace")
        digits = np.frombuffer(text, dtype=np.uint8).reshape(len(members), d, d) - ord("0")
        lower = np.tril(np.ones((d, d), dtype=bool))
        bad_matrix = (digits > 1).any(axis=(1, 2)) | (digits.astype(bool) & lower).any(axis=(1, 2))
        ranks = np.zeros((len(members), d), dtype=np.int64)
        good = np.ones(len(members), dtype=bool)
        for row, i in enumerate(members.tolist()):
            ops = records.cells[i][1].split(",")
            if bad_matrix[row]:
                reasons[i] = "has a raw_adjacency that is not strictly upper-triangular 0/1"
            elif len(ops) != d or ops[0] != "input" or ops[-1] != "output":
                reasons[i] = (f"has raw_operations {records.cells[i][1]!r}; expected {d} names, "
                              "'input' first and 'output' last")  # fmt: skip
            elif any(op not in rank for op in ops[1:-1]):
                reasons[i] = (f"has an operation outside NAS-Bench-101's {list(NASBENCH101_OPS)} "
                              f"in {records.cells[i][1]!r}")  # fmt: skip
            else:
                ranks[row, 1:-1] = [rank[op] for op in ops[1:-1]]
                continue
            good[row] = False
        found = canonical_hashes(digits[good].astype(np.uint8), ranks[good], _NAMES)
        hashes[members[good]] = found
        for i in members[good][found == ""].tolist():
            reasons[i] = "has a cell whose input cannot reach its output"
    return hashes, reasons


def _first_of(codes: np.ndarray, n: int) -> np.ndarray:
    """The first record (in file order) of each code ``0..n-1``."""
    first = np.full(n, len(codes), dtype=np.int64)
    np.minimum.at(first, codes, np.arange(len(codes)))
    return first


def _drop(records: NasbenchRecords, bad: np.ndarray, reasons: list[str]) -> NasbenchRecords:
    """``records`` without the records ``bad`` (a mask), each listed as damage."""
    from dataclasses import replace

    damage = [*records.damage, *(Damage(int(records.offsets[i]), 0, reasons[j])
                                 for j, i in enumerate(np.flatnonzero(bad).tolist()))]  # fmt: skip
    keep = ~bad
    return replace(records, hash_code=records.hash_code[keep], cell_code=records.cell_code[keep],
                   epochs=records.epochs[keep], params=records.params[keep],
                   total_time=records.total_time[keep], metrics=records.metrics[keep],
                   offsets=records.offsets[keep],
                   damage=sorted(damage, key=lambda d: d.offset))  # fmt: skip


def _compact(values: np.ndarray) -> np.ndarray:
    """float32 where every value survives the round trip exactly (NaN included), else float64."""
    narrow = values.astype(np.float32)
    same = (narrow.astype(np.float64) == values) | (np.isnan(values) & np.isnan(narrow))
    return narrow if same.all() else values


def build_table(records: NasbenchRecords, *, skip_damaged: bool = False) -> NasbenchTable:
    """Per-cell columns of a file's records (no file is written).

    Raises:
        NasbenchRecordError: a record whose cell is not a valid NAS-Bench-101 cell (unless
            ``skip_damaged``: then skipped and listed), records of one module hash that
            describe different cells, or two module hashes naming the same cell.
    """
    hashes, reasons = _cell_hashes(records)
    bad = hashes[records.cell_code] == ""
    if bad.any():
        first = int(np.argmax(bad))
        if not skip_damaged:
            raise _fail(records, first, str(reasons[records.cell_code[first]]))
        records = _drop(records, bad, [str(reasons[c]) for c in records.cell_code[bad]])
    canon = hashes[records.cell_code]
    n = len(records.hashes)
    first = _first_of(records.hash_code, n)
    present = first < len(canon)  # module hashes whose records were all dropped have none
    cell_hash = np.full(n, "", dtype="U32")
    cell_hash[present] = canon[first[present]]
    differ = canon != cell_hash[records.hash_code]
    if differ.any():
        i = int(np.argmax(differ))
        j = int(first[records.hash_code[i]])
        raise _fail(records, i, f"describes another cell than the record at byte "
                    f"{int(records.offsets[j])} of the same module hash "
                    f"{records.hashes[records.hash_code[i]]}")  # fmt: skip
    rows = np.flatnonzero(present)  # table row r <- module hash code rows[r]
    row_of = np.full(n, -1, dtype=np.int64)
    row_of[rows] = np.arange(len(rows))
    canonical = cell_hash[rows]
    distinct, counts_of = np.unique(canonical, return_counts=True)
    if (counts_of > 1).any():
        twin = np.flatnonzero(canonical == distinct[np.argmax(counts_of > 1)])
        names = [str(records.hashes[rows[t]]) for t in twin[:2]]
        raise _fail(records, int(first[rows[twin[1]]]), f"has module hash {names[1]}, and "
                    f"{names[0]} names the same cell")  # fmt: skip
    space = nasbench101_space()
    space_index = space.find_hashes(canonical.tolist())
    budgets = np.unique(records.epochs)
    cell = row_of[records.hash_code]
    budget = np.searchsorted(budgets, records.epochs)
    group = cell * len(budgets) + budget
    order = np.argsort(group, kind="stable")  # file order within a group
    sorted_group = group[order]
    starts = np.searchsorted(sorted_group, sorted_group, side="left")
    repeat = np.empty(len(group), dtype=np.int64)
    repeat[order] = np.arange(len(group)) - starts
    counts = np.bincount(group, minlength=len(rows) * len(budgets)).reshape(len(rows), -1)
    width = int(counts.max()) if counts.size else 0
    values = {}
    for k, metric in enumerate(METRICS):
        array = np.full((len(rows), len(budgets), width), np.nan)
        array[cell, budget, repeat] = records.metrics[:, k]
        values[metric] = _compact(array)
    params = records.params[first[rows]]
    size, digest = (source_fingerprint(records.path) if Path(records.path).is_file()
                    else (records.size, ""))  # fmt: skip
    return NasbenchTable(
        module_hash=records.hashes[rows], canonical_hash=canonical,
        space_index=space_index.astype(np.int64), trainable_parameters=params.astype(np.int64),
        budgets=budgets.astype(np.int64), counts=counts.astype(np.uint8), values=values,
        source=str(Path(records.path).resolve()), source_size=size, source_digest=digest,
        records=len(records), damage=list(records.damage),
    )  # fmt: skip


# -- the cache file --------------------------------------------------------------------------------
def save_cache(table: NasbenchTable, path: str | os.PathLike) -> Path:
    """Write ``table`` to ``path`` atomically (temporary file, fsync, rename).

    Raises:
        NasbenchCacheError: the directory cannot be written.
    """
    from dagspace.io import atomic_write

    path = Path(path)
    arrays: dict[str, Any] = {
        "format": np.asarray(_FORMAT),
        "source": np.asarray(table.source),
        "source_size": np.asarray(table.source_size, dtype=np.int64),
        "source_digest": np.asarray(table.source_digest),
        "records": np.asarray(table.records, dtype=np.int64),
        "budgets": table.budgets,
        "module_hash": table.module_hash.astype("S32"),
        "canonical_hash": table.canonical_hash.astype("S32"),
        "space_index": table.space_index,
        "trainable_parameters": table.trainable_parameters,
        "counts": table.counts,
        "damage_offset": np.asarray([d.offset for d in table.damage], dtype=np.int64),
        "damage_size": np.asarray([d.size for d in table.damage], dtype=np.int64),
        "damage_reason": np.asarray([d.reason for d in table.damage], dtype=str),
    }
    for metric, array in table.values.items():
        arrays[f"values_{metric}"] = array
    try:
        with atomic_write(path, "wb") as handle:
            np.savez(handle, **arrays)
    except OSError as err:
        raise NasbenchCacheError(
            f"The NAS-Bench-101 cache cannot be written to {path} ({err.strerror or err}); name "
            f"a writable directory: dagrank nasbench convert {table.source} --cache-dir DIR, "
            "then give the cache (DIR/<name>.dagrank.npz) as the table."
        ) from None
    return path


def load_cache(path: str | os.PathLike) -> NasbenchTable:
    """Read a cache written by :func:`save_cache` (the source is not checked here).

    Raises:
        NasbenchCacheError: no such file, not a cache of this format, or inconsistent arrays.
    """
    path = Path(path)
    if not path.is_file():
        raise NasbenchCacheError(f"No NAS-Bench-101 cache at {path}.")
    try:
        with np.load(path, allow_pickle=False) as data:
            fields = {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, AttributeError) as err:
        detail = " ".join(str(err).split())
        raise NasbenchCacheError(
            f"{path} is not a readable NAS-Bench-101 cache: {detail}"
        ) from None
    if "format" not in fields or str(fields["format"]) != _FORMAT:
        found = str(fields["format"]) if "format" in fields else "none"
        raise NasbenchCacheError(
            f"{path} is not a NAS-Bench-101 cache of format {_FORMAT!r} (its format: {found})."
        )
    try:
        values = {m: fields[f"values_{m}"] for m in METRICS}
        table = NasbenchTable(
            module_hash=fields["module_hash"].astype("U32"),
            canonical_hash=fields["canonical_hash"].astype("U32"),
            space_index=fields["space_index"].astype(np.int64),
            trainable_parameters=fields["trainable_parameters"].astype(np.int64),
            budgets=fields["budgets"].astype(np.int64), counts=fields["counts"], values=values,
            source=str(fields["source"]), source_size=int(fields["source_size"]),
            source_digest=str(fields["source_digest"]), records=int(fields["records"]),
            damage=[Damage(int(o), int(s), str(r)) for o, s, r in zip(
                fields["damage_offset"], fields["damage_size"], fields["damage_reason"],
                strict=True)],
            path=str(path),
        )  # fmt: skip
    except KeyError as err:
        raise NasbenchCacheError(
            f"{path} lacks the array {err} of a NAS-Bench-101 cache."
        ) from None
    n, b = len(table), len(table.budgets)
    shapes = [table.canonical_hash.shape, table.space_index.shape,
              table.trainable_parameters.shape, table.counts.shape,
              *(v.shape[:2] for v in values.values())]  # fmt: skip
    if any(s not in ((n,), (n, b)) for s in shapes) or table.counts.shape != (n, b):
        raise NasbenchCacheError(f"{path} holds arrays of inconsistent shapes: {shapes} for "
                                 f"{n} cells and {b} budgets.")  # fmt: skip
    return table


def _damage_error(table: NasbenchTable, source: str) -> TFRecordError:
    first = table.damage[0]
    return TFRecordError(
        f"The NAS-Bench-101 file {source} has {len(table.damage)} damaged records (the first at "
        f"byte {first.offset}: {first.reason}); its cache {table.path} was built skipping them: "
        "read it with skip_damaged (dagrank nasbench convert --skip-damaged) to use it.",
        source, first.offset,
    )  # fmt: skip


def _stale(table: NasbenchTable, source: Path) -> str | None:
    """Why the cache does not describe ``source`` as it is now (``None``: it does)."""
    size, digest = source_fingerprint(source)
    if size != table.source_size:
        return f"its size changed from {table.source_size} to {size} bytes"
    if digest != table.source_digest:
        return "its first or last MiB changed"
    return None


def open_nasbench(
    path: str | os.PathLike,
    *,
    cache_dir: str | os.PathLike | None = None,
    skip_damaged: bool = False,
    progress: bool | None = None,
) -> NasbenchTable:
    """A NAS-Bench-101 file's table: ``path`` a ``.tfrecord`` (its cache is read, or built and
    written beside it or in ``cache_dir``) or a cache (``.npz``) itself.

    Raises:
        TFRecordError, NasbenchRecordError: a damaged or malformed file (see
            :func:`analysis.nasbench_file.read_nasbench_records`).
        NasbenchCacheError: a cache given directly whose source changed, an unreadable cache,
            or a cache that cannot be written.
    """
    path = Path(path)
    if path.suffix.lower() == ".npz":
        table = load_cache(path)
        source = Path(table.source)
        if source.is_file() and (why := _stale(table, source)) is not None:
            raise NasbenchCacheError(
                f"The NAS-Bench-101 cache {path} is stale: its source {source} changed ({why}); "
                f"convert the source again (dagrank nasbench convert {source})."
            )
        if table.damage and not skip_damaged:
            raise _damage_error(table, str(source))
        return table
    if not path.is_file():
        raise TFRecordError(f"No NAS-Bench-101 file at {path}.", path)
    target = cache_path(path, cache_dir)
    if target.is_file():
        try:
            table = load_cache(target)
        except NasbenchCacheError as err:
            _log.warning("rebuilding the cache of %s: %s", path, err)
        else:
            why = _stale(table, path) if Path(table.source) == path.resolve() else "another file"
            if why is None:
                if table.damage and not skip_damaged:
                    raise _damage_error(table, str(path))
                return table
            _log.warning("rebuilding the cache %s of %s: %s", target, path, why)
    start = time.perf_counter()
    records = read_nasbench_records(path, skip_damaged=skip_damaged, progress=progress)
    table = build_table(records, skip_damaged=skip_damaged)
    save_cache(table, target)
    seconds = time.perf_counter() - start
    _log.info("read %d records of %s in %.1f s (%d records/s): %d cells, budgets %s -> %s",
              len(records), path, seconds, round(len(records) / max(seconds, 1e-9)), len(table),
              table.budgets.tolist(), target)  # fmt: skip
    return NasbenchTable(**{**table.__dict__, "path": str(target)})


# -- as a table of a space -------------------------------------------------------------------------
class _Repeats:
    """Per-repeat values of a table's columns for rows ``rows`` of the cache (the cells of a
    space, in its order)."""

    def __init__(self, table: NasbenchTable, rows: np.ndarray) -> None:
        self.table, self.rows = table, rows

    def values(self, name: str) -> np.ndarray | None:
        """``(N, R)`` float64 (NaN past a cell's count), or ``None`` for a column without."""
        where = self.table.locate(name)
        if where is None:
            return None
        metric, b = where
        return self.table.values[metric][self.rows, b].astype(np.float64)

    def counts(self, name: str) -> np.ndarray:
        """``(N,)`` the repeats of each cell at the budget of column ``name`` (one that
        :meth:`values` gives repeats of)."""
        _, budget = self.table.locate(name)
        return self.table.counts[self.rows, budget].astype(np.int64)

    def subset(self, cells: np.ndarray) -> _Repeats:
        """The repeats of the cells ``cells`` (indices into this one's), in that order."""
        return _Repeats(self.table, self.rows[cells])


def _rows_in(table: NasbenchTable, space: Space) -> np.ndarray:
    """Each cache row's index in ``space`` (``-1``: not in it): the stored index where the
    space's cell there has the row's canonical hash (the project's NAS-Bench-101 space), a
    lookup by canonical hash for the rest (a subset, another space)."""
    index = table.space_index.copy()
    ok = (index >= 0) & (index < len(space))
    ok[ok] = space.hashes[index[ok]] == table.canonical_hash[ok]
    if not ok.all():
        index[~ok] = space.find_hashes(table.canonical_hash[~ok].tolist())
    return index


def nasbench_results(table: NasbenchTable, space: Space, *, missing: str = "error",
                     metrics: tuple[str, ...] | None = None,
                     source: str | None = None) -> TabularResults:  # fmt: skip
    """The file's cells joined to ``space`` (the project's NAS-Bench-101 space, a subset, or
    any labelled space of its operations), as :func:`analysis.tables.join_table` joins a table.

    Raises:
        TableError: a bad ``missing`` or metric, no cell of the file in the space, or a module
            hash that disagrees with the space's NAS-Bench-101 hash of the same cell.
        TableCoverageError: ``missing="error"`` and the file lacks cells of the space.
    """
    source = source or table.path or table.source
    check_missing(missing)
    names = table.column_names()
    chosen = list(metrics) if metrics is not None else names
    unknown = [m for m in chosen if m not in names]
    if unknown or not chosen:
        raise TableError(f"The NAS-Bench-101 table {source} has the columns {names}; asked for "
                         f"{chosen}.")  # fmt: skip
    index = _rows_in(table, space)
    inside = np.flatnonzero(index >= 0)
    if not len(inside):
        raise TableError(f"No cell of the NAS-Bench-101 table {source} ({len(table)} cells) is a "
                         f"cell of this space of {len(space)} cells.")  # fmt: skip
    order = inside[np.argsort(index[inside])]
    cells = index[order]
    if "nasbench101_hashes" in space._cache:
        wrong = space.nasbench101_hashes()[cells] != table.module_hash[order]
        if wrong.any():
            i = int(np.argmax(wrong))
            raise TableError(
                f"The NAS-Bench-101 table {source} gives the cell {space[int(cells[i])]!r} the "
                f"module hash {table.module_hash[order[i]]}; NAS-Bench-101's hash of that cell is "
                f"{space.nasbench101_hashes()[cells[i]]}."
            )
    space = covered_space(space, cells, missing=missing, source=str(source))
    repeats = _Repeats(table, order)
    columns = {}
    for name in chosen:
        if name == "trainable_parameters":
            columns[name] = table.trainable_parameters[order].astype(np.float64)
        else:
            columns[name] = repeat_mean(repeats.values(name), repeats.counts(name))
    frame = pd.DataFrame(columns)
    return TabularResults(space, frame, str(source), "cell", len(table), repeats=repeats)


def describe_table(table: NasbenchTable) -> dict[str, Any]:
    """A cache's contents in numbers (``dagrank nasbench convert`` prints them)."""
    return {"cells": len(table), "records": table.records, "budgets": table.budgets.tolist(),
            "repeats": table.repeats, "in_nasbench101_space": int((table.space_index >= 0).sum()),
            "skipped": len(table.damage), "source": table.source, "cache": table.path,
            "cache_bytes": os.path.getsize(table.path) if table.path else math.nan}  # fmt: skip
