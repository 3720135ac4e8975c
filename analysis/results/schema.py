"""The SQLite schema of a results store: its DDL, its version, and the migration from version 1.

Schema, version 2 (``PRAGMA user_version = 2``)::

    runs(name TEXT PRIMARY KEY, config_json TEXT, config_hash TEXT, created_at TEXT)
    evaluations(
        id INTEGER PRIMARY KEY AUTOINCREMENT,     -- unique, increasing, never reused
        run TEXT, method TEXT,                    -- who first asked for this evaluation
        arch_hash TEXT, arch_json TEXT,           -- arch_json: a JSON list of NAS-Bench-101 cells
        seed INTEGER, evaluator TEXT, evaluator_config_hash TEXT,   -- with arch_hash: the key
        status TEXT,                              -- PENDING RUNNING COMPLETE DIVERGED FAILED
        attempt INTEGER,                          -- 1, 2, ... per key; UNIQUE(key, attempt)
        metrics_json TEXT,                        -- {"name": float}; non-finite values as null
        error TEXT, created_at TEXT, started_at TEXT, finished_at TEXT,
        host TEXT, pid INTEGER)                   -- the worker that holds a RUNNING record
    state(name TEXT PRIMARY KEY, value_json TEXT, updated_at TEXT)
    VIEW evaluations_flat                         -- one row per (evaluation, metric)

Version 1 had the same tables without ``attempt``, ``host`` and ``pid`` (and without the view);
:class:`~analysis.results.sqlite.SQLiteStore` migrates it in place on open, numbering the
attempts of a key by id.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from analysis.errors import StoreCorruptError, StoreError
from analysis.results.records import EvalStatus

__all__ = ["SCHEMA_VERSION"]

SCHEMA_VERSION = 2

_STATUS_CHECK = ", ".join(f"'{status.name}'" for status in EvalStatus)

# The columns of ``evaluations``, version 2: (name, type, constraints).
_EVALUATION_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("id", "INTEGER", "PRIMARY KEY AUTOINCREMENT"),
    ("run", "TEXT", "NOT NULL"),
    ("method", "TEXT", "NOT NULL"),
    ("arch_hash", "TEXT", "NOT NULL"),
    ("arch_json", "TEXT", "NOT NULL"),
    ("seed", "INTEGER", "NOT NULL"),
    ("evaluator", "TEXT", "NOT NULL"),
    ("evaluator_config_hash", "TEXT", "NOT NULL"),
    ("status", "TEXT", f"NOT NULL CHECK (status IN ({_STATUS_CHECK}))"),
    ("attempt", "INTEGER", "NOT NULL DEFAULT 1 CHECK (attempt >= 1)"),
    ("metrics_json", "TEXT", "NOT NULL DEFAULT '{}'"),
    ("error", "TEXT", ""),
    ("created_at", "TEXT", "NOT NULL"),
    ("started_at", "TEXT", ""),
    ("finished_at", "TEXT", ""),
    ("host", "TEXT", ""),
    ("pid", "INTEGER", ""),
)
# Version 1: the same, without attempt, host and pid, and with no CHECK on the status.
_EVALUATION_COLUMNS_V1 = tuple(
    (name, kind, "NOT NULL" if name == "status" else rest)
    for name, kind, rest in _EVALUATION_COLUMNS
    if name not in ("attempt", "host", "pid")
)
RECORD_COLUMNS = tuple(name for name, _, _ in _EVALUATION_COLUMNS)
_V1_COLUMNS = tuple(name for name, _, _ in _EVALUATION_COLUMNS_V1)


def _create_evaluations(columns: tuple[tuple[str, str, str], ...]) -> str:
    lines = ",\n".join(f"    {name:<21} {kind:<7} {rest}".rstrip() for name, kind, rest in columns)
    return f"CREATE TABLE evaluations (\n{lines}\n)"


_CREATE_EVALUATIONS = _create_evaluations(_EVALUATION_COLUMNS)
_CREATE_RUNS = """CREATE TABLE runs (
    name        TEXT PRIMARY KEY NOT NULL,
    config_json TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    created_at  TEXT NOT NULL
)"""
_CREATE_STATE = """CREATE TABLE state (
    name       TEXT PRIMARY KEY NOT NULL,
    value_json TEXT NOT NULL,
    updated_at TEXT NOT NULL
)"""

_SCHEMA_V2: tuple[str, ...] = (_CREATE_RUNS, _CREATE_EVALUATIONS, _CREATE_STATE)
_INDEXES_AND_VIEWS_V2: tuple[str, ...] = (
    "CREATE UNIQUE INDEX evaluations_key "
    "ON evaluations (arch_hash, evaluator, evaluator_config_hash, seed, attempt)",
    "CREATE INDEX evaluations_run_method ON evaluations (run, method)",
    """CREATE VIEW evaluations_flat AS
