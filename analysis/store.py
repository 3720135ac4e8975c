"""The results store: every evaluation of every job, one row each, in one SQLite file per run.

Every job writes into ``RUN_DIR/results.sqlite`` through a :class:`ResultsStore`, and every table
and plot reads from it. :class:`ResultsStore` states the contract (Optuna's storage contract,
adapted); :class:`SQLiteStore` implements it. Nothing is pickled: architectures, metrics and
configs are JSON text, statuses are their names, times are ISO-8601 UTC text, so the ``sqlite3``
shell or ``pandas.read_sql`` can read a store without this package.

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
:class:`SQLiteStore` migrates it in place on open, numbering the attempts of a key by id.

Beside ``results.sqlite`` live SQLite's ``-wal`` and ``-shm`` files, ``results.sqlite.lock``
(taken while a process opens the store) and, after a recovery, the damaged file as
``results.sqlite.corrupt-<UTC time>``.
"""

from __future__ import annotations

import abc
import contextlib
import datetime as dt
import enum
import hashlib
import json
import math
import os
import random
import shutil
import socket
import sqlite3
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar

from analysis.errors import (
    RecordNotFoundError,
    RunConflictError,
    StoreCorruptError,
    StoreError,
    StoreRecoveredWarning,
    StoreValueError,
)
from dagspace.io import atomic_write

try:  # POSIX only; without it, opening (and recovering) a store is not serialised across processes
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "EVALUATORS",
    "SCHEMA_VERSION",
    "Claim",
    "ClaimOutcome",
    "EvalKey",
    "EvalRecord",
    "EvalStatus",
    "ResultsStore",
    "SQLiteStore",
    "hash_config",
    "read_state",
    "store_problem",
]

SCHEMA_VERSION = 2
EVALUATORS: tuple[str, ...] = ("supernet", "standalone", "tabular", "user")  # user: module:function
_INT64_MAX = 2**63 - 1
_T = TypeVar("_T")


class EvalStatus(enum.IntEnum):
    """The life of an evaluation: PENDING → RUNNING → one of the three finished states."""

    PENDING = 0
    RUNNING = 1
    COMPLETE = 2
    DIVERGED = 3
    FAILED = 4

    @property
    def is_finished(self) -> bool:
        """COMPLETE, DIVERGED and FAILED records are finished, hence immutable."""
        return self >= EvalStatus.COMPLETE


class ClaimOutcome(enum.IntEnum):
    """What :meth:`ResultsStore.claim` did with a key."""

    ACQUIRED = 0  # a RUNNING record is now yours: evaluate, then finish() it
    CACHED = 1  # a COMPLETE or DIVERGED record exists: use it, do not evaluate
    EXHAUSTED = 2  # the last of ``max_attempts`` attempts FAILED: this is the final record
    BUSY = 3  # another live worker holds a RUNNING record for the key: ask again later


@dataclass(frozen=True)
class EvalKey:
    """The cache key of an evaluation: one result per key (per attempt).

    Two evaluations with equal keys are the same evaluation: the store never hands the second
    one out for evaluation while the first one's result exists.
    """

    arch_hash: str
    evaluator: str
    evaluator_config_hash: str
    seed: int

    def __post_init__(self) -> None:
        _check_text("arch_hash", self.arch_hash)
        _check_text("evaluator_config_hash", self.evaluator_config_hash)
        if self.evaluator not in EVALUATORS:
            raise StoreValueError(
                f"The 'evaluator' of an EvalKey must be one of {EVALUATORS}; "
                f"got {self.evaluator!r}."
            )
        seed = self.seed
        if isinstance(seed, bool) or not hasattr(seed, "__index__"):
            raise StoreValueError(
                f"The 'seed' of an EvalKey must be an integer; got {type(seed).__name__} {seed!r}."
            )
        seed = int(seed)  # numpy integers become plain ints
        if not -_INT64_MAX - 1 <= seed <= _INT64_MAX:
            raise StoreValueError(f"The 'seed' of an EvalKey must fit in 64 bits; got {seed}.")
        object.__setattr__(self, "seed", seed)


