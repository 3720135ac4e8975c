"""End-to-end test of `dagrank validate` on the smoke preset: files, figures, cache on re-run."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from analysis.runs import read_summary
from scripts.cli import main


@pytest.fixture(scope="module")
def smoke_validate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    run = tmp_path_factory.mktemp("validate") / "run"
    code = main(["validate", "--preset", "smoke", "--run", str(run), "--no-progress"])
    assert code == 0
    return run, json.dumps(read_summary(run / "summary.json")["validate"])


def test_validate_writes_every_output(smoke_validate: tuple[Path, str]) -> None:
    run, _ = smoke_validate
    for name in ("validation.csv", "estimators.csv", "summary.json", "validation.png",
                 "evaluations.csv", "results.sqlite", "ranking.csv", "supernet.pt"):  # fmt: skip
        assert (run / name).stat().st_size > 0, name
    assert (run / "validation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_validation_csv_has_one_row_per_architecture(smoke_validate: tuple[Path, str]) -> None:
    run, text = smoke_validate
    frame = pd.read_csv(run / "validation.csv")
    summary = json.loads(text)
    assert summary["n_requested"] == 6 and frame["uniform"].sum() == 6
    assert len(frame) == summary["n_trained"] > 6  # the estimators' top-1 of the pool join
    assert frame["arch_hash"].is_unique
    assert set(frame["status"]) <= {"complete", "diverged", "failed"}
    done = frame[frame["status"] == "complete"]
    assert len(done) >= 5
    for column in ("test_accuracy", "test_accuracy_seed0", "test_accuracy_seed1"):
        assert ((done[column] >= 0) & (done[column] <= 1)).all()
    assert (done["params"] > 0).all()
    # every origin is uniform or an estimator's top, and every estimator scored every row
    origins = {o for text in frame["origin"] for o in text.split(";")}
    assert "uniform" in origins and "top:surrogate_exact" in origins
    assert origins <= {"uniform", "top:surrogate_exact"} | {
        f"top:{c.removeprefix('score_')}" for c in frame.columns if c.startswith("score_")
    }
    # the stored params are the estimator's params (the same network)
    assert (done["params"] == done["score_params"]).all()


def test_summary_reports_every_estimator_with_intervals(smoke_validate: tuple[Path, str]) -> None:
    run, text = smoke_validate
    report = json.loads(text)
    s = report["summary"]
    assert report["score"] == "likelihood_ratio"
    names = (
        "surrogate",
        "surrogate_sampling",
        "one_shot_accuracy",
        "synflow",
        "naswot",
        "snip",
        "grad_norm",
        "jacob_cov",
        "params",
        "macs",
        "random",
        "depth",
    )
    for name in names:
        figure = s["estimators"][name]["kendall"]
        assert -1 <= figure["value"] <= 1 or math.isnan(figure["value"]), name
        assert figure["low"] <= figure["value"] <= figure["high"] or math.isnan(figure["low"])
    ceiling = s["ceiling"]["seed_vs_rest"]
    assert -1 <= ceiling["value"] <= 1
    assert report["dataset"] == "digits"
    assert report["seeds"] == [0, 1]
    assert report["trained_now"] == 2 * report["n_trained"]
    assert report["timing_s"]["wall"] > 0
    table = pd.read_csv(run / "estimators.csv")
    assert "p_vs_params" in table and len(table) == len(s["estimators"])


def test_store_holds_every_evaluation(smoke_validate: tuple[Path, str]) -> None:
    run, text = smoke_validate
    with sqlite3.connect(run / "results.sqlite") as conn:
        rows = conn.execute(
            "SELECT evaluator, status, attempt, seed FROM evaluations WHERE run = 'validate'"
        ).fetchall()
    assert len(rows) == 2 * json.loads(text)["n_trained"]
    assert {r[0] for r in rows} == {"standalone"}
    assert {r[2] for r in rows} == {1}
    assert {r[3] for r in rows} == {0, 1}


def test_rerun_trains_nothing_and_gives_the_same_figures(
    smoke_validate: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    run, text = smoke_validate
    assert main(["validate", "--preset", "smoke", "--run", str(run), "--no-progress"]) == 0
    again = read_summary(run / "summary.json")["validate"]
    assert again["trained_now"] == 0
    assert json.dumps(again["summary"]) == json.dumps(json.loads(text)["summary"])  # NaN too
    out = capsys.readouterr().out
    assert "noise ceiling" in out and "Kendall tau" in out and "best:" in out


def test_a_different_config_in_the_same_run_is_refused(
    smoke_validate: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    run, _ = smoke_validate
    before = (run / "validation.csv").read_bytes()
    code = main(["validate", "--preset", "smoke", "--n", "5", "--run", str(run), "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert (run / "validation.csv").read_bytes() == before


def test_precision_and_regret_at_k_are_not_shown_below_2k(
    smoke_validate: tuple[Path, str],
) -> None:
    """Issue 20, item 12: with 9 architectures, precision@10 was 1.000 and regret@10 0.0000
    for every estimator; below 2k architectures they are n/a (NaN in the tables)."""
    run, text = smoke_validate
    s = json.loads(text)["summary"]
    assert s["n"] < 20 and s["top_k"] == 10
    assert all(math.isnan(f["precision_at_k"]) and math.isnan(f["regret_at_k"])
               for f in s["estimators"].values())  # fmt: skip
    table = pd.read_csv(run / "estimators.csv")
    assert table["precision_at_10"].isna().all() and table["regret_at_10"].isna().all()
    assert main(["report", str(run)]) == 0
    report = (run / "report.md").read_text()
    assert "| n/a | n/a |" in report and "precision@10 and regret@10 need at least 20" in report


def test_a_single_seed_is_honoured_and_said(
    smoke_validate: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 20, item 8: one seed has no noise ceiling: said, and no raw matplotlib warning."""
    import shutil

    run = Path(shutil.copytree(smoke_validate[0], tmp_path / "run"))
    with sqlite3.connect(run / "results.sqlite") as conn:  # the run, as if made with one seed
        conn.execute("DELETE FROM runs WHERE name = 'validate'")
    argv = ["validate", "--preset", "smoke", "--seeds", "0", "--run", str(run), "--no-progress"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "no noise ceiling: one training seed (--seeds 0,1 or more give one)" in captured.out
    assert "Warning" not in captured.err and "legend" not in captured.err
    summary = read_summary(run / "summary.json")["validate"]
    assert summary["summary"]["ceiling"] is None and summary["trained_now"] == 0


@pytest.mark.parametrize("share", ["-1", "x", "nan"])
def test_a_bad_gpu_share_is_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], share: str
) -> None:
    run = tmp_path / "run"
    with pytest.raises(SystemExit) as stop:
        main(["validate", "--preset", "smoke", "--run", str(run), "--gpus-per-candidate", share])
    assert stop.value.code == 2
    assert f"expected 'auto' or a number >= 0, got {share!r}" in capsys.readouterr().err
    assert not run.exists()


def test_the_gpu_share_reaches_the_ray_executor(monkeypatch: pytest.MonkeyPatch) -> None:
    import analysis.evaluation as evaluation
    import surrogate.executors as executors

    seen: list[dict[str, object]] = []
    monkeypatch.setattr(executors, "make_executor", lambda kind, **options: seen.append(options))
    evaluation.make_job_executor("ray", gpus_per_candidate=0.5, address="auto")
    evaluation.make_job_executor("ray")
    assert seen == [{"num_gpus_per_task": 0.5, "address": "auto"}, {"num_gpus_per_task": "auto"}]
