"""Issue 20: a run directory nobody can damage, through the command line (the contract itself
is tested in tests/analysis/test_rundir.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scripts.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _snapshot(run: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file's bytes, inode and modification time (an atomic rewrite changes the inode)."""
    return {str(p.relative_to(run)): (p.read_bytes(), p.stat().st_ino, p.stat().st_mtime_ns)
            for p in sorted(run.rglob("*")) if p.is_file()}  # fmt: skip


def _one_error_line(capsys: pytest.CaptureFixture[str], command: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"dagrank {command}: error: "), err
    return err


def test_a_foreign_directory_is_refused_before_any_work(tmp_path, capsys):
    run = tmp_path / "mywork"
    run.mkdir()
    (run / "history.csv").write_text("notes\n")
    before = _snapshot(run)
    argv = ["supernet", "train", "--preset", "smoke", "--epochs", "1", "--no-progress"]
    assert main([*argv, "--run", str(run)]) == 2
    err = _one_error_line(capsys, "supernet train")
    assert "neither empty nor a dagrank run" in err and "holds history.csv" in err
    assert _snapshot(run) == before
    for command in (["validate"], ["trajectory"], ["compare"], ["demo"]):
        assert main([*command, "--preset", "smoke", "--run", str(run), "--no-progress"]) == 2
        assert "holds history.csv" in _one_error_line(capsys, command[0])
    assert _snapshot(run) == before


@pytest.mark.parametrize("command", [["supernet", "train"], ["validate"], ["compare"], ["demo"]])
def test_an_empty_run_name_is_refused(command, capsys):
    with pytest.raises(SystemExit) as stop:
        main([*command, "--preset", "smoke", "--run", "", "--no-progress"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    (line,) = [line for line in err.splitlines() if ": error: " in line]
    assert line.startswith(f"dagrank {' '.join(command)}: error: argument --run: a run "
                           "directory must be named; got ''")  # fmt: skip


_HOLDER = """
import sys, time
from analysis.rundir import hold
with hold(sys.argv[1], "dagrank compare"):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_second_job_on_a_held_run_is_refused_naming_the_holder(tmp_path, capsys):
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(run)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout.readline().strip() == "held"
        before = _snapshot(run)
        for command in (["compare"], ["supernet", "train"], ["trajectory"], ["validate"]):
            argv = [*command, "--preset", "smoke", "--run", str(run), "--no-progress"]
            assert main(argv) == 2
            err = _one_error_line(capsys, " ".join(command))
            assert f"held by `dagrank compare` (pid {proc.pid} on host" in err
        assert main(["compare", "--preset", "smoke", "--run", str(run), "--fresh"]) == 2
        assert "held by" in _one_error_line(capsys, "compare")
        assert _snapshot(run) == before
    finally:
        proc.kill()
        proc.wait()


def test_a_refused_compare_changes_nothing_not_even_plots(run_copy, capsys):
    """A changed config is refused before the supernet's files are rewritten."""
    before = _snapshot(run_copy)
    argv = ["compare", "--preset", "smoke", "--run", str(run_copy), "--no-progress"]
    assert main([*argv, "--budget", "20"]) == 2
    err = _one_error_line(capsys, "compare")
    assert "budget: 16 != 20" in err
    assert _snapshot(run_copy) == before


def test_resuming_a_finished_supernet_run_writes_nothing(run_copy, capsys):
    before = _snapshot(run_copy)
    argv = ["supernet", "train", "--preset", "smoke", "--run", str(run_copy), "--no-progress"]
    assert main(argv) == 0
    assert "resumed after round 1 of the fit" in capsys.readouterr().out  # it was finished
    assert _snapshot(run_copy) == before
