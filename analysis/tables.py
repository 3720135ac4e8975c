"""Tabular benchmark results as data: a table of metrics per cell, joined to a space.

A table file holds one row per cell and named metric columns. The cell of a row is given by one
of three keys (``key_kind``):

``nasbench101``
    NAS-Bench-101's module hash (:func:`dagspace.nasbench101_hash`), in a column ``key``,
    ``hash``, ``module_hash`` or ``nasbench101_hash`` (the shared slice's form);
``canonical``
    this toolkit's canonical hash (:func:`dagspace.canonical_hash`), in a column
    ``canonical_hash`` (or one of the names above);
``cell``
    the cell itself in NAS-Bench-101 JSON form: a column ``cell`` holding
    ``{"matrix": ..., "ops": ...}`` (JSON text or a mapping), or two columns ``matrix`` and
    ``ops``.

``auto`` (the default) picks ``cell`` when such columns exist, otherwise the hash column, read
as whichever of the two hashes matches more of the space's cells.

Formats: CSV, JSON (column-oriented ``{"column": [values...]}`` as the slice, or a list of row
objects), and parquet when pyarrow or fastparquet is importable (a :class:`TableFormatError`
says so otherwise). Every other column that holds numbers is a metric.

Cells of the space that the table lacks: ``missing="error"`` raises :class:`TableCoverageError`
naming how many; ``missing="subset"`` restricts the space to the table's cells
(:meth:`dagspace.Space.subset`, in space order).

NAS-Bench-101's own files are tables too: a ``.tfrecord`` (read once into a cache beside it) or
that cache (``.npz``), see :mod:`analysis.nasbench_cache`. Their columns are
``{budget}_final_{validation,test,train}_accuracy`` and ``{budget}_final_training_time`` for
every budget the file holds (4, 12, 36, 108), each the mean over the cell's repeats, and
``trainable_parameters``. A column named with a suffix says how the repeats combine:
``108_final_test_accuracy@mean`` (the default, the mean) or ``@sample`` (one repeat drawn per
query, as the benchmark's API draws: :meth:`TabularResults.repeat_column`).
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError
from dagspace import NASBENCH101_OPS, CellSpec, DagspaceError, Space

__all__ = [
    "COMBINE_MODES",
    "KEY_COLUMNS",
    "KEY_KINDS",
    "TableCoverageError",
    "TableError",
    "TableFormatError",
    "TabularResults",
    "check_missing",
    "covered_space",
    "join_table",
    "load_table",
    "read_table",
    "split_column",
]

KEY_KINDS = ("auto", "nasbench101", "canonical", "cell")
KEY_COLUMNS = ("key", "hash", "module_hash", "nasbench101_hash", "canonical_hash")
_FORMATS = {".csv": "csv", ".json": "json", ".parquet": "parquet", ".pq": "parquet"}
COMBINE_MODES = ("mean", "sample")  # how a column's repeats combine: COLUMN@MODE
_DRAW_STREAM = 101  # the seed stream of the repeats drawn by COLUMN@sample


class TableError(AnalysisError, ValueError):
    """A results table is malformed, or does not fit the space it is joined to."""


class TableFormatError(TableError):
    """A table file's format is unknown, or its reader is not installed."""


class TableCoverageError(TableError):
    """The table lacks cells of the space (and ``missing="error"``)."""


