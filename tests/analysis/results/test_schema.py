"""Tests of :mod:`analysis.results.schema`: version 1 migrates in place to exactly a fresh
version 2; a newer version, or a database of something else, is refused and left untouched."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from analysis.errors import StoreCorruptError, StoreError
from analysis.results import ClaimOutcome, EvalKey, SQLiteStore, hash_config
from analysis.results.schema import _SCHEMA_V1
from tests.analysis.results.conftest import ARCH, V1_FIXTURE, claim, dump

V1_CONFIG = {"budget": 4, "dataset": "digits", "seed": 0}
# (arch_hash, evaluator, status, metrics, error); a3 failed once, then completed on a retry.
V1_ROWS = [
    ("a1", "standalone", "COMPLETE", {"val_accuracy": 0.91, "train_seconds": 12.5}, None),
    ("a2", "standalone", "DIVERGED", {"val_accuracy": 0.1}, "loss became NaN at step 40"),
    ("a3", "standalone", "FAILED", {}, "CUDA out of memory"),
    ("a3", "standalone", "COMPLETE", {"val_accuracy": 0.88}, None),
    ("a1", "supernet", "COMPLETE", {"log_prob": -3.25}, None),
    ("a4", "standalone", "RUNNING", {}, None),
]


def write_v1_store(path: Path) -> None:
    """Write the store that "version 1" of the toolkit would have left (the committed fixture).

    The tables are version 1's DDL as :mod:`analysis.results.schema` keeps it (the source of
    the migration); the committed fixture is the independent record of what version 1 wrote.
    Regenerate it with ``python -c "from tests.analysis.results.test_schema import *;
    write_v1_store(V1_FIXTURE)"`` after deleting it.
    """
    con = sqlite3.connect(path)
    con.executescript(";\n".join(_SCHEMA_V1) + ";\nPRAGMA user_version = 1;")
    stamp = "2025-03-01T12:00:{:02d}.000000+00:00"
    con.execute(
        "INSERT INTO runs VALUES ('demo', ?, ?, ?)",
        (json.dumps(V1_CONFIG, sort_keys=True), hash_config(V1_CONFIG), stamp.format(0)),
    )
    for i, (arch, evaluator, status, metrics, error) in enumerate(V1_ROWS, start=1):
        con.execute(
            "INSERT INTO evaluations (run, method, arch_hash, arch_json, seed, evaluator, "
            "evaluator_config_hash, status, metrics_json, error, created_at, started_at, "
            "finished_at) VALUES ('demo', 'random', ?, ?, 0, ?, 'cfg1', ?, ?, ?, ?, ?, ?)",
            (
                arch,
                json.dumps(ARCH),
                evaluator,
                status,
                json.dumps(metrics),
                error,
                stamp.format(i),
                stamp.format(i),
                None if status == "RUNNING" else stamp.format(i + 1),
            ),
        )
    # An id issued and then rolled back by hand: version 2 must not hand out id 7 again.
    con.execute(
        "INSERT INTO evaluations (run, method, arch_hash, arch_json, seed, evaluator, "
        "evaluator_config_hash, status, created_at) VALUES ('demo', 'random', 'gone', '[]', 0, "
        "'standalone', 'cfg1', 'PENDING', ?)",
        (stamp.format(9),),
    )
    con.execute("DELETE FROM evaluations WHERE arch_hash = 'gone'")
    con.execute("INSERT INTO state VALUES ('random', '{\"next\": 5}', ?)", (stamp.format(10),))
    con.commit()
    con.close()


def test_v1_fixture_is_what_write_v1_store_writes(tmp_path: Path) -> None:
    write_v1_store(tmp_path / "v1.sqlite")
    assert dump(V1_FIXTURE) == dump(tmp_path / "v1.sqlite")


def test_v1_store_migrates_to_v2_with_every_row(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite"
    shutil.copyfile(V1_FIXTURE, path)
    store = SQLiteStore(path)
    records = store.records()
    assert [r.id for r in records] == [1, 2, 3, 4, 5, 6]
    assert [(r.arch_hash, r.evaluator, r.status.name, r.attempt) for r in records] == [
        ("a1", "standalone", "COMPLETE", 1),
        ("a2", "standalone", "DIVERGED", 1),
        ("a3", "standalone", "FAILED", 1),
        ("a3", "standalone", "COMPLETE", 2),
        ("a1", "supernet", "COMPLETE", 1),
        ("a4", "standalone", "RUNNING", 1),
    ]
    assert [dict(r.metrics) for r in records] == [row[3] for row in V1_ROWS]
    assert records[1].error == "loss became NaN at step 40"
    assert all(r.host is None and r.pid is None and r.arch == ARCH for r in records)
    assert store.run_config("demo") == V1_CONFIG
    assert json.loads(store.get_state("random")) == {"next": 5}

    v1_key = EvalKey("a3", "standalone", "cfg1", 0)
    assert claim(store, v1_key).outcome is ClaimOutcome.CACHED
    new = claim(store, EvalKey("a5", "standalone", "cfg1", 0))
    assert new.record.id == 8  # id 7 was issued by version 1: never reused
    store.close()

    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == 2
        migrated = sorted(con.execute("SELECT type, name, sql FROM sqlite_master"))
    fresh_path = tmp_path / "fresh.sqlite"
    SQLiteStore(fresh_path).records()
    with sqlite3.connect(fresh_path) as con:
        fresh = sorted(con.execute("SELECT type, name, sql FROM sqlite_master"))
    assert migrated == fresh  # a migrated store is exactly a fresh one


def _refused_and_untouched(path: Path, error: type[Exception], match: str) -> None:
    """Opening the store ``path`` raises ``error`` and leaves the file byte for byte as it was."""
    before = path.read_bytes()
    with pytest.raises(error, match=match):
        SQLiteStore(path).records()
    assert path.read_bytes() == before


def test_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite"
    SQLiteStore(path).close()
    with sqlite3.connect(path) as con:
        con.execute("PRAGMA user_version = 3")
    _refused_and_untouched(path, StoreError, r"schema version 3, .*up to 2\. Upgrade dagrank")


def test_foreign_sqlite_database_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")
    _refused_and_untouched(path, StoreCorruptError, r"not a results store .*\['photos'\]")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.sqlite", "results.sqlite.lock"]
