"""Validation of the cheap estimators against architectures trained from scratch, with power.

The protocol (:func:`run_validation`):

1. **The sample.** A pool of ``pool`` architectures is drawn uniformly over distinct
   architectures (each cell uniformly from the space's distinct cells); every estimator of
   :mod:`analysis.estimators` scores the pool. The sample is the first ``n`` of the pool (the
   unbiased, *uniform* part) plus every estimator's top ``include_top`` of the pool and the
   surrogate's exact joint top ``include_top`` over the whole space, so the region that
   search reaches is tested too. Its composition by cell size is reported.
2. **Training.** Every architecture is trained from scratch once per seed of ``seeds`` (at
   least 2), through the results store (a re-run trains nothing twice).
3. **Figures.** The *noise ceiling* (Kendall tau between seeds, and of one seed against the
   mean of the others); each estimator's Kendall tau and Spearman rho against the mean
   accuracy over seeds with bootstrap 95% intervals over architectures, on the whole sample
   and on its uniform part; tau over the ceiling; precision@k and the regret of each
   estimator's top-k; a paired bootstrap test of ``tau(estimator) - tau(params)``; and the
   signal-to-noise ratio of the data (spread of accuracy across architectures over the
   seed-to-seed noise).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError
from analysis.estimators import DEFAULT_ESTIMATORS, ESTIMATORS
from analysis.rundir import job
from analysis.stats import (
    Correlation,
    NoiseCeiling,
    PairedDifference,
    noise_ceiling,
    paired_correlation_difference,
    precision_at_k,
    rank_correlation,
    top_k_regret,
)
from dagspace.random import SeedLike, check_random_state

__all__ = [
    "EstimatorFigures",
    "ValidationConfig",
    "ValidationError",
    "ValidationResult",
    "ValidationSummary",
    "check_validation_job",
    "plot_validation",
    "run_validation",
    "summarize_validation",
    "train_sample",
    "uniform_architectures",
    "validation_preset",
]

RUN_NAME = "validate"
SCORE_PREFIX = "score_"
_DRAW = 1024  # architectures drawn at a time by uniform_architectures
BASELINE = "params"
MIN_PER_K = 2  # precision@k and regret@k are reported from MIN_PER_K * k architectures on


class ValidationError(AnalysisError, ValueError):
    """A validation that cannot be run as asked (too few architectures, a bad option)."""


# -- the sample --------------------------------------------------------------------------------
def uniform_architectures(sizes: list[int], n: int, *, seed: SeedLike = 0) -> np.ndarray:
    """``(n, K)`` distinct architectures drawn uniformly: cell ``c`` uniform over ``sizes[c]``.

    Duplicates are redrawn, so the result is a uniform sample without replacement; the first
    ``m`` of a sample of ``n`` are the sample of ``m`` (same seed), so a larger study reuses
    every architecture a smaller one trained.
    """
    total = float(np.prod(np.asarray(sizes, dtype=np.float64)))
    if n > total:
        raise ValidationError(
            f"Asked for {n} distinct architectures; the space holds only {int(total)}."
        )
    rng = check_random_state(seed)
    picks: dict[tuple[int, ...], None] = {}
    while len(picks) < n:  # fixed-size draws: a smaller n gives a prefix of a larger one
        draw = np.stack([rng.integers(size, size=_DRAW) for size in sizes], axis=1)
        for row in map(tuple, draw.tolist()):
            picks.setdefault(row, None)
            if len(picks) == n:
                break
    return np.asarray(list(picks), dtype=np.int64).reshape(n, len(sizes))


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` highest finite scores (stable on ties)."""
    order = np.argsort(-np.where(np.isnan(scores), -np.inf, scores), kind="stable")
    return order[:k]


def draw_sample(context: Any, config: ValidationConfig) -> tuple[np.ndarray, list[list[str]]]:
    """The architectures to train ``(m, K)`` and the origins of each (``"uniform"``,
    ``"top:<estimator>"``, ``"top:surrogate_exact"``); see the module docstring."""
    from analysis.estimators import score_architectures

    ranking = context.ranking
    sizes = [len(ranking.space)] * len(ranking.cells)
    pool = uniform_architectures(sizes, max(config.pool, config.n), seed=config.seed)
    scores = score_architectures(context, pool, config.estimators)
    origins: dict[tuple[int, ...], list[str]] = {}
    for row in map(tuple, pool[: config.n].tolist()):
        origins.setdefault(row, []).append("uniform")
    for name in config.estimators:
        if name == "random":
            continue
        for i in _top(scores[name], config.include_top):
            origins.setdefault(tuple(pool[i].tolist()), []).append(f"top:{name}")
    for _, idx, _ in ranking.top(config.include_top):  # tied architectures once
        origins.setdefault(tuple(int(i) for i in idx), []).append("top:surrogate_exact")
    return np.asarray(list(origins), dtype=np.int64), list(origins.values())


