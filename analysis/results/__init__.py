"""The results store: every evaluation of every job, one record each.

Every job writes into ``RUN_DIR/results.sqlite`` through a :class:`ResultsStore`, and every table
and plot reads from it. One topic per module:

- :mod:`~analysis.results.records`: records, keys, statuses, and the input checks of every backend;
- :mod:`~analysis.results.contract`: :class:`ResultsStore`, whose docstring states the contract;
- :mod:`~analysis.results.schema`: the SQLite tables, their version, the migration from version 1;
- :mod:`~analysis.results.transactions`: SQLite transactions, lock retries, error kinds;
- :mod:`~analysis.results.sqlite`: :class:`SQLiteStore`, and reading a file without changing it;
- :mod:`~analysis.results.memory`: :class:`InMemoryStore`, the second backend, for one process;
- :mod:`~analysis.results.salvage`: the readable records of a damaged file, into a fresh one.
"""

from __future__ import annotations

from analysis.results.contract import ResultsStore, StoreTransaction
from analysis.results.memory import InMemoryStore
from analysis.results.records import (
    EVALUATORS,
    Claim,
    ClaimOutcome,
    EvalKey,
    EvalRecord,
    EvalStatus,
    hash_config,
)
from analysis.results.schema import SCHEMA_VERSION
from analysis.results.sqlite import SQLiteStore, read_run_config, read_state, store_problem

__all__ = [
    "EVALUATORS",
    "SCHEMA_VERSION",
    "Claim",
    "ClaimOutcome",
    "EvalKey",
    "EvalRecord",
    "EvalStatus",
    "InMemoryStore",
    "ResultsStore",
    "SQLiteStore",
    "StoreTransaction",
    "hash_config",
    "read_run_config",
    "read_state",
    "store_problem",
]
