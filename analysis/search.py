"""The search jobs: the finite-difference trajectory experiment and the top-10 comparison.

Both work in one run directory beside the supernet run they search over (``supernet.pt``,
``space.npz``: trained or reused by :func:`analysis.runs.supernet_run`). Every evaluation is a
row of ``results.sqlite``; after every told batch each strategy's state (its RNG included) and
the time it has spent are saved in the store (``state`` table, ``<job>/<method>/<repeat>``), so
a run killed at any moment and started again proposes exactly what an uninterrupted one would
have, and trains nothing twice.

Equal budgets, two ways (``budget_mode``):

``evaluations``
    every method gets ``budget`` distinct evaluations of the same search objective;
``compute``
    finite-difference descent gets ``budget`` evaluations of the surrogate objective, and random
    and Bayesian search spend on stand-alone training the wall time the surrogate route spent on
    supernet training plus its descent (the comparison the DARTS paper made with random search).

Each method's top-k (by its search objective, ties by first evaluation) is then trained from
scratch and written to ``top<k>.csv`` (``top10.csv`` for the top-10), ``compare.png`` and the
``compare`` section of ``summary.json``, with a Mann-Whitney U test between every pair of methods.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError
from analysis.evaluation import Request, train_architectures
from analysis.objectives import (
    OBJECTIVES,
    FunctionObjective,
    StandaloneObjective,
    SupernetObjective,
    SurrogateObjective,
    is_function_spec,
    load_objective_function,
    record_cheap,
)
from analysis.rundir import job
from analysis.runs import update_summary
from analysis.stats import mann_whitney, summarize
from dagspace.io import atomic_write
from dagspace.strategies.base import StrategyError
from dagspace.strategies.registry import STRATEGIES, are_strategy_names, check_options

__all__ = [
    "BUDGET_MODES",
    "CompareResult",
    "SearchConfig",
    "SearchConfigError",
    "TrajectoryResult",
    "ask_batch",
    "check_epochs",
    "check_search_job",
    "epochs_done",
    "run_compare",
    "run_trajectory",
    "search_preset",
    "top_k_filename",
    "trajectory_frame",
]

DEFAULT_METHODS = ("fd", "random", "bayes")  # the supernet jobs' default (top-k trained each)
BUDGET_MODES = ("evaluations", "compute")
METHOD_LABELS = {"fd": "finite-difference", "random": "random", "bayes": "Bayesian (BoTorch)",
                 "evolution": "regularised evolution", "local": "local search",
                 "fd-seed": "finite-difference (seed's rule)",
                 "random-points": "random feature point"}  # fmt: skip


# architectures asked for at once: a whole descent step, a local-search neighbourhood, one
# evolution child (it must see the values before the next), Bayesian search's q
_ASK_BATCH = {"fd": 10**6, "fd-seed": 10**6, "local": 10**6, "random": 8, "random-points": 8,
              "evolution": 1}  # fmt: skip


def ask_batch(method: str, bayes: dict[str, Any]) -> int:
    """How many architectures a job asks ``method`` for at once (Bayesian search: its ``q``)."""
    return _ASK_BATCH.get(method, int(bayes.get("q", 8)))


class SearchConfigError(AnalysisError, ValueError):
    """A search config value is out of range or of the wrong type."""


@dataclass(frozen=True)
class SearchConfig:
    """Everything a trajectory or compare run depends on; stored with the run.

    ``supernet`` (:class:`surrogate.SupernetConfig`) and ``candidate``
    (:class:`surrogate.candidate.CandidateConfig`) set the surrogate and stand-alone training;
    ``objective`` is what the strategies minimise (:mod:`analysis.objectives`); ``budget``
    evaluations per method and repeat; ``epochs`` of the trajectory experiment; ``repeats``
    seeds per method; ``top_k`` architectures per method trained from scratch; ``fd`` and
    ``bayes`` are options of those strategies; ``pseudo_steps`` mini-batches the pseudo
    environment trains per descent step.
    """

    supernet: Any
    candidate: Any
    objective: str = "surrogate"
    methods: tuple[str, ...] = DEFAULT_METHODS
    budget: int = 100
    budget_mode: str = "evaluations"
    epochs: int = 100
    repeats: int = 1
    top_k: int = 10
    seed: int = 0
    fd: dict[str, Any] = field(default_factory=dict)
    bayes: dict[str, Any] = field(default_factory=dict)
    pseudo_steps: int = 8

    def __post_init__(self) -> None:
        def fail(name: str, expected: str) -> None:
            raise SearchConfigError(
                f"The search config's {name!r} must be {expected}; got {getattr(self, name)!r}."
            )

        if self.objective not in OBJECTIVES and not is_function_spec(self.objective):
            fail("objective", f"one of {list(OBJECTIVES)} or 'module:function'")
        if is_function_spec(self.objective):
            load_objective_function(self.objective)  # importable now, not at the first ask
        if not are_strategy_names(self.methods):
            fail("methods", f"distinct names from {list(STRATEGIES)}")
        if self.budget_mode not in BUDGET_MODES:
            fail("budget_mode", f"one of {list(BUDGET_MODES)}")
        for name, low in (("budget", 2), ("epochs", 1), ("repeats", 1), ("top_k", 1),
                          ("seed", 0), ("pseudo_steps", 1)):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                fail(name, f"an integer >= {low}")
        for name in ("fd", "bayes"):
            if not isinstance(getattr(self, name), dict):
                fail(name, "a mapping of strategy options")
            try:  # an unknown option is refused now, not when the strategy is first built
                check_options(name, getattr(self, name))
            except StrategyError as err:
                raise SearchConfigError(f"[search.{name}] {err}") from None

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["supernet"] = self.supernet.to_dict()
        out["candidate"] = self.candidate.to_dict()
        out["methods"] = list(self.methods)
        return out


def search_preset(name: str) -> SearchConfig:
    """``smoke`` (seconds: tests), ``quick`` (minutes on a CPU: the demo), ``paper`` (a GPU)."""
    from surrogate.candidate import candidate_preset
    from surrogate.config import supernet_preset
    from surrogate.presets import get_preset, plain

    sizes = plain(get_preset(name, SearchConfigError).search)
    return SearchConfig(supernet_preset(name), candidate_preset(name), **sizes)


# -- the context every search job shares ------------------------------------------------------


@dataclass
class _Context:
    run: Path
    config: SearchConfig
    supernet_run: Any
    space: Any
    store: Any
    dataset_spec: Any
    executor: Any
    progress: bool

    @property
    def num_cells(self) -> int:
        return len(self.supernet_run.ranking.cells)

    def objective(self, name: str, method: str, repeat: int) -> Any:
        if is_function_spec(name):
            return FunctionObjective(name, self.space, store=self.store, run=self.job,
                                     method=method)  # fmt: skip
        if name == "surrogate":
            return SurrogateObjective(self.supernet_run.ranking)
        if name == "supernet":
            return SupernetObjective(
                self.supernet_run.result.supernet, self.supernet_run.dataset, self.space,
                steps=self.config.pseudo_steps, seed=self.config.seed + repeat,
            )  # fmt: skip
        objective = StandaloneObjective(
            self.store, self.space, run=self.job, method=method, dataset=self.dataset_spec,
            config=self.config.candidate, executor=self.executor, seed=self.config.seed,
        )  # fmt: skip
        objective.retry_failed = self.retry_failed
        return objective

    job: str = "compare"
    own_executor: bool = False
    retry_failed: bool = False  # retrain candidates that failed their last allowed attempt

    def close(self) -> None:
        self.store.close()
        if self.own_executor:
            self.executor.close()


# a trajectory re-run with more epochs extends the descent; the device is not a run's identity
_IGNORED = {"trajectory": ("epochs",)}


def check_search_job(run: Path, config: SearchConfig, job: str) -> None:
    """Refuse, before any training or write, a search job that cannot run in ``run``: a space
    too large to enumerate, or another config than the one the run's store holds for ``job``."""
    from analysis.runs import check_stored_job
    from dagspace.enumeration import MAX_ENUMERATION_VERTICES

    if config.supernet.vertices > MAX_ENUMERATION_VERTICES:
        raise SearchConfigError(
            f"Search needs an enumerable space (at most {MAX_ENUMERATION_VERTICES} vertices); "
            f"the [supernet] config has vertices = {config.supernet.vertices}."
        )
    check_stored_job(run, job, config.to_dict(), ignore=_IGNORED.get(job, ()))


