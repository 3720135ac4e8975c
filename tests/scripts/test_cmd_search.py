"""End-to-end tests of `dagrank trajectory`, `compare`, `plot`, `report` and `demo` (smoke)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from scripts.cli import main

PNG = b"\x89PNG\r\n\x1a\n"


def test_trajectory_writes_rows_per_epoch_cell_and_dimension(search_run: Path) -> None:
    frame = pd.read_csv(search_run / "trajectories.csv")
    summary = json.loads((search_run / "summary.json").read_text())["trajectory"]
    epochs, cells = summary["epochs"], 2  # the smoke supernet has 2 cells
    assert 1 <= epochs <= 6
    assert len(frame) == epochs * cells * 3
    assert set(frame["dimension"]) == {"eccentricity_variance", "degree_variance", "num_edges"}
    assert {"epoch", "cell", "value", "value_raw", "objective", "cell_hash"} <= set(frame.columns)
    assert summary["surrogate_score"] == "likelihood_ratio"  # minus it is the objective
    assert summary["objective_best"] <= summary["objective_first"]
    assert (search_run / "trajectory.png").read_bytes()[:8] == PNG


def test_compare_trains_every_methods_top_k(search_run: Path) -> None:
    top = pd.read_csv(search_run / "top3.csv")
    report = json.loads((search_run / "summary.json").read_text())["compare"]
    assert set(top["method"]) == {"fd", "random", "bayes"}
    for method, part in top.groupby("method"):
        assert list(part["rank"]) == list(range(1, len(part) + 1)), method
        assert part["objective_value"].is_monotonic_increasing, method
        assert part["arch_hash"].is_unique, method
        assert len(part) == 3
    assert (top["status"] == "complete").all()
    assert top["test_accuracy"].between(0, 1).all()
    assert set(report["mann_whitney"]) == {"fd vs random", "fd vs bayes", "random vs bayes"}
    for method, figures in report["methods"].items():
        # the descent may stall early on the smoke space (few distinct feature points)
        assert 2 <= figures["evaluations"][0] <= 16, method
        median = figures["top_k_test_accuracy"]["median"]
        assert median == pytest.approx(top.loc[top["method"] == method, "test_accuracy"].median())
    assert report["budget_mode"] == "evaluations"
    assert (search_run / "compare.png").read_bytes()[:8] == PNG


def test_every_search_evaluation_is_a_store_row(search_run: Path) -> None:
    with sqlite3.connect(search_run / "results.sqlite") as conn:
        rows = conn.execute(
            "SELECT method, evaluator, COUNT(*) FROM evaluations WHERE run = 'compare' "
            "GROUP BY method, evaluator"
        ).fetchall()
        states = {r[0] for r in conn.execute("SELECT name FROM state")}
    counts = {(m, e): n for m, e, n in rows}
    report = json.loads((search_run / "summary.json").read_text())["compare"]
    for method in ("fd", "random", "bayes"):  # every distinct evaluation a row of its own
        assert counts[(method, "supernet")] == report["methods"][method]["evaluations"][0]
    assert counts[("random", "supernet")] == counts[("bayes", "supernet")] == 16
    assert 1 <= counts[("top10", "standalone")] <= 9  # top-k shared between methods train once
    assert {"compare/fd/0", "compare/random/0", "compare/bayes/0", "trajectory/fd/0"} <= states


def test_rerun_resumes_and_changes_nothing(search_run: Path) -> None:
    before = pd.read_csv(search_run / "top3.csv")
    with sqlite3.connect(search_run / "results.sqlite") as conn:
        count = conn.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]
    assert main(["compare", "--preset", "smoke", "--run", str(search_run), "--no-progress"]) == 0
    with sqlite3.connect(search_run / "results.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0] == count
    pd.testing.assert_frame_equal(pd.read_csv(search_run / "top3.csv"), before)


def test_plot_redraws_and_report_shows_everything(
    search_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (search_run / "compare.png").unlink()
    (search_run / "trajectory.png").unlink()
    assert main(["plot", str(search_run)]) == 0
    assert (search_run / "compare.png").read_bytes()[:8] == PNG
    assert (search_run / "trajectory.png").read_bytes()[:8] == PNG
    assert main(["report", str(search_run)]) == 0
    report = (search_run / "report.md").read_text()
    for text in ("![trajectories per dimension per cell](trajectory.png)",
                 "![top-k stand-alone accuracies per method](compare.png)",
                 "Mann-Whitney", "| fd vs random |", "## Configs"):  # fmt: skip
        assert text in report, text
    capsys.readouterr()


def test_plot_of_a_directory_that_is_not_a_run_fails_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plot", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "run directory" in err


def test_bad_search_options_fail_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["compare", "--preset", "smoke", "--run", str(tmp_path / "r"), "--budget", "1",
                 "--no-progress"])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--budget must be" in err and "got 1" in err
    assert not (tmp_path / "r").exists()


def test_demo_smoke_runs_every_job_and_writes_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "demo"
    assert main(["demo", "--preset", "smoke", "--run", str(run), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "report:" in out and str(run / "report.md") in out
    summary = json.loads((run / "summary.json").read_text())
    assert set(summary) == {"supernet", "validate", "trajectory", "compare"}
    report = (run / "report.md").read_text()
    for image in ("space6.png", "validation.png", "trajectory.png", "compare.png"):
        assert f"({image})" in report and (run / image).read_bytes()[:8] == PNG


def test_compare_on_equal_compute_with_repeats(tmp_path: Path) -> None:
    """--budget-mode compute: random search spends on stand-alone training the time the supernet
    and the descent took; two repeats report their spread; the mode is recorded."""
    run = tmp_path / "compute"
    assert main(["compare", "--preset", "smoke", "--run", str(run), "--no-progress",
                 "--budget-mode", "compute", "--methods", "fd,random", "--repeats", "2",
                 "--top-k", "2"]) == 0  # fmt: skip
    report = json.loads((run / "summary.json").read_text())["compare"]
    assert report["budget_mode"] == "compute" and report["config"]["budget_mode"] == "compute"
    fd, rnd = report["methods"]["fd"], report["methods"]["random"]
    assert fd["search_objective"] == "surrogate" and rnd["search_objective"] == "standalone"
    assert len(rnd["repeat_medians"]) == 2 and rnd["repeat_median_spread"]["n"] == 2
    assert all(n >= 1 for n in rnd["evaluations"])
    top = pd.read_csv(run / "top2.csv")  # named after --top-k 2
    assert sorted(set(top["repeat"])) == [0, 1]
    with sqlite3.connect(run / "results.sqlite") as conn:
        standalone = conn.execute(
            "SELECT COUNT(*) FROM evaluations WHERE method = 'random' AND evaluator = 'standalone'"
        ).fetchone()[0]
    # random's search evaluations were trainings (an architecture both repeats drew: one row)
    assert max(rnd["evaluations"]) <= standalone <= sum(rnd["evaluations"])


def test_trajectory_over_the_supernet_pseudo_environment(tmp_path: Path) -> None:
    run = tmp_path / "pseudo"
    assert main(["trajectory", "--preset", "smoke", "--run", str(run), "--no-progress",
                 "--objective", "supernet", "--epochs", "3"]) == 0  # fmt: skip
    summary = json.loads((run / "summary.json").read_text())["trajectory"]
    assert summary["objective"] == "supernet" and summary["epochs"] >= 1
    frame = pd.read_csv(run / "trajectories.csv")
    assert (frame["objective"] > 0).all()  # a cross-entropy on the validation split
    assert list((run / "pseudo_env").glob("*.pt"))  # the shared weights' state, for resume


# -- tabular objectives ----------------------------------------------------------------------------
def _tabular_table(path: Path) -> Path:
    import numpy as np

    from dagspace import NASBENCH101_OPS, enumerate_space

    space = enumerate_space(4, NASBENCH101_OPS)
    acc = 0.6 + 0.01 * np.arange(len(space)) / len(space)
    pd.DataFrame({"key": space.nasbench101_hashes(), "108_final_validation_accuracy": acc,
                  "final_training_time": 50.0}).to_csv(path, index=False)  # fmt: skip
    return path


def test_compare_and_trajectory_on_a_tabular_objective(tmp_path: Path, capsys) -> None:
    table = _tabular_table(tmp_path / "t.csv")
    run = tmp_path / "run"
    argv = ["--objective", f"tabular:{table}", "--run", str(run), "--vertices", "4",
            "--no-progress"]  # fmt: skip
    assert main(["compare", *argv, "--repeats", "2", "--budget", "8",
                 "--methods", "random,evolution,local,fd"]) == 0  # fmt: skip
    assert "2 repeats x 8 queries" in capsys.readouterr().out
    regret = pd.read_csv(run / "tabular_regret.csv")
    assert set(regret["method"]) == {"random", "evolution", "local", "fd"}
    assert (run / "tabular_compare.png").read_bytes()[:8] == PNG
    assert main(["trajectory", *argv, "--epochs", "3"]) == 0
    assert json.loads((run / "summary.json").read_text())["trajectory"]["epochs"] <= 3
    assert pd.read_csv(run / "trajectories.csv")["epoch"].min() == 1  # counted from 1
    (run / "tabular_compare.png").unlink()
    assert main(["plot", str(run)]) == 0 and (run / "tabular_compare.png").exists()
    assert main(["report", str(run)]) == 0
    assert "## Search methods on a tabular benchmark" in (run / "report.md").read_text()


def test_tabular_objective_errors_are_one_line_exit_2(tmp_path: Path, capsys) -> None:
    run = ["--run", str(tmp_path / "run"), "--vertices", "4", "--no-progress"]
    assert main(["compare", "--objective", f"tabular:{tmp_path / 'none.csv'}", *run]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No results table at" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", "--objective", "tabulr:x.csv", *run])
    assert exit_info.value.code == 2
    assert "expected surrogate, supernet, standalone, tabular" in capsys.readouterr().err


def test_analyze_features_reports_every_encoding(tmp_path: Path, capsys) -> None:
    table = _tabular_table(tmp_path / "t.csv")
    run = tmp_path / "run"
    assert main(["analyze", "features", "--objective", f"tabular:{table}", "--run", str(run),
                 "--vertices", "4", "--train", "10", "--test", "10"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert all(f"{e}:" in out for e in ("seed", "op_aware", "one_hot"))
    premise = json.loads((run / "summary.json").read_text())["premise"]
    assert premise["encodings"]["one_hot"]["variance_share"] == pytest.approx(1.0)
    assert (run / "premise.png").read_bytes()[:8] == PNG
    (run / "premise.png").unlink()  # issue 20, item 13: `plot` redraws it from the run
    assert main(["plot", str(run)]) == 0
    assert str(run / "premise.png") in capsys.readouterr().out
    assert (run / "premise.png").read_bytes()[:8] == PNG


FLAKY = """
import pathlib

