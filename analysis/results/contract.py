"""The results-store contract: the :class:`ResultsStore` base class every backend implements."""

from __future__ import annotations

import abc
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from analysis.results.records import Claim, EvalKey, EvalRecord, EvalStatus
from dagspace.io import atomic_write

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ResultsStore"]


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
