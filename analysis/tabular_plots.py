"""Plots of a tabular comparison: best-found-so-far accuracy against queries and against the
training time the table says those queries cost, mean over repeats with a 95% bootstrap band."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.plots import DEFAULT_DPI, save_and_close

__all__ = ["bootstrap_band", "plot_premise", "plot_tabular_compare"]

_COLORS = {"fd": "tab:blue", "random": "tab:gray", "bayes": "tab:orange",
           "evolution": "tab:green", "local": "tab:red"}  # fmt: skip
_LABELS = {"fd": "finite-difference", "random": "random", "bayes": "Bayesian",
           "evolution": "regularised evolution", "local": "local search"}  # fmt: skip


def bootstrap_band(curves: np.ndarray, *, resamples: int = 1000, seed: int = 0) -> np.ndarray:
    """``(3, T)``: the mean of ``(R, T)`` curves over repeats and its 95% percentile-bootstrap
    band (repeats resampled with replacement, seeded)."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(len(curves), size=(resamples, len(curves)))
    means = curves[picks].mean(axis=1)  # (B, T)
    low, high = np.quantile(means, [0.025, 0.975], axis=0)
    return np.stack([curves.mean(axis=0), low, high])


def _by_queries(part: pd.DataFrame, budget: int) -> np.ndarray:
    """``(R, budget)`` best-so-far per repeat, a run that stopped early held at its last value."""
    table = part.pivot(index="repeat", columns="query", values="best_accuracy")
    return table.reindex(columns=range(1, budget + 1)).ffill(axis=1).to_numpy(dtype=float)


def _by_cost(part: pd.DataFrame, grid: np.ndarray) -> np.ndarray:
    """``(R, G)`` best-so-far at each training-time budget of ``grid`` (NaN before the first)."""
    rows = []
    for _, run in part.groupby("repeat"):
        run = run.sort_values("query")
        at = np.searchsorted(run["cumulative_cost"].to_numpy(), grid, side="right") - 1
        best = run["best_accuracy"].to_numpy()
        rows.append(np.where(at >= 0, best[np.clip(at, 0, None)], np.nan))
    return np.asarray(rows)


def plot_tabular_compare(curves: pd.DataFrame, path: str | os.PathLike,
                         report: dict[str, Any], *, dpi: float = DEFAULT_DPI) -> Path:  # fmt: skip
    budget = int(report["budget"])
    has_cost = curves["cumulative_cost"].notna().any()
    fig, axes = plt.subplots(1, 2 if has_cost else 1, figsize=(12 if has_cost else 6.4, 4.4),
                             squeeze=False)  # fmt: skip
    axes = axes[0]
    x = np.arange(1, budget + 1)
    if has_cost:
        total = curves.groupby(["method", "repeat"])["cumulative_cost"].max()
        first = curves.loc[curves["query"] == 1, "cumulative_cost"]
        grid = np.geomspace(max(first.max(), 1e-9), max(total.max(), first.max() * 1.01), 200)
    for method in dict.fromkeys(curves["method"]):
        part = curves[curves["method"] == method]
        color, label = _COLORS.get(method, "k"), _LABELS.get(method, method)
        mean, low, high = bootstrap_band(_by_queries(part, budget))
        axes[0].plot(x, mean, color=color, lw=1.4, label=label)
        axes[0].fill_between(x, low, high, color=color, alpha=0.2, lw=0)
        if has_cost:
            values = _by_cost(part, grid)
            keep = ~np.isnan(values).any(axis=0)
            if keep.any():
                mean, low, high = bootstrap_band(values[:, keep])
                axes[1].plot(grid[keep], mean, color=color, lw=1.4, label=label)
                axes[1].fill_between(grid[keep], low, high, color=color, alpha=0.2, lw=0)
    optimum = report["optimum"]
    for ax in axes:
        ax.axhline(optimum, color="k", lw=0.8, ls="--", label="table's best")
        ax.set_ylabel(f"best {report['column']} found")
        ax.grid(alpha=0.3)
        low = float(curves.loc[curves["query"] >= min(10, budget), "best_accuracy"].quantile(0.05))
        ax.set_ylim(low, optimum + 0.1 * (optimum - low) + 1e-9)
    axes[0].set_xlabel("queries")
    axes[0].legend(fontsize=8, loc="lower right")
    if has_cost:
        axes[1].set_xscale("log")
        axes[1].set_xlabel("cumulative training time of the queries (s, from the table)")
    title = (f"{report['repeats']} repeats on {Path(report['table']).name} "
             f"({report['cells']} cells): mean and 95% bootstrap band")  # fmt: skip
    fig.suptitle(title, fontsize=10)
    return save_and_close(fig, path, dpi)


def plot_premise(space: Any, y: np.ndarray, path: str | os.PathLike, *, column: str,
                 dpi: float = DEFAULT_DPI) -> Path:  # fmt: skip
    """Accuracy over the seed's feature space: each distinct point of (eccentricity variance,
    degree variance, edges) in the first two features, coloured by the median accuracy of its
    cells (size: how many); and the spread of accuracy within every point, points sorted by
    their median (what an embedding cannot see)."""
    from dagspace import DEFAULT_FEATURES

    raw = np.stack([space.feature(f) for f in DEFAULT_FEATURES], axis=1)
    points, group = np.unique(raw, axis=0, return_inverse=True)
    group = group.ravel()
    frame = pd.DataFrame({"group": group, "y": y})
    stats = frame.groupby("group")["y"].quantile([0.05, 0.5, 0.95]).unstack()
    counts = np.bincount(group)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    ax = axes[0]
    order = np.argsort(counts)[::-1]  # small markers on top
    sc = ax.scatter(points[order, 0], points[order, 1], c=stats[0.5].to_numpy()[order],
                    s=8 + 60 * np.sqrt(counts[order] / counts.max()), cmap="viridis",
                    edgecolors="k", linewidths=0.2)  # fmt: skip
    fig.colorbar(sc, ax=ax, label=f"median {column}")
    ax.set_xlabel(DEFAULT_FEATURES[0].replace("_", " "))
    ax.set_ylabel(DEFAULT_FEATURES[1].replace("_", " "))
    ax.set_title(f"{len(points)} distinct feature points of {len(y)} cells", fontsize=10)
    ax = axes[1]
    ranked = np.argsort(stats[0.5].to_numpy())
    x = np.arange(len(ranked))
    band = stats[0.05].to_numpy()[ranked], stats[0.95].to_numpy()[ranked]
    ax.fill_between(x, *band, color="tab:blue", alpha=0.3, lw=0, label="5-95% of its cells")
    ax.plot(x, stats[0.5].to_numpy()[ranked], color="tab:blue", lw=1.2, label="median")
    ax.set_xlabel("feature point, by median")
    ax.set_ylabel(column)
    ax.set_ylim(float(np.quantile(y, 0.01)), float(y.max()) + 0.002)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("accuracy within each feature point", fontsize=10)
    ax.grid(alpha=0.3)
    return save_and_close(fig, path, dpi)