FIXED = pathlib.Path(__file__).with_name("fixed")


def edges(cells):
    if not FIXED.exists():
        raise RuntimeError("the objective is not ready")
    return float(sum(c.num_edges for c in cells))
"""


def _supernet_only(search_run: Path, run: Path) -> Path:
    """A run holding only the trained supernet of ``search_run`` (no search job yet)."""
    import shutil

    run.mkdir()
    for name in (".dagrank-run", "config.json", "supernet.pt", "space.npz"):
        shutil.copy2(search_run / name, run / name)
    return run


def test_a_failing_user_objective_is_said_and_retried(search_run, tmp_path, monkeypatch, capsys):
    """Issue 20, item 4: the first failure's message and the count on the console; after the
    user fixes the function, --retry-failed evaluates the failures again."""
    import math
    import sys

    from analysis.runs import read_summary

    (tmp_path / "flaky_objective.py").write_text(FLAKY)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("flaky_objective", None)
    run = _supernet_only(search_run, tmp_path / "run")
    argv = ["trajectory", "--preset", "smoke", "--run", str(run), "--no-progress",
            "--objective", "flaky_objective:edges", "--epochs", "2"]  # fmt: skip
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "evaluation(s) of the trajectory failed" in err
    assert "the first: RuntimeError: the objective is not ready; fix it and run again with " \
        "--retry-failed" in err  # fmt: skip
    (tmp_path / "fixed").write_text("")
    assert main(argv) == 0  # the finished descent is as it was, and says so again
    assert "failed" in capsys.readouterr().err
    assert main([*argv, "--retry-failed"]) == 0
    assert "failed" not in capsys.readouterr().err
    summary = read_summary(run / "summary.json")["trajectory"]
    assert math.isfinite(summary["objective_best"]) and summary["epochs"] == 2


# -- issue 20, items 3 and 5: --epochs on a finished trajectory; tables too small for a study ------
def test_trajectory_epochs_extend_a_finished_run_and_a_smaller_one_is_refused(
    run_copy: Path, capsys
) -> None:
    """The supernet-objective trajectory: --epochs 8 on the finished 6-epoch run extends it;
    --epochs 3 is refused in one line and changes nothing."""
    argv = ["trajectory", "--preset", "smoke", "--run", str(run_copy), "--no-progress"]
    assert main([*argv, "--epochs", "8"]) == 0
    summary = json.loads((run_copy / "summary.json").read_text())["trajectory"]
    assert summary["epochs"] == 8 and summary["epochs_requested"] == 8
    assert summary["extended_from"] == 6
    frame = pd.read_csv(run_copy / "trajectories.csv")
    assert sorted(set(frame["epoch"])) == list(range(1, 9))
    before = (run_copy / "summary.json").read_bytes(), (run_copy / "trajectories.csv").read_bytes()
    capsys.readouterr()
    assert main([*argv, "--epochs", "3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "8 epochs" in err and "--epochs 3" in err
    after = (run_copy / "summary.json").read_bytes(), (run_copy / "trajectories.csv").read_bytes()
    assert after == before


def test_tabular_trajectory_epochs_extend_stop_exactly_and_a_smaller_one_is_refused(
    tmp_path: Path, capsys
) -> None:
    table = _tabular_table(tmp_path / "t.csv")
    run = tmp_path / "run"
    argv = ["trajectory", "--objective", f"tabular:{table}", "--run", str(run), "--vertices", "4",
            "--no-progress"]  # fmt: skip
    assert main([*argv, "--epochs", "2"]) == 0
    assert json.loads((run / "summary.json").read_text())["trajectory"]["epochs"] == 2
    assert main([*argv, "--epochs", "4"]) == 0
    summary = json.loads((run / "summary.json").read_text())["trajectory"]
    assert summary["epochs"] == 4 and summary["epochs_requested"] == 4
    assert summary["extended_from"] == 2
    frame = pd.read_csv(run / "trajectories.csv")
    assert sorted(set(frame["epoch"])) == [1, 2, 3, 4]  # counted from 1, as the supernet job
    capsys.readouterr()
    assert main([*argv, "--epochs", "3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "4 epochs" in err and "--epochs 3" in err


def test_a_table_too_small_for_the_study_is_refused_up_front(tmp_path: Path, capsys) -> None:
    """compare needs --budget cells of the space in the table, trajectory one descent step; a
    table (or a --space) that covers fewer is refused in one line before any lookup."""
    import numpy as np

    from dagspace import NASBENCH101_OPS, enumerate_space

    space = enumerate_space(4, NASBENCH101_OPS)
    small = tmp_path / "small.csv"
    pd.DataFrame({"key": space.nasbench101_hashes()[:5],
                  "108_final_validation_accuracy": np.linspace(0.6, 0.7, 5)}).to_csv(
        small, index=False)  # fmt: skip
    run = tmp_path / "run"
    argv = ["--objective", f"tabular:{small}", "--run", str(run), "--vertices", "4",
            "--no-progress"]  # fmt: skip
    assert main(["compare", *argv, "--budget", "8", "--repeats", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "covers 5 cells" in err and "--budget 8" in err
    assert not (run / "summary.json").exists() and not (run / "results.sqlite").exists()
    table = _tabular_table(tmp_path / "t.csv")
    wrong = tmp_path / "wrong.npz"
    space.subset([0, 1, 2]).save(wrong)  # a --space that shares 3 cells with the table
    argv = ["--objective", f"tabular:{table}", "--run", str(tmp_path / "run2"), "--space",
            str(wrong), "--no-progress"]  # fmt: skip
    assert main(["trajectory", *argv, "--epochs", "3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "covers 3 cells" in err and "one descent step" in err
    assert not (tmp_path / "run2" / "results.sqlite").exists()
