"""Issue 20, items 7 and 8: every flag and config key is checked before any work, and a flag
that would be ignored is refused (or honoured and said)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scripts.cli import main


def _error_line(capsys: pytest.CaptureFixture[str], command: str) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if ": error: " in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"dagrank {command}: error: "), err
    return lines[0]


def test_a_bad_top_k_is_refused_before_training(tmp_path, capsys):
    run = tmp_path / "run"
    with pytest.raises(SystemExit) as stop:
        main(["supernet", "train", "--preset", "smoke", "--run", str(run), "--top-k", "-1"])
    assert stop.value.code == 2
    assert "argument --top-k: expected an int >= 1; got '-1'" in _error_line(
        capsys, "supernet train"
    )
    assert not run.exists()


@pytest.mark.parametrize("command", ["trajectory", "compare", "validate", "demo"])
def test_a_space_too_large_to_rank_is_refused_before_training(tmp_path, capsys, command):
    run = tmp_path / "run"
    study = tmp_path / "study.toml"
    study.write_text('preset = "smoke"\n[supernet]\nweight_sampling = "learned"\nvertices = 8\n')
    argv = [command, "--config", str(study), "--run", str(run), "--no-progress"]
    assert main(argv) == 2
    line = _error_line(capsys, command)
    assert f"{study}: [supernet] vertices = 8" in line and "at most 7 vertices" in line
    if command in ("trajectory", "compare"):
        assert main([*argv, "--vertices", "8"]) == 2
        assert "got --vertices 8" in _error_line(capsys, command)
    assert not run.exists()


def test_empty_methods_are_refused(tmp_path, capsys):
    assert main(["compare", "--preset", "smoke", "--run", str(tmp_path / "r"), "--methods", ""])
    assert "--methods must be distinct names from" in _error_line(capsys, "compare")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("flags", "named"),
    [(["--features", "nosuch"], "--features"), (["--space", "/nonexistent.npz"], "--space")],
)
def test_tabular_flags_outside_a_tabular_objective_are_refused(tmp_path, capsys, flags, named):
    for command in ("trajectory", "compare"):
        assert main([command, "--preset", "smoke", "--run", str(tmp_path / "r"), *flags]) == 2
        line = _error_line(capsys, command)
        assert f"{named} applies to tabular objectives only (--objective tabular:FILE)" in line


@pytest.mark.parametrize(
    ("flags", "named"),
    [(["--variant", "x=fd:probes=cells"], "--variant"), (["--part", "1/2@0"], "--part")],
)
def test_compare_flags_outside_a_tabular_objective_are_refused(tmp_path, capsys, flags, named):
    assert main(["compare", "--preset", "smoke", "--run", str(tmp_path / "r"), *flags]) == 2
    line = _error_line(capsys, "compare")
    assert f"{named} applies to tabular objectives only (--objective tabular:FILE)" in line
    assert not (tmp_path / "r").exists()
    assert not (tmp_path / "r").exists()


def test_a_data_root_with_digits_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["supernet", "train", "--preset", "smoke", "--data-root", "/nonexistent"]
    assert main([*argv, "--run", str(run)]) == 2
    assert "--data-root (data_root in the config's [supernet] section) must be left unset" in (
        _error_line(capsys, "supernet train")
    )
    assert not run.exists()


@pytest.fixture(scope="module")
def table4(tmp_path_factory) -> Path:
    """A table of every 4-vertex NAS-Bench-101-op cell, and that space saved."""
    from dagspace import NASBENCH101_OPS, enumerate_space

    folder = tmp_path_factory.mktemp("tables")
    space = enumerate_space(4, NASBENCH101_OPS)
    acc = 0.6 + 0.01 * np.arange(len(space)) / len(space)
    pd.DataFrame({"key": space.nasbench101_hashes(), "108_final_validation_accuracy": acc,
                  "final_training_time": 50.0}).to_csv(folder / "t.csv", index=False)  # fmt: skip
    space.save(folder / "space4.npz")
    return folder / "t.csv"


def test_a_space_file_of_other_vertices_is_refused(tmp_path, capsys, table4):
    space = table4.with_name("space4.npz")
    argv = ["compare", "--objective", f"tabular:{table4}", "--space", str(space)]
    assert main([*argv, "--vertices", "7", "--run", str(tmp_path / "r")]) == 2
    line = _error_line(capsys, "compare")
    assert f"--vertices 7 disagrees with --space {space} (a space of 4 vertices)" in line
    assert main(["compare", "--objective", f"tabular:{table4}", "--vertices", "4",
                 "--methods", "", "--run", str(tmp_path / "r")]) == 2  # fmt: skip
    assert "--methods" in _error_line(capsys, "compare")


def test_a_budget_beyond_the_table_is_refused(tmp_path, capsys, table4):
    argv = ["compare", "--objective", f"tabular:{table4}", "--vertices", "4", "--no-progress"]
    assert main([*argv, "--budget", "100000", "--run", str(tmp_path / "r")]) == 2
    line = _error_line(capsys, "compare")
    assert "covers 91 cells of the space" in line and "--budget" in line
    assert "needs at least 100000" in line
    assert not (tmp_path / "r" / "results.sqlite").exists()


def test_a_table_in_percent_is_refused_and_missing_values_are_said(tmp_path, capsys, table4):
    frame = pd.read_csv(table4)
    frame["108_final_validation_accuracy"] *= 100
    frame.to_csv(tmp_path / "percent.csv", index=False)
    argv = ["compare", "--vertices", "4", "--no-progress", "--budget", "8", "--repeats", "1"]
    assert main([*argv, "--objective", f"tabular:{tmp_path / 'percent.csv'}",
                 "--run", str(tmp_path / "r1")]) == 2  # fmt: skip
    line = _error_line(capsys, "compare")
    assert "holds accuracies above 1 (up to 60.99): in percent?" in line
    frame = pd.read_csv(table4)
    frame.loc[:9, "108_final_validation_accuracy"] = np.nan
    frame.to_csv(tmp_path / "gaps.csv", index=False)
    assert main([*argv, "--objective", f"tabular:{tmp_path / 'gaps.csv'}",
                 "--run", str(tmp_path / "r2")]) == 0  # fmt: skip
    assert "10 of the 91 cells have no 108_final_validation_accuracy" in capsys.readouterr().err