def _open(run: str | os.PathLike, config: SearchConfig, job: str, executor: Any,
          progress: bool) -> _Context:  # fmt: skip
    from analysis.evaluation import default_executor
    from analysis.results import SQLiteStore
    from analysis.runs import dataset_spec, register_job, supernet_run

    run = Path(run)
    check_search_job(run, config, job)
    sn = supernet_run(run, config.supernet, progress=progress)
    store = SQLiteStore(run / "results.sqlite")
    register_job(store, job, config.to_dict(), ignore=_IGNORED.get(job, ()))
    own = executor is None
    executor = executor or default_executor(config.supernet.device)
    return _Context(run, config, sn, sn.ranking.space, store, dataset_spec(config.supernet),
                    executor, progress, job=job, own_executor=own)  # fmt: skip


# -- driving one strategy ---------------------------------------------------------------------


def _strategy(ctx: _Context, method: str, repeat: int, **extra: Any) -> Any:
    from dagspace.strategies import make_strategy, strategy_seed

    options = {"fd": ctx.config.fd, "bayes": ctx.config.bayes}.get(method, {})
    seed = strategy_seed(ctx.config.seed, repeat, method)
    return make_strategy(method, ctx.space, ctx.num_cells, seed=seed, **{**options, **extra})


@dataclass
class _Drive:
    """A strategy driven to its budget, with the seconds it spent (across resumes)."""

    strategy: Any
    objective: Any
    seconds: float


