"""Issue 6, item 10: a results store is readable without the toolkit, and old ones migrate.

A store written by the toolkit (and still open in the process that writes it) is read three
ways that know nothing of ``dagrank``: the ``sqlite3`` command-line shell, Python's ``sqlite3``
module in a fresh interpreter that never imports the toolkit, and pandas alone
(``pd.read_sql``). Its schema version is stored in the file. A store written by schema version 1
(the committed fixture ``tests/analysis/fixtures/results_v1.sqlite``) opens, migrates in place
with every row, survives a migration that is interrupted half way, and is then as readable.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from analysis.results import SCHEMA_VERSION, EvalStatus, SQLiteStore
from tests.analysis.results.conftest import dump
from tests.reliability.conftest import V1_FIXTURE, put

SHELL = shutil.which("sqlite3")
N = 6


@pytest.fixture
def open_store(run_dir: Path):
    """A store with N evaluations (one FAILED), a run and a state entry, still open."""
    store = SQLiteStore(run_dir / "results.sqlite")
    store.register_run("r", {"budget": N})
    store.set_state("random", '{"next": 6}')
    for i in range(N):
        put(store, f"a{i}", i / 10, failed=i == 3)
    yield store
    store.close()


def _shell(path: Path, sql: str) -> str:
    done = subprocess.run(
        [SHELL, "-readonly", "-separator", "|", str(path), sql],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and not done.stderr, done
    return done.stdout.strip()


@pytest.mark.skipif(SHELL is None, reason="no sqlite3 shell on PATH; the stdlib test stands in")
def test_the_sqlite3_shell_reads_an_open_store(open_store: SQLiteStore) -> None:
    path = open_store.path
    assert Path(f"{path}-wal").exists()  # the writer still has it open, commits in the WAL
    assert _shell(path, "PRAGMA user_version;") == str(SCHEMA_VERSION) == "2"
    assert _shell(path, "SELECT count(*) FROM evaluations;") == str(N)
    assert _shell(path, "SELECT status, count(*) FROM evaluations GROUP BY status;") == (
        "COMPLETE|5\nFAILED|1"
    )
    rows = _shell(path, "SELECT id, arch_hash, attempt FROM evaluations ORDER BY id;")
    assert rows.splitlines() == [f"{i + 1}|a{i}|1" for i in range(N)]
    flat = _shell(path, "SELECT id, metric, value FROM evaluations_flat ORDER BY id;")
    assert flat.splitlines() == [f"{i + 1}|m_a{i}|{i / 10}" for i in range(N)]
    assert _shell(path, "SELECT config_json FROM runs;") == '{"budget":6}'
    assert _shell(path, "SELECT value_json FROM state WHERE name = 'random';") == '{"next": 6}'
    schema = _shell(path, ".tables")
    assert set(schema.split()) == {"evaluations", "evaluations_flat", "runs", "state"}


READ_WITHOUT_TOOLKIT = textwrap.dedent(
    """
    import json, sqlite3, sys
    import pandas as pd

    con = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
    version = con.execute("PRAGMA user_version").fetchone()[0]
    frame = pd.read_sql("SELECT * FROM evaluations ORDER BY id", con)
    flat = pd.read_sql("SELECT id, metric, value FROM evaluations_flat ORDER BY id", con)
    runs = con.execute("SELECT name, config_json FROM runs").fetchall()
    toolkit = sorted(m for m in sys.modules if m.split(".")[0] in
                     ("analysis", "dagspace", "surrogate", "scripts"))
    print(json.dumps({
        "version": version,
        "columns": list(frame.columns),
        "ids": frame["id"].tolist(),
        "status": frame["status"].tolist(),
        "metrics": [json.loads(text) for text in frame["metrics_json"]],
        "flat": flat.values.tolist(),
        "runs": runs,
        "toolkit_modules": toolkit,
    }))
    """
)


def _read_without_toolkit(path: Path) -> dict:
    """What a fresh interpreter (``-I``: no PYTHONPATH, no site of ours) reads from ``path``."""
    done = subprocess.run(
        [sys.executable, "-I", "-c", READ_WITHOUT_TOOLKIT, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_python_sqlite3_and_pandas_alone_read_an_open_store(open_store: SQLiteStore) -> None:
    """A fresh interpreter (``-I``: no PYTHONPATH, no site of ours) reads it with pandas."""
    got = _read_without_toolkit(open_store.path)
    assert got["toolkit_modules"] == []  # read without importing any of dagrank
    assert got["version"] == SCHEMA_VERSION
    assert got["ids"] == list(range(1, N + 1))
    assert got["status"] == ["COMPLETE"] * 3 + ["FAILED"] + ["COMPLETE"] * 2
    assert got["metrics"] == [{f"m_a{i}": i / 10} for i in range(N)]
    assert got["flat"] == [[i + 1, f"m_a{i}", i / 10] for i in range(N)]
    assert got["runs"] == [["r", '{"budget":6}']]
    for column in ("attempt", "host", "pid", "arch_json", "created_at", "finished_at"):
        assert column in got["columns"]
    # What the toolkit itself reads is the same.
    records = open_store.records()
    assert [r.id for r in records] == got["ids"]
    assert [r.status.name for r in records] == got["status"]


def _v1_copy(run_dir: Path) -> Path:
    path = run_dir / "results.sqlite"
    shutil.copyfile(V1_FIXTURE, path)
    con = sqlite3.connect(path)
    try:  # the fixture really is version 1: no attempt, host or pid columns
        assert con.execute("PRAGMA user_version").fetchone()[0] == 1
        columns = [row[1] for row in con.execute("PRAGMA table_info(evaluations)")]
        assert "attempt" not in columns and "pid" not in columns
        assert con.execute("SELECT count(*) FROM evaluations").fetchone()[0] == 6
    finally:
        con.close()
    return path


def test_a_version_1_store_opens_migrates_and_stays_readable(run_dir: Path) -> None:
    path = _v1_copy(run_dir)
    with SQLiteStore(path) as store:
        records = store.records()
        assert len(records) == 6
        assert [(r.arch_hash, r.status.name, r.attempt) for r in records] == [
            ("a1", "COMPLETE", 1),
            ("a2", "DIVERGED", 1),
            ("a3", "FAILED", 1),
            ("a3", "COMPLETE", 2),
            ("a1", "COMPLETE", 1),
            ("a4", "RUNNING", 1),
        ]
        assert store.run_config("demo") == {"budget": 4, "dataset": "digits", "seed": 0}
        new = put(store, "after-migration", 1.0)
        assert new.id == 8 and new.status is EvalStatus.COMPLETE  # id 7 was issued by v1
    if SHELL is not None:
        assert _shell(path, "PRAGMA user_version;") == "2"
        assert _shell(path, "SELECT count(*), max(attempt) FROM evaluations;") == "7|2"
    got = _read_without_toolkit(path)
    assert got["version"] == 2 and got["ids"] == [1, 2, 3, 4, 5, 6, 8]


def test_an_interrupted_migration_leaves_version_1_whole_and_is_redone(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The migration is one transaction: killed half way, the file is still all version 1."""
    import analysis.results.schema

    path = _v1_copy(run_dir)
    before = dump(path)
    real = analysis.results.schema._migrate_v1_to_v2

    def half_then_crash(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE evaluations RENAME TO evaluations_v1")  # the first step
        conn.execute("CREATE TABLE evaluations (id INTEGER PRIMARY KEY)")
        raise KeyboardInterrupt  # Ctrl-C in the middle of the migration

    monkeypatch.setattr(analysis.results.schema, "_migrate_v1_to_v2", half_then_crash)
    with pytest.raises(KeyboardInterrupt):
        SQLiteStore(path).records()
    monkeypatch.setattr(analysis.results.schema, "_migrate_v1_to_v2", real)

    con = sqlite3.connect(path)
    try:
        assert con.execute("PRAGMA user_version").fetchone()[0] == 1
        tables = con.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        assert ("evaluations_v1",) not in tables and ("evaluations",) in tables
        assert con.execute("SELECT count(*) FROM evaluations").fetchone()[0] == 6
    finally:
        con.close()
    assert dump(path) == before  # every table and row as it was (only WAL mode is new)

    with SQLiteStore(path) as store:  # the next open migrates for real
        assert [r.attempt for r in store.records()] == [1, 1, 1, 2, 1, 1]
