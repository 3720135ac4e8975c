"""End-to-end test of `dagrank validate` on the smoke preset: files, figures, cache on re-run."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from scripts.cli import main


@pytest.fixture(scope="module")
def smoke_validate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    run = tmp_path_factory.mktemp("validate") / "run"
    code = main(["validate", "--preset", "smoke", "--run", str(run), "--no-progress"])
    assert code == 0
    return run, json.dumps(json.loads((run / "summary.json").read_text())["validate"])


def test_validate_writes_every_output(smoke_validate: tuple[Path, str]) -> None:
    run, _ = smoke_validate
    for name in ("validation.csv", "summary.json", "validation.png", "evaluations.csv",
                 "results.sqlite", "ranking.csv", "supernet.pt"):  # fmt: skip
        assert (run / name).stat().st_size > 0, name
    assert (run / "validation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_validation_csv_has_one_row_per_architecture(smoke_validate: tuple[Path, str]) -> None:
    run, text = smoke_validate
    frame = pd.read_csv(run / "validation.csv")
    summary = json.loads(text)
    assert len(frame) == summary["n_requested"] == 6
    assert frame["arch_hash"].is_unique
    assert set(frame["status"]) <= {"complete", "diverged", "failed"}
    done = frame[frame["status"] == "complete"]
    assert len(done) >= 5
    assert ((done["test_accuracy"] >= 0) & (done["test_accuracy"] <= 1)).all()
    assert (done["params"] > 0).all()
    # ranks follow the scores: rank 1 has the highest surrogate score
    ordered = frame.sort_values("surrogate_rank")
    assert ordered["surrogate_score"].is_monotonic_decreasing
    assert sorted(frame["surrogate_rank"]) == list(range(1, 7))


def test_summary_reports_correlations_with_intervals(smoke_validate: tuple[Path, str]) -> None:
    _, text = smoke_validate
    report = json.loads(text)
    s = report["summary"]
    for name in ("surrogate_kendall", "surrogate_spearman", "params_kendall", "random_kendall"):
        figure = s[name]
        assert -1 <= figure["value"] <= 1, name
        assert figure["low"] <= figure["value"] <= figure["high"] or math.isnan(figure["low"])
    assert report["dataset"] == "digits"
    assert report["seeds"] == [0]
    assert report["trained_now"] == 6
    assert report["timing_s"]["wall"] > 0


def test_store_holds_every_evaluation(smoke_validate: tuple[Path, str]) -> None:
    run, _ = smoke_validate
    with sqlite3.connect(run / "results.sqlite") as conn:
        rows = conn.execute(
            "SELECT evaluator, status, attempt FROM evaluations WHERE run = 'validate'"
        ).fetchall()
    assert len(rows) == 6
    assert {r[0] for r in rows} == {"standalone"}
    assert {r[2] for r in rows} == {1}


def test_rerun_trains_nothing_and_gives_the_same_figures(
    smoke_validate: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    run, text = smoke_validate
    assert main(["validate", "--preset", "smoke", "--run", str(run), "--no-progress"]) == 0
    again = json.loads((run / "summary.json").read_text())["validate"]
    assert again["trained_now"] == 0
    assert again["summary"] == json.loads(text)["summary"]
    assert "Kendall tau" in capsys.readouterr().out


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
