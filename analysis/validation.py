"""Validation of the relative surrogate: stratified sampling, correlations with baselines, plot.

The surrogate scores an architecture by the sum of its cells' log-probabilities under the
trained supernet. Validation draws ``n`` architectures *stratified over that score* (so the whole
range is covered, not only the top), trains each from scratch, and compares the surrogate's
ordering with the stand-alone accuracies by Kendall's tau and Spearman's rho (bootstrap 95%
intervals) and by precision of the top-k. The same figures are given for two baselines that any
surrogate must beat: the parameter count, and a random ranking.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.stats import Correlation, precision_at_k, rank_correlation
from dagspace.random import SeedLike, check_random_state

__all__ = [
    "ValidationConfig",
    "ValidationResult",
    "ValidationSummary",
    "plot_validation",
    "run_validation",
    "stratified_architectures",
    "summarize_validation",
    "validation_preset",
]


def stratified_architectures(
    log_probs: list[np.ndarray],
    n: int,
    *,
    seed: SeedLike = 0,
    pool: int = 20_000,
    include_top: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` distinct architectures spread evenly over the surrogate's score.

    A pool of ``pool`` architectures drawn uniformly (one cell per supernet cell, uniformly from
    the space's cells) plus the exact joint top ``include_top`` is sorted by score and cut into
    ``n`` strata of equal size; one architecture is drawn from each stratum (the best stratum
    always yields the joint top-1, so the surrogate's own favourite is validated).

    Returns ``(indices (n, K) into the space, scores (n,))``, best score first.
    """
    from surrogate.relative import joint_top_k

    rng = check_random_state(seed)
    sizes = [len(lp) for lp in log_probs]
    drawn = np.stack([rng.integers(size, size=pool) for size in sizes], axis=1)
    top = np.asarray([idx for _, idx in joint_top_k(log_probs, include_top)], dtype=np.int64)
    candidates = np.unique(np.concatenate([top.reshape(-1, len(sizes)), drawn]), axis=0)
    scores = np.sum([lp[candidates[:, c]] for c, lp in enumerate(log_probs)], axis=0)
    finite = np.isfinite(scores)
    candidates, scores = candidates[finite], scores[finite]
    if len(candidates) < n:
        raise ValueError(
            f"Only {len(candidates)} distinct architectures with a finite score; asked for n={n}."
        )
    order = np.argsort(-scores, kind="stable")
    strata = np.array_split(order, n)
    picks = [
        stratum[0] if i == 0 else stratum[rng.integers(len(stratum))]
        for i, stratum in enumerate(strata)
    ]
    return candidates[picks], scores[picks]


@dataclass(frozen=True)
class ValidationSummary:
    """The validation's figures: correlations of each ranking with stand-alone accuracy."""

    n: int
    target: str
    top_k: int
    surrogate_kendall: Correlation
    surrogate_spearman: Correlation
    surrogate_precision_at_k: float
    params_kendall: Correlation
    params_spearman: Correlation
    params_precision_at_k: float
    random_kendall: Correlation
    random_spearman: Correlation
    random_precision_at_k: float

    def to_dict(self) -> dict:
        return asdict(self)


def summarize_validation(
    frame: pd.DataFrame,
    *,
    target: str = "test_accuracy",
    top_k: int = 5,
    seed: SeedLike = 0,
    n_boot: int = 2000,
) -> ValidationSummary:
    """Correlations of ``surrogate_score``, ``params`` and a seeded random ranking with
    ``target`` over the complete rows of ``frame`` (one row per architecture)."""
    done = frame[np.isfinite(frame[target].to_numpy(dtype=float))]
    truth = done[target].to_numpy(dtype=float)
    rng = check_random_state(seed)
    rankings = {
        "surrogate": done["surrogate_score"].to_numpy(dtype=float),
        "params": done["params"].to_numpy(dtype=float),
        "random": rng.permutation(len(done)).astype(float),
    }
    k = max(1, min(top_k, len(done)))
    figures = {}
    for name, scores in rankings.items():
        for method in ("kendall", "spearman"):
            figures[f"{name}_{method}"] = rank_correlation(
                scores, truth, method=method, n_boot=n_boot, seed=seed
            )
        figures[f"{name}_precision_at_k"] = (
            precision_at_k(scores, truth, k) if len(done) else float("nan")
        )
    return ValidationSummary(n=len(done), target=target, top_k=k, **figures)