# -- the figures -------------------------------------------------------------------------------
@dataclass(frozen=True)
class EstimatorFigures:
    """One estimator against the mean stand-alone accuracy over seeds."""

    kendall: Correlation
    spearman: Correlation
    kendall_uniform: Correlation
    tau_over_ceiling: float
    precision_at_k: float
    regret_at_k: float
    vs_params: PairedDifference


@dataclass(frozen=True)
class ValidationSummary:
    """Every estimator's figures, the noise ceiling and the data's signal-to-noise ratio."""

    n: int
    n_uniform: int
    seeds: tuple[int, ...]
    target: str
    top_k: int
    ceiling: NoiseCeiling | None
    estimators: dict[str, EstimatorFigures]
    signal_to_noise: dict[str, float]
    composition: dict[str, dict[str, int]] = field(default_factory=dict)
    surrogate_versus: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The surrogate against the estimator it should keep: ``one_shot_loss`` (what the same
    supernet's weights know) and, for multinomials distilled from an estimator, that teacher:
    name -> ``ratio`` (of the taus), ``delta``, ``low``, ``high``, ``p_value`` (paired)."""

    @property
    def best(self) -> str:
        """The estimator with the highest Kendall tau (the random ranking excluded)."""
        values = {k: v.kendall.value for k, v in self.estimators.items() if k != "random"}
        finite = {k: v for k, v in values.items() if np.isfinite(v)}
        return max(finite, key=finite.get) if finite else next(iter(self.estimators))

    @property
    def surrogate_kendall(self) -> Correlation:
        return self.estimators["surrogate"].kendall

    @property
    def half_width(self) -> float:
        """Half the width of the surrogate's tau interval (what the sample size buys; the best
        estimator's where the surrogate was not scored)."""
        name = "surrogate" if "surrogate" in self.estimators else self.best
        tau = self.estimators[name].kendall
        return float((tau.high - tau.low) / 2)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["seeds"] = list(self.seeds)
        out["best"] = self.best
        out["half_width"] = self.half_width
        return out


def accuracy_matrix(frame: pd.DataFrame, target: str, seeds: tuple[int, ...]) -> np.ndarray:
    """``(n, S)`` the target of every architecture under every seed (NaN where missing)."""
    columns = [f"{target}_seed{s}" for s in seeds]
    return frame[columns].to_numpy(dtype=float)


def signal_to_noise(acc: np.ndarray) -> dict[str, float]:
    """Spread of the mean accuracy across architectures against the seed-to-seed noise of one
    training run: ``spread`` (std over architectures of the mean over seeds), ``seed_noise``
    (root mean within-architecture variance), ``ratio`` = spread / seed_noise."""
    done = acc[np.all(np.isfinite(acc), axis=1)]
    if len(done) < 2 or done.shape[1] < 2:
        return {"spread": float("nan"), "seed_noise": float("nan"), "ratio": float("nan")}
    spread = float(np.std(done.mean(axis=1), ddof=1))
    noise = float(np.sqrt(np.mean(np.var(done, axis=1, ddof=1))))
    return {"spread": spread, "seed_noise": noise,
            "ratio": spread / noise if noise > 0 else float("inf")}  # fmt: skip


def summarize_validation(
    frame: pd.DataFrame,
    *,
    seeds: tuple[int, ...] | None = None,
    target: str = "test_accuracy",
    top_k: int = 10,
    seed: SeedLike = 0,
    n_boot: int = 2000,
    teacher: str | None = None,
) -> ValidationSummary:
    """The figures of the module docstring from ``frame`` (one row per architecture, columns
    ``score_<estimator>``, ``<target>_seed<s>``, ``<target>`` and ``uniform``); ``seeds``
    default to every ``<target>_seed<s>`` column of the frame. ``teacher``: the estimator the
    multinomials were distilled from (compared with the surrogate, paired)."""
    if seeds is None:
        prefix = f"{target}_seed"
        seeds = tuple(int(c[len(prefix) :]) for c in frame.columns if c.startswith(prefix))
    if not seeds:
        raise ValidationError(f"The validation frame has no '{target}_seed<s>' column.")
    acc = accuracy_matrix(frame, target, seeds)
    complete = np.all(np.isfinite(acc), axis=1)
    done = frame[complete]
    truth = acc[complete].mean(axis=1)
    uniform = done["uniform"].to_numpy(dtype=bool)
    ceiling = noise_ceiling(acc[complete], n_boot=n_boot, seed=seed) if len(seeds) > 1 else None
    k = top_k  # below MIN_PER_K * k architectures, precision@k and regret@k say little: NaN
    enough = len(done) >= MIN_PER_K * k
    names = [c[len(SCORE_PREFIX) :] for c in frame.columns if c.startswith(SCORE_PREFIX)]
    base = done[SCORE_PREFIX + BASELINE].to_numpy(dtype=float) if BASELINE in names else None
    figures = {}
    for name in names:
        s = done[SCORE_PREFIX + name].to_numpy(dtype=float)
        tau = rank_correlation(s, truth, n_boot=n_boot, seed=seed)
        ceil = ceiling.seed_vs_rest.value if ceiling is not None else float("nan")
        versus = (paired_correlation_difference(s, base, truth, n_boot=n_boot, seed=seed)
                  if base is not None else PairedDifference(*([float("nan")] * 4), 0, "kendall",
                                                            0, "no params"))  # fmt: skip
        figures[name] = EstimatorFigures(
            kendall=tau,
            spearman=rank_correlation(s, truth, method="spearman", n_boot=n_boot, seed=seed),
            kendall_uniform=rank_correlation(s[uniform], truth[uniform], n_boot=n_boot, seed=seed),
            tau_over_ceiling=float(tau.value / ceil) if ceil and np.isfinite(ceil) else np.nan,
            precision_at_k=precision_at_k(np.nan_to_num(s, nan=-np.inf), truth, k)
            if enough else float("nan"),
            regret_at_k=top_k_regret(s, truth, k) if enough else float("nan"),
            vs_params=versus,
        )  # fmt: skip
    versus = {}
    if "surrogate" in names:
        s = done[SCORE_PREFIX + "surrogate"].to_numpy(dtype=float)
        for other in dict.fromkeys(("one_shot_loss", teacher)):
            if other is None or other not in names:
                continue
            o = done[SCORE_PREFIX + other].to_numpy(dtype=float)
            diff = paired_correlation_difference(s, o, truth, n_boot=n_boot, seed=seed)
            versus[other] = {"ratio": diff.ratio, "delta": diff.value, "low": diff.low,
                             "high": diff.high, "p_value": diff.p_value,
                             "teacher": other == teacher}  # fmt: skip
    return ValidationSummary(
        n=len(done), n_uniform=int(uniform.sum()), seeds=tuple(seeds), target=target,
        top_k=k, ceiling=ceiling, estimators=figures, signal_to_noise=signal_to_noise(acc),
        composition=composition(frame), surrogate_versus=versus,
    )  # fmt: skip


def composition(frame: pd.DataFrame) -> dict[str, dict[str, int]]:
    """How many cells of each vertex count the sample holds, in its uniform part and in the
    estimators' top-k part."""
    out: dict[str, dict[str, int]] = {}
    for part, rows in (("uniform", frame[frame["uniform"]]), ("top_k", frame[~frame["uniform"]])):
        sizes = [int(v) for text in rows["cell_vertices"] for v in str(text).split(",")]
        values, counts = np.unique(sizes, return_counts=True) if sizes else ([], [])
        out[part] = {f"{int(v)} vertices": int(c) for v, c in zip(values, counts, strict=True)}
    return out


# -- the plot ----------------------------------------------------------------------------------
def plot_validation(
    frame: pd.DataFrame, summary: ValidationSummary, path: str | os.PathLike, *, dpi: float = 110
) -> Path:
    """Every estimator's tau with its interval, the noise ceiling as a band; then the best
    estimator's scatter against the mean stand-alone accuracy
    (``.png``, ``.svg`` or ``.pdf`` by ``path``'s suffix)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis.plots import check_plot_path, save_and_close

    check_plot_path(path, dpi)

    names = list(summary.estimators)
    taus = [summary.estimators[n].kendall for n in names]
    fig, (bars, scatter) = plt.subplots(1, 2, figsize=(12, 0.32 * len(names) + 2.2),
                                        gridspec_kw={"width_ratios": [1.1, 1]})  # fmt: skip
    y = np.arange(len(names))[::-1]
    values = np.array([t.value for t in taus])
    low = np.array([t.low for t in taus])
    high = np.array([t.high for t in taus])
    colors = ["tab:red" if n.startswith("surrogate") else "tab:gray" if n == "random"
              else "tab:blue" for n in names]  # fmt: skip
    if summary.ceiling is not None:
        c = summary.ceiling.seed_vs_rest
        bars.axvspan(c.low, c.high, color="gold", alpha=0.35, label="noise ceiling (95% CI)")
        bars.axvline(c.value, color="goldenrod", lw=1.2)
    bars.axvline(0, color="k", lw=0.8)
    bars.errorbar(np.nan_to_num(values), y, xerr=[np.nan_to_num(values - low),
                  np.nan_to_num(high - values)], fmt="none", ecolor="k", lw=1)  # fmt: skip
    bars.scatter(np.nan_to_num(values), y, c=colors, zorder=3, edgecolors="k", linewidths=0.4)
    bars.set_yticks(y, names, fontsize=8)
    bars.set_xlim(-1, 1)
    bars.set_xlabel(f"Kendall τ with mean stand-alone {summary.target.replace('_', ' ')}")
    bars.set_title(f"n = {summary.n} architectures, {len(summary.seeds)} seeds each", fontsize=9)
    if summary.ceiling is not None:  # (one seed: no ceiling, nothing to label)
        bars.legend(loc="lower right", fontsize=7)
    bars.grid(axis="x", alpha=0.3)

    best = summary.best
    acc = accuracy_matrix(frame, summary.target, summary.seeds)
    complete = np.all(np.isfinite(acc), axis=1)
    done = frame[complete]
    points = scatter.scatter(done[SCORE_PREFIX + best], acc[complete].mean(axis=1),
                             c=np.log10(done["params"].clip(lower=1)), cmap="viridis",
                             edgecolors="k", linewidths=0.4, s=30)  # fmt: skip
    fig.colorbar(points, ax=scatter, label="log10(parameters)")
    t = summary.estimators[best].kendall
    scatter.set_title(f"best: {best}, τ = {t.value:.2f} [{t.low:.2f}, {t.high:.2f}]", fontsize=9)
    scatter.set_xlabel(f"{best} score")
    scatter.set_ylabel(f"mean stand-alone {summary.target.replace('_', ' ')}")
    scatter.grid(alpha=0.3)
    return save_and_close(fig, path, dpi)


# -- the validation job ------------------------------------------------------------------------
@dataclass(frozen=True)
class ValidationConfig:
    """Everything a validation run depends on; stored with the run and compared on resume.

    ``supernet`` is a :class:`surrogate.SupernetConfig`, ``candidate`` a
    :class:`surrogate.candidate.CandidateConfig`; ``n`` uniform architectures out of a scored
    ``pool``, plus every estimator's top ``include_top``; each trained once per seed of
    ``seeds``; ``top_k`` for precision and regret; ``seed`` for the sample and the bootstrap.
    """

    supernet: Any
    candidate: Any
    n: int = 150
    seeds: tuple[int, ...] = (0, 1)
    top_k: int = 10
    include_top: int = 3
    pool: int = 300
    estimators: tuple[str, ...] = DEFAULT_ESTIMATORS
    target: str = "test_accuracy"
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n", "top_k", "pool"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValidationError(f"The validation's {name!r} must be an int >= 1; "
                                      f"got {value!r}.")  # fmt: skip
        if (
            isinstance(self.include_top, bool)
            or not isinstance(self.include_top, int)
            or (self.include_top < 0)
        ):
            raise ValidationError(
                f"The validation's 'include_top' must be an int >= 0; got {self.include_top!r}."
            )
        seeds = tuple(self.seeds)
        if not seeds or len(set(seeds)) != len(seeds):
            raise ValidationError(f"The validation's 'seeds' must be distinct ints; got {seeds}.")
        object.__setattr__(self, "seeds", seeds)
        unknown = [e for e in self.estimators if e not in ESTIMATORS]
        if unknown:
            raise ValidationError(
                f"Unknown estimator(s) {unknown}; expected names from {sorted(ESTIMATORS)}."
            )
        object.__setattr__(self, "estimators", tuple(self.estimators))
        if self.target not in ("test_accuracy", "val_accuracy"):
            raise ValidationError(
                "The validation's 'target' must be 'test_accuracy' or 'val_accuracy'; "
                f"got {self.target!r}."
            )

    def to_dict(self) -> dict:
        return {
            "supernet": self.supernet.to_dict(),
            "candidate": self.candidate.to_dict(),
            "n": self.n,
            "seeds": list(self.seeds),
            "top_k": self.top_k,
            "include_top": self.include_top,
            "pool": self.pool,
            "estimators": list(self.estimators),
            "target": self.target,
            "seed": self.seed,
        }


def validation_preset(name: str) -> ValidationConfig:
    """``smoke`` (seconds: tests), ``quick`` (a CPU: 150 uniform architectures, 2 seeds: a tau
    interval of about +/-0.11), ``paper`` (a GPU: 200 architectures, 3 seeds)."""
    from surrogate.candidate import candidate_preset
    from surrogate.config import supernet_preset
    from surrogate.presets import get_preset

    sizes = get_preset(name, ValidationError).validation
    return ValidationConfig(supernet_preset(name), candidate_preset(name), **sizes)


@dataclass(frozen=True)
class ValidationResult:
    frame: pd.DataFrame
    summary: ValidationSummary
    report: dict


def check_validation_job(run: Path, config: ValidationConfig) -> None:
    """Refuse, before any training or write, a validation that cannot run in ``run``: a space
    too large to rank, or another config than the one the run's store holds for it."""
    from analysis.runs import check_stored_job
    from dagspace.enumeration import MAX_ENUMERATION_VERTICES

    if config.supernet.vertices > MAX_ENUMERATION_VERTICES:
        raise ValidationError(
            f"Validation ranks the space, which needs at most {MAX_ENUMERATION_VERTICES} "
            f"vertices; the [supernet] config has vertices = {config.supernet.vertices}."
        )
    check_stored_job(run, RUN_NAME, config.to_dict())


@job("dagrank validate")
def run_validation(
    run: str | os.PathLike,
    config: ValidationConfig,
    *,
    executor: Any = None,
    progress: bool = True,
    retry_failed: bool = False,
) -> ValidationResult:
    """Train (or reuse) the supernet in ``run``, draw the sample, score it with every estimator,
    train each architecture once per seed (cached in ``run/results.sqlite``), and write
    ``validation.csv``, ``estimators.csv``, ``summary.json``, ``validation.png`` and
    ``evaluations.csv``. ``retry_failed``: retrain candidates that failed their last allowed
    attempt (see :func:`analysis.evaluation.train_architectures`)."""
    from analysis.estimators import EstimatorContext, score_architectures
    from analysis.results import SQLiteStore
    from analysis.runs import dataset_spec, register_job, supernet_run, update_summary
    from dagspace.io import atomic_write

    start = time.perf_counter()
    run = Path(run)
    check_validation_job(run, config)
    sn = supernet_run(run, config.supernet, progress=progress, candidate=config.candidate)
    supernet_seconds = time.perf_counter() - start
    store = SQLiteStore(run / "results.sqlite")
    register_job(store, RUN_NAME, config.to_dict())
    context = EstimatorContext(sn.ranking, sn.result.supernet, sn.dataset, config.candidate,
                               seed=config.seed)  # fmt: skip
    picks, origins = draw_sample(context, config)
    scores = score_architectures(context, picks, config.estimators)
    estimate_seconds = time.perf_counter() - start - supernet_seconds
    archs = context.cells(picks)

    train_start = time.perf_counter()
    stored_before = len(store.records())
    records = train_sample(
        store, archs, config, dataset_spec(config.supernet), executor, progress, retry_failed
    )
    trained_now = len(store.records()) - stored_before
    train_seconds = time.perf_counter() - train_start

    frame = _frame(archs, origins, scores, records, config.seeds)
    teacher = config.supernet.arch_target
    summary = summarize_validation(frame, seeds=config.seeds, target=config.target,
                                   top_k=config.top_k, seed=config.seed,
                                   teacher=None if teacher == "loss" else teacher)  # fmt: skip
    report = {
        "summary": summary.to_dict(),
        "score": sn.ranking.score,
        "n_requested": config.n,
        "n_trained": len(frame),
        "seeds": list(config.seeds),
        "dataset": config.supernet.dataset,
        "trained_now": trained_now,
        "statuses": frame["status"].value_counts().to_dict(),
        "timing_s": {
            "supernet_and_ranking": round(supernet_seconds, 2),
            "estimators": round(estimate_seconds, 2),
            "candidates": round(train_seconds, 2),
            "wall": round(time.perf_counter() - start, 2),
        },
        "config": config.to_dict(),
    }
    with atomic_write(run / "validation.csv", newline="") as handle:
        frame.to_csv(handle, index=False)
    with atomic_write(run / "estimators.csv", newline="") as handle:
        estimator_table(summary).to_csv(handle, index=False)
    update_summary(run, "validate", report)
    plot_validation(frame, summary, run / "validation.png")
    store.export_csv(run / "evaluations.csv")
    store.close()
    return ValidationResult(frame, summary, report)


def train_sample(store, archs, config, dataset, executor, progress,
           retry_failed: bool = False) -> dict[tuple[int, int], Any]:  # fmt: skip
    """Train every architecture of ``archs`` with every seed of ``config.seeds`` into ``store``
    (resuming what it holds); the records by (architecture position, seed)."""
    from tqdm.auto import tqdm

    from analysis.evaluation import Request, default_executor, train_architectures

    requests = [Request(cells, seed) for cells in archs for seed in config.seeds]
    own = executor is None
    executor = executor or default_executor(config.supernet.device)
    bar = tqdm(total=len(requests), desc="candidates", unit="run", disable=not progress)
    try:
        records = train_architectures(
            store, requests, run=RUN_NAME, method="validate", dataset=dataset,
            config=config.candidate, executor=executor, on_record=lambda *_: bar.update(),
            retry_failed=retry_failed,
        )  # fmt: skip
    finally:
        bar.close()
        if own:
            executor.close()
    positions = ((a, seed) for a in range(len(archs)) for seed in config.seeds)
    return dict(zip(positions, records, strict=True))


def _frame(archs, origins, scores, records, seeds) -> pd.DataFrame:
    """One row per architecture: hashes, origins, every estimator's score, the stand-alone
    results of every seed and their mean over the seeds that completed."""
    from dagspace import canonical_hash

    rows = []
    for a, cells in enumerate(archs):
        runs = [records[(a, seed)] for seed in seeds]
        complete = [r.status.name == "COMPLETE" for r in runs]
        row: dict[str, Any] = {
            "arch_index": a,
            "arch_hash": canonical_hash(list(cells)),
            "origin": ";".join(origins[a]),
            "uniform": "uniform" in origins[a],
            "cell_vertices": ",".join(str(c.num_vertices) for c in cells),
        }
        row.update({SCORE_PREFIX + name: float(values[a]) for name, values in scores.items()})
        for metric in ("test_accuracy", "val_accuracy"):
            for seed, r, ok in zip(seeds, runs, complete, strict=True):
                row[f"{metric}_seed{seed}"] = r.metrics[metric] if ok else float("nan")
        good = [r for r, ok in zip(runs, complete, strict=True) if ok]
        for metric in ("test_accuracy", "val_accuracy", "params", "macs"):
            row[metric] = float(np.mean([r.metrics[metric] for r in good])) if good else np.nan
        statuses = [r.status.name.lower() for r in runs]
        row["seeds_complete"] = sum(complete)
        row["status"] = next((s for s in statuses if s != "complete"), "complete")
        row["architecture"] = json.dumps([c.to_dict() for c in cells])
        rows.append(row)
    return pd.DataFrame(rows)


def estimator_table(summary: ValidationSummary) -> pd.DataFrame:
    """One row per estimator: tau and rho with intervals, tau on the uniform part, tau over the
    ceiling, precision and regret at k, and the paired test against the parameter count."""
    rows = []
    teacher = next((k for k, v in summary.surrogate_versus.items() if v["teacher"]), "")
    for name, f in summary.estimators.items():
        rows.append({
            "estimator": name, "group": ESTIMATORS[name].group if name in ESTIMATORS else "",
            "fitted_to": (teacher or "loss") if name.startswith("surrogate") else "",
            "kendall": f.kendall.value, "kendall_low": f.kendall.low,
            "kendall_high": f.kendall.high, "spearman": f.spearman.value,
            "spearman_low": f.spearman.low, "spearman_high": f.spearman.high,
            "kendall_uniform": f.kendall_uniform.value, "tau_over_ceiling": f.tau_over_ceiling,
            f"precision_at_{summary.top_k}": f.precision_at_k,
            f"regret_at_{summary.top_k}": f.regret_at_k,
            "delta_tau_vs_params": f.vs_params.value, "delta_low": f.vs_params.low,
            "delta_high": f.vs_params.high, "p_vs_params": f.vs_params.p_value,
        })  # fmt: skip
    return pd.DataFrame(rows)