@dataclass(frozen=True, eq=False)
class TabularResults:
    """Metrics per cell of a space.

    Attributes:
        space: the cells the table covers (the given space, or its subset to the table's cells).
        frame: one row per cell of ``space``, in its order (row ``i`` is ``space[i]``), one
            float64 column per metric.
        source: the file read; ``key_kind``: how its rows were keyed.
        rows: the table's row count (rows of cells outside the space are dropped).
        repeats: for a table with repeated measurements (a NAS-Bench-101 file), the source of
            every repeat (``values(name)``: ``(N, R)``, NaN past ``counts(name)``: ``(N,)``);
            the frame holds their means. ``None`` for a table of one value per cell.
    """

    space: Space
    frame: pd.DataFrame
    source: str
    key_kind: str
    rows: int
    repeats: Any = None

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(self.frame.columns)

    def column(self, name: str) -> np.ndarray:
        """One metric ``(N,)`` float64, aligned with :attr:`space`.

        Raises:
            TableError: the table has no such metric.
        """
        metric, combine = split_column(name)
        if combine != "mean":
            raise TableError(
                f"The column {name!r} draws a repeat per query: it is not one value per cell "
                "(use repeat_column)."
            )
        if metric not in self.frame.columns:
            raise TableError(
                f"The table {self.source} has no metric {metric!r}; its metrics are "
                f"{list(self.frame.columns)}."
            )
        return self.frame[metric].to_numpy(dtype=np.float64)

    def repeat_values(self, name: str) -> np.ndarray:
        """``(N, R)`` float64: every repeat of metric ``name`` per cell (NaN past a cell's
        count), for a table with repeats.

        Raises:
            TableError: the table has no repeats of that metric.
        """
        metric, _ = split_column(name)
        self.column(metric)  # an unknown metric is named as such
        values = None if self.repeats is None else self.repeats.values(metric)
        if values is None:
            raise TableError(
                f"The table {self.source} has one value per cell for {metric!r}; "
                f"'{metric}@sample' draws among repeats, which a NAS-Bench-101 file "
                "(.tfrecord, or its cache) has."
            )
        return values

    def part(self, k: int, n: int, seed: int) -> TabularResults:
        """Part ``k`` (1 to ``n``) of the table's cells split into ``n`` near-equal parts by the
        permutation ``np.random.default_rng(seed).permutation(N)``, in the space's order: a
        smaller benchmark of the same kind, to check that a comparison holds beyond one slice."""
        order = np.random.default_rng(seed).permutation(len(self.space))
        cells = np.sort(np.array_split(order, n)[k - 1])
        repeats = None if self.repeats is None else self.repeats.subset(cells)
        return replace(self, space=self.space.subset(cells),
                       frame=self.frame.iloc[cells].reset_index(drop=True),
                       repeats=repeats)  # fmt: skip

    def draw(self, seed: int, repeat: int) -> np.ndarray:
        """``(N,)`` uniform numbers in ``[0, 1)``, one per cell, seeded by ``(seed, repeat)``:
        the repeat that search run ``repeat`` sees of each cell (:meth:`repeat_column`)."""
        from dagspace.random import check_random_state, stream_seed

        stream = stream_seed(seed, repeat, _DRAW_STREAM)
        return check_random_state(stream).random(len(self.space))

    def repeat_column(self, name: str, draw: np.ndarray) -> np.ndarray:
        """``(N,)`` one repeat of metric ``name`` per cell: repeat ``floor(draw * count)`` of
        each cell (``draw`` from :meth:`draw`; uniform over the cell's repeats, as
        NAS-Bench-101's ``query`` draws one of them)."""
        values = self.repeat_values(name)
        counts = self.repeats.counts(split_column(name)[0])
        pick = np.minimum((np.asarray(draw) * counts).astype(np.int64), np.maximum(counts - 1, 0))
        out = np.take_along_axis(values, pick[:, None], axis=1)[:, 0]
        return np.where(counts > 0, out, np.nan)

    def cost_column(self, metric: str, cost_column: str | None) -> str | None:
        """The training-time column that goes with ``metric``: ``cost_column`` when the table
        has it, else the same budget's ``{budget}_final_training_time`` (a NAS-Bench-101
        file), else ``None``."""
        if cost_column is None or cost_column in self.frame.columns:
            return cost_column
        budget = split_column(metric)[0].split("_", 1)[0]
        paired = f"{budget}_{cost_column}"
        return paired if budget.isdigit() and paired in self.frame.columns else None


def split_column(name: str) -> tuple[str, str]:
    """``COLUMN[@MODE]`` to ``(COLUMN, MODE)``; ``MODE`` (how repeats combine) defaults to
    ``mean``.

    Raises:
        TableError: an unknown mode.
    """
    metric, at, mode = str(name).partition("@")
    mode = mode if at else "mean"
    if mode not in COMBINE_MODES or not metric:
        raise TableError(
            f"A table column is written COLUMN or COLUMN@MODE with MODE one of "
            f"{list(COMBINE_MODES)} (how a cell's repeats combine); got {name!r}."
        )
    return metric, mode


# -- reading -------------------------------------------------------------------------------------
def _parquet_engine() -> str | None:
    for engine in ("pyarrow", "fastparquet"):
        if importlib.util.find_spec(engine) is not None:
            return engine
    return None


