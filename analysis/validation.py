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

import numpy as np
import pandas as pd

from analysis.stats import Correlation, precision_at_k, rank_correlation
from dagspace.random import SeedLike, check_random_state

__all__ = [
    "ValidationSummary",
    "plot_validation",
    "stratified_architectures",
    "summarize_validation",
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
    frame: pd.DataFrame, summary: ValidationSummary, path: str | os.PathLike
) -> Path:
    """Scatter of surrogate score against stand-alone accuracy, the correlation in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dagspace.io import atomic_write

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
    with atomic_write(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110)
    plt.close(fig)
    return Path(path)
