"""The main job: every experiment of the toolkit on the shipped default data, in one run directory.

:func:`run_demo` enumerates the seed's 6-vertex DAG space (``space6.npz``, ``space6.png``),
trains the supernet over 6-vertex cells on scikit-learn's digits and ranks the labelled space,
validates that ranking against architectures trained from scratch, runs the finite-difference
trajectory experiment, compares random, Bayesian and finite-difference search on equal budgets,
and writes ``report.md``. At the ``quick`` scale it ends within minutes on a 2-core CPU; run again
on the same directory, it resumes and trains nothing twice.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DemoResult", "run_demo"]

DEMO_VERTICES = {"smoke": 4, "quick": 6, "paper": 7}
# The demo validates fewer architectures than `dagrank validate` (to end in minutes on a CPU);
# it prints the width of the interval that buys.
DEMO_VALIDATION: dict[str, dict] = {
    "smoke": {},
    "quick": {"n": 30, "pool": 90, "include_top": 1},
    "paper": {},
}


@dataclass(frozen=True)
class DemoResult:
    report: Path
    validation: Any
    trajectory: Any
    compare: Any
    seconds: float


def run_demo(
    run: str | os.PathLike,
    *,
    preset: str = "quick",
    executor: Any = None,
    progress: bool = True,
    log: Any = print,
) -> DemoResult:
    """Run every job at ``preset`` scale into ``run`` (see the module docstring)."""
    from analysis.search import search_preset
    from analysis.space_plot import plot_space
    from analysis.validation import validation_preset
    from dagspace import Space, enumerate_space

    start = time.perf_counter()
    run = Path(run)
    run.mkdir(parents=True, exist_ok=True)
    space_path = run / "space6.npz"
    if space_path.exists():
        space6 = Space.load(space_path)
    else:
        space6 = enumerate_space(6)
        space6.save(space_path)
    plot_space(space6, run / "space6.png")
    log(f"[demo] 6-vertex DAG space: {len(space6)} cells -> {space_path}")

    validation = validation_preset(preset)
    supernet = validation.supernet.replace(vertices=DEMO_VERTICES[preset])
    validation = dataclasses.replace(validation, supernet=supernet, **DEMO_VALIDATION[preset])
    search = dataclasses.replace(search_preset(preset), supernet=supernet)

    from analysis.evaluation import default_executor

    own = executor is None
    executor = executor or default_executor(supernet.device)
    try:
        return _jobs(run, validation, search, executor, progress, log, start)
    finally:
        if own:
            executor.close()


def _jobs(run, validation, search, executor, progress, log, start) -> DemoResult:
    from analysis.report import write_report
    from analysis.search import run_compare, run_trajectory
    from analysis.validation import run_validation

    result = run_validation(run, validation, executor=executor, progress=progress)
    s = result.summary
    tau = s.surrogate_kendall
    log(f"[demo] validation: surrogate Kendall tau {tau.value:.3f} [{tau.low:.3f}, {tau.high:.3f}]"
        f" (interval +/-{s.half_width:.2f}) over {s.n} architectures x {len(s.seeds)} seeds; "
        f"best estimator {s.best} (tau {s.estimators[s.best].kendall.value:.3f})")  # fmt: skip
    trajectory = run_trajectory(run, search, progress=progress)
    log(f"[demo] trajectory: {trajectory.report['epochs']} epochs -> {run / 'trajectory.png'}")
    compare = run_compare(run, search, executor=executor, progress=progress)
    medians = {m: v["top_k_test_accuracy"]["median"] for m, v in compare.report["methods"].items()}
    log("[demo] compare: median top-10 test accuracy "
        + ", ".join(f"{m} {v:.3f}" for m, v in medians.items()))  # fmt: skip
    report = write_report(run)
    return DemoResult(report, result, trajectory, compare, time.perf_counter() - start)
