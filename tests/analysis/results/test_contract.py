"""The contract of :class:`analysis.results.ResultsStore`, run over every backend (Optuna-style).

A new backend joins the suite by adding one :class:`Backend` to ``BACKENDS``. What only one
backend can do (files, WAL, locks, processes, corruption) is tested in its own module.
"""

from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from analysis.errors import RecordNotFoundError, RunConflictError, StoreError, StoreValueError
from analysis.results import (
    ClaimOutcome,
    EvalKey,
    EvalStatus,
    InMemoryStore,
    ResultsStore,
    SQLiteStore,
)
from tests.analysis.results.conftest import ARCH, CELL, claim, key

# -- backends ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backend:
    """How the suite gets a fresh, empty store of one backend, and a worker that died."""

    open: Callable[[Path], ResultsStore]  # tmp_path -> store
    orphan: Callable[[ResultsStore, EvalKey], int]  # leave the key RUNNING by a gone pid; the pid


def _claim_and_exit(store: ResultsStore, k: EvalKey) -> None:
    """Claim ``k`` and exit without finishing it: a worker that died mid-evaluation."""
    claim(store, k)


def _spawned_orphan(store: ResultsStore, k: EvalKey) -> int:
    """A spawned worker process claims ``k`` through the store and exits without finishing."""
    worker = multiprocessing.get_context("spawn").Process(target=_claim_and_exit, args=(store, k))
    worker.start()
    worker.join(60)
    assert worker.exitcode == 0
    return worker.pid


def _memory_orphan(store: ResultsStore, k: EvalKey) -> int:
    """``k`` claimed here, then its record handed to a process that has exited.

    No other process can reach an InMemoryStore, so the record is re-attributed in place (the
    backend's own structure): what is tested is the rule that a gone pid on this host is stale.
    """
    assert isinstance(store, InMemoryStore)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    record = claim(store, k).record
    store._records[record.id] = dataclasses.replace(record, pid=gone.pid)
    return gone.pid


BACKENDS: dict[str, Backend] = {
    "memory": Backend(lambda tmp_path: InMemoryStore(), _memory_orphan),
    "sqlite": Backend(lambda tmp_path: SQLiteStore(tmp_path / "results.sqlite"), _spawned_orphan),
}


def in_threads(work: Callable[[int], None], n: int) -> None:
    """Run ``work(0)``, ..., ``work(n - 1)`` in ``n`` threads; fail with every error they had."""
    errors: list[BaseException] = []

    def guarded(t: int) -> None:
        try:
            work(t)
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=guarded, args=(t,)) for t in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> Backend:
    return BACKENDS[request.param]


@pytest.fixture
def store(backend: Backend, tmp_path: Path):
    with backend.open(tmp_path) as opened:
        yield opened


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

    def test_non_finite_metrics_read_back_as_nan(self, store: ResultsStore) -> None:
        got = claim(store, key())
        metrics = {"inf": float("inf"), "-inf": float("-inf"), "nan": float("nan"), "int": 3}
        done = store.finish(got.record.id, EvalStatus.DIVERGED, metrics)
        for stored in (done, store.get(got.record.id)):
            assert sorted(stored.metrics) == ["-inf", "inf", "int", "nan"]
            assert all(math.isnan(stored.metrics[name]) for name in ("inf", "-inf", "nan"))
            assert stored.metrics["int"] == 3.0 and isinstance(stored.metrics["int"], float)

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

    def test_worker_that_died_is_failed_and_retried(
        self, store: ResultsStore, backend: Backend
    ) -> None:
        pid = backend.orphan(store, key())
        orphan = store.find(key())
        assert orphan.status is EvalStatus.RUNNING and orphan.pid == pid

        retry = claim(store, key())
        assert retry.outcome is ClaimOutcome.ACQUIRED and retry.record.attempt == 2
        dead = store.get(orphan.id)
        assert dead.status is EvalStatus.FAILED and dead.error.startswith("worker died")
        assert f"pid {pid}" in dead.error
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
            r"Run 'exp' is already registered .* with another config \(stored != given: "
            r"budget: 10 != 20\)\. Nothing was changed: .*intact"
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
        def work(t: int) -> None:
            for j in range(15):
                got = claim(store, key(f"t{t}-{j}"))
                store.finish(got.record.id, EvalStatus.COMPLETE, {"v": j})

        in_threads(work, 4)
        assert sorted(r.id for r in store.records()) == list(range(1, 61))

    def test_threads_claiming_the_same_keys_evaluate_each_once(self, store: ResultsStore) -> None:
        names = [f"shared-{i}" for i in range(20)]
        acquired: list[tuple[int, str]] = []
        start = threading.Barrier(4)

        def work(t: int) -> None:
            start.wait(30)
            for name in names[t:] + names[:t]:  # each thread in another order
                got = claim(store, key(name), method=f"t{t}")
                if got.must_evaluate:
                    acquired.append((t, name))
                    store.finish(got.record.id, EvalStatus.COMPLETE, {"by": t})
                elif got.outcome is not ClaimOutcome.CACHED:
                    assert got.outcome is ClaimOutcome.BUSY, got

        in_threads(work, 4)
        assert sorted(name for _, name in acquired) == sorted(names)  # each once in total
        records = store.records()
        assert len(records) == len(names) and all(r.attempt == 1 for r in records)
        assert {r.arch_hash: r.metrics["by"] for r in records} == {n: t for t, n in acquired}

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
