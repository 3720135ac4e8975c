"""The SQLite backend of the results store, and reading a store file without changing it.

Nothing is pickled: architectures, metrics and configs are JSON text, statuses are their
names, times are ISO-8601 UTC text, so the ``sqlite3`` shell or ``pandas.read_sql`` can read a
store without this package (the tables: :mod:`analysis.results.schema`).

Beside ``results.sqlite`` live SQLite's ``-wal`` and ``-shm`` files, ``results.sqlite.lock``
(taken while a process opens the store) and, after a recovery, the damaged file as
``results.sqlite.corrupt-<UTC time>``.
"""

from __future__ import annotations

import json
import math
import os
import random
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from analysis.errors import StoreCorruptError, StoreError, StoreValueError
from analysis.results.contract import MUTABLE_FIELDS, ResultsStore, StoreTransaction
from analysis.results.records import EvalKey, EvalRecord, EvalStatus, ReadOnlyMetrics
from analysis.results.salvage import partial_page, recover_damaged
from analysis.results.schema import RECORD_COLUMNS, SCHEMA_VERSION, check_version, ensure_schema
from analysis.results.transactions import (
    SQLITE_FULL,
    SQLITE_IOERR,
    error_code,
    exclusive_lock,
    is_busy,
    is_corrupt,
    retry_busy,
    sqlite_transaction,
)
from dagspace.canonical_json import canonical_json

__all__ = ["SQLiteStore", "read_state", "store_problem"]

_T = TypeVar("_T")

_SELECT = f"SELECT {', '.join(RECORD_COLUMNS)} FROM evaluations"
_KEY_WHERE = "arch_hash = ? AND evaluator = ? AND evaluator_config_hash = ? AND seed = ?"
_INSERT = (
    f"INSERT INTO evaluations ({', '.join(RECORD_COLUMNS[1:])}) "
    f"VALUES ({', '.join('?' * (len(RECORD_COLUMNS) - 1))})"
)
_UPDATED = tuple("metrics_json" if name == "metrics" else name for name in MUTABLE_FIELDS)
_UPDATE = f"UPDATE evaluations SET {', '.join(f'{c} = ?' for c in _UPDATED)} WHERE id = ?"

# Connections that a forked child inherited. The child never uses them, and never closes them
# either: SQLite forbids carrying a connection across fork(), and closing one in the child could
# release or disturb locks that belong to the parent. Kept here so the garbage collector leaves
# them alone.
_INHERITED_CONNECTIONS: list[sqlite3.Connection] = []


