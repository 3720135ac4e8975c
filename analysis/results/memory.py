"""The in-memory backend of the results store: records in Python structures, in one process."""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, TypeVar

from analysis.errors import StoreError
from analysis.results.contract import MUTABLE_FIELDS, ResultsStore, StoreTransaction
from analysis.results.records import EvalKey, EvalRecord

__all__ = ["InMemoryStore"]

_T = TypeVar("_T")


class InMemoryStore(ResultsStore):
    """A :class:`ResultsStore` kept in this process's memory: nothing is written anywhere.

    For tests, notebooks and evaluations whose results need not outlive the process. It keeps
    every rule of the contract (they live in :class:`ResultsStore`, shared with
    :class:`SQLiteStore`): the same caching, attempt numbers, stale-claim reaping, immutable
    finished records and errors.

    One lock serialises its methods, so any number of threads may share it (a reader waits
    for the one method running, microseconds: nothing goes to disk). A method's writes are
    applied together when it returns; a method that raises changes nothing. The store
    belongs to the process that created it: it refuses to be pickled (a copy in a worker
    process would be another store, whose results the parent never sees), and a forked child
    that uses it gets :class:`StoreError`. :meth:`close` keeps the records: they last as long
    as the object.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._records: dict[int, EvalRecord] = {}
        self._ids: dict[EvalKey, list[int]] = {}  # every record of a key, by attempt
        self._runs: dict[str, tuple[str, str, str]] = {}  # config hash, config JSON, created at
        self._state: dict[str, tuple[str, str]] = {}  # JSON text, updated at
        self._next_id = 1

    def __repr__(self) -> str:
        return f"InMemoryStore(<{len(self._records)} records>)"

    def __str__(self) -> str:
        return "an InMemoryStore"  # what the messages of the contract name

    def __reduce__(self) -> NoReturn:
        raise StoreError(
            f"An InMemoryStore cannot be pickled: its records live in the memory of process "
            f"{self._pid}, and a copy in another process would be a separate store whose "
            f"results this one never sees. Give worker processes a SQLiteStore, or keep the "
            f"store in the process that writes it."
        )

    def close(self) -> None:
        """Nothing to release: the records stay, and the store can be used again."""

    def _transact(self, fn: Callable[[StoreTransaction], _T], *, write: bool, what: str) -> _T:
        if os.getpid() != self._pid:
            raise StoreError(
                f"This InMemoryStore belongs to process {self._pid}; process {os.getpid()} (a "
                f"forked child) holds only a copy of it, so {what} was refused: results "
                f"stored in the copy would be lost. Give worker processes a SQLiteStore."
            )
        with self._lock:
            tx = _MemoryTransaction(self)
            result = fn(tx)
            tx.commit()  # only once fn has returned: a method that raises changes nothing
            return result


class _MemoryTransaction(StoreTransaction):
    """The store's structures seen through this transaction's own writes, applied on commit."""

    def __init__(self, store: InMemoryStore) -> None:
        self._store = store
        self._records: dict[int, EvalRecord] = {}  # written (inserted or updated) here
        self._ids: dict[EvalKey, list[int]] = {}  # inserted here
        self._runs: dict[str, tuple[str, str, str]] = {}
        self._state: dict[str, tuple[str, str]] = {}
        self._next_id = store._next_id

    def get(self, record_id: int) -> EvalRecord | None:
        if record_id in self._records:
            return self._records[record_id]
        return self._store._records.get(record_id)

    def history(self, key: EvalKey) -> list[EvalRecord]:
        ids = [*self._store._ids.get(key, ()), *self._ids.get(key, ())]
        return [self._record(record_id) for record_id in ids]

    def select(self, where: Mapping[str, Any]) -> list[EvalRecord]:
        records = map(self._record, sorted({*self._store._records, *self._records}))
        return [r for r in records if all(getattr(r, f) == v for f, v in where.items())]

    def insert(self, record: EvalRecord) -> EvalRecord:
        stored = dataclasses.replace(record, id=self._next_id)
        self._next_id += 1
        self._records[stored.id] = stored
        self._ids.setdefault(stored.key, []).append(stored.id)
        return stored

    def update(self, record: EvalRecord) -> EvalRecord:
        changes = {name: getattr(record, name) for name in MUTABLE_FIELDS}
        stored = dataclasses.replace(self._record(record.id), **changes)
        self._records[stored.id] = stored
        return stored

    def run(self, name: str) -> tuple[str, str] | None:
        stored = self._runs.get(name, self._store._runs.get(name))
        return None if stored is None else stored[:2]

    def add_run(self, name: str, config_json: str, config_hash: str, created_at: str) -> None:
        self._runs[name] = (config_hash, config_json, created_at)

    def state(self, name: str) -> str | None:
        stored = self._state.get(name, self._store._state.get(name))
        return None if stored is None else stored[0]

    def put_state(self, name: str, json_text: str, updated_at: str) -> None:
        self._state[name] = (json_text, updated_at)

    def commit(self) -> None:
        store = self._store
        store._records.update(self._records)
        for key, ids in self._ids.items():
            store._ids.setdefault(key, []).extend(ids)
        store._runs.update(self._runs)
        store._state.update(self._state)
        store._next_id = self._next_id

    def _record(self, record_id: int) -> EvalRecord:
        record = self.get(record_id)
        assert record is not None  # every id in the structures has its record
        return record
