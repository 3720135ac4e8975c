"""Issue 6, item 7: eight writer processes and a reader share one store without a lost row.

8 spawned processes each claim and finish 50 evaluations through the store's own API (the
default settings: what a user's workers get), while a ninth keeps exporting the store as a
DataFrame and a CSV. Every row must arrive once, with unique increasing ids, no caller may ever
see ``database is locked``, and the reader must neither wait for the writers nor hold them up.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import time
import traceback
from pathlib import Path
from typing import Any

import pytest

from analysis.results import EvalStatus, SQLiteStore
from tests.analysis.results.conftest import gather
from tests.reliability.conftest import ARCH, key

WRITERS = 8
EACH = 50


def _writer(store: SQLiteStore, w: int, start: Any, out: Any) -> None:
    slowest = 0.0
    try:
        start.wait(120)
        for j in range(EACH):
            began = time.perf_counter()
            got = store.claim(key(f"w{w}-{j:02d}"), run="r", method=f"w{w}", arch_json=ARCH)
            if not got.must_evaluate:
                raise AssertionError(f"w{w}-{j} was not handed out: {got.outcome.name}")
            store.finish(got.record.id, EvalStatus.COMPLETE, {"value": w * 1000 + j})
            slowest = max(slowest, time.perf_counter() - began)
        out.put(("writer", w, None, {"slowest": slowest, "retries": store.lock_retries}))
    except BaseException:
        out.put(("writer", w, traceback.format_exc(), None))


def _reader(store: SQLiteStore, csv: Path, start: Any, out: Any) -> None:
    try:
        store.to_frame()  # pandas imported, connection open, before the clock starts
        start.wait(120)
        exports: list[tuple[float, float, int, int]] = []  # (began, ended, rows, complete)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            began = time.time()
            frame = store.to_frame()
            store.export_csv(csv)
            ended = time.time()
            ids = frame["id"].tolist()
            if ids != sorted(set(ids)):
                raise AssertionError(f"ids not unique and increasing: {ids}")
            complete = int((frame["status"] == "COMPLETE").sum())
            exports.append((began, ended, len(frame), complete))
            if complete == WRITERS * EACH:
                break
        out.put(("reader", 0, None, {"exports": exports}))
    except BaseException:
        out.put(("reader", 0, traceback.format_exc(), None))


@pytest.mark.slow
def test_eight_writers_and_an_exporting_reader(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "results.sqlite")  # default busy and lock timeouts
    csv = tmp_path / "evaluations.csv"
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(WRITERS + 1)
    out = ctx.Queue()
    processes = [ctx.Process(target=_writer, args=(store, w, start, out)) for w in range(WRITERS)]
    processes.append(ctx.Process(target=_reader, args=(store, csv, start, out)))
    reports = gather(processes, out, timeout=300, join=60)
    errors = [report[2] for report in reports if report[2] is not None]
    assert errors == [], "\n".join(errors)  # no "database is locked", nor anything else
    assert [process.exitcode for process in processes] == [0] * (WRITERS + 1)

    # 400 rows, once each, ids unique and increasing, each writer's in its own order.
    records = store.records()
    assert len(records) == WRITERS * EACH
    assert [r.id for r in records] == list(range(1, WRITERS * EACH + 1))
    assert all(r.status is EvalStatus.COMPLETE and r.attempt == 1 for r in records)
    assert len({r.arch_hash for r in records}) == WRITERS * EACH
    for w in range(WRITERS):
        mine = [r.metrics["value"] for r in records if r.method == f"w{w}"]
        assert mine == [w * 1000 + j for j in range(EACH)]

    # The reader went on exporting while the writers wrote, and saw the store grow ...
    exports = next(report[3]["exports"] for report in reports if report[0] == "reader")
    during = [e for e in exports if 0 < e[3] < WRITERS * EACH]
    seen = [e[2] for e in exports]
    assert seen == sorted(seen) and exports[-1][3] == WRITERS * EACH
    assert len(during) >= 3 and len(set(seen)) >= 3, seen
    # ... and the writers went on committing while an export was reading: commits whose
    # finish time falls inside an export's interval.
    finished = [dt.datetime.fromisoformat(r.finished_at).timestamp() for r in records]
    overlapping = sum(any(b <= t <= e for b, e, _, _ in exports) for t in finished)
    assert overlapping >= 1
    slowest_export = max(e - b for b, e, _, _ in exports)
    writers = [report[3] for report in reports if report[0] == "writer"]
    slowest_write = max(w["slowest"] for w in writers)
    assert slowest_export < 10 and slowest_write < 10  # nobody stuck behind anybody
    import pandas as pd

    assert len(pd.read_csv(csv)) == WRITERS * EACH
    print(
        f"\n{len(records)} rows; {len(exports)} exports, {len(during)} during the writes "
        f"(slowest {slowest_export:.3f} s); {overlapping} commits landed while an export was "
        f"reading; slowest claim+finish {slowest_write:.3f} s; lock retries "
        f"{sum(w['retries'] for w in writers)}"
    )
    store.close()