def read_table(path: str | os.PathLike, format: str | None = None) -> pd.DataFrame:
    """Read a table file into a frame (no joining). ``format``: ``csv``, ``json`` or
    ``parquet``; by default from the file's suffix.

    Raises:
        TableFormatError: unknown format, or parquet without pyarrow / fastparquet.
        TableError: a missing or unreadable file.
    """
    path = Path(path)
    fmt = format or _FORMATS.get(path.suffix.lower())
    if fmt not in ("csv", "json", "parquet"):
        raise TableFormatError(
            f"A results table must be a .csv, .json or .parquet file, or a NAS-Bench-101 "
            f".tfrecord or its .npz cache (from Python, load_table's format names the format of "
            f"another suffix); got {path.name!r} (format {format!r})."
        )
    if not path.is_file():
        raise TableError(f"No results table at {path}.")
    try:
        if fmt == "csv":
            return pd.read_csv(path)
        if fmt == "parquet":
            engine = _parquet_engine()
            if engine is None:
                raise TableFormatError(
                    f"Reading the parquet table {path} needs pyarrow or fastparquet, and neither "
                    "is installed; convert it to CSV or JSON, or install one of them."
                )
            return pd.read_parquet(path, engine=engine)
        data = json.loads(path.read_text())
    except TableError:
        raise
    except (OSError, ValueError, pd.errors.ParserError) as err:
        detail = " ".join(str(err).split())
        raise TableError(f"The results table {path} could not be read: {detail}") from None
    if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
        lengths = {len(v) for v in data.values()}
        if len(lengths) > 1:
            raise TableError(
                f"A column-oriented JSON table needs columns of one length; {path} has lengths "
                f"{sorted(lengths)}."
            )
        return pd.DataFrame(data)
    if isinstance(data, list) and all(isinstance(row, dict) for row in data):
        return pd.DataFrame(data)
    raise TableError(
        f"A JSON results table must be an object of equal-length column lists or a list of row "
        f"objects; {path} holds {type(data).__name__}."
    )


# -- joining -------------------------------------------------------------------------------------
def _key_column(frame: pd.DataFrame, kind: str) -> str:
    names = ("canonical_hash",) if kind == "canonical" else ()
    for name in (*names, *KEY_COLUMNS):
        if name in frame.columns:
            return name
    raise TableError(
        f"A table keyed by {kind} hash needs one of the columns {list(KEY_COLUMNS)}; got "
        f"{list(frame.columns)}."
    )


def _cells_of(frame: pd.DataFrame) -> list[CellSpec]:
    cells = []
    for i in range(len(frame)):
        try:
            if "cell" in frame.columns:
                value = frame["cell"].iat[i]
                cells.append(CellSpec.from_json(value) if isinstance(value, (str, bytes))
                             else CellSpec.from_dict(value))  # fmt: skip
            else:
                matrix, ops = frame["matrix"].iat[i], frame["ops"].iat[i]
                matrix = json.loads(matrix) if isinstance(matrix, str) else matrix
                ops = json.loads(ops) if isinstance(ops, str) else ops
                cells.append(CellSpec(np.asarray(list(matrix)), list(ops)))
        except (DagspaceError, ValueError, TypeError) as err:
            raise TableError(f"Row {i} of the table is not a valid cell: {err}") from None
    return cells


def _row_indices(frame: pd.DataFrame, space: Space, kind: str) -> tuple[np.ndarray, str]:
    """Each row's space index (``-1``: not in the space) and the key kind used."""
    if kind == "auto":
        if "cell" in frame.columns or {"matrix", "ops"} <= set(frame.columns):
            kind = "cell"
        elif "canonical_hash" in frame.columns:
            kind = "canonical"
        else:
            column = frame[_key_column(frame, "nasbench101")].astype(str).tolist()
            hits = {"canonical": _hits(column, space.hashes)}
            if space.is_labelled and set(space.op_names) <= set(NASBENCH101_OPS):
                hits["nasbench101"] = _hits(column, space.nasbench101_hashes())
            kind = max(hits, key=lambda k: (hits[k], k == "nasbench101"))
    if kind == "cell":
        index = np.asarray([-1 if (f := space.find(c)) is None else f for c in _cells_of(frame)])
        return index.astype(np.int64), kind
    keys = frame[_key_column(frame, kind)].astype(str).tolist()
    reference = space.hashes if kind == "canonical" else space.nasbench101_hashes()
    return pd.Index(reference.tolist()).get_indexer(keys).astype(np.int64), kind


def _hits(keys: list[str], reference: np.ndarray) -> int:
    """How many ``keys`` are among ``reference`` (a hash set: numpy's isin on strings sorts)."""
    known = set(reference.tolist())
    return sum(k in known for k in keys)


