"""What :class:`analysis.results.InMemoryStore` does beyond the contract: it stays in its process,
keeps its records through close(), and applies a method's writes all together or not at all."""

from __future__ import annotations

import copy
import dataclasses
import multiprocessing
import os
import pickle
import sys

import pytest

import analysis
from analysis.errors import StoreError
from analysis.results import EvalStatus, InMemoryStore, ResultsStore
from tests.analysis.results.conftest import claim, key


def test_is_a_results_store_importable_from_analysis() -> None:
    assert analysis.InMemoryStore is InMemoryStore
    assert issubclass(InMemoryStore, ResultsStore)
    store = InMemoryStore()
    assert repr(store) == "InMemoryStore(<0 records>)"
    claim(store, key())
    assert repr(store) == "InMemoryStore(<1 records>)"


def test_refuses_to_be_pickled_but_its_records_pickle() -> None:
    store = InMemoryStore()
    got = claim(store, key())
    record = store.finish(got.record.id, EvalStatus.COMPLETE, {"val_accuracy": 0.5})
    match = rf"InMemoryStore cannot be pickled: .*memory of process {os.getpid()}.*SQLiteStore"
    with pytest.raises(StoreError, match=match):
        pickle.dumps(store)
    with pytest.raises(StoreError, match=r"cannot be pickled"):
        copy.deepcopy(store)
    assert pickle.loads(pickle.dumps(record)) == record
    assert hash(record) == hash(store.get(record.id))  # frozen records are hashable
    with pytest.raises(TypeError):
        record.metrics["val_accuracy"] = 1.0  # read-only


def _use_in_child(store: InMemoryStore) -> None:
    try:
        store.records()
    except StoreError as err:
        ok = f"belongs to process {os.getppid()}" in str(err) and "records was refused" in str(err)
        sys.exit(0 if ok else 2)
    sys.exit(1)


@pytest.mark.skipif(sys.platform == "win32", reason="fork is POSIX only")
def test_a_forked_child_is_refused_and_the_parent_goes_on() -> None:
    store = InMemoryStore()
    parent = claim(store, key("parent"))
    child = multiprocessing.get_context("fork").Process(target=_use_in_child, args=(store,))
    child.start()
    child.join(30)
    assert child.exitcode == 0  # StoreError, naming both processes and the method
    store.finish(parent.record.id, EvalStatus.COMPLETE, {"v": 0.0})
    assert [r.arch_hash for r in store.records()] == ["parent"]


def test_close_keeps_the_records() -> None:
    with InMemoryStore() as store:
        got = claim(store, key())
        store.register_run("r", {"budget": 1})
        store.set_state("bo", '{"iteration": 1}')
    store.close()  # again: nothing to release
    assert [r.id for r in store.records()] == [got.record.id]
    assert store.find(key()).status is EvalStatus.RUNNING
    assert store.run_config("r") == {"budget": 1}
    assert store.get_state("bo") == '{"iteration": 1}'


def test_a_method_that_raises_changes_nothing() -> None:
    store = InMemoryStore()
    kept = claim(store, key("kept")).record

    def half_then_fail(tx) -> None:
        inserted = tx.insert(claim(InMemoryStore(), key("lost")).record)
        assert inserted.id == 2 and tx.get(2) == inserted  # the transaction sees its write
        assert [r.id for r in tx.history(key("lost"))] == [2]
        assert tx.update(dataclasses.replace(kept, status=EvalStatus.FAILED)).attempt == 1
        tx.add_run("r", "{}", "hash", "now")
        tx.put_state("bo", "{}", "now")
        raise RuntimeError("failed half way")

    with pytest.raises(RuntimeError, match="failed half way"):
        store._transact(half_then_fail, write=True, what="test")
    assert store.records() == [kept]  # the update and the insert are both gone
    assert store.run_config("r") is None and store.get_state("bo") is None
    assert claim(store, key("next")).record.id == 2  # the failed insert's id was not issued


def test_records_are_snapshots() -> None:
    store = InMemoryStore()
    running = claim(store, key()).record
    done = store.finish(running.id, EvalStatus.COMPLETE, {"v": 1.0})
    assert running.status is EvalStatus.RUNNING and dict(running.metrics) == {}  # unchanged
    assert done.status is EvalStatus.COMPLETE and store.get(running.id) == done
    assert store.history(key()) == [done]
