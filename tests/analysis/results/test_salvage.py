"""Tests of :mod:`analysis.results.salvage`: a damaged store file is set aside, never deleted,
and every record that can still be read exactly comes back in a fresh store."""

from __future__ import annotations

import random
import sqlite3
import warnings
from pathlib import Path

import pytest

from analysis.errors import RunConflictError, StoreRecoveredWarning
from analysis.results import ClaimOutcome, EvalStatus, SQLiteStore
from tests.analysis.results.conftest import N_DAMAGED, claim, filled_store, key


def _aside(path: Path) -> Path:
    (aside,) = [p for p in path.parent.iterdir() if ".corrupt-" in p.name]
    return aside


@pytest.mark.parametrize("fraction", [0.7, 0.85, 0.97])
def test_truncated_store_is_recovered(tmp_path: Path, fraction: float) -> None:
    path = tmp_path / "results.sqlite"
    original = {r.id: r for r in filled_store(path)}
    with path.open("r+b") as handle:  # a copy cut off mid-write
        handle.truncate(int(path.stat().st_size * fraction))
    damaged = path.read_bytes()

    with pytest.warns(StoreRecoveredWarning, match=r"was damaged") as caught:
        store = SQLiteStore(path)
        recovered = store.records()
    message = str(caught[0].message)
    count = int(message.split(" evaluation records")[0].rsplit(" ", 1)[1])
    assert count == len(recovered)
    assert 0 < count < N_DAMAGED
    assert all(r == original[r.id] for r in recovered)  # what comes back is exact
    aside = _aside(path)
    assert str(aside) in message and "kept, not deleted" in message
    assert aside.read_bytes() == damaged  # kept aside, untouched

    new = claim(store, key("after"))
    assert new.outcome is ClaimOutcome.ACQUIRED
    assert new.record.id == N_DAMAGED + 1  # ids the damaged file issued are never reused
    store.finish(new.record.id, EvalStatus.COMPLETE, {"val_accuracy": 1.0})
    assert claim(store, key(recovered[0].arch_hash)).outcome in (
        ClaimOutcome.CACHED,
        ClaimOutcome.ACQUIRED,  # a recovered FAILED record is retried
    )
    store.close()
    with warnings.catch_warnings(action="error"):
        assert len(SQLiteStore(path).records()) >= count + 1  # healthy now: no second recovery


def test_truncation_counts_are_reported(tmp_path: Path) -> None:
    """How many of 60 records survive a cut at each tenth of the file (for the record)."""
    counts = {}
    for tenth in range(1, 10):
        path = tmp_path / f"t{tenth}" / "results.sqlite"
        path.parent.mkdir()
        original = {r.id: r for r in filled_store(path)}
        with path.open("r+b") as handle:
            handle.truncate(path.stat().st_size * tenth // 10)
        with pytest.warns(StoreRecoveredWarning):
            recovered = SQLiteStore(path).records()
        assert all(r == original[r.id] for r in recovered)
        counts[tenth] = len(recovered)
    assert counts[9] > counts[1]
    assert all(counts[t] <= counts[t + 1] for t in range(1, 9)), counts


def test_page_of_garbage_loses_only_that_page(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite"
    original = {r.id: r for r in filled_store(path)}
    page_size = sqlite3.connect(path).execute("PRAGMA page_size").fetchone()[0]
    with path.open("r+b") as handle:  # overwrite the third page from the end (table data)
        handle.seek(path.stat().st_size - 3 * page_size)
        handle.write(random.Random(1).randbytes(page_size))
    with pytest.warns(StoreRecoveredWarning, match=r"50 evaluation records of the 60 ids"):
        store = SQLiteStore(path)
        recovered = store.records()
    assert all(r == original[r.id] for r in recovered)
    lost = sorted(set(original) - {r.id for r in recovered})
    assert lost == list(range(lost[0], lost[0] + 10))  # one page of consecutive ids
    store.close()


def test_garbage_file_is_moved_aside_and_replaced(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite"
    garbage = random.Random(0).randbytes(10_000)
    path.write_bytes(garbage)
    with pytest.warns(StoreRecoveredWarning, match=r"file is not a database.* 0 evaluation"):
        store = SQLiteStore(path)
        assert store.records() == []
    assert _aside(path).read_bytes() == garbage
    got = claim(store, key())
    store.finish(got.record.id, EvalStatus.COMPLETE, {"v": 1.0})
    assert [r.id for r in store.records()] == [1]
    store.close()


def test_recovery_keeps_runs_and_state(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite"
    filled_store(path)
    with path.open("r+b") as handle:
        handle.truncate(path.stat().st_size * 9 // 10)
    with pytest.warns(StoreRecoveredWarning, match=r"1 runs and 1 state entries"):
        store = SQLiteStore(path)
        assert store.run_config("r") == {"budget": N_DAMAGED}
    assert store.get_state("random") == '{"next": 60}'
    with pytest.raises(RunConflictError, match=r"Run 'r' is already registered"):
        store.register_run("r", {"budget": 1})
    store.close()
