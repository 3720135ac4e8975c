"""The run directory's contract (:mod:`analysis.rundir`): new or a dagrank run, one job at a
time, a refused job changes nothing."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from analysis.errors import ForeignDirectoryError, RunBusyError, RunDirectoryError
from analysis.rundir import LOCK, MARKER, hold, holder, is_run, job, set_aside
from surrogate.config import supernet_preset

ROOT = Path(__file__).resolve().parents[2]


def _snapshot(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run.iterdir()) if p.is_file()}


def test_a_new_directory_is_marked_first_and_released(tmp_path):
    run = tmp_path / "a" / "run"
    with hold(run, "compare") as path:
        assert path == run
        assert json.loads((run / MARKER).read_text())["format"] == "dagrank-run/1"
        info = holder(run)
        assert info["pid"] == os.getpid() and info["host"] == socket.gethostname()
        assert info["job"] == "compare"
        (run / "summary.json").write_text("{}")
    assert sorted(p.name for p in run.iterdir()) == [MARKER, "summary.json"]
    assert is_run(run)
    with hold(run, "compare"):  # a dagrank run: held again
        pass


def test_a_foreign_directory_is_refused_and_left_as_it_was(tmp_path):
    run = tmp_path / "mywork"
    run.mkdir()
    (run / "history.csv").write_text("notes\n")
    (run / "space.npz").write_bytes(b"mine")
    before = _snapshot(run)
    with pytest.raises(ForeignDirectoryError, match=r"neither empty nor a dagrank run .*"
                       r"holds history.csv, space.npz"):  # fmt: skip
        with hold(run, "supernet train"):
            raise AssertionError("never reached")
    assert _snapshot(run) == before
    assert not is_run(run)
    with pytest.raises(ForeignDirectoryError, match="notes.txt"):
        (run / "notes.txt").write_text("x")
        set_aside(run)  # --fresh never moves a foreign directory
    assert run.is_dir()


@pytest.mark.parametrize("name", ["", "  "])
def test_an_empty_name_is_refused(name):
    with pytest.raises(RunDirectoryError, match=r"must be named .*current directory"):
        with hold(name, "compare"):
            pass


def test_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunDirectoryError, match="exists and is not a directory"):
        with hold(tmp_path / "file", "compare"):
            pass


def test_a_run_made_before_markers_is_recognised(tmp_path):
    run = tmp_path / "old"
    run.mkdir()
    (run / "config.json").write_text(supernet_preset("smoke").to_json())
    (run / "history.csv").write_text("epoch\n1\n")
    (run / ".history.csv.abc123.csv").write_text("")  # a killed job's temporary file
    assert is_run(run)
    before = _snapshot(run)
    with hold(run, "supernet train"):
        pass
    assert _snapshot(run) == before  # held and released: nothing added
    (run / "config.json").write_text("my notes")  # not a job's config: foreign
    assert not is_run(run)


def test_a_job_that_fails_before_writing_leaves_a_new_directory_as_it_was(tmp_path):
    run = tmp_path / "new" / "run"
    with pytest.raises(ZeroDivisionError):
        with hold(run, "validate"):
            raise ZeroDivisionError
    assert not (tmp_path / "new").exists()
    run.mkdir(parents=True)  # an empty directory the user made stays, empty
    with pytest.raises(ZeroDivisionError):
        with hold(run, "validate"):
            raise ZeroDivisionError
    assert run.is_dir() and not list(run.iterdir())


def test_a_process_holds_its_run_again_and_releases_it_once(tmp_path):
    run = tmp_path / "run"
    with hold(run, "demo"), hold(run, "validate"):
        assert holder(run)["job"] == "demo"
    assert not (run / LOCK).exists()


def test_the_job_decorator_holds_the_run(tmp_path):
    import torch

    @job("compare")
    def work(run, value):
        assert holder(run)["job"] == "compare"
        assert torch.get_num_threads() == 1  # the jobs' thread count, whatever the process's
        (run / "out.csv").write_text(str(value))
        return value

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert work(tmp_path / "run", 3) == 3
        assert torch.get_num_threads() == 2  # restored
    finally:
        torch.set_num_threads(before)
    assert not (tmp_path / "run" / LOCK).exists()


_HOLDER = """
import sys, time
from analysis.rundir import hold
with hold(sys.argv[1], "dagrank compare"):
    print("held", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def held(tmp_path):
    """A run directory held by another process (killed at the end)."""
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(run)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout.readline().strip() == "held"
    yield run, proc
    proc.kill()
    proc.wait()


def test_a_second_job_is_refused_naming_the_holder(held):
    run, proc = held
    before = _snapshot(run)
    with pytest.raises(RunBusyError, match=rf"held by `dagrank compare` \(pid {proc.pid} on "
                       rf"host {socket.gethostname()}, since .*\); one job at a time"):  # fmt: skip
        with hold(run, "compare"):
            raise AssertionError("never reached")
    with pytest.raises(RunBusyError, match="held by"):
        set_aside(run)
    assert _snapshot(run) == before


def test_a_lock_left_by_a_killed_job_is_stale(held, caplog):
    run, proc = held
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert holder(run)["pid"] == proc.pid  # left behind
    with caplog.at_level("WARNING", logger="dagrank"), hold(run, "compare"):
        assert holder(run)["pid"] == os.getpid()
    assert f"pid {proc.pid}" in caplog.text and "ended without releasing" in caplog.text


def test_a_lock_of_another_host_is_refused(tmp_path):
    run = tmp_path / "run"
    with hold(run, "compare"):
        pass
    info = {"job": "validate", "pid": 1, "host": "elsewhere", "since": time.ctime()}
    (run / LOCK).write_text(json.dumps(info))
    with pytest.raises(RunBusyError, match=r"host elsewhere.*remove .*\.dagrank-lock"):
        with hold(run, "compare"):
            pass
