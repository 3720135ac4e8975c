"""Plots of a tabular comparison: the regret of the best found so far against queries and against
the training time the table says those queries cost, the median over repeats with a 95%
bootstrap band (the statistic of the regret table and of its Mann-Whitney tests)."""

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
from analysis.search import METHOD_LABELS
from analysis.search_plots import METHOD_COLORS

__all__ = ["bootstrap_band", "plot_premise", "plot_tabular_compare"]

_VARIANT_COLORS = ["tab:cyan", "tab:olive", "tab:pink", "navy", "darkred", "black"]


def bootstrap_band(curves: np.ndarray, *, resamples: int = 1000, seed: int = 0,
                   statistic: str = "mean") -> np.ndarray:  # fmt: skip
    """``(3, T)``: the ``statistic`` (``"mean"`` or ``"median"``) of ``(R, T)`` curves over
    repeats and its 95% percentile-bootstrap band (repeats resampled with replacement, seeded)."""
    reduce = {"mean": np.mean, "median": np.median}[statistic]
    rng = np.random.default_rng(seed)
    picks = rng.integers(len(curves), size=(resamples, len(curves)))
    values = reduce(curves[picks], axis=1)  # (B, T)
    low, high = np.quantile(values, [0.025, 0.975], axis=0)
    return np.stack([reduce(curves, axis=0), low, high])


def _by_queries(part: pd.DataFrame, budget: int) -> np.ndarray:
    """``(R, budget)`` regret per repeat, a run that stopped early held at its last value."""
    table = part.pivot(index="repeat", columns="query", values="regret")
    return table.reindex(columns=range(1, budget + 1)).ffill(axis=1).to_numpy(dtype=float)


def _by_cost(part: pd.DataFrame, grid: np.ndarray) -> np.ndarray:
    """``(R, G)`` regret at each training-time budget of ``grid`` (NaN before the first)."""
    rows = []
    for _, run in part.groupby("repeat"):
        run = run.sort_values("query")
        at = np.searchsorted(run["cumulative_cost"].to_numpy(), grid, side="right") - 1
        best = run["regret"].to_numpy()
        rows.append(np.where(at >= 0, best[np.clip(at, 0, None)], np.nan))
    return np.asarray(rows)


def plot_tabular_compare(curves: pd.DataFrame, path: str | os.PathLike,
                         report: dict[str, Any], *, dpi: float = DEFAULT_DPI) -> Path:  # fmt: skip
    budget = int(report["budget"])
    has_cost = curves["cumulative_cost"].notna().any()
    fig, axes = plt.subplots(1, 2 if has_cost else 1, figsize=(12 if has_cost else 6.4, 4.6),
                             squeeze=False)  # fmt: skip
    axes = axes[0]
    x = np.arange(1, budget + 1)
    if has_cost:
        total = curves.groupby(["method", "repeat"])["cumulative_cost"].max()
        first = curves.loc[curves["query"] == 1, "cumulative_cost"]
        grid = np.geomspace(max(first.max(), 1e-9), max(total.max(), first.max() * 1.01), 200)
    floor = _regret_floor(curves)
    spare = iter(_VARIANT_COLORS * len(curves["method"].unique()))
    for method in dict.fromkeys(curves["method"]):
        part = curves[curves["method"] == method]
        variant = method not in METHOD_COLORS  # a variant: a colour of its own, dashed
        color = next(spare) if variant else METHOD_COLORS[method]
        label, style = METHOD_LABELS.get(method, method), "--" if variant else "-"
        middle, low, high = bootstrap_band(_by_queries(part, budget), statistic="median")
        axes[0].plot(x, np.maximum(middle, floor), color=color, lw=1.4, ls=style, label=label)
        axes[0].fill_between(x, np.maximum(low, floor), np.maximum(high, floor), color=color,
                             alpha=0.15, lw=0)  # fmt: skip
        if has_cost:
            values = _by_cost(part, grid)
            keep = ~np.isnan(values).any(axis=0)
            if keep.any():
                middle, low, high = bootstrap_band(values[:, keep], statistic="median")
                axes[1].plot(grid[keep], np.maximum(middle, floor), color=color, lw=1.4,
                             ls=style, label=label)  # fmt: skip
                axes[1].fill_between(grid[keep], np.maximum(low, floor),
                                     np.maximum(high, floor), color=color, alpha=0.15,
                                     lw=0)  # fmt: skip
    for ax in axes:
        ax.set_yscale("log")
        ax.set_ylabel(f"regret of the best {report['column']} found")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_xlabel("queries")
    axes[0].legend(fontsize=8, loc="upper right")
    if has_cost:
        axes[1].set_xscale("log")
        axes[1].set_xlabel("cumulative training time of the queries (s, from the table)")
    title = (f"{report['repeats']} repeats on {Path(report['table']).name} "
             f"({report['cells']} cells, best {report['optimum']:.4f}): median regret and its "
             "95% bootstrap band")  # fmt: skip
    fig.suptitle(title, fontsize=10)
    return save_and_close(fig, path, dpi)


def _regret_floor(curves: pd.DataFrame) -> float:
    """Where a log axis of regret stops: half the smallest positive regret (a regret of 0, the
    table's best found, is drawn there)."""
    positive = curves.loc[curves["regret"] > 0, "regret"]
    return float(positive.min()) / 2 if len(positive) else 1e-6


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