def plot_validation(
    frame: pd.DataFrame, summary: ValidationSummary, path: str | os.PathLike, *, dpi: float = 110
) -> Path:
    """Scatter of surrogate score against stand-alone accuracy, the correlation in the title
    (``.png``, ``.svg`` or ``.pdf`` by ``path``'s suffix)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis.plots import check_plot_path, save_figure

    check_plot_path(path, dpi)

    done = frame[np.isfinite(frame[summary.target].to_numpy(dtype=float))]
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    points = ax.scatter(
        done["surrogate_score"],
        done[summary.target],
        c=np.log10(done["params"]),
        cmap="viridis",
        edgecolors="k",
        linewidths=0.4,
        s=36,
    )
    fig.colorbar(points, ax=ax, label="log10(parameters)")
    tau, rho = summary.surrogate_kendall, summary.surrogate_spearman
    ax.set_title(
        f"Kendall τ = {tau.value:.2f} [{tau.low:.2f}, {tau.high:.2f}], "
        f"Spearman ρ = {rho.value:.2f} [{rho.low:.2f}, {rho.high:.2f}] (n = {summary.n})",
        fontsize=9,
    )
    ax.set_xlabel("surrogate score (log-probability of the architecture)")
    ax.set_ylabel(f"stand-alone {summary.target.replace('_', ' ')}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    try:
        return save_figure(fig, path, dpi)
    finally:
        plt.close(fig)


# -- the validation job ------------------------------------------------------------------------
RUN_NAME = "validate"


@dataclass(frozen=True)
class ValidationConfig:
    """Everything a validation run depends on; stored with the run and compared on resume.

    ``supernet`` is a :class:`surrogate.SupernetConfig`, ``candidate`` a
    :class:`surrogate.candidate.CandidateConfig`; ``n`` architectures are trained once per seed
    in ``seeds``; ``top_k`` for the precision figure; ``seed`` for the sample and the bootstrap.
    """

    supernet: Any
    candidate: Any
    n: int = 30
    seeds: tuple[int, ...] = (0,)
    top_k: int = 5
    seed: int = 0

    def to_dict(self) -> dict:
        return {
            "supernet": self.supernet.to_dict(),
            "candidate": self.candidate.to_dict(),
            "n": self.n,
            "seeds": list(self.seeds),
            "top_k": self.top_k,
            "seed": self.seed,
        }


def validation_preset(name: str) -> ValidationConfig:
    """``smoke`` (seconds: tests), ``quick`` (minutes on a CPU, 30 architectures), ``paper``
    (a GPU: 100 architectures at NAS-Bench-101's training budget)."""
    from surrogate.candidate import CANDIDATE_PRESETS
    from surrogate.config import PRESETS

    sizes = {"smoke": 6, "quick": 30, "paper": 100}
    if name not in sizes:
        raise ValueError(f"Unknown validation preset {name!r}; expected one of {sorted(sizes)}.")
    return ValidationConfig(PRESETS[name], CANDIDATE_PRESETS[name], n=sizes[name])


@dataclass(frozen=True)
class ValidationResult:
    frame: pd.DataFrame
    summary: ValidationSummary
    report: dict


def run_validation(
    run: str | os.PathLike,
    config: ValidationConfig,
    *,
    executor: Any = None,
    progress: bool = True,
    retry_failed: bool = False,
) -> ValidationResult:
    """Train (or reuse) the supernet in ``run``, draw ``config.n`` architectures stratified over
    its score, train each from scratch (cached in ``run/results.sqlite``: a re-run trains
    nothing twice), and write ``validation.csv``, ``summary.json``, ``validation.png`` and
    ``evaluations.csv``. ``retry_failed``: retrain candidates that failed their last allowed
    attempt (see :func:`analysis.evaluation.train_architectures`)."""
    import time

    from tqdm.auto import tqdm

    from analysis.evaluation import Request, default_executor, train_architectures
    from analysis.runs import dataset_spec, register_job, supernet_run, update_summary
    from analysis.store import EvalStatus, SQLiteStore
    from dagspace import canonical_hash
    from dagspace.io import atomic_write

    start = time.perf_counter()
    run = Path(run)
    sn = supernet_run(run, config.supernet, progress=progress)
    supernet_seconds = time.perf_counter() - start
    ranking = sn.ranking
    if ranking is None:
        raise ValueError("Validation needs a space of at most 7 vertices to rank.")
    picks, scores = stratified_architectures(
        [c.log_probability for c in ranking.cells], config.n, seed=config.seed
    )
    space = ranking.space
    dataset = dataset_spec(config.supernet)
    store = SQLiteStore(run / "results.sqlite")
    register_job(store, RUN_NAME, config.to_dict())

    archs = [tuple(space[int(i)] for i in row) for row in picks]
    requests = [Request(cells, seed) for cells in archs for seed in config.seeds]
    own = executor is None
    executor = executor or default_executor(config.supernet.device)
    train_start = time.perf_counter()
    stored_before = len(store.records())
    bar = tqdm(total=len(requests), desc="candidates", unit="arch", disable=not progress)
    finished: dict[str, float] = {}
    score_of = {canonical_hash(list(c)): s for c, s in zip(archs, scores, strict=True)}

    def advance(request: Request, record: Any) -> None:
        bar.update()
        if record.status is EvalStatus.COMPLETE:
            finished[record.arch_hash] = record.metrics["test_accuracy"]
        if len(finished) >= 3:
            names = list(finished)
            tau = rank_correlation([score_of[h] for h in names], [finished[h] for h in names],
                                   n_boot=0).value  # fmt: skip
            bar.set_postfix(tau=f"{tau:.2f}", n=len(finished))

    try:
        records = train_architectures(
            store, requests, run=RUN_NAME, method="validate", dataset=dataset,
            config=config.candidate, executor=executor, on_record=advance,
            retry_failed=retry_failed,
        )  # fmt: skip
    finally:
        bar.close()
        if own:
            executor.close()
    trained_now = len(store.records()) - stored_before
    keys = {
        (a, seed): r.key
        for (a, seed), r in zip(
            ((a, seed) for a in range(len(archs)) for seed in config.seeds), records, strict=True
        )
    }
    train_seconds = time.perf_counter() - train_start

    frame = _frame(archs, scores, keys, store, config.seeds)
    summary = summarize_validation(frame, top_k=config.top_k, seed=config.seed)
    report = {
        "summary": summary.to_dict(),
        "n_requested": config.n,
        "seeds": list(config.seeds),
        "dataset": config.supernet.dataset,
        "trained_now": trained_now,
        "statuses": frame["status"].value_counts().to_dict(),
        "timing_s": {
            "supernet_and_ranking": round(supernet_seconds, 2),
            "candidates": round(train_seconds, 2),
            "wall": round(time.perf_counter() - start, 2),
        },
        "config": config.to_dict(),
    }
    with atomic_write(run / "validation.csv", newline="") as handle:
        frame.to_csv(handle, index=False)
    update_summary(run, "validate", report)
    plot_validation(frame, summary, run / "validation.png")
    store.export_csv(run / "evaluations.csv")
    store.close()
    return ValidationResult(frame, summary, report)


def _frame(archs, scores, keys, store, seeds) -> pd.DataFrame:
    """One row per sampled architecture: hashes, surrogate score and rank, and the stand-alone
    results averaged over the seeds that completed."""
    import json

    from dagspace import canonical_hash

    rows = []
    order = np.argsort(-np.asarray(scores), kind="stable")
    rank = np.empty(len(scores), dtype=int)
    rank[order] = np.arange(1, len(scores) + 1)
    for a, cells in enumerate(archs):
        records = [store.find(keys[(a, seed)]) for seed in seeds]
        complete = [r for r in records if r is not None and r.status.name == "COMPLETE"]
        statuses = [r.status.name.lower() if r is not None else "missing" for r in records]
        means = {
            name: float(np.mean([r.metrics[name] for r in complete])) if complete else float("nan")
            for name in ("params", "macs", "val_accuracy", "test_accuracy")
        }
        rows.append(
            {
                "arch_index": a,
                "arch_hash": canonical_hash(cells),
                "cell_hashes": ",".join(canonical_hash(c) for c in cells),
                "surrogate_score": float(scores[a]),
                "surrogate_rank": int(rank[a]),
                "params": means["params"],
                "macs": means["macs"],
                "val_accuracy": means["val_accuracy"],
                "test_accuracy": means["test_accuracy"],
                "seeds_complete": len(complete),
                "status": "complete"
                if len(complete) == len(seeds)
                else next(s for s in statuses if s != "complete"),
                "architecture": json.dumps([c.to_dict() for c in cells]),
            }
        )
    return pd.DataFrame(rows)