def join_table(
    frame: pd.DataFrame,
    space: Space,
    *,
    key: str = "auto",
    missing: str = "error",
    metrics: tuple[str, ...] | None = None,
    source: str = "<frame>",
) -> TabularResults:
    """Align a table's rows with the cells of ``space`` (see the module docstring).

    Raises:
        TableError: a bad ``key`` / ``missing``, no key column, a row that is not a cell,
            a cell twice, no metric column, or no row in the space.
        TableCoverageError: ``missing="error"`` and the table lacks cells of the space.
    """
    if key not in KEY_KINDS:
        raise TableError(f"The 'key' of a table must be one of {list(KEY_KINDS)}; got {key!r}.")
    check_missing(missing)
    index, kind = _row_indices(frame, space, key)
    key_columns = {"cell", "matrix", "ops", *KEY_COLUMNS}
    numeric = [c for c in frame.columns if c not in key_columns
               and pd.api.types.is_numeric_dtype(frame[c])]  # fmt: skip
    names = list(metrics) if metrics is not None else numeric
    unknown = [m for m in names if m not in numeric]
    if unknown or not names:
        raise TableError(
            f"The table {source} needs numeric metric columns; asked for {names}, numeric "
            f"columns are {numeric}."
        )
    inside = index >= 0
    if not inside.any():
        raise TableError(
            f"No row of the table {source} ({len(frame)} rows, keyed by {kind}) is a cell of "
            f"this space of {len(space)} cells."
        )
    found = index[inside]
    values, counts = np.unique(found, return_counts=True)
    if (counts > 1).any():
        cell = int(values[counts > 1][0])
        raise TableError(
            f"The table {source} has {int(counts.max())} rows for one cell (space index {cell}, "
            f"{space[cell]!r}); one row per cell is expected."
        )
    order = np.argsort(found)
    rows = frame.loc[inside, names].iloc[order].astype(np.float64).reset_index(drop=True)
    space = covered_space(space, found[order], missing=missing, source=source)
    return TabularResults(space, rows, source, kind, len(frame))


def check_missing(missing: str) -> None:
    """``missing`` must be ``"error"`` or ``"subset"`` (raises :class:`TableError`)."""
    if missing not in ("error", "subset"):
        raise TableError(f"The 'missing' of a table must be 'error' or 'subset'; got {missing!r}.")


def covered_space(space: Space, cells: np.ndarray, *, missing: str, source: str) -> Space:
    """The space of a table's ``cells`` (space indices, ascending): ``space`` itself when the
    table covers it, else an error (``missing="error"``) or the subset (``"subset"``).

    Raises:
        TableCoverageError: the table lacks cells and ``missing="error"``.
    """
    if len(cells) == len(space):
        return space
    if missing == "error":
        raise TableCoverageError(
            f"The table {source} has {len(cells)} of the {len(space)} cells of the space; "
            "restrict the space to the table's cells (missing='subset') or give a complete "
            "table."
        )
    return space.subset(cells)


def load_table(
    path: str | os.PathLike,
    space: Space,
    *,
    key: str = "auto",
    missing: str = "error",
    metrics: tuple[str, ...] | None = None,
    format: str | None = None,
) -> TabularResults:
    """:func:`read_table` then :func:`join_table`; a NAS-Bench-101 file (``.tfrecord``) or its
    cache (``.npz``) through :func:`analysis.nasbench_cache.open_nasbench` (its cache read, or
    built beside the file) and :func:`analysis.nasbench_cache.nasbench_results` (``key`` and
    ``format`` do not apply: its cells are found from their matrices and operations)."""
    if format is None and Path(path).suffix.lower() in (".tfrecord", ".npz"):
        from analysis.nasbench_cache import nasbench_results, open_nasbench

        table = open_nasbench(path)
        return nasbench_results(table, space, missing=missing, metrics=metrics, source=str(path))
    return join_table(read_table(path, format), space, key=key, missing=missing,
                      metrics=metrics, source=str(path))  # fmt: skip


def describe(results: TabularResults, space: Space) -> dict[str, Any]:
    """Coverage of a joined table over the space it was joined to."""
    return {"source": results.source, "key": results.key_kind, "rows": results.rows,
            "cells": len(results.space), "space_cells": len(space),
            "metrics": list(results.metrics)}  # fmt: skip
