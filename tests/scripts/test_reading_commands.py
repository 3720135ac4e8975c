"""`dagrank plot` and `dagrank report` read a run and never change it; damage is reported."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from scripts.cli import main

PNG = b"\x89PNG\r\n\x1a\n"


def _digest(run: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Every file of the run but the plots and report.md, by name -> content hash."""
    return {
        str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run.rglob("*"))
        if p.is_file() and p.suffix not in (".png", ".svg", ".pdf") and p.name not in skip
    }


@pytest.mark.parametrize("command", ["plot", "report"])
@pytest.mark.parametrize("content", ["x{", "", "[1, 2]"])
def test_damaged_summary_is_one_line_naming_the_file(run_copy, capsys, command, content):
    (run_copy / "summary.json").write_text(content)
    before = _digest(run_copy)
    assert main([command, str(run_copy)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"dagrank {command}: error: {run_copy / 'summary.json'}")
    assert re.search(r"(is empty|not readable JSON|not a run summary).*rebuild it", err)
    assert _digest(run_copy) == before


def test_summary_section_without_its_keys_is_named(run_copy, capsys):
    (run_copy / "summary.json").write_text('{"compare": {"budget_mode": "evaluations"}}')
    assert main(["report", str(run_copy)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "its 'compare' section lacks or mangles" in err


def test_damaged_table_is_one_line_naming_it(run_copy, capsys):
    (run_copy / "top3.csv").write_bytes(b"\xff\xfe\xfd,\n\x81\x00")
    assert main(["plot", str(run_copy)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{run_copy / 'top3.csv'} is not a readable CSV" in err
    (run_copy / "top3.csv").write_text("method,rank\nfd,1\n")
    assert main(["plot", str(run_copy)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lacks the column(s) ['test_accuracy']" in err


@pytest.mark.parametrize("command", ["plot", "report"])
def test_damaged_store_is_reported_and_left_as_it_is(run_copy, capsys, command):
    store = run_copy / "results.sqlite"
    data = bytearray(store.read_bytes())
    data[:16] = b"not sqlite 3 \x00\x00\x00"
    store.write_bytes(bytes(data))
    before = _digest(run_copy, skip=("report.md",))
    names = {p.name for p in run_copy.iterdir()}
    assert main([command, str(run_copy)]) == 0
    err = capsys.readouterr().err
    assert f"dagrank {command}: warning: {store} is damaged" in err
    assert "left as it is" in err and err.count("\n") == 1
    assert _digest(run_copy, skip=("report.md",)) == before  # not moved aside, nothing new
    assert {p.name for p in run_copy.iterdir()} - names <= {"report.md"}
    if command == "plot":  # the trajectory still comes from trajectories.csv
        assert (run_copy / "trajectory.png").read_bytes()[:8] == PNG
    else:
        assert "## Damaged files" in (run_copy / "report.md").read_text()


def test_reading_commands_change_nothing_and_create_no_sidecars(run_copy, capsys):
    before = _digest(run_copy, skip=("report.md",))
    names = {p.name for p in run_copy.iterdir()}
    assert main(["plot", str(run_copy)]) == 0
    assert main(["report", str(run_copy)]) == 0
    capsys.readouterr()
    assert _digest(run_copy, skip=("report.md",)) == before
    assert {p.name for p in run_copy.iterdir()} - names <= {"report.md"}


def test_plot_redraws_the_multinomial_history(run_copy, capsys):
    for name in ("multinomials.png", "multinomial_history.png"):
        (run_copy / name).unlink()
    assert main(["plot", str(run_copy), "--dpi", "50"]) == 0
    out = capsys.readouterr().out
    assert str(run_copy / "multinomial_history.png") in out
    for name in ("multinomials.png", "multinomial_history.png"):
        assert (run_copy / name).read_bytes()[:8] == PNG


def test_one_epoch_convention_and_the_top_k_file_named_after_k(search_run):
    import json

    import pandas as pd

    history = pd.read_csv(search_run / "history.csv")
    assert list(history["epoch"]) == list(range(1, len(history) + 1))
    multinomials = pd.read_csv(search_run / "multinomials.csv")
    assert multinomials["epoch"].min() == 1 and multinomials["epoch"].max() == len(history)
    trajectory = pd.read_csv(search_run / "trajectories.csv")
    epochs = json.loads((search_run / "summary.json").read_text())["trajectory"]["epochs"]
    assert sorted(set(trajectory["epoch"])) == list(range(1, epochs + 1))
    compare = json.loads((search_run / "summary.json").read_text())["compare"]
    assert compare["top_k"] == 3 and compare["table"] == "top3.csv"
    assert (search_run / "top3.csv").exists() and not (search_run / "top10.csv").exists()


def test_progress_bars_say_temp_and_count_trajectory_epochs(run_copy, capsys):
    import dataclasses

    from analysis.search import run_trajectory, search_preset
    from surrogate.config import supernet_preset
    from surrogate.data import load_dataset
    from surrogate.training import train_supernet

    config = supernet_preset("smoke").replace(epochs=1, data_limit=120, device="cpu")
    train_supernet(config, load_dataset("digits", seed=0, limit=120), progress=True)
    err = capsys.readouterr().err
    assert "temp=" in err and "tau=" not in err and "epoch 1/1" in err
    search = dataclasses.replace(search_preset("smoke"), epochs=6)
    run_trajectory(run_copy, search, progress=True)  # resumes a finished descent: its bar only
    err = capsys.readouterr().err
    assert "trajectory fd #0" in err and "epoch/s" in err and "eval/s" not in err
