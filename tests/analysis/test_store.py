"""Tests of :mod:`analysis.results`: one contract suite for every backend, then SQLite specifics."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from analysis.errors import (
    RecordNotFoundError,
    RunConflictError,
    StoreCorruptError,
    StoreError,
    StoreRecoveredWarning,
    StoreValueError,
)
from analysis.results import (
    SCHEMA_VERSION,
    ClaimOutcome,
    EvalKey,
    EvalStatus,
    ResultsStore,
    SQLiteStore,
    hash_config,
)

FIXTURES = Path(__file__).parent / "fixtures"
V1_FIXTURE = FIXTURES / "results_v1.sqlite"

CELL = {
    "matrix": [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]],
    "ops": ["input", "conv3x3-bn-relu", "maxpool3x3", "output"],
}
ARCH = [CELL, CELL]


def key(arch: str = "a", *, evaluator: str = "standalone", config: str = "c", seed: int = 0):
    return EvalKey(arch, evaluator, config, seed)


def claim(store: ResultsStore, k: EvalKey, **kwargs: Any):
    kwargs.setdefault("run", "r")
    kwargs.setdefault("method", "random")
    return store.claim(k, arch_json=ARCH, **kwargs)


# -- backends ----------------------------------------------------------------------------------
# A new backend joins the contract suite by adding one factory: tmp_path -> fresh, empty store.


def sqlite_factory(tmp_path: Path) -> ResultsStore:
    return SQLiteStore(tmp_path / "results.sqlite")


BACKENDS: dict[str, Callable[[Path], ResultsStore]] = {"sqlite": sqlite_factory}


@pytest.fixture(params=sorted(BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path):
    with BACKENDS[request.param](tmp_path) as opened:
        yield opened


def _claim_and_exit(store: ResultsStore, k: EvalKey) -> None:
    """Claim ``k`` and exit without finishing it: a worker that died mid-evaluation."""
    claim(store, k)


class TestResultsStoreContract:
    """What every :class:`ResultsStore` backend must do (the Optuna-style storage contract)."""

    def test_claim_finish_round_trip(self, store: ResultsStore) -> None:
        got = claim(store, key(), run="r1", method="bo", host=None)
        assert got.outcome is ClaimOutcome.ACQUIRED and got.must_evaluate
        record = got.record
        assert (record.status, record.attempt, record.run, record.method) == (
            EvalStatus.RUNNING,
            1,
            "r1",
            "bo",
        )
        assert record.arch == ARCH and record.key == key()
        assert record.started_at is not None and record.finished_at is None
        assert record.pid == os.getpid() and record.host

        done = store.finish(record.id, EvalStatus.COMPLETE, {"val_accuracy": 0.93, "seconds": 4})
        assert done.status is EvalStatus.COMPLETE
        assert dict(done.metrics) == {"val_accuracy": 0.93, "seconds": 4.0}
        assert done.finished_at >= done.started_at
        assert store.get(record.id) == done
        assert store.find(key()) == done
        assert store.records() == [done]

    def test_cache_hit_never_hands_a_key_out_twice(self, store: ResultsStore) -> None:
        first = claim(store, key())
        again = claim(store, key(), method="bo")  # while RUNNING: busy, not handed out
        assert again.outcome is ClaimOutcome.BUSY and not again.must_evaluate
        assert again.record.id == first.record.id
        store.finish(first.record.id, EvalStatus.COMPLETE, {"val_accuracy": 0.5})
        for method in ("random", "bo", "fd"):
            hit = claim(store, key(), method=method)
            assert hit.outcome is ClaimOutcome.CACHED
            assert hit.record.id == first.record.id and hit.record.method == "random"
        diverged = claim(store, key("b"))
        store.finish(diverged.record.id, EvalStatus.DIVERGED, {"loss": float("nan")})
        hit = claim(store, key("b"))
        assert hit.outcome is ClaimOutcome.CACHED and hit.record.status is EvalStatus.DIVERGED
        assert hit.record.metrics["loss"] != hit.record.metrics["loss"]  # NaN reads back as NaN
        assert len(store.records()) == 2

    def test_seed_config_and_evaluator_make_different_keys(self, store: ResultsStore) -> None:
        keys = [key(), key(seed=1), key(config="c2"), key(evaluator="supernet"), key("b")]
        ids = []
        for k in keys:
            got = claim(store, k)
            assert got.outcome is ClaimOutcome.ACQUIRED, k
            ids.append(got.record.id)
            store.finish(got.record.id, EvalStatus.COMPLETE, {"v": 1.0})
        assert ids == sorted(ids) and len(set(ids)) == len(keys)  # unique and increasing
        assert [store.find(k).id for k in keys] == ids

    def test_failed_key_is_retried_up_to_max_attempts(self, store: ResultsStore) -> None:
        attempts = []
        for _ in range(3):
            got = claim(store, key(), max_attempts=3)
            assert got.outcome is ClaimOutcome.ACQUIRED
            attempts.append(got.record.attempt)
            store.finish(got.record.id, EvalStatus.FAILED, {}, error="CUDA out of memory")
        assert attempts == [1, 2, 3]
        final = claim(store, key(), max_attempts=3)
        assert final.outcome is ClaimOutcome.EXHAUSTED and not final.must_evaluate
        assert (final.record.status, final.record.attempt) == (EvalStatus.FAILED, 3)
        assert final.record.error == "CUDA out of memory"
        # A larger budget later gives the key one more try; success then caches it.
        more = claim(store, key(), max_attempts=4)
        assert more.outcome is ClaimOutcome.ACQUIRED and more.record.attempt == 4
        store.finish(more.record.id, EvalStatus.COMPLETE, {"v": 1.0})
        assert claim(store, key(), max_attempts=9).outcome is ClaimOutcome.CACHED
        assert [r.attempt for r in store.history(key())] == [1, 2, 3, 4]
        assert [r.status for r in store.history(key())][-1] is EvalStatus.COMPLETE

    def test_worker_that_died_is_failed_and_retried(self, store: ResultsStore) -> None:
        ctx = multiprocessing.get_context("spawn")
        worker = ctx.Process(target=_claim_and_exit, args=(store, key()))
        worker.start()
        worker.join(60)
        assert worker.exitcode == 0
        orphan = store.find(key())
        assert orphan.status is EvalStatus.RUNNING and orphan.pid == worker.pid

        retry = claim(store, key())
        assert retry.outcome is ClaimOutcome.ACQUIRED and retry.record.attempt == 2
        dead = store.get(orphan.id)
        assert dead.status is EvalStatus.FAILED and dead.error.startswith("worker died")
        assert f"pid {worker.pid}" in dead.error
        with pytest.raises(StoreError, match=r"already FAILED .*immutable"):
            store.finish(orphan.id, EvalStatus.COMPLETE, {"v": 1.0})  # the late worker's result

    def test_stale_after_fails_old_running_records(self, store: ResultsStore) -> None:
        elsewhere = claim(store, key(), host="gpu-node-7")  # no pid: only its age can tell
        assert elsewhere.record.host == "gpu-node-7" and elsewhere.record.pid is None
        assert claim(store, key(), stale_after=3600).outcome is ClaimOutcome.BUSY
        time.sleep(0.01)
        retry = claim(store, key(), stale_after=0.001)
        assert retry.outcome is ClaimOutcome.ACQUIRED and retry.record.attempt == 2
        dead = store.get(elsewhere.record.id)
        assert dead.status is EvalStatus.FAILED
        assert dead.error.startswith("worker died") and "stale_after=0.001" in dead.error
        # A stale record on its last attempt is final.
        claim(store, key("b"), host="gpu-node-7", max_attempts=1)
        time.sleep(0.01)
        final = claim(store, key("b"), max_attempts=1, stale_after=0.001)
        assert final.outcome is ClaimOutcome.EXHAUSTED
        assert final.record.error.startswith("worker died")

    def test_finished_records_are_immutable(self, store: ResultsStore) -> None:
        got = claim(store, key())
        done = store.finish(got.record.id, EvalStatus.COMPLETE, {"v": 1.0})
        for status in (EvalStatus.COMPLETE, EvalStatus.FAILED):
            with pytest.raises(StoreError, match=r"Record 1 is already COMPLETE .*immutable"):
                store.finish(got.record.id, status, {"v": 2.0})
        assert store.get(got.record.id) == done
        with pytest.raises(StoreValueError, match=r"must be COMPLETE, DIVERGED or FAILED; got"):
            store.finish(got.record.id, EvalStatus.RUNNING, {})
        with pytest.raises(RecordNotFoundError, match=r"No evaluation record has id 99"):
            store.finish(99, EvalStatus.COMPLETE, {})
        with pytest.raises(RecordNotFoundError, match=r"id 99"):
            store.get(99)

    def test_enqueue_then_claim_takes_the_pending_record(self, store: ResultsStore) -> None:
        pending = store.enqueue(key(), run="r", method="bo", arch_json=ARCH)
        assert pending.status is EvalStatus.PENDING and pending.started_at is None
        assert store.enqueue(key(), run="r", method="bo", arch_json=ARCH) == pending
        got = claim(store, key())
        assert got.outcome is ClaimOutcome.ACQUIRED and got.record.id == pending.id
        assert got.record.status is EvalStatus.RUNNING and got.record.method == "bo"

    def test_add_stores_a_finished_result_in_one_step(self, store: ResultsStore) -> None:
        def add(k: EvalKey, status: EvalStatus, value: float) -> Any:
            return store.add(
                k, run="r", method="fd", arch_json=ARCH, status=status, metrics={"log_p": value}
            )

        first = add(key(evaluator="supernet"), EvalStatus.COMPLETE, -3.5)
        assert (first.status, first.attempt, first.metrics["log_p"]) == (
            EvalStatus.COMPLETE,
            1,
            -3.5,
        )
        assert first.finished_at is not None
        again = add(key(evaluator="supernet"), EvalStatus.COMPLETE, -1.0)
        assert again == first  # the cache wins; nothing new stored
        failed = add(key("b", evaluator="supernet"), EvalStatus.FAILED, 0.0)
        retried = add(key("b", evaluator="supernet"), EvalStatus.COMPLETE, -2.0)
        assert (failed.attempt, retried.attempt) == (1, 2)
        pending = store.enqueue(key("c"), run="r", method="fd", arch_json=ARCH)
        assert add(key("c"), EvalStatus.COMPLETE, -4.0).id == pending.id
        claim(store, key("d"))
        with pytest.raises(StoreError, match=r"record 5 of that key is RUNNING on host"):
            add(key("d"), EvalStatus.COMPLETE, 0.0)
        assert len(store.records()) == 5

    def test_records_filters(self, store: ResultsStore) -> None:
        for i, method in enumerate(["random", "bo", "random"]):
            got = claim(store, key(str(i)), method=method, run=f"r{i % 2}")
            if i < 2:
                store.finish(got.record.id, EvalStatus.COMPLETE, {"v": i})
        assert [r.id for r in store.records(method="random")] == [1, 3]
        assert [r.id for r in store.records(run="r0")] == [1, 3]
        assert [r.id for r in store.records(status=EvalStatus.RUNNING)] == [3]
        assert [r.id for r in store.records(run="r0", status=EvalStatus.COMPLETE)] == [1]
        assert store.records(evaluator="supernet") == []

    def test_to_frame_and_export_csv(self, store: ResultsStore, tmp_path: Path) -> None:
        import pandas as pd

        empty = store.to_frame()
        assert len(empty) == 0 and "arch_hash" in empty.columns
        for i in range(4):
            got = claim(store, key(str(i)), method="bo" if i % 2 else "random")
            metrics = {"val_accuracy": 0.8 + i / 100}
            if i == 3:
                metrics["train_seconds"] = 12.0
            store.finish(got.record.id, EvalStatus.COMPLETE, metrics)
        claim(store, key("4"))

        frame = store.to_frame()
        assert list(frame["id"]) == [1, 2, 3, 4, 5]
        assert list(frame["status"]) == ["COMPLETE"] * 4 + ["RUNNING"]
        assert frame["metric_val_accuracy"].tolist()[:4] == pytest.approx([0.8, 0.81, 0.82, 0.83])
        assert frame["metric_train_seconds"].isna().tolist() == [True, True, True, False, True]
        assert isinstance(frame["finished_at"].dtype, pd.DatetimeTZDtype)
        assert str(frame["finished_at"].dtype.tz) == "UTC"
        assert frame["finished_at"].isna().tolist() == [False] * 4 + [True]
        assert list(store.to_frame(method="bo")["id"]) == [2, 4]

        out = tmp_path / "exports" / "evaluations.csv"
        out.parent.mkdir()
        out.write_text("old contents\n")
        assert store.export_csv(out) == out
        read = pd.read_csv(out)
        assert list(read["id"]) == [1, 2, 3, 4, 5]
        assert read["metric_val_accuracy"].tolist()[:4] == pytest.approx([0.8, 0.81, 0.82, 0.83])
        assert read["finished_at"][0] == store.get(1).finished_at  # ISO-8601 UTC, as stored
        assert json.loads(read["arch_json"][0]) == ARCH
        assert sorted(p.name for p in out.parent.iterdir()) == ["evaluations.csv"]  # no temp

    def test_register_run_conflict_keeps_old_results(self, store: ResultsStore) -> None:
        config = {"budget": 10, "method": "bo", "lr": 0.1}
        store.register_run("exp", config)
        store.register_run("exp", dict(reversed(config.items())))  # same config: no-op
        got = claim(store, key(), run="exp")
        store.finish(got.record.id, EvalStatus.COMPLETE, {"v": 1.0})
        other = {**config, "budget": 20}
        match = (
            rf"Run 'exp' is already registered .* config hash {hash_config(config)}, but the "
            rf"config given now hashes to {hash_config(other)}\. .*intact"
        )
        with pytest.raises(RunConflictError, match=match):
            store.register_run("exp", other)
        assert store.run_config("exp") == config
        assert store.run_config("nope") is None
        assert [r.id for r in store.records(run="exp")] == [got.record.id]
        store.register_run("exp-2", other)  # another name is fine
        with pytest.raises(StoreValueError, match=r"JSON-serialisable .*got \{'f'"):
            store.register_run("bad", {"f": object()})

    def test_state_get_set(self, store: ResultsStore) -> None:
        assert store.get_state("bo") is None
        store.set_state("bo", '{"X": [[0.1, 0.2]], "iteration": 3}')
        assert json.loads(store.get_state("bo")) == {"X": [[0.1, 0.2]], "iteration": 3}
        store.set_state("bo", '{"iteration": 4}')
        assert store.get_state("bo") == '{"iteration": 4}'
        with pytest.raises(StoreValueError, match=r"set_state\('bo'\) is not valid JSON"):
            store.set_state("bo", "{iteration: 5}")
        assert store.get_state("bo") == '{"iteration": 4}'

    def test_threads_share_one_store(self, store: ResultsStore) -> None:
        errors: list[BaseException] = []

        def work(t: int) -> None:
            try:
                for j in range(15):
                    got = claim(store, key(f"t{t}-{j}"))
                    store.finish(got.record.id, EvalStatus.COMPLETE, {"v": j})
            except BaseException as err:  # reported below
                errors.append(err)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert sorted(r.id for r in store.records()) == list(range(1, 61))

    @pytest.mark.parametrize(
        ("make", "match"),
        [
            (lambda: EvalKey("a", "gpu", "c", 0), r"'evaluator' .*one of .*got 'gpu'"),
            (lambda: EvalKey("", "supernet", "c", 0), r"'arch_hash' must be a non-empty .*got ''"),
            (lambda: EvalKey("a", "supernet", "c", 1.5), r"'seed' .*integer; got float 1.5"),
            (lambda: EvalKey("a", "supernet", "c", 2**64), r"fit in 64 bits; got 1844"),
        ],
    )
    def test_bad_keys(self, make: Callable[[], EvalKey], match: str) -> None:
        with pytest.raises(StoreValueError, match=match):
            make()

    def test_bad_arguments(self, store: ResultsStore) -> None:
        with pytest.raises(StoreValueError, match=r"non-empty list of NAS-Bench-101 cells"):
            store.claim(key(), run="r", method="m", arch_json={"matrix": [[0]]})
        with pytest.raises(StoreValueError, match=r"Cell 1 of 'arch_json' must be an object"):
            store.claim(key(), run="r", method="m", arch_json=[CELL, [1, 2]])
        with pytest.raises(StoreValueError, match=r"'arch_json' is not valid JSON"):
            store.claim(key(), run="r", method="m", arch_json="[{")
        with pytest.raises(StoreValueError, match=r"'max_attempts' .*>= 1; got 0"):
            claim(store, key(), max_attempts=0)
        with pytest.raises(StoreValueError, match=r"'stale_after' must be >= 0 seconds; got -1"):
            claim(store, key(), stale_after=-1)
        with pytest.raises(StoreValueError, match=r"'run' must be a non-empty string; got ''"):
            claim(store, key(), run="")
        got = claim(store, key())
        with pytest.raises(StoreValueError, match=r"metric 'acc' must be a real number; got str"):
            store.finish(got.record.id, EvalStatus.COMPLETE, {"acc": "high"})
        with pytest.raises(StoreValueError, match=r"'metrics' must be a mapping .*got list"):
            store.finish(got.record.id, EvalStatus.COMPLETE, [0.5])
        assert store.get(got.record.id).status is EvalStatus.RUNNING  # nothing half-written
        with pytest.raises(StoreValueError, match=r"'error' must be a string or None; got 3"):
            store.finish(got.record.id, EvalStatus.FAILED, {}, error=3)
        with pytest.raises(StoreValueError, match=r"record id must be an integer; got str '1'"):
            store.get("1")
        with pytest.raises(StoreValueError, match=r"'status' of records must be an EvalStatus"):
            store.records(status="DONE")
        with pytest.raises(StoreValueError, match=r"'key' must be an EvalKey; got tuple"):
            store.find(("a", "standalone", "c", 0))
        with pytest.raises(StoreValueError, match=r"'stale_after' must be seconds or None"):
            claim(store, key(), stale_after="1h")


# -- SQLite specifics --------------------------------------------------------------------------


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
    _filled_store(path)
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
    for process in processes:
        process.start()
    reports = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(30)
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
    for process in processes:
        process.start()
    reports = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(30)
    assert [error for _, error in reports if error] == []
    acquired = [name for names, _ in reports for name in names]
    assert sorted(acquired) == sorted(keys)  # every key evaluated exactly once in total
    records = store.records()
    assert len(records) == len(keys)
    assert {r.metrics["by"] for r in records} <= set(range(4))


# -- versions ----------------------------------------------------------------------------------

V1_SCHEMA = """
CREATE TABLE runs (
    name        TEXT PRIMARY KEY NOT NULL,
    config_json TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE TABLE evaluations (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    run                   TEXT    NOT NULL,
    method                TEXT    NOT NULL,
    arch_hash             TEXT    NOT NULL,
    arch_json             TEXT    NOT NULL,
    seed                  INTEGER NOT NULL,
    evaluator             TEXT    NOT NULL,
    evaluator_config_hash TEXT    NOT NULL,
    status                TEXT    NOT NULL,
    metrics_json          TEXT    NOT NULL DEFAULT '{}',
    error                 TEXT,
    created_at            TEXT    NOT NULL,
    started_at            TEXT,
    finished_at           TEXT
);
CREATE INDEX evaluations_key ON evaluations (arch_hash, evaluator, evaluator_config_hash, seed);
CREATE TABLE state (
    name       TEXT PRIMARY KEY NOT NULL,
    value_json TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
PRAGMA user_version = 1;
"""

V1_CONFIG = {"budget": 4, "dataset": "digits", "seed": 0}
# (arch_hash, evaluator, status, metrics, error); a3 failed once, then completed on a retry.
V1_ROWS = [
    ("a1", "standalone", "COMPLETE", {"val_accuracy": 0.91, "train_seconds": 12.5}, None),
    ("a2", "standalone", "DIVERGED", {"val_accuracy": 0.1}, "loss became NaN at step 40"),
    ("a3", "standalone", "FAILED", {}, "CUDA out of memory"),
    ("a3", "standalone", "COMPLETE", {"val_accuracy": 0.88}, None),
    ("a1", "supernet", "COMPLETE", {"log_prob": -3.25}, None),
    ("a4", "standalone", "RUNNING", {}, None),
]


def write_v1_store(path: Path) -> None:
    """Write the store that "version 1" of the toolkit would have left (the committed fixture).

    Regenerate the fixture with ``python -c "from tests.analysis.test_store import *;
    write_v1_store(V1_FIXTURE)"`` after deleting it.
    """
    con = sqlite3.connect(path)
    con.executescript(V1_SCHEMA)
    stamp = "2025-03-01T12:00:{:02d}.000000+00:00"
    con.execute(
        "INSERT INTO runs VALUES ('demo', ?, ?, ?)",
        (json.dumps(V1_CONFIG, sort_keys=True), hash_config(V1_CONFIG), stamp.format(0)),
    )
    for i, (arch, evaluator, status, metrics, error) in enumerate(V1_ROWS, start=1):
        con.execute(
            "INSERT INTO evaluations (run, method, arch_hash, arch_json, seed, evaluator, "
            "evaluator_config_hash, status, metrics_json, error, created_at, started_at, "
            "finished_at) VALUES ('demo', 'random', ?, ?, 0, ?, 'cfg1', ?, ?, ?, ?, ?, ?)",
            (
                arch,
                json.dumps(ARCH),
                evaluator,
                status,
                json.dumps(metrics),
                error,
                stamp.format(i),
                stamp.format(i),
                None if status == "RUNNING" else stamp.format(i + 1),
            ),
        )
    # An id issued and then rolled back by hand: version 2 must not hand out id 7 again.
    con.execute(
        "INSERT INTO evaluations (run, method, arch_hash, arch_json, seed, evaluator, "
        "evaluator_config_hash, status, created_at) VALUES ('demo', 'random', 'gone', '[]', 0, "
        "'standalone', 'cfg1', 'PENDING', ?)",
        (stamp.format(9),),
    )
    con.execute("DELETE FROM evaluations WHERE arch_hash = 'gone'")
    con.execute("INSERT INTO state VALUES ('random', '{\"next\": 5}', ?)", (stamp.format(10),))
    con.commit()
    con.close()


def _dump(path: Path) -> list[str]:
    con = sqlite3.connect(path)
    try:
        return [*con.iterdump(), f"user_version={con.execute('PRAGMA user_version').fetchone()}"]
    finally:
        con.close()


def test_v1_fixture_is_what_write_v1_store_writes(tmp_path: Path) -> None:
    write_v1_store(tmp_path / "v1.sqlite")
    assert _dump(V1_FIXTURE) == _dump(tmp_path / "v1.sqlite")


def test_v1_store_migrates_to_v2_with_every_row(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite"
    shutil.copyfile(V1_FIXTURE, path)
    store = SQLiteStore(path)
    records = store.records()
    assert [r.id for r in records] == [1, 2, 3, 4, 5, 6]
    assert [(r.arch_hash, r.evaluator, r.status.name, r.attempt) for r in records] == [
        ("a1", "standalone", "COMPLETE", 1),
        ("a2", "standalone", "DIVERGED", 1),
        ("a3", "standalone", "FAILED", 1),
        ("a3", "standalone", "COMPLETE", 2),
        ("a1", "supernet", "COMPLETE", 1),
        ("a4", "standalone", "RUNNING", 1),
    ]
    assert [dict(r.metrics) for r in records] == [row[3] for row in V1_ROWS]
    assert records[1].error == "loss became NaN at step 40"
    assert all(r.host is None and r.pid is None and r.arch == ARCH for r in records)
    assert store.run_config("demo") == V1_CONFIG
    assert json.loads(store.get_state("random")) == {"next": 5}

    v1_key = EvalKey("a3", "standalone", "cfg1", 0)
    assert claim(store, v1_key).outcome is ClaimOutcome.CACHED
    new = claim(store, EvalKey("a5", "standalone", "cfg1", 0))
    assert new.record.id == 8  # id 7 was issued by version 1: never reused
    store.close()

    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == 2
        migrated = sorted(con.execute("SELECT type, name, sql FROM sqlite_master"))
    fresh_path = tmp_path / "fresh.sqlite"
    SQLiteStore(fresh_path).records()
    with sqlite3.connect(fresh_path) as con:
        fresh = sorted(con.execute("SELECT type, name, sql FROM sqlite_master"))
    assert migrated == fresh  # a migrated store is exactly a fresh one


def test_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite"
    SQLiteStore(path).close()
    with sqlite3.connect(path) as con:
        con.execute("PRAGMA user_version = 3")
    before = path.read_bytes()
    with pytest.raises(StoreError, match=r"schema version 3, .*up to 2\. Upgrade dagrank"):
        SQLiteStore(path).records()
    assert path.read_bytes() == before


def test_foreign_sqlite_database_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")
    before = path.read_bytes()
    with pytest.raises(StoreCorruptError, match=r"not a results store .*\['photos'\]"):
        SQLiteStore(path).records()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.sqlite", "results.sqlite.lock"]


# -- damaged files -----------------------------------------------------------------------------

N_DAMAGED = 60


def _filled_store(path: Path) -> list[Any]:
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


def _aside(path: Path) -> Path:
    (aside,) = [p for p in path.parent.iterdir() if ".corrupt-" in p.name]
    return aside


@pytest.mark.parametrize("fraction", [0.7, 0.85, 0.97])
def test_truncated_store_is_recovered(tmp_path: Path, fraction: float) -> None:
    path = tmp_path / "results.sqlite"
    original = {r.id: r for r in _filled_store(path)}
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
        original = {r.id: r for r in _filled_store(path)}
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
    original = {r.id: r for r in _filled_store(path)}
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
    _filled_store(path)
    with path.open("r+b") as handle:
        handle.truncate(path.stat().st_size * 9 // 10)
    with pytest.warns(StoreRecoveredWarning, match=r"1 runs and 1 state entries"):
        store = SQLiteStore(path)
        assert store.run_config("r") == {"budget": N_DAMAGED}
    assert store.get_state("random") == '{"next": 60}'
    with pytest.raises(RunConflictError, match=r"Run 'r' is already registered"):
        store.register_run("r", {"budget": 1})
    store.close()