def _drive(
    ctx: _Context,
    method: str,
    repeat: int,
    objective_name: str,
    *,
    max_evals: int | None = None,
    stop: Callable[[Any], bool] | None = None,
    time_budget: float | None = None,
) -> _Drive:
    """Ask, evaluate, record, tell until the budget is spent; resume from the store's state."""
    from tqdm.auto import tqdm

    # the trajectory's descent stops itself at the epochs asked for (one ask() may run several
    # epochs whose points are all known), and a larger --epochs continues a finished one
    extra = {"max_epochs": ctx.config.epochs} if stop is not None else {}
    strategy = _strategy(ctx, method, repeat, **extra)
    objective = ctx.objective(objective_name, method, repeat)
    name = f"{ctx.job}/{method}/{repeat}"
    seconds, env_file = 0.0, None
    saved = ctx.store.get_state(name)
    if saved is not None and ctx.retry_failed and failed_evaluations(ctx.store, ctx.job, method):
        saved = None  # its path went through the failures: it starts over, from the store
    if saved is not None:
        state = json.loads(saved)
        strategy.load_state_dict(state["strategy"])
        seconds, env_file = float(state["seconds"]), state.get("objective_file")
        if env_file is not None:
            objective.load(ctx.run / env_file)
    cheap = objective_name != "standalone" and not getattr(objective, "records_itself", False)
    total = max_evals or (ctx.config.epochs if stop is not None else None)
    unit = "epoch" if stop is not None else "eval"  # the trajectory bar counts epochs
    bar = tqdm(total=total, desc=f"{ctx.job} {method} #{repeat}", unit=unit,
               disable=not ctx.progress)  # fmt: skip
    bar.update(min(len(strategy.history), total or 0))
    try:
        while True:
            done = len(strategy.history)
            if (max_evals is not None and done >= max_evals) or (stop and stop(strategy)):
                break
            if time_budget is not None and seconds >= time_budget:
                break
            want = ask_batch(method, ctx.config.bayes)
            if max_evals is not None:
                want = min(want, max_evals - done)
            started = time.perf_counter()
            epoch = getattr(strategy, "epoch", None)
            archs = strategy.ask(want)
            if not archs:
                break
            values = objective(archs)
            if cheap:
                record_cheap(ctx.store, objective, ctx.space, archs, values, run=ctx.job,
                             method=method, seed=repeat)  # fmt: skip
            strategy.tell(archs, values)
            if hasattr(objective, "advance") and getattr(strategy, "epoch", None) != epoch:
                objective.advance(strategy.current)
            seconds += time.perf_counter() - started
            env_file = _save_objective(ctx, objective, name, len(strategy.history), env_file)
            ctx.store.set_state(name, json.dumps(
                {"strategy": strategy.state_dict(), "seconds": seconds,
                 "objective_file": env_file}))  # fmt: skip
            bar.update(len(strategy.history) - done if stop is None else 0)
            if stop is not None:
                bar.n = min(getattr(strategy, "epoch", 0), total or 0)
                bar.refresh()
    finally:
        bar.close()
    return _Drive(strategy, objective, seconds)