class _ReadOnlyMetrics(Mapping[str, float]):
    """A read-only, hashable, picklable ``{name: value}`` mapping (a record's metrics)."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, float] | None = None) -> None:
        self._data = dict(data or {})

    def __getitem__(self, name: str) -> float:
        return self._data[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __repr__(self) -> str:
        return repr(self._data)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self._data,))


@dataclass(frozen=True)
class EvalRecord:
    """One evaluation as stored (a snapshot: later changes to the store do not show here).

    ``metrics`` is a read-only mapping; a metric stored as non-finite reads back as NaN.
    Times are ISO-8601 UTC text (``started_at``/``finished_at`` are ``None`` until they happen).
    """

    id: int
    run: str
    method: str
    arch_hash: str
    arch_json: str
    seed: int
    evaluator: str
    evaluator_config_hash: str
    status: EvalStatus
    attempt: int
    metrics: Mapping[str, float]
    error: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    host: str | None
    pid: int | None

    @property
    def key(self) -> EvalKey:
        """The cache key of this record."""
        return EvalKey(self.arch_hash, self.evaluator, self.evaluator_config_hash, self.seed)

    @property
    def arch(self) -> list[dict[str, Any]]:
        """The architecture: a fresh list of NAS-Bench-101 cells (``{"matrix", "ops"}``)."""
        return json.loads(self.arch_json)


@dataclass(frozen=True)
class Claim:
    """The answer of :meth:`ResultsStore.claim`: a record and what to do with it."""

    record: EvalRecord
    outcome: ClaimOutcome

    @property
    def must_evaluate(self) -> bool:
        """True when the caller now holds the RUNNING record and must finish it."""
        return self.outcome is ClaimOutcome.ACQUIRED


def hash_config(config: Mapping[str, Any]) -> str:
    """The SHA-256 hex digest of ``config`` as canonical JSON (sorted keys, no spaces)."""
    return hashlib.sha256(_canonical_json(config, "config").encode()).hexdigest()


class ResultsStore(abc.ABC):
    """Where every evaluation of a run directory is recorded; the contract of every backend.

    Concurrency
        Any number of threads and processes (on one host, or sharing the backend) may read and
        write one store at once. Every method is atomic; no method raises because another
        writer holds a lock (backends wait and retry), and readers never wait for writers.
    Records
        Ids are unique and increasing in the order records are created, and never reused.
        A record is created PENDING (:meth:`enqueue`) or RUNNING (:meth:`claim`), or finished
        in one step (:meth:`add`). Finished records (COMPLETE, DIVERGED, FAILED) are immutable:
        finishing one again raises :class:`StoreError`. Records are never deleted.
    Caching
        A key (:class:`EvalKey`) is evaluated at most once successfully: once it has a COMPLETE
        or DIVERGED record, :meth:`claim` returns that record (from whichever run or method
        produced it) instead of handing the key out again. A FAILED key is retried as a new
        record with ``attempt + 1``, up to ``max_attempts`` attempts. While one worker holds a
        key RUNNING, no other worker is given it, unless the holder is *stale*: its process is
        gone from this host, or it started more than ``stale_after`` seconds ago. A stale
        record is finished as FAILED with an error starting ``"worker died"`` when its key is
        next claimed; if its worker was only slow, its late :meth:`finish` raises
        :class:`StoreError` (finished records are immutable) and a new attempt owns the key.
    Runs and state
        :meth:`register_run` binds a run name to one resolved config (by hash) for good;
        :meth:`set_state` keeps small JSON documents (a strategy's state, for resume).

    A store object is a handle: it pickles as its location and settings, so it can be handed
    to worker processes, each of which connects on first use. ``to_frame`` and ``export_csv``
    are built on :meth:`records`; backends need not override them.
    """

    # -- evaluations -----------------------------------------------------------------------

    @abc.abstractmethod
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
        """Atomically get the finished record of ``key``, or take it RUNNING to evaluate it.

        Returns a :class:`Claim`: ACQUIRED (a new RUNNING record, or the key's PENDING one
        taken over; evaluate it and call :meth:`finish`), CACHED (the COMPLETE or DIVERGED
        record), EXHAUSTED (the FAILED record of attempt ``max_attempts``) or BUSY (the RUNNING
        record of a live worker). ``host`` names the worker (default: this machine's host
        name; a worker's process id is recorded only when ``host`` is this machine).
        """

    @abc.abstractmethod
    def enqueue(
        self,
        key: EvalKey,
        *,
        run: str,
        method: str,
        arch_json: str | Sequence[Mapping[str, Any]],
    ) -> EvalRecord:
        """Create a PENDING record for ``key`` if it has none; return the key's latest record."""

    @abc.abstractmethod
    def finish(
        self,
        record_id: int,
        status: EvalStatus,
        metrics: Mapping[str, float],
        error: str | None = None,
    ) -> EvalRecord:
        """Finish the PENDING or RUNNING record ``record_id``; return it as stored."""

    @abc.abstractmethod
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
        """Store a finished evaluation in one step (for cheap evaluators); return the record.

        If ``key`` already has a COMPLETE or DIVERGED record, that record is returned and the
        given result is discarded (the cache wins, as :meth:`claim` would have). A PENDING
        record of the key is finished in place; after a FAILED one the result is a new attempt
        (``max_attempts`` does not apply: a result in hand is never thrown away). A RUNNING
        record of a live worker raises :class:`StoreError`.
        """

    @abc.abstractmethod
    def get(self, record_id: int) -> EvalRecord:
        """The record ``record_id``; :class:`RecordNotFoundError` if there is none."""

    @abc.abstractmethod
    def find(self, key: EvalKey) -> EvalRecord | None:
        """The latest attempt of ``key``, or ``None``."""

    @abc.abstractmethod
    def history(self, key: EvalKey) -> list[EvalRecord]:
        """Every attempt of ``key``, oldest first."""

    @abc.abstractmethod
    def records(
        self,
        run: str | None = None,
        method: str | None = None,
        status: EvalStatus | None = None,
        evaluator: str | None = None,
    ) -> list[EvalRecord]:
        """The records that match every given filter, by increasing id."""

    # -- runs and state --------------------------------------------------------------------

    @abc.abstractmethod
    def register_run(self, run: str, config: Mapping[str, Any]) -> None:
        """Bind ``run`` to ``config``; :class:`RunConflictError` if it is bound to another."""

    @abc.abstractmethod
    def run_config(self, run: str) -> dict[str, Any] | None:
        """The config ``run`` was registered with, or ``None``."""

    @abc.abstractmethod
    def set_state(self, name: str, json_text: str) -> None:
        """Store (or replace) the JSON document ``json_text`` under ``name``."""

    @abc.abstractmethod
    def get_state(self, name: str) -> str | None:
        """The JSON text stored under ``name``, or ``None``."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release this process's resources; the store reopens on next use."""

    # -- built on the above ----------------------------------------------------------------

    def to_frame(
        self,
        run: str | None = None,
        method: str | None = None,
        status: EvalStatus | None = None,
        evaluator: str | None = None,
    ) -> pd.DataFrame:
        """One row per evaluation (filters as :meth:`records`), metrics as ``metric_*`` columns.

        ``status`` holds the status names; times are timezone-aware (UTC) datetimes; ``pid`` is a
        nullable integer; a metric absent from a record is NaN.
        """
        import pandas as pd  # here, so that worker processes that only write need not load it

        records = self.records(run=run, method=method, status=status, evaluator=evaluator)
        names = sorted({name for record in records for name in record.metrics})
        columns: dict[str, list[Any]] = {column: [] for column in _FRAME_COLUMNS}
        for column in _FRAME_COLUMNS:
            columns[column] = [getattr(record, column) for record in records]
        columns["status"] = [record.status.name for record in records]
        for name in names:
            columns[f"metric_{name}"] = [record.metrics.get(name, math.nan) for record in records]
        frame = pd.DataFrame(columns)
        for column in ("id", "seed", "attempt"):
            frame[column] = frame[column].astype("int64")
        frame["pid"] = frame["pid"].astype("Int64")
        for column in ("created_at", "started_at", "finished_at"):
            frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
        for name in names:
            frame[f"metric_{name}"] = frame[f"metric_{name}"].astype("float64")
        return frame

    def export_csv(
        self,
        path: str | os.PathLike[str],
        run: str | None = None,
        method: str | None = None,
        status: EvalStatus | None = None,
        evaluator: str | None = None,
    ) -> Path:
        """Write :meth:`to_frame` to ``path`` atomically (a reader sees the old or the new file).

        The CSV is written to a temporary file in the same directory, flushed and fsynced, then
        renamed over ``path`` (:func:`dagspace.io.atomic_write`). Times are written as ISO-8601
        UTC. Returns ``path``.
        """
        path = Path(path)
        frame = self.to_frame(run=run, method=method, status=status, evaluator=evaluator)
        with atomic_write(path, newline="", encoding="utf-8") as handle:
            frame.to_csv(handle, index=False, date_format="%Y-%m-%dT%H:%M:%S.%f+00:00")
        return path

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


_FRAME_COLUMNS = (
    "id",
    "run",
    "method",
    "arch_hash",
    "arch_json",
    "seed",
    "evaluator",
    "evaluator_config_hash",
    "status",
    "attempt",
    "error",
    "created_at",
    "started_at",
    "finished_at",
    "host",
    "pid",
)

# -- SQLite ------------------------------------------------------------------------------------

_STATUS_CHECK = ", ".join(f"'{status.name}'" for status in EvalStatus)

_CREATE_EVALUATIONS = f"""CREATE TABLE evaluations (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    run                   TEXT    NOT NULL,
    method                TEXT    NOT NULL,
    arch_hash             TEXT    NOT NULL,
    arch_json             TEXT    NOT NULL,
    seed                  INTEGER NOT NULL,
    evaluator             TEXT    NOT NULL,
    evaluator_config_hash TEXT    NOT NULL,
    status                TEXT    NOT NULL CHECK (status IN ({_STATUS_CHECK})),
    attempt               INTEGER NOT NULL DEFAULT 1 CHECK (attempt >= 1),
    metrics_json          TEXT    NOT NULL DEFAULT '{{}}',
    error                 TEXT,
    created_at            TEXT    NOT NULL,
    started_at            TEXT,
    finished_at           TEXT,
    host                  TEXT,
    pid                   INTEGER
)"""

_SCHEMA_V2: tuple[str, ...] = (
    """CREATE TABLE runs (
    name        TEXT PRIMARY KEY NOT NULL,
    config_json TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    created_at  TEXT NOT NULL
)""",
    _CREATE_EVALUATIONS,
    """CREATE TABLE state (
    name       TEXT PRIMARY KEY NOT NULL,
    value_json TEXT NOT NULL,
    updated_at TEXT NOT NULL
)""",
)

_INDEXES_AND_VIEWS_V2: tuple[str, ...] = (
    "CREATE UNIQUE INDEX evaluations_key "
    "ON evaluations (arch_hash, evaluator, evaluator_config_hash, seed, attempt)",
    "CREATE INDEX evaluations_run_method ON evaluations (run, method)",
    """CREATE VIEW evaluations_flat AS
SELECT e.id, e.run, e.method, e.arch_hash, e.seed, e.evaluator, e.evaluator_config_hash,
       e.status, e.attempt, m.key AS metric, m.value AS value, e.finished_at
FROM evaluations AS e, json_each(e.metrics_json) AS m""",
)

_RECORD_COLUMNS = (
    "id",
    "run",
    "method",
    "arch_hash",
    "arch_json",
    "seed",
    "evaluator",
    "evaluator_config_hash",
    "status",
    "attempt",
    "metrics_json",
    "error",
    "created_at",
    "started_at",
    "finished_at",
    "host",
    "pid",
)
_SELECT = f"SELECT {', '.join(_RECORD_COLUMNS)} FROM evaluations"
_KEY_WHERE = "arch_hash = ? AND evaluator = ? AND evaluator_config_hash = ? AND seed = ?"

_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_IOERR = 10
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_NOTADB = 26

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


# -- transactions ------------------------------------------------------------------------------


def _transaction(
    conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], _T], *, write: bool
) -> _T:
    conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        result = fn(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
    return result


def _retry_busy(fn: Callable[[], _T], timeout: float) -> _T:
    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        try:
            return fn()
        except sqlite3.Error as err:
            if not _is_busy(err) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(2 * delay, 0.25)


def _error_code(err: sqlite3.Error) -> int | None:
    code = getattr(err, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF  # the primary code of an extended one


def _is_busy(err: sqlite3.Error) -> bool:
    code = _error_code(err)
    if code is not None:
        return code in (_SQLITE_BUSY, _SQLITE_LOCKED)
    text = str(err).lower()
    return "locked" in text or "busy" in text


def _is_corrupt(err: sqlite3.Error) -> bool:
    code = _error_code(err)
    if code is not None:
        return code in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    text = str(err).lower()
    return "malformed" in text or "not a database" in text


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (a sidecar file) while opening the store."""
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


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


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (assumed alive where that cannot be told)."""
    if pid == os.getpid():
        return True
    if os.name != "posix":  # pragma: no cover - os.kill(pid, 0) would kill it on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, as another user's process
        return True
    return True


# -- validation --------------------------------------------------------------------------------


def _check_text(name: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise StoreValueError(f"The '{name}' must be a non-empty string; got {value!r}.")


def _check_key(key: Any) -> None:
    if not isinstance(key, EvalKey):
        raise StoreValueError(f"The 'key' must be an EvalKey; got {type(key).__name__} {key!r}.")


def _check_id(record_id: Any) -> int:
    if isinstance(record_id, bool) or not hasattr(record_id, "__index__"):
        raise StoreValueError(
            f"A record id must be an integer; got {type(record_id).__name__} {record_id!r}."
        )
    return int(record_id)


def _check_status(status: Any, where: str) -> EvalStatus:
    if isinstance(status, EvalStatus):
        return status
    if isinstance(status, str) and status in EvalStatus.__members__:
        return EvalStatus[status]
    raise StoreValueError(
        f"The 'status' of {where} must be an EvalStatus (or its name); got {status!r}."
    )


def _check_finished_status(status: Any, where: str) -> EvalStatus:
    status = _check_status(status, where)
    if not status.is_finished:
        raise StoreValueError(
            f"The 'status' of {where} must be COMPLETE, DIVERGED or FAILED; got {status.name}."
        )
    return status


def _check_error(error: Any) -> None:
    if error is not None and not isinstance(error, str):
        raise StoreValueError(f"The 'error' must be a string or None; got {error!r}.")


def _check_stale_after(stale_after: Any) -> None:
    if stale_after is None:
        return
    if isinstance(stale_after, bool) or not isinstance(stale_after, (int, float)):
        raise StoreValueError(f"The 'stale_after' must be seconds or None; got {stale_after!r}.")
    if not stale_after >= 0:
        raise StoreValueError(f"The 'stale_after' must be >= 0 seconds; got {stale_after!r}.")


def _canonical_json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as err:
        raise StoreValueError(
            f"The {what} must be JSON-serialisable ({err}); got {value!r:.200}."
        ) from None


def _config_differences(stored_text: str, given_text: str, limit: int = 5) -> str:
    """``"key: A != B"`` for the top-level keys where two configs (canonical JSON) differ."""
    try:
        stored, given = json.loads(stored_text), json.loads(given_text)
    except ValueError:
        return "the stored config is not readable JSON"
    if not isinstance(stored, dict) or not isinstance(given, dict):
        return f"{stored_text:.100} != {given_text:.100}"

    def shown(config: dict[str, Any], name: str) -> str:
        if name not in config:
            return "(absent)"
        return f"{json.dumps(config[name], sort_keys=True):.80}"

    diffs = [
        f"{name}: {shown(stored, name)} != {shown(given, name)}"
        for name in sorted(set(stored) | set(given))
        if shown(stored, name) != shown(given, name)
    ]
    more = f"; and {len(diffs) - limit} more" if len(diffs) > limit else ""
    return "; ".join(diffs[:limit]) + more


def _canonical_arch(arch_json: Any) -> str:
    """``arch_json`` (text or objects) as canonical JSON text, after a structural check."""
    if isinstance(arch_json, str):
        try:
            cells = json.loads(arch_json)
        except ValueError as err:
            raise StoreValueError(
                f"The 'arch_json' is not valid JSON ({err}); got {arch_json!r:.200}."
            ) from None
    else:
        cells = arch_json
    if not isinstance(cells, Sequence) or isinstance(cells, str) or not cells:
        raise StoreValueError(
            "The 'arch_json' must be a non-empty list of NAS-Bench-101 cells "
            f'({{"matrix": [[...]], "ops": [...]}}); got {arch_json!r:.200}.'
        )
    for index, cell in enumerate(cells):
        if not isinstance(cell, Mapping) or not isinstance(cell.get("matrix"), list):
            raise StoreValueError(
                f"Cell {index} of 'arch_json' must be an object with a 'matrix' list "
                f"(NAS-Bench-101 form); got {cell!r:.200}."
            )
    return _canonical_json(list(cells), "'arch_json'")


def _metrics_json(metrics: Any) -> str:
    if not isinstance(metrics, Mapping):
        raise StoreValueError(
            f"The 'metrics' must be a mapping of names to numbers; got {type(metrics).__name__}."
        )
    clean: dict[str, float | None] = {}
    for name, value in metrics.items():
        if not isinstance(name, str) or not name:
            raise StoreValueError(f"A metric name must be a non-empty string; got {name!r}.")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise StoreValueError(
                f"The metric {name!r} must be a real number; got {type(value).__name__} "
                f"{value!r:.100}."
            ) from None
        clean[name] = number if math.isfinite(number) else None  # JSON has no NaN: null
    return json.dumps(clean, sort_keys=True, separators=(",", ":"), allow_nan=False)


# -- migration ---------------------------------------------------------------------------------

_V1_COLUMNS = (
    "id",
    "run",
    "method",
    "arch_hash",
    "arch_json",
    "seed",
    "evaluator",
    "evaluator_config_hash",
    "status",
    "metrics_json",
    "error",
    "created_at",
    "started_at",
    "finished_at",
)


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


# -- salvage -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Salvage:
    evaluations: list[tuple[Any, ...]]  # rows in _RECORD_COLUMNS order
    runs: list[tuple[Any, ...]]
    state: list[tuple[Any, ...]]
    issued: int | None  # the evaluations id sequence, when it could be read


def _salvage(damaged: Path) -> _Salvage:
    """Read every readable, valid row of ``damaged`` (from a scratch copy; it stays as it is)."""
    with tempfile.TemporaryDirectory(prefix="dagrank-salvage-") as scratch:
        copy = Path(scratch) / "damaged.sqlite"
        shutil.copyfile(damaged, copy)
        if Path(f"{damaged}-wal").exists():
            shutil.copyfile(f"{damaged}-wal", f"{copy}-wal")
        _drop_partial_page(copy)
        try:
            conn = sqlite3.connect(copy, isolation_level=None)
        except sqlite3.Error:
            return _Salvage([], [], [], None)
        try:
            try:  # read past a database size that the truncated file no longer has
                conn.execute("PRAGMA writable_schema = ON")
            except sqlite3.Error:
                return _Salvage([], [], [], None)
            issued = None
            with contextlib.suppress(sqlite3.Error, TypeError, ValueError):
                row = conn.execute(
                    "SELECT seq FROM sqlite_sequence WHERE name = 'evaluations'"
                ).fetchone()
                issued = None if row is None else int(row[0])
            evaluations = [
                row
                for row in (
                    _valid_evaluation(r) for r in _salvage_table(conn, "evaluations", issued)
                )
                if row is not None
            ]
            runs = [
                (r["name"], r["config_json"], r["config_hash"], r["created_at"])
                for r in _salvage_table(conn, "runs", None)
                if _valid_texts(r, ("name", "config_json", "config_hash", "created_at"))
                and _is_json(r["config_json"])
            ]
            state = [
                (r["name"], r["value_json"], r["updated_at"])
                for r in _salvage_table(conn, "state", None)
                if _valid_texts(r, ("name", "value_json", "updated_at"))
                and _is_json(r["value_json"])
            ]
        finally:
            conn.close()
    return _Salvage(_number_attempts(evaluations), runs, state, issued)


def _header_page_size(header: bytes) -> int | None:
    """The page size that a database file's 100-byte header states, or None if it is not one."""
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        return None
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        return None
    return page_size


def _partial_page(path: Path) -> str | None:
    """What is wrong if ``path`` ends part-way through a page; None if it ends on a page edge."""
    try:
        with path.open("rb") as handle:
            page_size = _header_page_size(handle.read(100))
            size = handle.seek(0, os.SEEK_END)
    except OSError:
        return None  # SQLite itself will say what is wrong
    if page_size is None or size % page_size == 0:
        return None
    return (
        f"the file ends part-way through page {size // page_size + 1}: {size} bytes is not a "
        f"whole number of {page_size}-byte pages"
    )


def _drop_partial_page(path: Path) -> None:
    """Cut a file that ends mid-page back to whole pages.

    The missing rest of a partial page reads as zeros, and SQLite would return the cells it
    still points to as rows with fields cut short; without the page they are simply unreadable.
    """
    with path.open("r+b") as handle:
        page_size = _header_page_size(handle.read(100))
        if page_size is None:
            return
        size = handle.seek(0, os.SEEK_END)
        handle.truncate(size - size % page_size)


def _salvage_table(
    conn: sqlite3.Connection, table: str, upper: int | None, max_gap: int = 10_000
) -> list[dict[str, Any]]:
    """Every row of ``table`` that SQLite can still read, by rowid, skipping damaged pages.

    Scans forward until the first damaged page, backward likewise, then probes the rowids in
    between one at a time (up to ``upper``, or until ``max_gap`` rowids in a row are missing).
    """
    try:
        names = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
    except sqlite3.Error:
        return []
    if not names:
        return []
    select = f"SELECT rowid, * FROM {table}"
    rows: dict[int, tuple[Any, ...]] = {}

    def scan(order: str) -> tuple[int | None, bool]:
        last = None
        try:
            for row in conn.execute(f"{select} ORDER BY rowid {order}"):
                rows[row[0]] = row[1:]
                last = row[0]
        except sqlite3.Error:
            return last, False
        return last, True

    first_gap, complete = scan("ASC")
    if not complete:
        end, _ = scan("DESC")
        rowid = 0 if first_gap is None else first_gap
        stop = end if end is not None and end > rowid else upper
        misses = 0
        while (stop is None and misses < max_gap) or (stop is not None and rowid < stop):
            rowid += 1
            try:
                row = conn.execute(f"{select} WHERE rowid = ?", (rowid,)).fetchone()
            except sqlite3.Error:
                row = None
            if row is None:
                misses += 1
            else:
                misses = 0
                rows[row[0]] = row[1:]
    return [dict(zip(names, rows[rowid], strict=False)) for rowid in sorted(rows)]


def _valid_texts(row: Mapping[str, Any], names: Sequence[str]) -> bool:
    return all(isinstance(row.get(name), str) and row[name] for name in names)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _valid_evaluation(row: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """``row`` (version 1 or 2 columns) as a version-2 row, or ``None`` if it looks damaged.

    SQLite keeps no checksums, so a damaged row can only be told by its contents: every field
    must have its type, texts must be non-empty, JSON must parse to the right shape, times must
    be ISO-8601 with an offset, and the times present must fit the status.
    """
    values = {name: row.get(name) for name in _RECORD_COLUMNS}
    try:
        EvalKey(
            values["arch_hash"],
            values["evaluator"],
            values["evaluator_config_hash"],
            values["seed"],
        )
        _check_text("run", values["run"])
        _check_text("method", values["method"])
        _canonical_arch(values["arch_json"])
        status = EvalStatus[values["status"]]
        metrics = json.loads(values["metrics_json"])
        times = {
            name: _parse_time(values[name]) for name in ("created_at", "started_at", "finished_at")
        }
    except (StoreValueError, KeyError, TypeError, ValueError):
        return None
    checks = (
        isinstance(values["id"], int) and values["id"] >= 1,
        values["attempt"] is None
        or (isinstance(values["attempt"], int) and values["attempt"] >= 1),
        isinstance(metrics, dict)
        and all(isinstance(v, (int, float)) or v is None for v in metrics.values()),
        values["error"] is None or isinstance(values["error"], str),
        values["host"] is None or (isinstance(values["host"], str) and bool(values["host"])),
        values["pid"] is None or (isinstance(values["pid"], int) and values["pid"] > 0),
        times["created_at"] is not None,
        status is not EvalStatus.RUNNING or times["started_at"] is not None,
        status.is_finished == (times["finished_at"] is not None),
    )
    if not all(checks):
        return None
    return tuple(values[name] for name in _RECORD_COLUMNS)


def _parse_time(text: Any) -> dt.datetime | None:
    """``None`` for ``None``; an aware datetime for ISO-8601 text with an offset; else raises."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise TypeError(f"expected ISO-8601 text, got {type(text).__name__}")
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"expected a UTC offset in {text!r}")
    return moment


def _number_attempts(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Give version-1 rows (attempt None) attempts per key in id order; drop duplicates."""
    index = {name: i for i, name in enumerate(_RECORD_COLUMNS)}
    key_of = [index[name] for name in ("arch_hash", "evaluator", "evaluator_config_hash", "seed")]
    taken: dict[tuple[Any, ...], set[int]] = {}
    out = []
    for row in sorted(rows, key=lambda r: r[index["id"]]):
        key = tuple(row[i] for i in key_of)
        used = taken.setdefault(key, set())
        attempt = row[index["attempt"]]
        if attempt is None:
            attempt = max(used, default=0) + 1
        if attempt in used:
            continue
        used.add(attempt)
        row = list(row)
        row[index["attempt"]] = attempt
        out.append(tuple(row))
    return out


def _write_salvage(path: Path, salvage: _Salvage) -> None:
    """Create a fresh version-2 store at ``path`` holding the salvaged rows."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:

        def fill(conn: sqlite3.Connection) -> None:
            for statement in (*_SCHEMA_V2, *_INDEXES_AND_VIEWS_V2):
                conn.execute(statement)
            conn.executemany(
                f"INSERT INTO evaluations ({', '.join(_RECORD_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(_RECORD_COLUMNS))})",
                salvage.evaluations,
            )
            conn.executemany("INSERT OR IGNORE INTO runs VALUES (?, ?, ?, ?)", salvage.runs)
            conn.executemany("INSERT OR IGNORE INTO state VALUES (?, ?, ?)", salvage.state)
            if salvage.issued is not None:  # never hand out an id the damaged file had issued
                updated = conn.execute(
                    "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'evaluations'",
                    (salvage.issued,),
                ).rowcount
                if not updated:
                    conn.execute(
                        "INSERT INTO sqlite_sequence (name, seq) VALUES ('evaluations', ?)",
                        (salvage.issued,),
                    )
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

        _transaction(conn, fill, write=True)
    finally:
        conn.close()
