"""Tables as data: reading, keying and joining tabular results to a space."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pandas as pd
import pytest

from analysis.tables import (
    TableCoverageError,
    TableError,
    TableFormatError,
    join_table,
    load_table,
    read_table,
)
from dagspace import NASBENCH101_OPS, enumerate_space


@pytest.fixture(scope="module")
def space():
    return enumerate_space(5, NASBENCH101_OPS)


def _table(space, rows, key="nasbench101"):
    """A table over cells ``rows`` of ``space`` with an accuracy equal to the row number."""
    frame = pd.DataFrame({"acc": np.asarray(rows, dtype=float) / 1000, "time": 1.0})
    if key == "nasbench101":
        frame.insert(0, "key", space.nasbench101_hashes()[rows])
    elif key == "canonical":
        frame.insert(0, "canonical_hash", space.hashes[rows])
    else:
        frame.insert(0, "cell", [space[int(i)].to_json() for i in rows])
    return frame


@pytest.mark.parametrize("key", ["nasbench101", "canonical", "cell"])
def test_every_key_kind_joins_the_same_cells(space, key):
    rows = [40, 3, 100, 7]
    results = join_table(_table(space, rows, key), space, missing="subset")
    assert results.key_kind == key and len(results.space) == 4
    order = sorted(rows)  # a subset keeps the space's order
    assert [results.space[i] for i in range(4)] == [space[i] for i in order]
    np.testing.assert_allclose(results.column("acc"), np.asarray(order) / 1000)
    assert results.metrics == ("acc", "time")


def test_a_canonical_hash_in_a_key_column_is_recognised(space):
    frame = _table(space, [1, 2], "canonical").rename(columns={"canonical_hash": "hash"})
    assert join_table(frame, space, missing="subset").key_kind == "canonical"


def test_complete_table_keeps_the_space_and_partial_one_is_an_error(space):
    whole = join_table(_table(space, list(range(len(space)))), space)
    assert whole.space is space
    with pytest.raises(TableCoverageError, match=rf"has 2 of the {len(space)} cells"):
        join_table(_table(space, [1, 2]), space)


@pytest.mark.parametrize("suffix", ["csv", "json", "records.json"])
def test_file_formats_round_trip(tmp_path, space, suffix):
    frame = _table(space, [5, 6, 9])
    path = tmp_path / f"t.{suffix}"
    if suffix == "csv":
        frame.to_csv(path, index=False)
    elif suffix == "json":  # column-oriented, as the shared slice
        path.write_text(json.dumps({c: frame[c].tolist() for c in frame.columns}))
    else:
        path.write_text(frame.to_json(orient="records"))
    results = load_table(path, space, missing="subset")
    np.testing.assert_allclose(results.column("acc"), [0.005, 0.006, 0.009])
    assert results.source == str(path)


def test_parquet_needs_a_reader(tmp_path, space):
    path = tmp_path / "t.parquet"
    if importlib.util.find_spec("pyarrow") or importlib.util.find_spec("fastparquet"):
        _table(space, [5, 6]).to_parquet(path)
        assert len(load_table(path, space, missing="subset").space) == 2
    else:
        path.write_bytes(b"PAR1")
        with pytest.raises(TableFormatError, match="needs pyarrow or fastparquet"):
            read_table(path)


def test_bad_tables_raise_typed_errors(tmp_path, space):
    with pytest.raises(TableFormatError, match=r"must be a .csv, .json or .parquet file.*'t.txt'"):
        read_table(tmp_path / "t.txt")
    with pytest.raises(TableError, match="No results table at"):
        read_table(tmp_path / "missing.csv")
    (tmp_path / "ragged.json").write_text(json.dumps({"key": ["a"], "acc": [1, 2]}))
    with pytest.raises(TableError, match=r"columns of one length; .* lengths \[1, 2\]"):
        read_table(tmp_path / "ragged.json")
    (tmp_path / "scalar.json").write_text("3")
    with pytest.raises(TableError, match="holds int"):
        read_table(tmp_path / "scalar.json")
    with pytest.raises(TableError, match="needs one of the columns"):
        join_table(pd.DataFrame({"acc": [1.0]}), space, key="nasbench101")
    with pytest.raises(TableError, match="No row of the table"):
        join_table(pd.DataFrame({"key": ["0" * 32], "acc": [1.0]}), space)
    twice = _table(space, [4, 4])
    with pytest.raises(TableError, match="has 2 rows for one cell"):
        join_table(twice, space, missing="subset")
    with pytest.raises(TableError, match=r"asked for \['nope'\]"):
        join_table(_table(space, [4]), space, missing="subset", metrics=("nope",))
    with pytest.raises(TableError, match="'key' of a table must be one of"):
        join_table(_table(space, [4]), space, key="md5")
    with pytest.raises(TableError, match="'missing' of a table must be 'error' or 'subset'"):
        join_table(_table(space, [4]), space, missing="drop")
    bad = pd.DataFrame({"cell": ['{"matrix": [[0, 1], [1, 0]]}'], "acc": [1.0]})
    with pytest.raises(TableError, match="Row 0 of the table is not a valid cell"):
        join_table(bad, space)
    results = join_table(_table(space, [4]), space, missing="subset")
    with pytest.raises(TableError, match=r"no metric 'loss'; its metrics are \['acc', 'time'\]"):
        results.column("loss")