def failed_evaluations(store: Any, job: str, method: str | None = None) -> list[Any]:
    """The evaluations of ``job`` (and ``method``) whose latest attempt failed, oldest first."""
    from analysis.results import EvalStatus

    latest = {r.key: r for r in store.records(run=job, method=method)}
    return [r for r in latest.values() if r.status is EvalStatus.FAILED]


def _say_failures(ctx: _Context, strategies: list[Any]) -> None:
    """One warning line: how many of the evaluations the strategies went through failed, and
    the first one's message."""
    import logging

    from dagspace.hashing import form_hash

    hashes = ctx.space.hashes
    lost = {form_hash("+".join(str(hashes[int(c)]) for c in arch))
            for strategy in strategies for arch, value in strategy.history
            if not np.isfinite(value)}  # fmt: skip
    failed = [r for r in failed_evaluations(ctx.store, ctx.job) if r.arch_hash in lost]
    if failed:
        again = "" if ctx.retry_failed else "; fix it and run again with --retry-failed"
        logging.getLogger("dagrank").warning(
            "%d evaluation(s) of the %s failed (NaN to the search, stored in results.sqlite); "
            "the first: %s%s", len(failed), ctx.job, failed[0].error, again)  # fmt: skip


def _save_objective(ctx: _Context, objective: Any, name: str, count: int,
                    previous: str | None) -> str | None:  # fmt: skip
    """Save a stateful objective (the pseudo environment) under a new name per step, so the
    state saved in the store always names a complete file of the same step."""
    if not hasattr(objective, "save"):
        return None
    rel = f"pseudo_env/{name.replace('/', '-')}-{count}.pt"
    (ctx.run / "pseudo_env").mkdir(exist_ok=True)
    objective.save(ctx.run / rel)
    if previous is not None and previous != rel:
        (ctx.run / previous).unlink(missing_ok=True)
    return rel


# -- the trajectory job ------------------------------------------------------------------------


def trajectory_frame(strategy: Any) -> pd.DataFrame:
    """A descent's ``trajectories.csv`` rows: its trajectory with ``epoch`` counted from 1 (the
    row of the 3rd step says 3), as every file and progress bar of the toolkit counts them."""
    frame = pd.DataFrame(strategy.trajectory)
    if "epoch" in frame.columns:
        frame["epoch"] = frame["epoch"] + 1
    return frame


def epochs_done(store: Path, name: str) -> int:
    """The epochs of the descent saved as ``name`` in the results store at ``store`` (0: none
    saved), read without changing anything."""
    from analysis.results import read_state

    saved = read_state(store, name) if store.exists() else None
    return 0 if saved is None else int(json.loads(saved)["strategy"]["extra"]["epoch"])


def check_epochs(run: str | os.PathLike, done: int, epochs: int, error: type[Exception]) -> None:
    """Refuse ``--epochs`` below the ``done`` epochs that the run ``run`` already holds (a
    larger number extends the descent; the run is never cut short)."""
    if epochs < done:
        raise error(
            f"The run {str(run)!r} already holds a trajectory of {done} epochs; --epochs {epochs} "
            f"would leave it unfinished or drop epochs: pass --epochs {done} or more to extend "
            "it (or the same number to redo its outputs), or use a new run directory."
        )


def top_k_filename(k: int) -> str:
    """The compare table's name: ``top10.csv`` for the top-10, ``top3.csv`` for ``--top-k 3``."""
    return f"top{int(k)}.csv"


@dataclass(frozen=True)
class TrajectoryResult:
    frame: pd.DataFrame
    report: dict[str, Any]
    run_dir: Path


