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
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError
from dagspace import NASBENCH101_OPS, CellSpec, DagspaceError, Space

__all__ = [
    "KEY_COLUMNS",
    "KEY_KINDS",
    "TableCoverageError",
    "TableError",
    "TableFormatError",
    "TabularResults",
    "join_table",
    "load_table",
    "read_table",
]

KEY_KINDS = ("auto", "nasbench101", "canonical", "cell")
KEY_COLUMNS = ("key", "hash", "module_hash", "nasbench101_hash", "canonical_hash")
_FORMATS = {".csv": "csv", ".json": "json", ".parquet": "parquet", ".pq": "parquet"}


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
    """

    space: Space
    frame: pd.DataFrame
    source: str
    key_kind: str
    rows: int

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(self.frame.columns)

    def column(self, name: str) -> np.ndarray:
        """One metric ``(N,)`` float64, aligned with :attr:`space`.

        Raises:
            TableError: the table has no such metric.
        """
        if name not in self.frame.columns:
            raise TableError(
                f"The table {self.source} has no metric {name!r}; its metrics are "
                f"{list(self.frame.columns)}."
            )
        return self.frame[name].to_numpy(dtype=np.float64)


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
            f"A results table must be a .csv, .json or .parquet file (from Python, load_table's "
            f"format names the format of another suffix); got {path.name!r} (format {format!r})."
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
    if missing not in ("error", "subset"):
        raise TableError(f"The 'missing' of a table must be 'error' or 'subset'; got {missing!r}.")
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
    cells = found[order]
    if len(cells) < len(space):
        if missing == "error":
            raise TableCoverageError(
                f"The table {source} has {len(cells)} of the {len(space)} cells of the space; "
                "restrict the space to the table's cells (missing='subset') or give a complete "
                "table."
            )
        space = space.subset(cells)
    return TabularResults(space, rows, source, kind, len(frame))


def load_table(
    path: str | os.PathLike,
    space: Space,
    *,
    key: str = "auto",
    missing: str = "error",
    metrics: tuple[str, ...] | None = None,
    format: str | None = None,
) -> TabularResults:
    """:func:`read_table` then :func:`join_table`."""
    return join_table(read_table(path, format), space, key=key, missing=missing,
                      metrics=metrics, source=str(path))  # fmt: skip


def describe(results: TabularResults, space: Space) -> dict[str, Any]:
    """Coverage of a joined table over the space it was joined to."""
    return {"source": results.source, "key": results.key_kind, "rows": results.rows,
            "cells": len(results.space), "space_cells": len(space),
            "metrics": list(results.metrics)}  # fmt: skip
