"""Plots of the search jobs: trajectories per dimension per cell, and the top-k comparison."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.plots import DEFAULT_DPI, check_plot_path, save_and_close

__all__ = ["plot_compare", "plot_trajectories"]

_COLORS = {"fd": "tab:blue", "random": "tab:gray", "bayes": "tab:orange"}
_LABELS = {"fd": "finite-difference", "random": "random", "bayes": "Bayesian"}


def plot_trajectories(
    frame: pd.DataFrame,
    path: str | os.PathLike,
    *,
    objective: str = "surrogate",
    dpi: float = DEFAULT_DPI,
) -> Path:
    """One panel per feature dimension (its raw value over the epochs, one line per cell), and a
    last panel with the objective at the current architecture."""
    check_plot_path(path, dpi)
    value = "value_raw" if "value_raw" in frame.columns else "value"
    dims = list(dict.fromkeys(frame["dimension"]))
    cells = sorted(frame["cell"].unique())
    fig, axes = plt.subplots(1, len(dims) + 1, figsize=(3.6 * (len(dims) + 1), 3.4))
    for ax, dim in zip(axes, dims, strict=False):
        part = frame[frame["dimension"] == dim]
        for cell in cells:
            line = part[part["cell"] == cell].sort_values("epoch")
            ax.plot(line["epoch"], line[value], marker=".", ms=3, lw=1, label=f"cell {cell}")
        ax.set_title(dim.replace("_", " "), fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    per_epoch = frame.groupby("epoch")["objective"].first()
    axes[-1].plot(per_epoch.index, per_epoch.to_numpy(), color="k", lw=1.2)
    axes[-1].set_title(f"{objective} objective (lower is better)", fontsize=10)
    axes[-1].set_xlabel("epoch")
    axes[-1].grid(alpha=0.3)
    fig.suptitle("Finite-difference descent through the feature space of DAGs", fontsize=11)
    return save_and_close(fig, path, dpi)


def plot_compare(
    frame: pd.DataFrame,
    path: str | os.PathLike,
    report: dict | None = None,
    *,
    dpi: float = DEFAULT_DPI,
) -> Path:
    """Box plot of every method's top-k stand-alone test accuracies, the points over it."""
    check_plot_path(path, dpi)
    methods = list(dict.fromkeys(frame["method"]))
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    data = [frame.loc[frame["method"] == m, "test_accuracy"].dropna().to_numpy() for m in methods]
    ax.boxplot(data, showfliers=False, widths=0.5)
    jitter = np.random.default_rng(0)  # fixed: the picture of a run never changes
    for i, (method, values) in enumerate(zip(methods, data, strict=True), start=1):
        x = i + jitter.uniform(-0.12, 0.12, size=len(values))
        ax.scatter(x, values, s=22, alpha=0.8, color=_COLORS.get(method, "k"), edgecolors="k",
                   linewidths=0.3, zorder=3)  # fmt: skip
    ax.set_xticks(range(1, len(methods) + 1), [_LABELS.get(m, m) for m in methods])
    ax.set_ylabel("stand-alone test accuracy of the top-k")
    title = "Top-k architectures of each method, trained from scratch"
    if report is not None:
        title += f"\n(budget: {report['budget_mode']}, {report['repeats']} repeat(s))"
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    return save_and_close(fig, path, dpi)