@job("dagrank trajectory")
def run_trajectory(
    run: str | os.PathLike,
    config: SearchConfig,
    *,
    progress: bool = True,
    retry_failed: bool = False,
) -> TrajectoryResult:
    """Finite-difference descent for ``config.epochs`` epochs over ``config.objective``; writes
    ``trajectories.csv``, ``trajectory.png`` and the ``trajectory`` section of ``summary.json``.
    ``retry_failed``: a descent with failed evaluations starts over, evaluating them again
    (and reusing every completed one from the store)."""
    from analysis.search_plots import plot_trajectories

    done = epochs_done(Path(run) / "results.sqlite", "trajectory/fd/0")
    check_epochs(run, done, config.epochs, SearchConfigError)  # before any training
    ctx = _open(run, config, "trajectory", None, progress)
    ctx.retry_failed = retry_failed
    try:
        drive = _drive(ctx, "fd", 0, config.objective, stop=lambda s: s.epoch >= config.epochs)
        frame = trajectory_frame(drive.strategy)
        with atomic_write(ctx.run / "trajectories.csv", newline="") as handle:
            frame.to_csv(handle, index=False)
        plot_trajectories(frame, ctx.run / "trajectory.png", objective=config.objective)
        _say_failures(ctx, [drive.strategy])
        report = {**_trajectory_report(frame, drive, config), "extended_from": done}
        report["surrogate_score"] = ctx.supernet_run.ranking.score
        update_summary(ctx.run, "trajectory", report)
        ctx.store.export_csv(ctx.run / "evaluations.csv")
    finally:
        ctx.close()
    return TrajectoryResult(frame, report, ctx.run)


def _trajectory_report(frame: pd.DataFrame, drive: _Drive, config: SearchConfig) -> dict:
    per_epoch = frame.groupby("epoch")["objective"].first()
    return {
        "objective": config.objective,
        "epochs": int(drive.strategy.epoch),
        "epochs_requested": config.epochs,
        "evaluations": len(drive.strategy.history),
        "objective_first": float(per_epoch.iloc[0]) if len(per_epoch) else float("nan"),
        "objective_last": float(per_epoch.iloc[-1]) if len(per_epoch) else float("nan"),
        "objective_best": float(min(v for _, v in drive.strategy.history)),
        "seconds": round(drive.seconds, 2),
        "config": config.to_dict(),
    }


# -- the compare job ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CompareResult:
    frame: pd.DataFrame
    report: dict[str, Any]
    run_dir: Path


def _top(history: list[tuple[Any, float]], k: int) -> list[tuple[tuple[int, ...], float]]:
    """The ``k`` best distinct architectures by value (finite only; ties: first evaluated)."""
    seen, out = set(), []
    order = sorted(range(len(history)), key=lambda i: (history[i][1], i))
    for i in order:
        arch, value = tuple(history[i][0]), float(history[i][1])
        if np.isfinite(value) and arch not in seen:
            seen.add(arch)
            out.append((arch, value))
        if len(out) == k:
            break
    return out


@job("dagrank compare")
def run_compare(
    run: str | os.PathLike,
    config: SearchConfig,
    *,
    executor: Any = None,
    progress: bool = True,
    retry_failed: bool = False,
) -> CompareResult:
    """Random, Bayesian and finite-difference search on equal budgets, each method's top-k
    trained from scratch; writes ``top<k>.csv``, ``compare.png`` and ``summary.json``."""
    from analysis.search_plots import plot_compare

    start = time.perf_counter()
    ctx = _open(run, config, "compare", executor, progress)
    ctx.retry_failed = retry_failed
    try:
        drives, spent = {}, {}
        compute = config.budget_mode == "compute"
        for repeat in range(config.repeats):
            surrogate_seconds = None
            order = sorted(config.methods, key=lambda m: m != "fd")  # fd first: it sets the time
            for method in order:
                objective = config.objective
                kwargs: dict[str, Any] = {"max_evals": config.budget}
                if compute and method != "fd":
                    objective = "standalone"
                    if surrogate_seconds is None:
                        surrogate_seconds = ctx.supernet_run.result.train_seconds
                    kwargs = {"time_budget": surrogate_seconds}
                elif compute:
                    objective = "surrogate"
                drive = _drive(ctx, method, repeat, objective, **kwargs)
                if compute and method == "fd":
                    surrogate_seconds = ctx.supernet_run.result.train_seconds + drive.seconds
                drives[(method, repeat)] = (drive, objective)
                spent[(method, repeat)] = drive.seconds
        _say_failures(ctx, [drive.strategy for drive, _ in drives.values()])
        frame = _train_top(ctx, drives)
        with atomic_write(ctx.run / top_k_filename(config.top_k), newline="") as handle:
            frame.to_csv(handle, index=False)
        report = _compare_report(frame, drives, config, time.perf_counter() - start)
        report["surrogate_score"] = ctx.supernet_run.ranking.score
        report["table"] = top_k_filename(config.top_k)
        plot_compare(frame, ctx.run / "compare.png", report)
        update_summary(ctx.run, "compare", report)
        ctx.store.export_csv(ctx.run / "evaluations.csv")
    finally:
        ctx.close()
    return CompareResult(frame, report, ctx.run)


