"""The main job: every experiment of the toolkit on the shipped default data, in one run directory.

:func:`run_demo` enumerates the seed's 6-vertex DAG space (``space6.npz``, ``space6.png``),
trains the supernet over 6-vertex cells on scikit-learn's digits and ranks the labelled space,
validates that ranking against architectures trained from scratch, runs the finite-difference
trajectory experiment, compares random, Bayesian and finite-difference search on equal budgets,
and writes ``report.md``. At the ``quick`` scale it ends within minutes on a 2-core CPU; run again
on the same directory, it resumes and trains nothing twice.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis.rundir import job

__all__ = ["DemoResult", "run_demo"]


@dataclass(frozen=True)
class DemoResult:
    report: Path
    validation: Any
    trajectory: Any
    compare: Any
    seconds: float


@job("dagrank demo")
def run_demo(
    run: str | os.PathLike,
    *,
    preset: str = "quick",
    study: Any = None,
    executor: Any = None,
    progress: bool = True,
    log: Any = None,
    retry_failed: bool = False,
) -> DemoResult:
    """Run every job at ``preset`` scale into ``run`` (see the module docstring); ``study``
    (an :class:`analysis.study.StudyConfig`, e.g. from a ``--config`` file) replaces the
    preset's settings."""
    import logging

    from analysis.space_plot import plot_space
    from analysis.study import check_study_run, study_preset
    from dagspace import Space, enumerate_space

    log = log or logging.getLogger("dagrank").info
    start = time.perf_counter()
    run = Path(run)
    if study is None:  # the demo's own scale: a smaller validation than `dagrank validate`
        study = study_preset(preset, demo=True)
    validation, search = study.validation_config(), study.search_config()
    check_study_run(run, validation, search)  # every job's config, before anything is written
    space_path = run / "space6.npz"
    if space_path.exists():
        space6 = Space.load(space_path)
    else:
        space6 = enumerate_space(6)
        space6.save(space_path)
    if not (run / "space6.png").exists():
        plot_space(space6, run / "space6.png")
    log(f"[demo] 6-vertex DAG space: {len(space6)} cells -> {space_path}")
    supernet = study.supernet

    from analysis.evaluation import default_executor

    own = executor is None
    executor = executor or default_executor(supernet.device)
    try:
        return _jobs(run, validation, search, executor, progress, log, start, retry_failed)
    finally:
        if own:
            executor.close()


def _jobs(run, validation, search, executor, progress, log, start, retry_failed) -> DemoResult:
    from analysis.report import write_report
    from analysis.search import run_compare, run_trajectory
    from analysis.validation import run_validation

    result = run_validation(
        run, validation, executor=executor, progress=progress, retry_failed=retry_failed
    )
    s = result.summary
    tau = s.surrogate_kendall
    log(f"[demo] validation: surrogate Kendall tau {tau.value:.3f} [{tau.low:.3f}, {tau.high:.3f}]"
        f" (interval +/-{s.half_width:.2f}) over {s.n} architectures x {len(s.seeds)} seeds; "
        f"best estimator {s.best} (tau {s.estimators[s.best].kendall.value:.3f})")  # fmt: skip
    trajectory = run_trajectory(run, search, progress=progress)
    log(f"[demo] trajectory: {trajectory.report['epochs']} epochs -> {run / 'trajectory.png'}")
    compare = run_compare(
        run, search, executor=executor, progress=progress, retry_failed=retry_failed
    )
    medians = {m: v["top_k_test_accuracy"]["median"] for m, v in compare.report["methods"].items()}
    log(f"[demo] compare: median top-{compare.report['top_k']} test accuracy "
        + ", ".join(f"{m} {v:.3f}" for m, v in medians.items()))  # fmt: skip
    report = write_report(run)
    return DemoResult(report, result, trajectory, compare, time.perf_counter() - start)
