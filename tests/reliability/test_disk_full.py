"""Issue 6, item 5: a run on a disk that fills up stops with a clear error and loses nothing.

A run directory gets 10 stored evaluations and a supernet checkpoint of epoch 1. Then a job runs
out of room: on a tiny tmpfs filled to its last 64 KiB (where the test runs as root and may
mount one), or under ``RLIMIT_FSIZE`` with ``SIGXFSZ`` ignored, so that writes past 40 KiB fail
with ``EFBIG`` (anywhere). That job must stop with the toolkit's typed errors (``StoreError``,
``TrainingError``) naming the cause, every record stored before and the previous checkpoint must
be intact, and once there is room again the same job resumes and completes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from analysis.errors import StoreError
from analysis.results import EvalStatus, SQLiteStore
from surrogate.errors import TrainingError
from tests.reliability.conftest import ARCH, REPO, count_rows, key, tiny_config, tiny_dataset

N_BEFORE = 10  # evaluations stored before the disk fills up
N_TOTAL = 60  # evaluations the job stores in all
RLIMIT_BYTES = 40 * 1024  # no file may grow past this (SQLite's -shm alone is 32 KiB)
TMPFS_ROOM = 64 * 1024  # bytes left free on the tmpfs (SQLite's -shm alone takes 32 KiB)


def work(run: Path, upto: int = N_TOTAL) -> dict[str, Any]:
    """The job: evaluations ``a00 .. a{upto-1}`` into the store, then 2 epochs of supernet.

    Returns what happened; the toolkit's own errors are reported, anything else propagates.
    """
    report: dict[str, Any] = {"claimed": [], "finished": [], "store_error": None}
    store = SQLiteStore(run / "results.sqlite")
    try:
        for i in range(upto):
            got = store.claim(key(f"a{i:02d}"), run="r", method="random", arch_json=ARCH)
            if got.must_evaluate:
                report["claimed"].append(i)
                store.finish(got.record.id, EvalStatus.COMPLETE, {"value": float(i)})
                report["finished"].append(i)
    except StoreError as err:
        report["store_error"] = f"{type(err).__name__}: {err}"
    finally:
        store.close()
    report.update(train_error=None, resumed_epochs=None)
    if upto == N_BEFORE:  # the setup: one epoch, as if the run had been stopped after it
        return report
    try:
        result = train_supernet_in(run)
        report["resumed_epochs"] = result.resumed_epochs
    except TrainingError as err:
        report["train_error"] = f"{type(err).__name__}: {err}"
    return report


def train_supernet_in(run: Path, *, stop_after: int | None = None) -> Any:
    from surrogate.training import train_supernet

    class Stop(Exception):
        pass

    def callback(record: Any) -> None:
        if stop_after is not None and record.epoch + 1 >= stop_after:
            raise Stop

    with contextlib.suppress(Stop):
        return train_supernet(
            tiny_config(2),
            tiny_dataset(),
            checkpoint_path=run / "supernet.pt",
            progress=False,
            callback=callback,
        )
    return None


LIMITED_JOB = textwrap.dedent(
    """
    import json, resource, signal, sys
    from pathlib import Path
    from tests.reliability.test_disk_full import work

    run, limit = Path(sys.argv[1]), int(sys.argv[2])
    if limit:  # a file-size limit: writes past it fail with EFBIG instead of killing us
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    print(json.dumps(work(run)))
    """
)


@contextlib.contextmanager
def _tmpfs(where: Path, size: int) -> Iterator[Path]:
    where.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root; the RLIMIT_FSIZE variant covers this")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", f"dagrank-{uuid.uuid4().hex[:8]}", where],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); rlimit covers this")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", where], check=False)


@pytest.mark.slow
@pytest.mark.parametrize("limit", ["tmpfs", "rlimit"])
def test_full_disk_stops_cleanly_keeps_everything_and_resumes(tmp_path: Path, limit: str) -> None:
    with contextlib.ExitStack() as stack:
        if limit == "tmpfs":
            run = stack.enter_context(_tmpfs(tmp_path / "fs", 2 * 1024 * 1024)) / "run"
        else:
            run = tmp_path / "run"
        run.mkdir()

        # The run so far: 10 evaluations stored, the checkpoint of epoch 1 of 2.
        setup = work(run, upto=N_BEFORE)
        assert setup["finished"] == list(range(N_BEFORE)) and setup["store_error"] is None
        train_supernet_in(run, stop_after=1)
        checkpoint = (run / "supernet.pt").read_bytes()
        assert len(checkpoint) > RLIMIT_BYTES  # a new one cannot be written under the limit
        with SQLiteStore(run / "results.sqlite") as store:
            before = store.records()
        assert count_rows(run / "results.sqlite") == N_BEFORE

        # The disk fills up.
        filler = run.parent / "filler"
        if limit == "tmpfs":
            free = shutil.disk_usage(run).free
            with filler.open("wb") as handle:
                handle.write(bytes(free - TMPFS_ROOM))
        job = subprocess.run(
            [sys.executable, "-c", LIMITED_JOB, str(run), str(RLIMIT_BYTES * (limit == "rlimit"))],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert job.returncode == 0, job.stderr  # no traceback: every failure was a typed error
        full = json.loads(job.stdout.splitlines()[-1])

        # It stopped with the toolkit's errors, naming the cause ...
        cause = "disk is full" if limit == "tmpfs" else "disk I/O error"
        assert full["store_error"].startswith("StoreError: The results store"), full
        assert cause in full["store_error"] and "is the disk full" in full["store_error"]
        assert "every record stored before is intact" in full["store_error"]
        assert len(full["finished"]) < N_TOTAL - N_BEFORE
        strerror = "No space left on device" if limit == "tmpfs" else "File too large"
        assert full["train_error"].startswith("TrainingError: Cannot write the supernet check")
        assert strerror in full["train_error"], full["train_error"]
        # ... and nothing stored before was lost or changed; no partial checkpoint was left.
        rows = count_rows(run / "results.sqlite")
        assert rows == N_BEFORE + len(full["claimed"]), (rows, full)
        assert (run / "supernet.pt").read_bytes() == checkpoint
        assert not [p.name for p in run.iterdir() if p.name.startswith(".supernet.pt")]

        # Room again: the same job resumes where it stopped and completes.
        filler.unlink(missing_ok=True)
        resumed = work(run)
        assert resumed["store_error"] is None and resumed["train_error"] is None, resumed
        assert resumed["resumed_epochs"] == 1  # from the epoch-1 checkpoint that was kept
        assert (run / "supernet.pt").read_bytes() != checkpoint
        # Every evaluation is stored once as COMPLETE (the one the full disk left RUNNING
        # was failed as "worker died" and retried); those stored before are unchanged.
        with SQLiteStore(run / "results.sqlite") as store:
            after = store.records()
        complete = [r for r in after if r.status is EvalStatus.COMPLETE]
        assert sorted(r.arch_hash for r in complete) == [f"a{i:02d}" for i in range(N_TOTAL)]
        assert after[:N_BEFORE] == before
        stuck = len(full["claimed"]) - len(full["finished"])
        assert len(after) == N_TOTAL + stuck
        failed = [r for r in after if r.status is EvalStatus.FAILED]
        assert len(failed) == stuck and all(r.error.startswith("worker died") for r in failed)
        print(
            f"\n[{limit}] before: {N_BEFORE} rows; the full disk: {len(full['finished'])} more "
            f"stored, {stuck} left RUNNING, then {full['store_error'][:80]!r}...; "
            f"rows {rows}; after room: {len(complete)} complete of {len(after)} rows"
        )