def _train_top(ctx: _Context, drives: dict) -> pd.DataFrame:
    from tqdm.auto import tqdm

    rows, requests = [], []
    for (method, repeat), (drive, objective) in drives.items():
        for rank, (arch, value) in enumerate(_top(drive.strategy.history, ctx.config.top_k), 1):
            cells = tuple(ctx.space[int(i)] for i in arch)
            rows.append({"method": method, "repeat": repeat, "rank": rank,
                         "search_objective": objective, "objective_value": value,
                         "architecture": json.dumps([c.to_dict() for c in cells])})  # fmt: skip
            requests.append(Request(cells, ctx.config.seed))
    bar = tqdm(total=len(requests), desc="top-k from scratch", unit="arch",
               disable=not ctx.progress)  # fmt: skip
    try:
        records = train_architectures(
            ctx.store, requests, run=ctx.job, method="top10", dataset=ctx.dataset_spec,
            config=ctx.config.candidate, executor=ctx.executor,
            on_record=lambda request, record: bar.update(), retry_failed=ctx.retry_failed,
        )  # fmt: skip
    finally:
        bar.close()
    for row, record in zip(rows, records, strict=True):
        metrics = record.metrics if record is not None else {}
        row.update(arch_hash=record.arch_hash if record else "",
                   status=record.status.name.lower() if record else "missing",
                   val_accuracy=metrics.get("val_accuracy", float("nan")),
                   test_accuracy=metrics.get("test_accuracy", float("nan")),
                   params=metrics.get("params", float("nan")))  # fmt: skip
    columns = ["method", "repeat", "rank", "arch_hash", "search_objective", "objective_value",
               "val_accuracy", "test_accuracy", "params", "status", "architecture"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def _summary_dict(values: Any) -> dict[str, float]:
    s = summarize(np.asarray(values, dtype=float))
    return {"median": s.median, "q25": s.q25, "q75": s.q75, "mean": s.mean, "std": s.std, "n": s.n}


def _compare_report(frame: pd.DataFrame, drives: dict, config: SearchConfig,
                    wall: float) -> dict[str, Any]:  # fmt: skip
    methods: dict[str, Any] = {}
    for method in config.methods:
        part = frame[frame["method"] == method]
        per_repeat = part.groupby("repeat")["test_accuracy"].median().to_numpy(dtype=float)
        runs = [drives[(method, r)][0] for r in range(config.repeats)]
        methods[method] = {
            "top_k_test_accuracy": _summary_dict(part["test_accuracy"]),
            "repeat_medians": [float(v) for v in per_repeat],
            "repeat_median_spread": _summary_dict(per_repeat),
            "evaluations": [len(d.strategy.history) for d in runs],
            "search_seconds": [round(d.seconds, 2) for d in runs],
            "search_objective": drives[(method, 0)][1],
        }
    tests = {}
    for i, a in enumerate(config.methods):
        for b in config.methods[i + 1 :]:
            test = mann_whitney(frame.loc[frame["method"] == a, "test_accuracy"],
                                frame.loc[frame["method"] == b, "test_accuracy"])  # fmt: skip
            tests[f"{a} vs {b}"] = {"u": test.u, "p_value": test.p_value, "n_a": test.n_a,
                                    "n_b": test.n_b, "effect_size": test.effect_size,
                                    "reason": test.reason}  # fmt: skip
    return {
        "budget_mode": config.budget_mode,
        "budget": config.budget,
        "repeats": config.repeats,
        "top_k": config.top_k,
        "methods": methods,
        "mann_whitney": tests,
        "statuses": frame["status"].value_counts().to_dict(),
        "wall_seconds": round(wall, 2),
        "config": config.to_dict(),
    }
