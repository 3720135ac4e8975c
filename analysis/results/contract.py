"""The results-store contract: :class:`ResultsStore`, the base class of every backend."""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
import hashlib
import json
import math
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar

from analysis.errors import RecordNotFoundError, RunConflictError, StoreError, StoreValueError
from analysis.results.records import (
    Claim,
    ClaimOutcome,
    EvalKey,
    EvalRecord,
    EvalStatus,
    ReadOnlyMetrics,
    canonical_arch,
    check_error,
    check_finished_status,
    check_id,
    check_key,
    check_max_attempts,
    check_metrics,
    check_stale_after,
    check_status,
    check_text,
    checked_json,
    config_differences,
    utc_now,
)
from dagspace.io import atomic_write

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ResultsStore", "StoreTransaction"]

_T = TypeVar("_T")
_CACHED = (EvalStatus.COMPLETE, EvalStatus.DIVERGED)
# What changes while a record moves from PENDING or RUNNING to finished; the rest never does.
MUTABLE_FIELDS = ("status", "metrics", "error", "started_at", "finished_at", "host", "pid")


class StoreTransaction(abc.ABC):
    """What a backend offers inside one atomic transaction of :meth:`ResultsStore._transact`.

    The rules of the contract (caching, attempts, staleness, immutability) live in
    :class:`ResultsStore`; a transaction only reads and writes what it is told. Its reads see
    its own writes; records come back as stored (snapshots). Arguments are already checked.
    """

    @abc.abstractmethod
    def get(self, record_id: int) -> EvalRecord | None:
        """The record ``record_id``, or ``None``."""

    @abc.abstractmethod
    def history(self, key: EvalKey) -> list[EvalRecord]:
        """Every record of ``key``, by increasing attempt."""

    def latest(self, key: EvalKey) -> EvalRecord | None:
        """The record of ``key`` with the highest attempt, or ``None``."""
        history = self.history(key)
        return history[-1] if history else None

    @abc.abstractmethod
    def select(self, where: Mapping[str, Any]) -> list[EvalRecord]:
        """The records whose fields equal every value of ``where`` (``{"run": "r", "status":
        EvalStatus.COMPLETE}``; run, method, evaluator and status only), by increasing id."""

    @abc.abstractmethod
    def insert(self, record: EvalRecord) -> EvalRecord:
        """Store ``record`` under the next id (``record.id`` is ignored); return it as stored."""

    @abc.abstractmethod
    def update(self, record: EvalRecord) -> EvalRecord:
        """Store the :data:`MUTABLE_FIELDS` of ``record`` in the existing record ``record.id``;
        return it as stored."""

    @abc.abstractmethod
    def run(self, name: str) -> tuple[str, str] | None:
        """``(config_hash, config_json)`` of the run ``name``, or ``None``."""

    @abc.abstractmethod
    def add_run(self, name: str, config_json: str, config_hash: str, created_at: str) -> None:
        """Register the new run ``name``."""

    @abc.abstractmethod
    def state(self, name: str) -> str | None:
        """The JSON text of the state entry ``name``, or ``None``."""

    @abc.abstractmethod
    def put_state(self, name: str, json_text: str, updated_at: str) -> None:
        """Create or replace the state entry ``name``."""


