"""What :class:`analysis.results.SQLiteStore` does beyond the contract: one file, WAL, locks,
processes, pickled handles (the contract itself: ``test_contract.py``)."""

from __future__ import annotations

import json
import multiprocessing
import random
import shutil
import sqlite3
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import pytest

from analysis.errors import StoreCorruptError, StoreError, StoreRecoveredWarning, StoreValueError
from analysis.results import SCHEMA_VERSION, ClaimOutcome, EvalStatus, SQLiteStore
from tests.analysis.results.conftest import claim, filled_store, gather, key


def test_wal_mode_and_plain_sqlite_readers(tmp_path: Path) -> None:
    """The file is WAL; the stdlib sqlite3 (no toolkit import), the shell and pandas read it."""
    path = tmp_path / "results.sqlite"
    with SQLiteStore(path) as store:
        for i in range(3):
            got = claim(store, key(str(i)))
            store.finish(got.record.id, EvalStatus.COMPLETE, {"val_accuracy": i / 10})
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    script = (
        "import sqlite3, sys, json\n"
        f"con = sqlite3.connect({str(path)!r})\n"
        "print(con.execute('PRAGMA journal_mode').fetchone()[0])\n"
        "print(con.execute('PRAGMA user_version').fetchone()[0])\n"
        "rows = con.execute('SELECT id, status, metrics_json FROM evaluations').fetchall()\n"
        "print(json.dumps(rows))\n"
        'flat = con.execute("SELECT id, value FROM evaluations_flat WHERE metric = '
        "'val_accuracy' ORDER BY id\").fetchall()\n"
        "print(json.dumps(flat))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('analysis', 'dagspace')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", script], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0] == "wal" and out[1] == str(SCHEMA_VERSION)
    assert json.loads(out[2]) == [
        [1, "COMPLETE", '{"val_accuracy":0.0}'],
        [2, "COMPLETE", '{"val_accuracy":0.1}'],
        [3, "COMPLETE", '{"val_accuracy":0.2}'],
    ]
    assert json.loads(out[3]) == [[1, 0.0], [2, 0.1], [3, 0.2]]
    assert out[4] == "[]"

    import pandas as pd

    with sqlite3.connect(path) as con:
        frame = pd.read_sql("SELECT * FROM evaluations ORDER BY id", con)
    assert list(frame["id"]) == [1, 2, 3] and set(frame["status"]) == {"COMPLETE"}

    shell = shutil.which("sqlite3")
    if shell is not None:
        text = subprocess.run(
            [shell, str(path), "SELECT count(*), max(attempt) FROM evaluations;"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert text.strip() == "3|1"


def test_held_write_lock_times_out_as_store_error_and_readers_go_on(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite"
    store = SQLiteStore(path, busy_timeout=0.01, lock_timeout=0.3)
    claim(store, key("a"))
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer that never lets go
    try:
        began = time.monotonic()
        assert len(store.records()) == 1  # readers never wait for writers
        with pytest.raises(StoreError, match=r"stayed locked for more than 0.3 s, so claim gave"):
            claim(store, key("b"))
        assert 0.3 <= time.monotonic() - began < 5
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert claim(store, key("b")).must_evaluate  # and it works again once the lock is gone
    store.close()


def test_damage_found_while_open_is_a_store_corrupt_error(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite"
    filled_store(path)
    store = SQLiteStore(path)
    assert store.get_state("random") == '{"next": 60}'  # open and healthy
    page_size = store._conn.execute("PRAGMA page_size").fetchone()[0]
    with path.open("r+b") as handle:  # then a data page goes bad under it
        handle.seek(path.stat().st_size - 2 * page_size)
        handle.write(b"\xff" * page_size)
    with pytest.raises(StoreCorruptError, match=r"is damaged .*records failed\. Open it again"):
        store.records()
    store.close()
    with pytest.warns(StoreRecoveredWarning, match=r"50 evaluation records"):
        SQLiteStore(path).records()  # reopening recovers


def test_forked_child_opens_its_own_connection(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "results.sqlite")
    parent = claim(store, key("parent"))  # the parent's connection is open now
    child = multiprocessing.get_context("fork").Process(target=_fork_child, args=(store,))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    store.finish(parent.record.id, EvalStatus.COMPLETE, {"v": 0.0})  # parent's still works
    assert {r.arch_hash: r.status for r in store.records()} == {
        "parent": EvalStatus.COMPLETE,
        "child": EvalStatus.COMPLETE,
    }
    assert store.find(key("child")).pid == child.pid
    store.close()


def _fork_child(store: SQLiteStore) -> None:
    got = claim(store, key("child"))
    store.finish(got.record.id, EvalStatus.COMPLETE, {"v": 1.0})


def test_store_pickles_as_a_handle_and_records_pickle(tmp_path: Path) -> None:
    import pickle

    store = SQLiteStore(tmp_path / "results.sqlite", busy_timeout=1, synchronous="NORMAL")
    got = claim(store, key())
    record = store.finish(got.record.id, EvalStatus.COMPLETE, {"val_accuracy": 0.5})
    copy = pickle.loads(pickle.dumps(store))
    assert copy.path == store.path and copy.find(key()) == record
    assert pickle.loads(pickle.dumps(record)) == record
    assert hash(record) == hash(copy.get(record.id))  # frozen records are hashable
    with pytest.raises(TypeError):
        record.metrics["val_accuracy"] = 1.0  # read-only


def test_bad_settings_and_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(StoreValueError, match=r"'synchronous' .*'FULL' or 'NORMAL'; got 'OFF'"):
        SQLiteStore(tmp_path / "r.sqlite", synchronous="OFF")
    with pytest.raises(StoreValueError, match=r"'busy_timeout' .*>= 0; got -1"):
        SQLiteStore(tmp_path / "r.sqlite", busy_timeout=-1)
    with pytest.raises(StoreError, match=r"directory of the results store .* does not exist"):
        SQLiteStore(tmp_path / "missing" / "r.sqlite").records()


# -- many processes ----------------------------------------------------------------------------

N_WRITERS = 8
PER_WRITER = 50


def _writer(store: SQLiteStore, worker: int, start: Any, results: Any) -> None:
    try:
        start.wait(60)
        for j in range(PER_WRITER):
            got = claim(store, key(f"w{worker}-{j}"), method=f"w{worker}")
            if not got.must_evaluate:
                raise AssertionError(f"w{worker}-{j} was not handed out: {got.outcome.name}")
            store.finish(got.record.id, EvalStatus.COMPLETE, {"value": worker * 1000 + j})
        results.put(("writer", worker, None, store.lock_retries))
    except BaseException:
        results.put(("writer", worker, traceback.format_exc(), store.lock_retries))


def _reader(store: SQLiteStore, expected: int, csv_path: Path, start: Any, results: Any) -> None:
    try:
        store.to_frame()  # import pandas and connect before the clock starts
        start.wait(60)
        sizes: list[int] = []
        slowest = 0.0
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            began = time.perf_counter()
            frame = store.to_frame()
            store.export_csv(csv_path)
            slowest = max(slowest, time.perf_counter() - began)
            ids = frame["id"].tolist()
            if ids != sorted(set(ids)):
                raise AssertionError(f"ids not unique and increasing: {ids}")
            sizes.append(len(frame))
            if (frame["status"] == "COMPLETE").sum() == expected:
                break
        results.put(("reader", sizes, None, slowest))
    except BaseException:
        results.put(("reader", None, traceback.format_exc(), None))


@pytest.mark.slow
def test_eight_writer_processes_and_a_reader(tmp_path: Path) -> None:
    """8 spawned writers x 50 claim+finish, while a reader keeps exporting frames.

    A tiny busy_timeout makes SQLite give up on locks almost at once, so the store's own
    retry-with-backoff is what keeps ``database is locked`` from reaching the callers.
    """
    path = tmp_path / "results.sqlite"  # not created beforehand: the processes race to
    store = SQLiteStore(path, busy_timeout=0.001)
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(N_WRITERS + 1)
    results = ctx.Queue()
    expected = N_WRITERS * PER_WRITER
    processes = [
        ctx.Process(target=_writer, args=(store, w, start, results)) for w in range(N_WRITERS)
    ]
    processes.append(
        ctx.Process(target=_reader, args=(store, expected, tmp_path / "e.csv", start, results))
    )
    reports = gather(processes, results, timeout=120, join=30)
    errors = [report[2] for report in reports if report[2] is not None]
    assert errors == [], "\n".join(errors)
    assert all(process.exitcode == 0 for process in processes)

    records = store.records()
    assert len(records) == expected
    assert [r.id for r in records] == list(range(1, expected + 1))  # unique, increasing
    assert all(r.status is EvalStatus.COMPLETE and r.attempt == 1 for r in records)
    for w in range(N_WRITERS):  # each writer's own records in its order
        mine = [r for r in records if r.method == f"w{w}"]
        assert [r.metrics["value"] for r in mine] == [w * 1000 + j for j in range(PER_WRITER)]

    (sizes, slowest) = next((r[1], r[3]) for r in reports if r[0] == "reader")
    assert sizes == sorted(sizes) and sizes[-1] == expected  # it saw the store grow
    assert len(sizes) >= 3 and sizes[0] < expected and slowest < 5.0  # never stuck behind
    import pandas as pd

    assert len(pd.read_csv(tmp_path / "e.csv")) == expected


def _contender(store: SQLiteStore, worker: int, keys: list[str], start: Any, results: Any):
    try:
        order = list(keys)
        random.Random(worker).shuffle(order)
        start.wait(60)
        acquired = []
        for name in order:
            while True:
                got = claim(store, key(name), method=f"w{worker}")
                if got.outcome is ClaimOutcome.ACQUIRED:
                    acquired.append(name)
                    store.finish(got.record.id, EvalStatus.COMPLETE, {"by": worker})
                elif got.outcome is ClaimOutcome.BUSY:
                    time.sleep(0.005)
                    continue
                elif got.record.status is not EvalStatus.COMPLETE:
                    raise AssertionError(f"{name}: {got}")
                break
        results.put((acquired, None))
    except BaseException:
        results.put((None, traceback.format_exc()))


@pytest.mark.slow
def test_processes_claiming_the_same_keys_evaluate_each_once(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "results.sqlite")
    keys = [f"shared-{i}" for i in range(30)]
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(4)
    results = ctx.Queue()
    processes = [
        ctx.Process(target=_contender, args=(store, w, keys, start, results)) for w in range(4)
    ]
    reports = gather(processes, results, timeout=120, join=30)
    assert [error for _, error in reports if error] == []
    acquired = [name for names, _ in reports for name in names]
    assert sorted(acquired) == sorted(keys)  # every key evaluated exactly once in total
    records = store.records()
    assert len(records) == len(keys)
    assert {r.metrics["by"] for r in records} <= set(range(4))