class SQLiteStore(ResultsStore):
    """A :class:`ResultsStore` in one SQLite file, shared by the processes of one host.

    ``path``
        The database file (``RUN_DIR/results.sqlite``); created, or migrated from schema
        version 1, on first use. Its directory must exist.
    ``busy_timeout``
        Seconds SQLite itself waits for a lock before a statement reports ``database is
        locked``; ``lock_timeout``: seconds this class keeps retrying such a statement (with
        jittered exponential backoff) before giving up with :class:`StoreError`. The defaults
        (5 s and 10 min) are far beyond the few milliseconds a write holds the lock.
    ``synchronous``
        ``"FULL"`` (default): in WAL mode every commit is fsynced, so a finished evaluation
        survives a power cut, not only a crash of the process. One fsync per write is
        milliseconds, while a lost stand-alone result costs a GPU training run. ``"NORMAL"``
        is also accepted, for bulk writers that can afford to lose the last commits.

    The file is opened lazily, once per process (a child after ``fork`` opens its own), in WAL
    mode so that readers never wait for writers. Every write is one ``BEGIN IMMEDIATE``
    transaction. On every first open the file is checked (``PRAGMA quick_check``); a damaged
    or non-SQLite file is renamed to ``<name>.corrupt-<UTC time>`` (never deleted), every
    record that can still be read is copied into a fresh store at ``path``, and a
    :class:`StoreRecoveredWarning` says how many were recovered and where the damaged file
    went. Ids continue after the highest id the damaged file had issued, when its id counter
    is still readable. A page cut part-way is dropped whole (what is left of its rows cannot be
    verified). This recovery assumes that no other process still has the damaged file open;
    opening is serialised across processes by an ``flock`` on the sidecar ``<name>.lock``. A
    valid SQLite file that is not a results store raises :class:`StoreCorruptError` and is
    left untouched, as is a store of a newer schema version (:class:`StoreError`).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 5.0,
        lock_timeout: float = 600.0,
        synchronous: str = "FULL",
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise StoreValueError(
                f"The 'synchronous' parameter of SQLiteStore must be 'FULL' or 'NORMAL'; "
                f"got {synchronous!r}."
            )
        for name, value in (("busy_timeout", busy_timeout), ("lock_timeout", lock_timeout)):
            if not isinstance(value, (int, float)) or not value >= 0:
                raise StoreValueError(
                    f"The '{name}' parameter of SQLiteStore must be a number of seconds >= 0; "
                    f"got {value!r}."
                )
        self.path = Path(path)
        self._busy_timeout = float(busy_timeout)
        self._lock_timeout = float(lock_timeout)
        super().__init__()
        self._synchronous = synchronous
        self._jitter = random.Random()  # backoff jitter only; never the global RNG
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._lock = threading.RLock()
        self._lock_retries = 0

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    def __str__(self) -> str:
        return str(self.path)  # what the messages of the contract name

    def __getstate__(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "busy_timeout": self._busy_timeout,
            "lock_timeout": self._lock_timeout,
            "synchronous": self._synchronous,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["path"],
            busy_timeout=state["busy_timeout"],
            lock_timeout=state["lock_timeout"],
            synchronous=state["synchronous"],
        )

    @property
    def lock_retries(self) -> int:
        """How many transactions this process retried because the file was locked."""
        return self._lock_retries

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    # -- connection, transactions, retries -------------------------------------------------

    def _transact(self, fn: Callable[[StoreTransaction], _T], *, write: bool, what: str) -> _T:
        """Run ``fn`` in one transaction, retrying the whole of it while the file is locked."""
        if self._pid != os.getpid():  # we are a forked child: forget the parent's connection
            if self._conn is not None:
                _INHERITED_CONNECTIONS.append(self._conn)
            self._conn = None
            self._lock = threading.RLock()  # the parent's may have been held at fork time
            self._pid = os.getpid()
        deadline = time.monotonic() + self._lock_timeout
        delay = 0.002
        while True:
            try:
                with self._lock:
                    if self._conn is None:
                        self._conn = self._open()
                    return sqlite_transaction(
                        self._conn, lambda conn: fn(_SQLiteTransaction(conn)), write=write
                    )
            except sqlite3.Error as err:
                if is_busy(err) and time.monotonic() < deadline:
                    self._lock_retries += 1
                    time.sleep(delay * (0.5 + self._jitter.random()))
                    delay = min(2 * delay, 0.25)
                    continue
                raise self._wrap(err, what) from err

    def _wrap(self, err: sqlite3.Error, what: str) -> StoreError:
        if is_corrupt(err):
            return StoreCorruptError(
                f"The results store {self.path} is damaged ({err}) and {what} failed. Open it "
                f"again (a new SQLiteStore) to move the damaged file aside and recover every "
                f"readable record."
            )
        if is_busy(err):
            return StoreError(
                f"The results store {self.path} stayed locked for more than "
                f"{self._lock_timeout:g} s, so {what} gave up ({err})."
            )
        if error_code(err) in (SQLITE_IOERR, SQLITE_FULL):
            return StoreError(
                f"The results store {self.path}: {what} failed: {err} (is the disk full, or a "
                f"file-size limit reached?). Nothing of this {what} was stored and every record "
                f"stored before is intact; free some space and run again to resume."
            )
        return StoreError(f"The results store {self.path}: {what} failed: {err}.")

    def _open(self) -> sqlite3.Connection:
        """Open (creating, migrating or recovering the file first) this process's connection."""
        if not self.path.parent.is_dir():
            raise StoreError(
                f"The directory of the results store {self.path} does not exist; create the "
                f"run directory first."
            )
        with exclusive_lock(self.path.with_name(self.path.name + ".lock")):
            problem = self._diagnose()
            if problem is not None:
                recover_damaged(self.path, problem)
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout,
                isolation_level=None,  # autocommit: transactions are begun explicitly
                check_same_thread=False,  # shared by this process's threads, under self._lock
            )
            try:
                retry_busy(lambda: self._configure(conn), self._lock_timeout)
            except BaseException:
                conn.close()
                raise
            return conn

    def _configure(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
        # Before changing anything: refuse a newer version, or a database of something else.
        sqlite_transaction(conn, lambda conn: check_version(conn, self.path), write=False)
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            warnings.warn(
                f"The results store {self.path} could not be put in WAL mode (journal_mode is "
                f"{mode!r}; a network file system?): readers will wait for writers.",
                RuntimeWarning,
                stacklevel=7,  # _configure, lambda, retry_busy, _open, _transact, method, caller
            )
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        sqlite_transaction(conn, lambda conn: ensure_schema(conn, self.path), write=True)

    def _diagnose(self) -> str | None:
        """None if ``path`` is absent, empty, whole pages and passes ``quick_check``; else what
        is wrong.

        A file cut part-way through its last page passes ``quick_check`` (SQLite reads the
        missing bytes as zeros), so its size is checked first: a few times, a moment apart, in
        case a live process is extending it right now.
        """
        if not self.path.exists() or self.path.stat().st_size == 0:
            return None
        for wait in (0.0, 0.05, 0.2):
            time.sleep(wait)
            partial = partial_page(self.path)
            if partial is None:
                break
        else:
            return partial

        def check() -> str | None:
            conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None)
            try:
                return _quick_check(conn)
            except sqlite3.DatabaseError as err:
                if is_corrupt(err):
                    return str(err)
                raise
            finally:
                conn.close()

        try:
            return retry_busy(check, self._lock_timeout)
        except sqlite3.Error as err:
            raise self._wrap(err, "opening") from err