class ResultsStore(abc.ABC):
    """Where every evaluation of a run directory is recorded; the contract of every backend.

    Concurrency
        Any number of threads may read and write one store at once, and so may any number of
        processes where the backend is shared between them (:class:`SQLiteStore`: the
        processes of one host; :class:`InMemoryStore`: one process only). Every method is
        atomic; no method raises because another writer holds a lock (backends wait and
        retry), and readers never wait for writers.
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
    Resume
        A job that runs again on the same store claims its keys again: what finished comes back
        CACHED (or EXHAUSTED), what a dead worker held is failed and retried, what was never
        started is evaluated; nothing finished is evaluated twice or overwritten. A run
        registered with another config raises :class:`RunConflictError` and changes nothing.

    These rules are implemented here, once, over :class:`StoreTransaction`: a backend provides
    :meth:`_transact` (run a function atomically over a transaction) and :meth:`close`. Bad
    arguments raise :class:`StoreValueError` before the backend is touched. A :class:`SQLiteStore`
    is a handle: it pickles as its location and settings, so it can be handed to worker
    processes, each of which connects on first use.
    """

    def __init__(self) -> None:
        self._host = socket.gethostname()

    # -- what a backend implements ---------------------------------------------------------

    @abc.abstractmethod
    def _transact(self, fn: Callable[[StoreTransaction], _T], *, write: bool, what: str) -> _T:
        """Run ``fn`` in one transaction (all of its writes, or none) and return its result.

        ``write``: whether ``fn`` may write; ``what``: the method's name, for error messages.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Release this process's resources; the store reopens on next use."""

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
        """Atomically get the finished record of ``key``, or take it RUNNING to evaluate it.

        Returns a :class:`Claim`: ACQUIRED (a new RUNNING record, or the key's PENDING one
        taken over; evaluate it and call :meth:`finish`), CACHED (the COMPLETE or DIVERGED
        record), EXHAUSTED (the FAILED record of attempt ``max_attempts``) or BUSY (the RUNNING
        record of a live worker). ``host`` names the worker (default: this machine's host
        name; a worker's process id is recorded only when ``host`` is this machine).
        """
        arch_text = _check_request(key, run, method, arch_json)
        check_max_attempts(max_attempts)
        check_stale_after(stale_after)
        worker = self._worker(host)

        def txn(tx: StoreTransaction) -> Claim:
            latest = self._reap_if_stale(tx, tx.latest(key), stale_after)
            if latest is not None and latest.status in _CACHED:
                return Claim(latest, ClaimOutcome.CACHED)
            if latest is not None and latest.status is EvalStatus.RUNNING:
                return Claim(latest, ClaimOutcome.BUSY)
            if latest is not None and latest.status is EvalStatus.PENDING:
                host, pid = worker
                taken = dataclasses.replace(
                    latest, status=EvalStatus.RUNNING, started_at=utc_now(), host=host, pid=pid
                )
                return Claim(tx.update(taken), ClaimOutcome.ACQUIRED)
            if latest is not None and latest.attempt >= max_attempts:  # FAILED, none left
                return Claim(latest, ClaimOutcome.EXHAUSTED)
            attempt = 1 if latest is None else latest.attempt + 1
            new = _new_record(key, run, method, arch_text, EvalStatus.RUNNING, attempt, worker)
            return Claim(tx.insert(new), ClaimOutcome.ACQUIRED)

        return self._transact(txn, write=True, what="claim")

    def enqueue(
        self,
        key: EvalKey,
        *,
        run: str,
        method: str,
        arch_json: str | Sequence[Mapping[str, Any]],
    ) -> EvalRecord:
        """Create a PENDING record for ``key`` if it has none; return the key's latest record."""
        arch_text = _check_request(key, run, method, arch_json)

        def txn(tx: StoreTransaction) -> EvalRecord:
            latest = tx.latest(key)
            if latest is not None:
                return latest
            return tx.insert(_new_record(key, run, method, arch_text, EvalStatus.PENDING, 1))

        return self._transact(txn, write=True, what="enqueue")

    def finish(
        self,
        record_id: int,
        status: EvalStatus,
        metrics: Mapping[str, float],
        error: str | None = None,
    ) -> EvalRecord:
        """Finish the PENDING or RUNNING record ``record_id``; return it as stored."""
        record_id = check_id(record_id)
        status = check_finished_status(status, "finish")
        stored_metrics = check_metrics(metrics)
        check_error(error)

        def txn(tx: StoreTransaction) -> EvalRecord:
            record = self._found(tx.get(record_id), record_id)
            if record.status.is_finished:
                raise StoreError(
                    f"Record {record_id} is already {record.status.name} (finished at "
                    f"{record.finished_at}, error {record.error!r}); finished records are "
                    f"immutable, so the {status.name} result given now was not stored."
                )
            done = dataclasses.replace(
                record, status=status, metrics=stored_metrics, error=error, finished_at=utc_now()
            )
            return tx.update(done)

        return self._transact(txn, write=True, what="finish")

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
        arch_text = _check_request(key, run, method, arch_json)
        status = check_finished_status(status, "add")
        stored_metrics = check_metrics(metrics)
        check_error(error)
        check_stale_after(stale_after)
        worker = self._worker(host)

        def txn(tx: StoreTransaction) -> EvalRecord:
            latest = self._reap_if_stale(tx, tx.latest(key), stale_after)
            if latest is not None and latest.status in _CACHED:
                return latest
            if latest is not None and latest.status is EvalStatus.RUNNING:
                raise StoreError(
                    f"Cannot add a result for {key}: record {latest.id} of that key is RUNNING "
                    f"on host {latest.host!r} (pid {latest.pid}) since {latest.started_at}. "
                    f"Finish that record, or pass stale_after if its worker is gone."
                )
            result = {"status": status, "metrics": stored_metrics, "error": error}
            if latest is not None and latest.status is EvalStatus.PENDING:
                now = utc_now()
                host, pid = worker
                return tx.update(
                    dataclasses.replace(
                        latest, **result, started_at=now, finished_at=now, host=host, pid=pid
                    )
                )
            attempt = 1 if latest is None else latest.attempt + 1
            new = _new_record(key, run, method, arch_text, status, attempt, worker, finished=True)
            return tx.insert(dataclasses.replace(new, **result))

        return self._transact(txn, write=True, what="add")

    def get(self, record_id: int) -> EvalRecord:
        """The record ``record_id``; :class:`RecordNotFoundError` if there is none."""
        record_id = check_id(record_id)
        record = self._transact(lambda tx: tx.get(record_id), write=False, what="get")
        return self._found(record, record_id)

    def find(self, key: EvalKey) -> EvalRecord | None:
        """The latest attempt of ``key``, or ``None``."""
        check_key(key)
        return self._transact(lambda tx: tx.latest(key), write=False, what="find")

    def history(self, key: EvalKey) -> list[EvalRecord]:
        """Every attempt of ``key``, oldest first."""
        check_key(key)
        return self._transact(lambda tx: tx.history(key), write=False, what="history")

    def records(
        self,
        run: str | None = None,
        method: str | None = None,
        status: EvalStatus | None = None,
        evaluator: str | None = None,
    ) -> list[EvalRecord]:
        """The records that match every given filter, by increasing id."""
        where: dict[str, Any] = {}
        for name, value in (("run", run), ("method", method), ("evaluator", evaluator)):
            if value is not None:
                check_text(name, value)
                where[name] = value
        if status is not None:
            where["status"] = check_status(status, "records")
        return self._transact(lambda tx: tx.select(where), write=False, what="records")

    # -- runs and state --------------------------------------------------------------------

    def register_run(self, run: str, config: Mapping[str, Any]) -> None:
        """Bind ``run`` to ``config``; :class:`RunConflictError` if it is bound to another."""
        check_text("run", run)
        if not isinstance(config, Mapping):
            raise StoreValueError(
                f"The 'config' of register_run must be a mapping; got {type(config).__name__}."
            )
        config_text = checked_json(config, "config")
        config_hash = hashlib.sha256(config_text.encode()).hexdigest()

        def txn(tx: StoreTransaction) -> None:
            stored = tx.run(run)
            if stored is None:
                tx.add_run(run, config_text, config_hash, utc_now())
            elif stored[0] != config_hash:
                raise RunConflictError(
                    f"Run {run!r} is already registered in {self} with another config (stored "
                    f"!= given: {config_differences(stored[1], config_text)}). Nothing was "
                    f"changed: the results already stored for {run!r} are intact. Use a new run "
                    f"name (or run directory) for the new config, or the original config to "
                    f"resume."
                )

        self._transact(txn, write=True, what="register_run")

    def run_config(self, run: str) -> dict[str, Any] | None:
        """The config ``run`` was registered with, or ``None``."""
        check_text("run", run)
        stored = self._transact(lambda tx: tx.run(run), write=False, what="run_config")
        return None if stored is None else json.loads(stored[1])

    def set_state(self, name: str, json_text: str) -> None:
        """Store (or replace) the JSON document ``json_text`` under ``name``."""
        check_text("name", name)
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
        self._transact(
            lambda tx: tx.put_state(name, json_text, utc_now()), write=True, what="set_state"
        )

    def get_state(self, name: str) -> str | None:
        """The JSON text stored under ``name``, or ``None``."""
        check_text("name", name)
        return self._transact(lambda tx: tx.state(name), write=False, what="get_state")

    # -- tables ----------------------------------------------------------------------------

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

    # -- the rules' helpers ----------------------------------------------------------------

    def _found(self, record: EvalRecord | None, record_id: int) -> EvalRecord:
        if record is None:
            raise RecordNotFoundError(f"No evaluation record has id {record_id} in {self}.")
        return record

    def _worker(self, host: str | None) -> tuple[str, int | None]:
        """The (host, pid) recorded for a worker; a pid only means something on this host."""
        if host is None:
            return self._host, os.getpid()
        check_text("host", host)
        return host, (os.getpid() if host == self._host else None)

    def _is_stale(self, record: EvalRecord, stale_after: float | None) -> bool:
        if record.host == self._host and record.pid is not None and not _pid_alive(record.pid):
            return True
        if stale_after is not None and record.started_at is not None:
            started = dt.datetime.fromisoformat(record.started_at)
            return (dt.datetime.now(dt.UTC) - started).total_seconds() > stale_after
        return False

    def _reap_if_stale(
        self, tx: StoreTransaction, record: EvalRecord | None, stale_after: float | None
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
        failed = dataclasses.replace(
            record, status=EvalStatus.FAILED, error=error, finished_at=utc_now()
        )
        return tx.update(failed)


_FRAME_COLUMNS = tuple(
    field.name for field in dataclasses.fields(EvalRecord) if field.name != "metrics"
)


def _check_request(
    key: EvalKey, run: str, method: str, arch_json: str | Sequence[Mapping[str, Any]]
) -> str:
    """Check what creates a record (claim, enqueue, add); return the canonical ``arch_json``."""
    check_key(key)
    check_text("run", run)
    check_text("method", method)
    return canonical_arch(arch_json)


def _new_record(
    key: EvalKey,
    run: str,
    method: str,
    arch_text: str,
    status: EvalStatus,
    attempt: int,
    worker: tuple[str, int | None] | None = None,
    *,
    finished: bool = False,
) -> EvalRecord:
    """A record to insert (its id is given by the backend): created now, and started now when a
    ``worker`` holds it."""
    now = utc_now()
    host, pid = worker if worker is not None else (None, None)
    return EvalRecord(
        id=0,
        run=run,
        method=method,
        arch_hash=key.arch_hash,
        arch_json=arch_text,
        seed=key.seed,
        evaluator=key.evaluator,
        evaluator_config_hash=key.evaluator_config_hash,
        status=status,
        attempt=attempt,
        metrics=ReadOnlyMetrics(),
        error=None,
        created_at=now,
        started_at=now if worker is not None else None,
        finished_at=now if finished else None,
        host=host,
        pid=pid,
    )


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
