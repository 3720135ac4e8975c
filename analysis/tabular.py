"""Search on a published tabular benchmark: the ``tabular:FILE[:COLUMN]`` objective, and the
trajectory and comparison jobs on it.

A table (:mod:`analysis.tables`) gives every cell it covers its metrics; the search space is the
labelled space the table's cells belong to (NAS-Bench-101's by default: 7 vertices, its three
operations, at most 9 edges), restricted to the table's cells when the table is partial. An
architecture is one cell (NAS-Bench-101 repeats one cell through its network). A lookup is an
evaluation like any other: one row of ``results.sqlite`` per architecture (evaluator
``tabular``), and each strategy's state is saved when its run ends, so running the same command
again resumes where it stopped and recomputes nothing. Lookups cost nothing to redo, so the
store is opened with ``synchronous="NORMAL"`` (no fsync per row).

The objective is ``1 - value`` for an accuracy column (a name containing ``accuracy``: higher is
better) and the value itself otherwise (lower is better); ``COLUMN`` defaults to
``108_final_validation_accuracy`` when the table has it, else its first accuracy column. On a
NAS-Bench-101 file (``.tfrecord``) ``COLUMN@sample`` draws one repeat per query (seeded by the
config's seed and the run's repeat, the same draw for every method; the regret's reference is
then the best repeat of any cell), ``COLUMN`` or ``COLUMN@mean`` takes the mean of the repeats
(:mod:`analysis.tables`); the training time follows the column's budget.

``compare`` runs every method ``repeats`` times (default 100: 25 cannot tell a median regret of
0.35 points from 0.44) to a budget of ``budget`` queries (default 150, the benchmark's
convention). The methods are every registered strategy, random search first; beside the
default descent, the seed's rule (``fd-seed``) and random search over the embedding's feature
points (``random-points``: the prior of a search that moves between feature points, with no
learning). *Variants* run beside them: a label, a strategy and its options
(``variants={"fd-points": {"strategy": "fd", "probes": "points"}}``; ``--variant
fd-points=fd:probes=points``), with the strategy's seeds (so paired with it, repeat by repeat)
and a line, a row and a test of their own. A table that covers fewer cells of the space than
``budget`` (every query is a new cell) is refused before anything is looked up, and so is a
variant whose options its strategy refuses. ``part=(K, N, SEED)`` (``--part K/N@SEED``) runs
it all on part ``K`` of ``N`` of the table's cells (a seeded split,
:meth:`analysis.tables.TabularResults.part`), the regret measured against that part's best: the
same comparison on smaller benchmarks, to see whether it holds beyond one slice. It writes:

- ``tabular_curves.csv``: per method, repeat and query: the accuracy found, the best so far,
  its regret (the table's best accuracy minus it) and the cumulative training time that the
  table says those queries cost (``final_training_time``);
- ``tabular_regret.csv``: per method and checkpoint (50, 100, 150 queries): the median (and
  quartiles) of the best accuracy and of the regret over repeats;
- ``tabular_compare.png``: the regret of the best found so far against queries and against
  cumulative training time, the median over repeats with a 95% bootstrap band, one line per
  method;
- the ``tabular_compare`` section of ``summary.json``, with a two-sided Mann-Whitney U test
  between every pair of methods on the best accuracy at the final budget.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError
from analysis.rundir import job
from analysis.runs import update_summary
from analysis.search import ask_batch
from analysis.stats import mann_whitney
from analysis.tables import TableError, TabularResults, load_table, split_column
from dagspace import DEFAULT_FEATURES, NASBENCH101_OPS, Space, enumerate_space
from dagspace.hashing import form_hash
from dagspace.io import atomic_write
from dagspace.strategies.registry import STRATEGIES, are_strategy_names, check_options

__all__ = [
    "TabularCompareResult",
    "TabularConfig",
    "TabularConfigError",
    "TabularObjective",
    "is_tabular",
    "open_table",
    "parse_tabular",
    "run_tabular_compare",
    "run_tabular_trajectory",
]

TABULAR_PREFIX = "tabular:"
# every registered strategy, the random baseline first (the order of tables and plots)
TABULAR_METHODS = ("random", *(m for m in STRATEGIES if m != "random"))
EMBEDDED_METHODS = (
    "fd",
    "bayes",
    "fd-seed",
    "random-points",
)  # the strategies that take --features
_OPTION_FIELDS = ("fd", "bayes", "evolution", "local")  # the config's strategy options
DEFAULT_COLUMN = "108_final_validation_accuracy"
DEFAULT_COST = "final_training_time"


class TabularConfigError(AnalysisError, ValueError):
    """A tabular objective or job config is malformed."""


def is_tabular(objective: str | None) -> bool:
    return isinstance(objective, str) and objective.startswith(TABULAR_PREFIX)


def parse_tabular(objective: str) -> tuple[Path, str | None]:
    """``tabular:FILE[:COLUMN]`` to ``(FILE, COLUMN or None)``; a ``FILE`` that exists as
    written wins over a split at its last colon.

    Raises:
        TabularConfigError: not a ``tabular:`` objective, or no file named.
    """
    if not is_tabular(objective):
        raise TabularConfigError(
            f"A tabular objective is written 'tabular:FILE[:COLUMN]'; got {objective!r}."
        )
    rest = objective[len(TABULAR_PREFIX) :]
    file, column = rest, None
    if not Path(rest).exists() and ":" in rest:
        file, column = rest.rsplit(":", 1)
    if not file:
        raise TabularConfigError(
            f"A tabular objective names a table file: 'tabular:FILE[:COLUMN]'; got {objective!r}."
        )
    return Path(file), column or None


@dataclass(frozen=True)
class TabularConfig:
    """Everything a tabular job depends on; stored with the run.

    ``table`` the file; ``column`` the metric searched (``None``: the default, see the module
    docstring); ``cost_column`` the training time per cell (``None``: no time axis);
    ``vertices`` / ``max_edges`` the labelled NAS-Bench-101-operation space the table's cells
    belong to, or ``space`` a saved space file (read, never written); ``features`` the
    embedding of finite-difference descent and Bayesian search (``None``: their default, the
    seed's three graph features); ``fd``, ``bayes``, ``evolution``, ``local``: strategy
    options; ``variants``: label -> ``{"strategy": name, **options}``, run after ``methods``
    (the options on top of the strategy's own mapping above).
    """

    table: str
    column: str | None = None
    cost_column: str | None = DEFAULT_COST
    methods: tuple[str, ...] = TABULAR_METHODS
    budget: int = 150
    repeats: int = 100
    checkpoints: tuple[int, ...] = (50, 100, 150)
    epochs: int = 100
    seed: int = 0
    vertices: int = 7
    max_edges: int | None = 9
    key: str = "auto"
    space: str | None = None
    features: tuple[str, ...] | None = None
    fd: dict[str, Any] = field(default_factory=dict)
    bayes: dict[str, Any] = field(default_factory=lambda: {"q": 10, "n_init": 10})
    evolution: dict[str, Any] = field(default_factory=dict)
    local: dict[str, Any] = field(default_factory=dict)
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    part: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        def fail(name: str, expected: str) -> None:
            raise TabularConfigError(
                f"The tabular config's {name!r} must be {expected}; got {getattr(self, name)!r}."
            )

        if not are_strategy_names(self.methods):
            fail("methods", f"distinct names from {list(STRATEGIES)}")
        for name, low in (("budget", 1), ("repeats", 1), ("epochs", 1), ("seed", 0),
                          ("vertices", 3)):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                fail(name, f"an integer >= {low}")
        if not all(isinstance(c, int) and c >= 1 for c in self.checkpoints):
            fail("checkpoints", "positive integers")
        for name in _OPTION_FIELDS:
            if not isinstance(getattr(self, name), dict):
                fail(name, "a mapping of strategy options")
        self._check_variants()
        if self.part is not None:
            part = self.part
            ok = (
                isinstance(part, (tuple, list))
                and len(part) == 3
                and all(isinstance(v, int) and not isinstance(v, bool) for v in part)
            )
            if not ok or not (1 <= part[0] <= part[1] and part[1] >= 2 and part[2] >= 0):
                fail("part", "(K, N, SEED): part K of N >= 2 of the table's cells, 1 <= K <= N, "
                     "SEED >= 0")  # fmt: skip
            object.__setattr__(self, "part", tuple(self.part))

    def _check_variants(self) -> None:
        if not isinstance(self.variants, dict):
            raise TabularConfigError(
                f"The tabular config's 'variants' must map labels to {{'strategy': NAME, "
                f"**options}}; got {self.variants!r}."
            )
        for label, spec in self.variants.items():
            where = f"The tabular config's variant {label!r}"
            if not isinstance(label, str) or not label or "," in label or label in STRATEGIES:
                raise TabularConfigError(
                    f"{where} needs a label of its own (a non-empty name without commas, not a "
                    f"strategy's: {list(STRATEGIES)})."
                )
            if not isinstance(spec, dict) or spec.get("strategy") not in STRATEGIES:
                raise TabularConfigError(
                    f"{where} must be {{'strategy': one of {list(STRATEGIES)}, **options}}; "
                    f"got {spec!r}."
                )
            options = {k: v for k, v in spec.items() if k != "strategy"}
            try:
                check_options(spec["strategy"], options)
            except ValueError as error:  # StrategyError: an option the strategy does not take
                raise TabularConfigError(f"{where}: {error}") from None

    @property
    def labels(self) -> tuple[str, ...]:
        """Every line of the comparison: the methods, then the variants."""
        return (*self.methods, *self.variants)

    def strategy_of(self, label: str) -> tuple[str, dict[str, Any]]:
        """The strategy name and options of a method or variant ``label``."""
        spec = self.variants.get(label)
        name = label if spec is None else spec["strategy"]
        options = dict(getattr(self, name)) if name in _OPTION_FIELDS else {}
        if spec is not None:
            options.update({k: v for k, v in spec.items() if k != "strategy"})
        return name, options

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("methods", "checkpoints", "features"):
            out[name] = None if out[name] is None else list(out[name])
        for name in ("variants", "part"):  # unset: as a config written before them reads
            if not out[name]:
                del out[name]
        if "part" in out:
            out["part"] = list(out["part"])
        return out


# -- the objective ---------------------------------------------------------------------------------
class TabularObjective:
    """A table lookup per architecture (one cell): lower is better (see the module docstring).

    Attributes:
        accuracy_: ``(N,)`` the searched metric per cell of ``results.space``;
        values_: ``(N,)`` the objective (``1 - accuracy`` for an accuracy column);
        cost_: ``(N,)`` training seconds per cell, or ``None``.
    """

    name = "tabular"
    evaluator = "tabular"

    def __init__(self, results: TabularResults, column: str | None = None,
                 cost_column: str | None = DEFAULT_COST, seed: int = 0) -> None:  # fmt: skip
        self.results = results
        self.column = column or _default_column(results)
        self.metric, self.combine = split_column(self.column)  # COLUMN@sample: repeats drawn
        if results.repeats is not None:  # a table with repeats: the column says how they combine
            self.column = f"{self.metric}@{self.combine}"
        self.accuracy_ = results.column(self.metric)
        self.maximise = "accuracy" in self.metric.lower()
        _check_values(results, self.metric, self.accuracy_, self.maximise)
        self.values_ = 1.0 - self.accuracy_ if self.maximise else self.accuracy_.copy()
        cost_column = results.cost_column(self.metric, cost_column)
        has_cost = cost_column is not None and cost_column in results.metrics
        self.cost_column = cost_column if has_cost else None
        self.cost_ = results.column(cost_column) if has_cost else None
        self.seed = seed
        reference = (results.repeat_values(self.metric) if self.combine == "sample"
                     else self.accuracy_)  # fmt: skip
        self._best = float(np.nanmax(reference) if self.maximise else np.nanmin(reference))
        self._run: tuple[int, TabularObjective] | None = None

    def for_repeat(self, repeat: int) -> TabularObjective:
        """The lookups of search run ``repeat``: this objective, or (``COLUMN@sample``) a copy
        whose every cell shows the repeat drawn for that run (its time too)."""
        if self.combine != "sample":
            return self
        if self._run is None or self._run[0] != repeat:
            view = copy.copy(self)
            draw = self.results.draw(self.seed, repeat)
            view.accuracy_ = self.results.repeat_column(self.metric, draw)
            view.values_ = 1.0 - view.accuracy_ if self.maximise else view.accuracy_.copy()
            if self.cost_column is not None and self.results.repeats is not None:
                view.cost_ = self.results.repeat_column(self.cost_column, draw)
            self._run = (repeat, view)
        return self._run[1]

    def config(self) -> dict[str, Any]:
        return {"objective": self.name, "table": self.results.source, "column": self.column}

    def __call__(self, architectures: Any) -> list[float]:
        if not len(architectures):
            return []
        cells = np.asarray(architectures, dtype=np.int64)[:, 0]
        return [float(v) for v in self.values_[cells]]

    @property
    def best_value(self) -> float:
        """The best value of the searched metric over the table (the regret's reference)."""
        return self._best


def _check_values(results: TabularResults, column: str, values: np.ndarray,
                  maximise: bool) -> None:  # fmt: skip
    """Refuse accuracies in percent (``1 - accuracy`` would be meaningless); say how many cells
    have no value (a search that picks one sees a diverged lookup)."""
    import logging

    finite = values[np.isfinite(values)]
    if maximise and finite.size and finite.max() > 1.5:  # no accuracy is; a percentage is
        raise TableError(
            f"The column {column!r} of {results.source} holds accuracies above 1 (up to "
            f"{finite.max():.4g}): in percent? A tabular objective searches accuracies in "
            "[0, 1]; divide the column by 100."
        )
    missing = len(values) - finite.size
    if missing:
        logging.getLogger("dagrank").warning(
            "%s: %d of the %d cells have no %s value (NaN); a search that picks one sees a "
            "diverged lookup", results.source, missing, len(values), column)  # fmt: skip


def _default_column(results: TabularResults) -> str:
    if DEFAULT_COLUMN in results.metrics:
        return DEFAULT_COLUMN
    accuracies = [m for m in results.metrics if "accuracy" in m.lower()]
    if not accuracies:
        raise TableError(
            f"The table {results.source} has no accuracy column to search by default; name one "
            f"as tabular:FILE:COLUMN (its metrics: {list(results.metrics)})."
        )
    return accuracies[0]


# -- opening a table over its space ----------------------------------------------------------------
def tabular_space_path(run: Path, vertices: int, max_edges: int | None,
                       space_file: str | None = None) -> Path:  # fmt: skip
    """Where :func:`tabular_space` caches the space in ``run``."""
    if space_file is not None:
        return run / f"space-{Path(space_file).stem}.npz"
    edges = "all" if max_edges is None else str(max_edges)
    return run / f"space-{vertices}v-nb101ops-{edges}e.npz"


def tabular_space(run: Path, vertices: int, max_edges: int | None,
                  space_file: str | None = None, hashes: bool = True) -> Space:  # fmt: skip
    """The labelled space of NAS-Bench-101's operations (or the saved ``space_file``), cached
    in ``run`` with its NAS-Bench-101 hashes (written once, never overwritten; ``hashes=False``:
    without them, for a table whose cells are found by their form)."""
    path = tabular_space_path(run, vertices, max_edges, space_file)
    if space_file is not None:
        space = Space.load(space_file)
    else:
        space = Space.load(path) if path.exists() else None
    if space is not None and (not hashes or "nasbench101_hashes" in space._cache
                              or not _nb101_ops(space)):  # fmt: skip
        return space
    if path.exists():
        return Space.load(path)
    if space is None:
        space = enumerate_space(vertices, NASBENCH101_OPS, max_edges=max_edges)
    if hashes:
        space.nasbench101_hashes()
    space.save(path)
    return space


def _nb101_ops(space: Space) -> bool:
    return space.is_labelled and set(space.op_names) <= set(NASBENCH101_OPS)


def open_table(run: Path, config: TabularConfig) -> tuple[Space, TabularObjective]:
    """The table joined to its space (restricted to the table's cells, and to ``config.part``
    of them when it is set), and the objective."""
    from analysis.nasbench_cache import is_nasbench_file

    run.mkdir(parents=True, exist_ok=True)
    space = tabular_space(run, config.vertices, config.max_edges, config.space,
                          hashes=not is_nasbench_file(config.table))  # fmt: skip
    results = load_table(config.table, space, key=config.key, missing="subset")
    if config.part is not None:
        results = results.part(*config.part)
    return space, TabularObjective(results, config.column, config.cost_column, config.seed)


# -- driving --------------------------------------------------------------------------------------
def _arch_hash(space: Space, arch: tuple[int, ...]) -> str:
    """``canonical_hash`` of the architecture's cells, from the space's stored hashes."""
    return form_hash("+".join(str(space.hashes[c]) for c in arch))


@dataclass
class _Job:
    run: Path
    config: TabularConfig
    objective: TabularObjective
    store: Any
    name: str
    recorded: set[str] = field(default_factory=set)

    @property
    def space(self) -> Space:
        return self.objective.results.space

    def strategy(self, method: str, repeat: int, **extra: Any) -> Any:
        """The strategy of method or variant ``method`` in ``repeat`` (a variant has its
        strategy's seeds: paired with it)."""
        from dagspace.strategies import make_strategy, strategy_seed

        name, options = self.config.strategy_of(method)
        options.update(extra)
        if name in EMBEDDED_METHODS and self.config.features is not None:
            options.setdefault("features", tuple(self.config.features))
        seed = strategy_seed(self.config.seed, repeat, name)  # the supernet jobs' streams
        return make_strategy(name, self.space, 1, seed=seed, **options)

    def record(self, archs: list[tuple[int, ...]], values: list[float], method: str,
               objective: TabularObjective | None = None) -> None:  # fmt: skip
        from analysis.results import EvalKey, EvalStatus, hash_config

        objective = objective or self.objective
        config_hash = hash_config(self.objective.config())
        for arch, value in zip(archs, values, strict=True):
            arch_hash = _arch_hash(self.space, arch)
            if arch_hash in self.recorded:
                continue
            finite = bool(np.isfinite(value))
            cells = [self.space[c].to_dict() for c in arch]
            metrics = {"objective": value if finite else float("nan")}
            metrics[self.objective.column] = float(objective.accuracy_[arch[0]])
            self.store.add(
                EvalKey(arch_hash, "tabular", config_hash, 0), run=self.name, method=method,
                arch_json=cells, metrics=metrics,
                status=EvalStatus.COMPLETE if finite else EvalStatus.DIVERGED,
            )  # fmt: skip
            self.recorded.add(arch_hash)

    def drive(self, method: str, repeat: int, *, budget: int | None, stop: Any = None,
              **extra: Any) -> Any:  # fmt: skip
        """Ask, look up, record, tell until the budget (or ``stop``); resume from the store.
        ``extra``: strategy options beside the config's (the trajectory's ``max_epochs``)."""
        strategy = self.strategy(method, repeat, **extra)
        state_name = f"{self.name}/{method}/{repeat}"
        saved = self.store.get_state(state_name)
        if saved is not None:
            strategy.load_state_dict(json.loads(saved)["strategy"])
        want = ask_batch(*self.config.strategy_of(method))  # a Bayesian variant: its own q
        objective = self.objective.for_repeat(repeat)
        while True:
            done = len(strategy.history)
            if (budget is not None and done >= budget) or (stop is not None and stop(strategy)):
                break
            archs = strategy.ask(want if budget is None else min(want, budget - done))
            if not archs:
                break
            values = objective(archs)
            self.record(archs, values, method, objective)
            strategy.tell(archs, values)
        self.store.set_state(state_name, json.dumps({"strategy": strategy.state_dict()}))
        return strategy


def _open_job(run: str | os.PathLike, config: TabularConfig, name: str, *, need: int,
              why: str, ignore: tuple[str, ...] = ()) -> _Job:  # fmt: skip
    """Open the table and the store; refuse a table that covers fewer than ``need`` cells of
    the space (``why``: what needs them) before anything is looked up or stored."""
    from analysis.results import SQLiteStore
    from analysis.runs import check_stored_job, register_job

    run = Path(run)
    check_stored_job(run, name, config.to_dict(), ignore)  # refused before anything is written
    _, objective = open_table(run, config)
    covered = len(objective.results.space)
    if covered < need:
        raise TabularConfigError(
            f"The table {objective.results.source} covers {covered} cells of the space "
            f"({config.space or f'{config.vertices} vertices, NAS-Bench-101 operations'}); "
            f"{why} needs at least {need}: check the table and --space / --vertices."
        )
    opened = _Job(run, config, objective, None, name)
    for label in config.variants:  # a variant's option values, checked before anything is stored
        try:
            opened.strategy(label, 0)
        except ValueError as error:  # StrategyError
            raise TabularConfigError(f"The variant {label!r}: {error}") from None
    opened.store = SQLiteStore(run / "results.sqlite", synchronous="NORMAL")
    register_job(opened.store, name, config.to_dict(), ignore=ignore)
    return opened


# -- the comparison -------------------------------------------------------------------------------
@dataclass(frozen=True)
class TabularCompareResult:
    curves: pd.DataFrame
    regret: pd.DataFrame
    report: dict[str, Any]
    run_dir: Path


def _curve_rows(objective: TabularObjective, method: str, repeat: int, history: list,
                budget: int) -> dict[str, np.ndarray]:  # fmt: skip
    cells = np.asarray([a[0] for a, _ in history[:budget]], dtype=np.int64)
    found = objective.accuracy_[cells] if len(cells) else np.zeros(0)
    sign = 1.0 if objective.maximise else -1.0
    score = np.where(np.isfinite(found), sign * found, -np.inf)
    best = sign * np.maximum.accumulate(score) if len(score) else score
    cost = objective.cost_[cells] if objective.cost_ is not None else np.full(len(cells), np.nan)
    return {
        "method": np.full(len(cells), method, dtype=object),
        "repeat": np.full(len(cells), repeat),
        "query": np.arange(1, len(cells) + 1),
        "cell": cells,
        "accuracy": found,
        "best_accuracy": best,
        "regret": sign * (objective.best_value - best),
        "cumulative_cost": np.cumsum(cost),
    }


def best_at(curves: pd.DataFrame, queries: int) -> pd.Series:
    """Each (method, repeat)'s best accuracy after ``queries`` queries (its last one if it
    stopped earlier)."""
    part = curves[curves["query"] <= queries].sort_values("query")
    return part.groupby(["method", "repeat"], sort=False)["best_accuracy"].last()


def _regret_table(curves: pd.DataFrame, methods: tuple[str, ...], checkpoints: tuple[int, ...],
                  best: float, maximise: bool) -> pd.DataFrame:  # fmt: skip
    rows = []
    for method in methods:
        for q in checkpoints:
            found = best_at(curves[curves["method"] == method], q).to_numpy(dtype=float)
            regret = (best - found) if maximise else (found - best)
            q25, med, q75 = np.quantile(found, [0.25, 0.5, 0.75])
            r25, rmed, r75 = np.quantile(regret, [0.25, 0.5, 0.75])
            rows.append({"method": method, "queries": q, "median_best": med, "best_q25": q25,
                         "best_q75": q75, "median_regret": rmed, "regret_q25": r25,
                         "regret_q75": r75, "mean_regret": float(regret.mean()),
                         "repeats": len(found)})  # fmt: skip
    return pd.DataFrame(rows)


@job("dagrank compare")
def run_tabular_compare(run: str | os.PathLike, config: TabularConfig, *,
                        progress: bool = True) -> TabularCompareResult:  # fmt: skip
    """Every method and variant of ``config.labels``, ``config.repeats`` times,
    ``config.budget`` lookups each (see the module docstring for what is written); on
    ``config.part`` of the table's cells when it is set."""
    from tqdm.auto import tqdm

    from analysis.tabular_plots import plot_tabular_compare

    start = time.perf_counter()
    why = (f"a comparison of --budget {config.budget} queries per run (each a new cell) "
           "(lower --budget)")  # fmt: skip
    job = _open_job(run, config, "tabular-compare", need=config.budget, why=why)
    try:
        parts, seconds, evaluations = [], {}, {}
        bar = tqdm(total=len(config.labels) * config.repeats, desc="tabular compare",
                   unit="run", disable=not progress)  # fmt: skip
        for method in config.labels:
            began = time.perf_counter()
            for repeat in range(config.repeats):
                strategy = job.drive(method, repeat, budget=config.budget)
                parts.append(_curve_rows(job.objective.for_repeat(repeat), method, repeat,
                                         strategy.history, config.budget))  # fmt: skip
                evaluations.setdefault(method, []).append(len(strategy.history))
                bar.update()
            seconds[method] = round(time.perf_counter() - began, 2)
        bar.close()
        curves = pd.concat([pd.DataFrame(p) for p in parts], ignore_index=True)
        objective = job.objective
        checkpoints = tuple(sorted({*(c for c in config.checkpoints if c <= config.budget),
                                    config.budget}))  # fmt: skip
        regret = _regret_table(curves, config.labels, checkpoints, objective.best_value,
                               objective.maximise)  # fmt: skip
        with atomic_write(job.run / "tabular_curves.csv", newline="") as handle:
            curves.to_csv(handle, index=False)
        with atomic_write(job.run / "tabular_regret.csv", newline="") as handle:
            regret.to_csv(handle, index=False)
        report = _compare_report(job, curves, regret, seconds, evaluations, start)
        plot_tabular_compare(curves, job.run / "tabular_compare.png", report)
        update_summary(job.run, "tabular_compare", report)
        job.store.export_csv(job.run / "evaluations.csv")
    finally:
        job.store.close()
    return TabularCompareResult(curves, regret, report, job.run)


def _compare_report(job: _Job, curves: pd.DataFrame, regret: pd.DataFrame, seconds: dict,
                    evaluations: dict, start: float) -> dict[str, Any]:  # fmt: skip
    config, objective = job.config, job.objective
    final = {m: best_at(curves[curves["method"] == m], config.budget).to_numpy(dtype=float)
             for m in config.labels}  # fmt: skip
    tests = {}
    for i, a in enumerate(config.labels):
        for b in config.labels[i + 1 :]:
            t = mann_whitney(final[a], final[b])
            tests[f"{a} vs {b}"] = {"u": t.u, "p_value": t.p_value, "n_a": t.n_a, "n_b": t.n_b,
                                    "effect_size": t.effect_size, "reason": t.reason}  # fmt: skip
    methods = {}
    for method in config.labels:
        rows = regret[regret["method"] == method]
        methods[method] = {
            "median_best": {int(r.queries): float(r.median_best) for r in rows.itertuples()},
            "median_regret": {int(r.queries): float(r.median_regret) for r in rows.itertuples()},
            "regret_quartiles": {
                int(r.queries): [float(r.regret_q25), float(r.regret_q75)]
                for r in rows.itertuples()
            },
            "evaluations": evaluations[method],
            "seconds": seconds[method],
        }
    results = objective.results
    return {
        "table": results.source,
        "key": results.key_kind,
        "column": objective.column,
        "cells": len(results.space),
        "table_rows": results.rows,
        "optimum": objective.best_value,
        "budget": config.budget,
        "repeats": config.repeats,
        "features": None if config.features is None else list(config.features),
        "methods": methods,
        "mann_whitney": tests,
        "wall_seconds": round(time.perf_counter() - start, 2),
        "config": config.to_dict(),
    }


# -- the trajectory --------------------------------------------------------------------------------
@job("dagrank trajectory")
def run_tabular_trajectory(run: str | os.PathLike, config: TabularConfig, *,
                           progress: bool = True) -> Any:  # fmt: skip
    """Finite-difference descent for ``config.epochs`` epochs over the table; writes
    ``trajectories.csv``, ``trajectory.png`` and the ``trajectory`` section of
    ``summary.json`` (the same as the supernet trajectory job)."""
    from analysis.search import TrajectoryResult, check_epochs, epochs_done, trajectory_frame
    from analysis.search_plots import plot_trajectories

    start = time.perf_counter()
    name = "tabular-trajectory"
    done = epochs_done(Path(run) / "results.sqlite", f"{name}/fd/0")
    check_epochs(run, done, config.epochs, TabularConfigError)
    dims = len(config.features or DEFAULT_FEATURES)
    why = (f"a trajectory (one descent step: the centre and two probes along each of its {dims} "
           "dimensions)")  # fmt: skip
    job = _open_job(run, replace(config, methods=("fd",)), name, need=1 + 2 * dims, why=why,
                    ignore=("epochs",))  # a larger --epochs extends the descent  # fmt: skip
    try:
        strategy = job.drive("fd", 0, budget=None, stop=lambda s: s.epoch >= config.epochs,
                             max_epochs=config.epochs)  # fmt: skip
        frame = trajectory_frame(strategy)  # epochs counted from 1, as in every file
        with atomic_write(job.run / "trajectories.csv", newline="") as handle:
            frame.to_csv(handle, index=False)
        label = f"tabular ({job.objective.column})"
        plot_trajectories(frame, job.run / "trajectory.png", objective=label)
        per_epoch = frame.groupby("epoch")["objective"].first() if len(frame) else pd.Series()
        values = [v for _, v in strategy.history if math.isfinite(v)]
        report = {
            "objective": f"tabular:{job.objective.column}",
            "epochs": int(strategy.epoch),
            "epochs_requested": config.epochs,
            "extended_from": done,
            "evaluations": len(strategy.history),
            "objective_first": float(per_epoch.iloc[0]) if len(per_epoch) else float("nan"),
            "objective_last": float(per_epoch.iloc[-1]) if len(per_epoch) else float("nan"),
            "objective_best": float(min(values)) if values else float("nan"),
            "regret_best": float(min(values) - (1 - job.objective.best_value))
            if values and job.objective.maximise
            else float("nan"),
            "seconds": round(time.perf_counter() - start, 2),
            "config": config.to_dict(),
        }
        update_summary(job.run, "trajectory", report)
        job.store.export_csv(job.run / "evaluations.csv")
    finally:
        job.store.close()
    return TrajectoryResult(frame, report, job.run)
