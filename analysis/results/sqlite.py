"""The SQLite backend of the results store, and reading a store file without changing it.

Nothing is pickled: architectures, metrics and configs are JSON text, statuses are their
names, times are ISO-8601 UTC text, so the ``sqlite3`` shell or ``pandas.read_sql`` can read a
store without this package (the tables: :mod:`analysis.results.schema`).

Beside ``results.sqlite`` live SQLite's ``-wal`` and ``-shm`` files, ``results.sqlite.lock``
(taken while a process opens the store) and, after a recovery, the damaged file as
``results.sqlite.corrupt-<UTC time>``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import math
import os
import random
import socket
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from analysis.errors import (
    RecordNotFoundError,
    RunConflictError,
    StoreCorruptError,
    StoreError,
    StoreRecoveredWarning,
    StoreValueError,
)
from analysis.results.contract import ResultsStore, _pid_alive
from analysis.results.records import (
    Claim,
    ClaimOutcome,
    EvalKey,
    EvalRecord,
    EvalStatus,
    _canonical_arch,
    _canonical_json,
    _check_error,
    _check_finished_status,
    _check_id,
    _check_key,
    _check_stale_after,
    _check_status,
    _check_text,
    _config_differences,
    _metrics_json,
    _now,
    _ReadOnlyMetrics,
)
from analysis.results.salvage import _partial_page, _salvage, _write_salvage
from analysis.results.schema import (
    _INDEXES_AND_VIEWS_V2,
    _RECORD_COLUMNS,
    _SCHEMA_V2,
    SCHEMA_VERSION,
    _migrate_v1_to_v2,
)
from analysis.results.transactions import (
    _SQLITE_FULL,
    _SQLITE_IOERR,
    _error_code,
    _exclusive_lock,
    _is_busy,
    _is_corrupt,
    _retry_busy,
    _transaction,
)

__all__ = ["SQLiteStore", "read_state", "store_problem"]

_T = TypeVar("_T")

_SELECT = f"SELECT {', '.join(_RECORD_COLUMNS)} FROM evaluations"
_KEY_WHERE = "arch_hash = ? AND evaluator = ? AND evaluator_config_hash = ? AND seed = ?"

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
        self._synchronous = synchronous
        self._host = socket.gethostname()
        self._jitter = random.Random()  # backoff jitter only; never the global RNG
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._lock = threading.RLock()
        self._lock_retries = 0

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

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

    # -- evaluations -----------------------------------------------------------------------

    def claim(
        self,
        key: EvalKey,
        *,
        run: str,
        method: str,
        arch_json: str | Sequence[Mapping[str, Any]],
        host: str | None = None,
        max_attempts: int = 3,
        stale_after: float | None = None,
    ) -> Claim:
        _check_key(key)
        _check_text("run", run)
        _check_text("method", method)
        arch_text = _canonical_arch(arch_json)
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise StoreValueError(
                f"The 'max_attempts' parameter of claim must be an integer >= 1; "
                f"got {max_attempts!r}."
            )
        _check_stale_after(stale_after)
        worker = self._worker(host)

        def txn(conn: sqlite3.Connection) -> Claim:
            latest = self._reap_if_stale(conn, _latest(conn, key), stale_after)
            if latest is None:
                record = self._insert(
                    conn, key, run, method, arch_text, EvalStatus.RUNNING, 1, worker=worker
                )
                return Claim(record, ClaimOutcome.ACQUIRED)
            if latest.status in (EvalStatus.COMPLETE, EvalStatus.DIVERGED):
                return Claim(latest, ClaimOutcome.CACHED)
            if latest.status is EvalStatus.RUNNING:
                return Claim(latest, ClaimOutcome.BUSY)
            if latest.status is EvalStatus.PENDING:
                conn.execute(
                    "UPDATE evaluations SET status = 'RUNNING', started_at = ?, host = ?, pid = ? "
                    "WHERE id = ?",
                    (_now(), worker[0], worker[1], latest.id),
                )
                return Claim(_get(conn, latest.id), ClaimOutcome.ACQUIRED)
            if latest.attempt >= max_attempts:  # FAILED, no attempts left
                return Claim(latest, ClaimOutcome.EXHAUSTED)
            record = self._insert(
                conn,
                key,
                run,
                method,
                arch_text,
                EvalStatus.RUNNING,
                latest.attempt + 1,
                worker=worker,
            )
            return Claim(record, ClaimOutcome.ACQUIRED)

        return self._run(txn, write=True, what="claim")

    def enqueue(
        self,
        key: EvalKey,
        *,
        run: str,
        method: str,
        arch_json: str | Sequence[Mapping[str, Any]],
    ) -> EvalRecord:
        _check_key(key)
        _check_text("run", run)
        _check_text("method", method)
        arch_text = _canonical_arch(arch_json)

        def txn(conn: sqlite3.Connection) -> EvalRecord:
            latest = _latest(conn, key)
            if latest is not None:
                return latest
            return self._insert(conn, key, run, method, arch_text, EvalStatus.PENDING, 1)

        return self._run(txn, write=True, what="enqueue")

    def finish(
        self,
        record_id: int,
        status: EvalStatus,
        metrics: Mapping[str, float],
        error: str | None = None,
    ) -> EvalRecord:
        record_id = _check_id(record_id)
        status = _check_finished_status(status, "finish")
        metrics_text = _metrics_json(metrics)
        _check_error(error)

        def txn(conn: sqlite3.Connection) -> EvalRecord:
            record = _get(conn, record_id)
            if record is None:
                raise RecordNotFoundError(f"No evaluation record has id {record_id} in {self}.")
            if record.status.is_finished:
                raise StoreError(
                    f"Record {record_id} is already {record.status.name} (finished at "
                    f"{record.finished_at}, error {record.error!r}); finished records are "
                    f"immutable, so the {status.name} result given now was not stored."
                )
            conn.execute(
                "UPDATE evaluations SET status = ?, metrics_json = ?, error = ?, finished_at = ? "
                "WHERE id = ?",
                (status.name, metrics_text, error, _now(), record_id),
            )
            return _get(conn, record_id)

        return self._run(txn, write=True, what="finish")

    def add(
        self,
        key: EvalKey,
        *,
        run: str,
        method: str,
        arch_json: str | Sequence[Mapping[str, Any]],
        status: EvalStatus,
        metrics: Mapping[str, float],
        error: str | None = None,
        host: str | None = None,
        stale_after: float | None = None,
    ) -> EvalRecord:
        _check_key(key)
        _check_text("run", run)
        _check_text("method", method)
        arch_text = _canonical_arch(arch_json)
        status = _check_finished_status(status, "add")
        metrics_text = _metrics_json(metrics)
        _check_error(error)
        _check_stale_after(stale_after)
        worker = self._worker(host)

        def txn(conn: sqlite3.Connection) -> EvalRecord:
            latest = self._reap_if_stale(conn, _latest(conn, key), stale_after)
            if latest is not None and latest.status in (EvalStatus.COMPLETE, EvalStatus.DIVERGED):
                return latest
            if latest is not None and latest.status is EvalStatus.RUNNING:
                raise StoreError(
                    f"Cannot add a result for {key}: record {latest.id} of that key is RUNNING "
                    f"on host {latest.host!r} (pid {latest.pid}) since {latest.started_at}. "
                    f"Finish that record, or pass stale_after if its worker is gone."
                )
            now = _now()
            if latest is not None and latest.status is EvalStatus.PENDING:
                conn.execute(
                    "UPDATE evaluations SET status = ?, metrics_json = ?, error = ?, "
                    "started_at = ?, finished_at = ?, host = ?, pid = ? WHERE id = ?",
                    (status.name, metrics_text, error, now, now, *worker, latest.id),
                )
                return _get(conn, latest.id)
            attempt = 1 if latest is None else latest.attempt + 1
            return self._insert(
                conn,
                key,
                run,
                method,
                arch_text,
                status,
                attempt,
                worker=worker,
                metrics_text=metrics_text,
                error=error,
                finished=True,
            )

        return self._run(txn, write=True, what="add")

    def get(self, record_id: int) -> EvalRecord:
        record_id = _check_id(record_id)
        record = self._run(lambda conn: _get(conn, record_id), write=False, what="get")
        if record is None:
            raise RecordNotFoundError(f"No evaluation record has id {record_id} in {self}.")
        return record

    def find(self, key: EvalKey) -> EvalRecord | None:
        _check_key(key)
        return self._run(lambda conn: _latest(conn, key), write=False, what="find")

    def history(self, key: EvalKey) -> list[EvalRecord]:
        _check_key(key)
        sql = f"{_SELECT} WHERE {_KEY_WHERE} ORDER BY attempt"
        return self._run(
            lambda conn: [_record(row) for row in conn.execute(sql, _key_params(key))],
            write=False,
            what="history",
        )

    def records(
        self,
        run: str | None = None,
        method: str | None = None,
        status: EvalStatus | None = None,
        evaluator: str | None = None,
    ) -> list[EvalRecord]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (("run", run), ("method", method), ("evaluator", evaluator)):
            if value is not None:
                _check_text(column, value)
                clauses.append(f"{column} = ?")
                params.append(value)
        if status is not None:
            clauses.append("status = ?")
            params.append(_check_status(status, "records").name)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"{_SELECT}{where} ORDER BY id"
        return self._run(
            lambda conn: [_record(row) for row in conn.execute(sql, params)],
            write=False,
            what="records",
        )

    # -- runs and state --------------------------------------------------------------------

    def register_run(self, run: str, config: Mapping[str, Any]) -> None:
        _check_text("run", run)
        if not isinstance(config, Mapping):
            raise StoreValueError(
                f"The 'config' of register_run must be a mapping; got {type(config).__name__}."
            )
        config_text = _canonical_json(config, "config")
        config_hash = hashlib.sha256(config_text.encode()).hexdigest()

        def txn(conn: sqlite3.Connection) -> None:
            row = conn.execute(
                "SELECT config_hash, config_json FROM runs WHERE name = ?", (run,)
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO runs (name, config_json, config_hash, created_at) "
                    "VALUES (?, ?, ?, ?)",
                    (run, config_text, config_hash, _now()),
                )
            elif row[0] != config_hash:
                raise RunConflictError(
                    f"Run {run!r} is already registered in {self.path} with config hash "
                    f"{row[0]}, but the config given now hashes to {config_hash}. Nothing was "
                    f"changed: the results already stored for {run!r} are intact. The configs "
                    f"differ in (stored != given): {_config_differences(row[1], config_text)}. "
                    f"Use a new run name (or run directory) for the new config, or the original "
                    f"config to resume."
                )

        self._run(txn, write=True, what="register_run")

    def run_config(self, run: str) -> dict[str, Any] | None:
        _check_text("run", run)
        row = self._run(
            lambda conn: conn.execute(
                "SELECT config_json FROM runs WHERE name = ?", (run,)
            ).fetchone(),
            write=False,
            what="run_config",
        )
        return None if row is None else json.loads(row[0])

    def set_state(self, name: str, json_text: str) -> None:
        _check_text("name", name)
        if not isinstance(json_text, str):
            raise StoreValueError(
                f"The 'json_text' of set_state must be a JSON string; "
                f"got {type(json_text).__name__}."
            )
        try:
            json.loads(json_text)
        except ValueError as err:
            raise StoreValueError(
                f"The 'json_text' of set_state({name!r}) is not valid JSON ({err}); "
                f"got {json_text!r:.200}."
            ) from None
        self._run(
            lambda conn: conn.execute(
                "INSERT INTO state (name, value_json, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value_json = excluded.value_json, "
                "updated_at = excluded.updated_at",
                (name, json_text, _now()),
            ),
            write=True,
            what="set_state",
        )

    def get_state(self, name: str) -> str | None:
        _check_text("name", name)
        row = self._run(
            lambda conn: conn.execute(
                "SELECT value_json FROM state WHERE name = ?", (name,)
            ).fetchone(),
            write=False,
            what="get_state",
        )
        return None if row is None else row[0]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    # -- helpers that need the store -------------------------------------------------------

    def _worker(self, host: str | None) -> tuple[str, int | None]:
        """The (host, pid) recorded for a worker; a pid only means something on this host."""
        if host is None:
            return self._host, os.getpid()
        _check_text("host", host)
        return host, (os.getpid() if host == self._host else None)

    def _is_stale(self, record: EvalRecord, stale_after: float | None) -> bool:
        if record.host == self._host and record.pid is not None and not _pid_alive(record.pid):
            return True
        if stale_after is not None and record.started_at is not None:
            started = dt.datetime.fromisoformat(record.started_at)
            return (dt.datetime.now(dt.UTC) - started).total_seconds() > stale_after
        return False

    def _reap_if_stale(
        self, conn: sqlite3.Connection, record: EvalRecord | None, stale_after: float | None
    ) -> EvalRecord | None:
        """Finish a stale RUNNING ``record`` as FAILED ("worker died"); return it as stored."""
        if record is None or record.status is not EvalStatus.RUNNING:
            return record
        if not self._is_stale(record, stale_after):
            return record
        error = (
            f"worker died: host {record.host!r} pid {record.pid} started {record.started_at}; "
            f"found stale by host {self._host!r} pid {os.getpid()}"
            + (f" (stale_after={stale_after} s)" if stale_after is not None else "")
        )
        conn.execute(
            "UPDATE evaluations SET status = 'FAILED', error = ?, finished_at = ? "
            "WHERE id = ? AND status = 'RUNNING'",
            (error, _now(), record.id),
        )
        return _get(conn, record.id)

    def _insert(
        self,
        conn: sqlite3.Connection,
        key: EvalKey,
        run: str,
        method: str,
        arch_text: str,
        status: EvalStatus,
        attempt: int,
        *,
        worker: tuple[str, int | None] | None = None,
        metrics_text: str = "{}",
        error: str | None = None,
        finished: bool = False,
    ) -> EvalRecord:
        now = _now()
        host, pid = worker if worker is not None else (None, None)
        cursor = conn.execute(
            "INSERT INTO evaluations (run, method, arch_hash, arch_json, seed, evaluator, "
            "evaluator_config_hash, status, attempt, metrics_json, error, created_at, "
            "started_at, finished_at, host, pid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "?, ?, ?, ?)",
            (
                run,
                method,
                key.arch_hash,
                arch_text,
                key.seed,
                key.evaluator,
                key.evaluator_config_hash,
                status.name,
                attempt,
                metrics_text,
                error,
                now,
                now if worker is not None else None,
                now if finished else None,
                host,
                pid,
            ),
        )
        record = _get(conn, cursor.lastrowid)
        assert record is not None  # just inserted, inside the same transaction
        return record

    # -- connection, transactions, retries -------------------------------------------------

    def _run(self, fn: Callable[[sqlite3.Connection], _T], *, write: bool, what: str) -> _T:
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
                    return _transaction(self._conn, fn, write=write)
            except sqlite3.Error as err:
                if _is_busy(err) and time.monotonic() < deadline:
                    self._lock_retries += 1
                    time.sleep(delay * (0.5 + self._jitter.random()))
                    delay = min(2 * delay, 0.25)
                    continue
                raise self._wrap(err, what) from err

    def _wrap(self, err: sqlite3.Error, what: str) -> StoreError:
        if _is_corrupt(err):
            return StoreCorruptError(
                f"The results store {self.path} is damaged ({err}) and {what} failed. Open it "
                f"again (a new SQLiteStore) to move the damaged file aside and recover every "
                f"readable record."
            )
        if _is_busy(err):
            return StoreError(
                f"The results store {self.path} stayed locked for more than "
                f"{self._lock_timeout:g} s, so {what} gave up ({err})."
            )
        if _error_code(err) in (_SQLITE_IOERR, _SQLITE_FULL):
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
        with _exclusive_lock(self.path.with_name(self.path.name + ".lock")):
            problem = self._diagnose()
            if problem is not None:
                self._recover(problem)
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout,
                isolation_level=None,  # autocommit: transactions are begun explicitly
                check_same_thread=False,  # shared by this process's threads, under self._lock
            )
            try:
                _retry_busy(lambda: self._configure(conn), self._lock_timeout)
            except BaseException:
                conn.close()
                raise
            return conn

    def _configure(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
        _transaction(conn, self._check_version, write=False)  # before changing anything
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            warnings.warn(
                f"The results store {self.path} could not be put in WAL mode (journal_mode is "
                f"{mode!r}; a network file system?): readers will wait for writers.",
                RuntimeWarning,
                stacklevel=5,
            )
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        _transaction(conn, self._ensure_schema, write=True)

    def _check_version(self, conn: sqlite3.Connection) -> int:
        """The file's schema version; refuse a newer one, or a database of something else."""
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"The results store {self.path} has schema version {version}, but this version "
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
                f"{self.path} is an SQLite database but not a results store (schema version 0, "
                f"tables {tables}); it was left untouched. Move it away or pick another path."
            )
        return version

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        """Create or migrate the schema (inside the caller's write transaction)."""
        version = self._check_version(conn)
        if version == SCHEMA_VERSION:
            return
        if version == 0:
            for statement in (*_SCHEMA_V2, *_INDEXES_AND_VIEWS_V2):
                conn.execute(statement)
        elif version == 1:
            _migrate_v1_to_v2(conn)
        else:  # pragma: no cover - there is no other version
            raise StoreError(f"The results store {self.path} has unknown schema version {version}.")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

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
            partial = _partial_page(self.path)
            if partial is None:
                break
        else:
            return partial

        def check() -> str | None:
            conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None)
            try:
                rows = conn.execute("PRAGMA quick_check").fetchall()
            except sqlite3.DatabaseError as err:
                if _is_corrupt(err):
                    return str(err)
                raise
            finally:
                conn.close()
            if rows == [("ok",)]:
                return None
            return "; ".join(str(row[0]) for row in rows[:3]).replace("\n", " ")[:300]

        try:
            return _retry_busy(check, self._lock_timeout)
        except sqlite3.Error as err:
            raise self._wrap(err, "opening") from err

    def _recover(self, problem: str) -> None:
        """Move the damaged file aside, salvage its records into a fresh store, and warn."""
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while aside.exists():
            aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
            n += 1
        try:
            os.rename(self.path, aside)
            for suffix in ("-wal", "-shm"):  # the journal belongs with its database
                sidecar = Path(f"{self.path}{suffix}")
                if sidecar.exists():
                    os.rename(sidecar, f"{aside}{suffix}")
        except OSError as err:
            raise StoreCorruptError(
                f"The results store {self.path} is damaged ({problem}) and could not be moved "
                f"aside to {aside} ({err}); nothing was changed."
            ) from err
        fresh = self.path.with_name(f"{self.path.name}.recovering-{stamp}")
        try:
            salvage = _salvage(aside)
            _write_salvage(fresh, salvage)
            os.rename(fresh, self.path)
        except (OSError, sqlite3.Error) as err:
            with contextlib.suppress(OSError):
                os.unlink(fresh)
            raise StoreCorruptError(
                f"The results store {self.path} was damaged ({problem}) and moved aside to "
                f"{aside} (kept), but recovering its records failed ({err})."
            ) from err
        issued = f" of the {salvage.issued} ids issued" if salvage.issued is not None else ""
        warnings.warn(
            f"The results store {self.path} was damaged ({problem}). It was moved to {aside} "
            f"(kept, not deleted), and {len(salvage.evaluations)} evaluation records{issued}, "
            f"{len(salvage.runs)} runs and {len(salvage.state)} state entries were recovered "
            f"into a fresh store at {self.path}, which accepts new results.",
            StoreRecoveredWarning,
            stacklevel=6,
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
    partial = _partial_page(path)
    if partial is not None:
        return partial
    try:
        conn = _read_only_connect(path)
        try:
            rows = conn.execute("PRAGMA quick_check").fetchall()
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error as err:
        return str(err)
    if rows != [("ok",)]:
        return "; ".join(str(row[0]) for row in rows[:3]).replace("\n", " ")[:300]
    if not 1 <= version <= SCHEMA_VERSION:
        return f"not a results store of schema version 1..{SCHEMA_VERSION} (version {version})"
    return None


def read_state(path: str | os.PathLike[str], name: str) -> str | None:
    """The ``state`` entry ``name`` of the store at ``path``, read without changing anything
    (``None`` when the store or the entry is absent).

    Raises:
        StoreCorruptError: the file is damaged (:func:`store_problem` says how).
    """
    path = Path(path)
    problem = store_problem(path)
    if problem is not None:
        raise StoreCorruptError(f"The results store {path} is damaged ({problem}).")
    if not path.exists() or path.stat().st_size == 0:
        return None
    conn = _read_only_connect(path)
    try:
        row = conn.execute("SELECT value_json FROM state WHERE name = ?", (name,)).fetchone()
    except sqlite3.Error as err:
        raise StoreCorruptError(f"The results store {path} cannot be read ({err}).") from None
    finally:
        conn.close()
    return None if row is None else row[0]


# -- rows and records --------------------------------------------------------------------------


def _record(row: Sequence[Any]) -> EvalRecord:
    values = dict(zip(_RECORD_COLUMNS, row, strict=True))
    metrics = {
        name: (math.nan if value is None else float(value))
        for name, value in json.loads(values.pop("metrics_json")).items()
    }
    values["status"] = EvalStatus[values["status"]]
    return EvalRecord(metrics=_ReadOnlyMetrics(metrics), **values)


def _key_params(key: EvalKey) -> tuple[Any, ...]:
    return (key.arch_hash, key.evaluator, key.evaluator_config_hash, key.seed)


def _latest(conn: sqlite3.Connection, key: EvalKey) -> EvalRecord | None:
    row = conn.execute(
        f"{_SELECT} WHERE {_KEY_WHERE} ORDER BY attempt DESC LIMIT 1", _key_params(key)
    ).fetchone()
    return None if row is None else _record(row)


def _get(conn: sqlite3.Connection, record_id: int | None) -> EvalRecord | None:
    row = conn.execute(f"{_SELECT} WHERE id = ?", (record_id,)).fetchone()
    return None if row is None else _record(row)