class _SQLiteTransaction(StoreTransaction):
    """The rows of one open SQLite transaction, as records."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def get(self, record_id: int) -> EvalRecord | None:
        row = self._conn.execute(f"{_SELECT} WHERE id = ?", (record_id,)).fetchone()
        return None if row is None else _record(row)

    def history(self, key: EvalKey) -> list[EvalRecord]:
        rows = self._conn.execute(
            f"{_SELECT} WHERE {_KEY_WHERE} ORDER BY attempt", _key_params(key)
        )
        return [_record(row) for row in rows]

    def latest(self, key: EvalKey) -> EvalRecord | None:
        row = self._conn.execute(
            f"{_SELECT} WHERE {_KEY_WHERE} ORDER BY attempt DESC LIMIT 1", _key_params(key)
        ).fetchone()
        return None if row is None else _record(row)

    def select(self, where: Mapping[str, Any]) -> list[EvalRecord]:
        params = [
            value.name if isinstance(value, EvalStatus) else value for value in where.values()
        ]
        clauses = " AND ".join(f"{column} = ?" for column in where)
        sql = f"{_SELECT}{f' WHERE {clauses}' if where else ''} ORDER BY id"
        return [_record(row) for row in self._conn.execute(sql, params)]

    def insert(self, record: EvalRecord) -> EvalRecord:
        row = _row(record)
        cursor = self._conn.execute(_INSERT, [row[column] for column in RECORD_COLUMNS[1:]])
        return self._stored(cursor.lastrowid)

    def update(self, record: EvalRecord) -> EvalRecord:
        row = _row(record)
        self._conn.execute(_UPDATE, [*(row[column] for column in _UPDATED), record.id])
        return self._stored(record.id)

    def _stored(self, record_id: int | None) -> EvalRecord:
        record = self.get(record_id)  # type: ignore[arg-type]
        assert record is not None  # just written, inside the same transaction
        return record

    def run(self, name: str) -> tuple[str, str] | None:
        row = self._conn.execute(
            "SELECT config_hash, config_json FROM runs WHERE name = ?", (name,)
        ).fetchone()
        return None if row is None else (row[0], row[1])

    def add_run(self, name: str, config_json: str, config_hash: str, created_at: str) -> None:
        self._conn.execute(
            "INSERT INTO runs (name, config_json, config_hash, created_at) VALUES (?, ?, ?, ?)",
            (name, config_json, config_hash, created_at),
        )

    def state(self, name: str) -> str | None:
        return _read_state(self._conn, name)

    def put_state(self, name: str, json_text: str, updated_at: str) -> None:
        self._conn.execute(
            "INSERT INTO state (name, value_json, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value_json = excluded.value_json, "
            "updated_at = excluded.updated_at",
            (name, json_text, updated_at),
        )


# -- reading without changing anything (the reading commands: plot, report) --------------------


def _read_only_connect(path: Path) -> sqlite3.Connection:
    """A connection that can neither write ``path`` nor create files beside it: ``immutable``
    when there is no ``-wal`` file (nothing uncommitted to read), else read-only (a live writer
    has the ``-wal`` and ``-shm`` files open; they are read, not made)."""
    uri = path.resolve().as_uri()
    wal = Path(f"{path}-wal")
    mode = "mode=ro" if wal.exists() else "mode=ro&immutable=1"
    return sqlite3.connect(f"{uri}?{mode}", uri=True, isolation_level=None)


def store_problem(path: str | os.PathLike[str]) -> str | None:
    """What is wrong with the results store file at ``path``, found without changing it or
    creating anything beside it; ``None`` when it is absent or a readable store.

    (:class:`SQLiteStore` moves a damaged file aside and salvages it when a job opens it; the
    reading commands only report the damage.)
    """
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return None
    partial = partial_page(path)
    if partial is not None:
        return partial
    try:
        conn = _read_only_connect(path)
        try:
            problem = _quick_check(conn)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error as err:
        return str(err)
    if problem is not None:
        return problem
    if not 1 <= version <= SCHEMA_VERSION:
        return f"not a results store of schema version 1..{SCHEMA_VERSION} (version {version})"
    return None


def read_state(path: str | os.PathLike[str], name: str) -> str | None:
    """The ``state`` entry ``name`` of the store at ``path``, read without changing anything
    (``None`` when the store or the entry is absent).

    Raises:
        StoreCorruptError: the file is damaged (:func:`store_problem` says how).
    """
    return _read_only(path, lambda conn: _read_state(conn, name))


def read_run_config(path: str | os.PathLike[str], name: str) -> dict[str, Any] | None:
    """The config the run ``name`` was registered with in the store at ``path``, read without
    changing anything (``None`` when the store or the run is absent): a job checks it before
    its first write.

    Raises:
        StoreCorruptError: the file is damaged (:func:`store_problem` says how).
    """

    def read(conn: sqlite3.Connection) -> str | None:
        row = conn.execute("SELECT config_json FROM runs WHERE name = ?", (name,)).fetchone()
        return None if row is None else row[0]

    text = _read_only(path, read)
    return None if text is None else json.loads(text)


def _read_only(path: str | os.PathLike[str], read: Callable[[sqlite3.Connection], Any]) -> Any:
    path = Path(path)
    problem = store_problem(path)
    if problem is not None:
        raise StoreCorruptError(f"The results store {path} is damaged ({problem}).")
    if not path.exists() or path.stat().st_size == 0:
        return None
    conn = _read_only_connect(path)
    try:
        return read(conn)
    except sqlite3.Error as err:
        raise StoreCorruptError(f"The results store {path} cannot be read ({err}).") from None
    finally:
        conn.close()


# -- rows and records --------------------------------------------------------------------------


def _record(row: Sequence[Any]) -> EvalRecord:
    values = dict(zip(RECORD_COLUMNS, row, strict=True))
    metrics = {
        name: (math.nan if value is None else float(value))
        for name, value in json.loads(values.pop("metrics_json")).items()
    }
    values["status"] = EvalStatus[values["status"]]
    return EvalRecord(metrics=ReadOnlyMetrics(metrics), **values)


def _row(record: EvalRecord) -> dict[str, Any]:
    """``record`` as the columns of a row of ``evaluations``."""
    row = {**vars(record), "status": record.status.name}
    row["metrics_json"] = _metrics_json(row.pop("metrics"))
    return row


def _metrics_json(metrics: Mapping[str, float]) -> str:
    """Checked metrics as JSON text; a non-finite value is ``null`` (JSON has no NaN)."""
    clean = {name: value if math.isfinite(value) else None for name, value in metrics.items()}
    return canonical_json(clean)


def _key_params(key: EvalKey) -> tuple[Any, ...]:
    return (key.arch_hash, key.evaluator, key.evaluator_config_hash, key.seed)


def _read_state(conn: sqlite3.Connection, name: str) -> str | None:
    row = conn.execute("SELECT value_json FROM state WHERE name = ?", (name,)).fetchone()
    return None if row is None else row[0]


def _quick_check(conn: sqlite3.Connection) -> str | None:
    """``None`` if ``PRAGMA quick_check`` finds nothing wrong; else its first findings."""
    rows = conn.execute("PRAGMA quick_check").fetchall()
    if rows == [("ok",)]:
        return None
    return "; ".join(str(row[0]) for row in rows[:3]).replace("\n", " ")[:300]