SELECT e.id, e.run, e.method, e.arch_hash, e.seed, e.evaluator, e.evaluator_config_hash,
       e.status, e.attempt, m.key AS metric, m.value AS value, e.finished_at
FROM evaluations AS e, json_each(e.metrics_json) AS m""",
)
# What version 1 of the toolkit created (the source of the migration; the tests' fixture).
_SCHEMA_V1: tuple[str, ...] = (
    _CREATE_RUNS,
    _create_evaluations(_EVALUATION_COLUMNS_V1),
    "CREATE INDEX evaluations_key "
    "ON evaluations (arch_hash, evaluator, evaluator_config_hash, seed)",
    _CREATE_STATE,
)


def check_version(conn: sqlite3.Connection, path: Path) -> int:
    """The schema version of the store ``path``; refuse a newer one, or a database of
    something else."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"The results store {path} has schema version {version}, but this version "
            f"of dagrank reads schema versions up to {SCHEMA_VERSION}. Upgrade dagrank to "
            f"read it; the file was not changed."
        )
    tables = sorted(
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    )
    if version == 0 and tables:
        raise StoreCorruptError(
            f"{path} is an SQLite database but not a results store (schema version 0, "
            f"tables {tables}); it was left untouched. Move it away or pick another path."
        )
    return version


def ensure_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Create or migrate the schema of the store ``path`` (inside the caller's write
    transaction)."""
    version = check_version(conn, path)
    if version == SCHEMA_VERSION:
        return
    if version == 0:
        create_schema(conn)
    elif version == 1:
        _migrate_v1_to_v2(conn)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    else:  # pragma: no cover - there is no other version
        raise StoreError(f"The results store {path} has unknown schema version {version}.")


def create_schema(conn: sqlite3.Connection) -> None:
    """Create the tables, indexes and view of an empty store (inside a write transaction)."""
    for statement in (*_SCHEMA_V2, *_INDEXES_AND_VIEWS_V2):
        conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _migrate_v1_to_v2(conn: sqlite3.Connection) -> None:
    """Rebuild ``evaluations`` with attempt/host/pid (inside the caller's write transaction).

    The table is rebuilt rather than altered so that a migrated store has exactly the schema
    of a fresh one. Attempts are numbered per key in id order; ids and the id sequence are kept.
    """
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'evaluations'").fetchone()
    old_seq = 0 if row is None else int(row[0])
    for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('index', 'view', 'trigger') "
        "AND sql IS NOT NULL"
    ).fetchall():
        kind = conn.execute("SELECT type FROM sqlite_master WHERE name = ?", (name,)).fetchone()[0]
        conn.execute(f'DROP {kind.upper()} "{name}"')
    conn.execute("ALTER TABLE evaluations RENAME TO evaluations_v1")
    conn.execute(_CREATE_EVALUATIONS)
    columns = ", ".join(_V1_COLUMNS)
    conn.execute(
        f"INSERT INTO evaluations ({columns}, attempt) SELECT {columns}, ROW_NUMBER() OVER "
        f"(PARTITION BY arch_hash, evaluator, evaluator_config_hash, seed ORDER BY id) "
        f"FROM evaluations_v1 ORDER BY id"
    )
    conn.execute("DROP TABLE evaluations_v1")
    for statement in _INDEXES_AND_VIEWS_V2:
        conn.execute(statement)
    conn.execute(
        "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'evaluations'", (old_seq,)
    )
