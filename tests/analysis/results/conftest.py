"""Shared helpers of the results-store tests: a cell, keys, claims, filled store files."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from analysis.results import Claim, EvalKey, EvalRecord, EvalStatus, ResultsStore, SQLiteStore

FIXTURES = Path(__file__).parents[1] / "fixtures"
V1_FIXTURE = FIXTURES / "results_v1.sqlite"

CELL = {
    "matrix": [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]],
    "ops": ["input", "conv3x3-bn-relu", "maxpool3x3", "output"],
}
ARCH = [CELL, CELL]
N_DAMAGED = 60


def key(arch: str = "a", *, evaluator: str = "standalone", config: str = "c", seed: int = 0):
    return EvalKey(arch, evaluator, config, seed)


def claim(store: ResultsStore, k: EvalKey, **kwargs: Any) -> Claim:
    kwargs.setdefault("run", "r")
    kwargs.setdefault("method", "random")
    return store.claim(k, arch_json=ARCH, **kwargs)


def filled_store(path: Path) -> list[EvalRecord]:
    """A closed store of N_DAMAGED finished records (big enough to span many pages)."""
    store = SQLiteStore(path)
    store.register_run("r", {"budget": N_DAMAGED})
    store.set_state("random", '{"next": 60}')
    for i in range(N_DAMAGED):
        got = claim(store, key(f"arch-{i:03d}"), run="r")
        status = EvalStatus.FAILED if i % 10 == 9 else EvalStatus.COMPLETE
        store.finish(got.record.id, status, {"val_accuracy": i / 100}, error=None)
    records = store.records()
    store.close()
    assert not Path(f"{path}-wal").exists()  # checkpointed: the main file holds everything
    return records


def dump(path: Path) -> list[str]:
    """Every schema object and row of the SQLite file ``path`` as SQL, and its user_version."""
    con = sqlite3.connect(path)
    try:
        return [*con.iterdump(), f"user_version={con.execute('PRAGMA user_version').fetchone()}"]
    finally:
        con.close()


def gather(processes: list[Any], results: Any, *, timeout: float, join: float) -> list[Any]:
    """Start ``processes``, take one report from each off the queue ``results``, join them."""
    for process in processes:
        process.start()
    reports = [results.get(timeout=timeout) for _ in processes]
    for process in processes:
        process.join(join)
    return reports
