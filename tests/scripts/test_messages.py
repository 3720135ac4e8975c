"""Issue 20, item 11: what the command line says names flags and files, in one line."""

from __future__ import annotations

import logging
import tempfile

import pytest

from scripts.cli import _one_line_warnings, main


def _error_line(err: str, command: str) -> str:
    lines = [line for line in err.splitlines() if ": error: " in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"dagrank {command}: error: "), err
    return lines[0]


def test_an_unknown_flag_names_the_full_subcommand(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["supernet", "train", "--run", str(tmp_path / "r"), "--bogus", "1"])
    assert stop.value.code == 2
    line = _error_line(capsys.readouterr().err, "supernet train")
    assert line.endswith("unrecognized arguments: --bogus 1")
    assert not (tmp_path / "r").exists()


def test_a_flag_left_out_is_not_called_none(tmp_path, capsys):
    argv = ["space", "enumerate", "--vertices", "4", "--max-edges", "-1"]
    assert main([*argv, "--out", str(tmp_path / "s.npz")]) == 2
    line = _error_line(capsys.readouterr().err, "space enumerate")
    assert line.endswith("--max-edges must be a positive int (or left out); got -1.")


def test_a_table_of_another_suffix_is_not_told_to_pass_format(tmp_path, capsys):
    (tmp_path / "t.txt").write_text("key,acc\n")
    argv = ["compare", "--objective", f"tabular:{tmp_path / 't.txt'}", "--vertices", "4"]
    assert main([*argv, "--run", str(tmp_path / "r"), "--no-progress"]) == 2
    line = _error_line(capsys.readouterr().err, "compare")
    assert "must be a .csv, .json or .parquet file" in line and "pass format=" not in line


def test_a_permission_error_names_the_file_not_its_temporary_one(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_text("{}")

    def refuse(dir=None, prefix="", suffix="", **kwargs):
        raise PermissionError(13, "Permission denied", f"{dir}/{prefix}x1y2{suffix}")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    assert main(["report", str(run)]) == 2
    line = _error_line(capsys.readouterr().err, "report")
    assert line.endswith(f"[Errno 13] Permission denied: '{run / 'report.md'}'")


def test_another_packages_warnings_are_one_line_once(caplog):
    show = _one_line_warnings("compare")
    botorch = "/venv/lib/python3.12/site-packages/botorch/optim/fit.py"
    with caplog.at_level(logging.DEBUG, logger="dagrank"):
        for attempt in range(3):
            show(UserWarning(f"fit failed, attempt {attempt}"), UserWarning, botorch, 10)
        show(RuntimeWarning("ray is slow"), RuntimeWarning, "/x/site-packages/ray/w.py", 3)
    shown = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert shown == [
        (logging.WARNING, "botorch: UserWarning: fit failed, attempt 0"),
        (logging.DEBUG, "botorch: UserWarning: fit failed, attempt 1"),
        (logging.DEBUG, "botorch: UserWarning: fit failed, attempt 2"),
        (logging.WARNING, "ray: RuntimeWarning: ray is slow"),
    ]
