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
from analysis.search import METHOD_LABELS

__all__ = ["METHOD_COLORS", "plot_compare", "plot_trajectories"]

METHOD_COLORS = {"fd": "tab:blue", "random": "tab:gray", "bayes": "tab:orange",
                 "evolution": "tab:green", "local": "tab:red", "fd-seed": "tab:purple",
                 "random-points": "tab:brown"}  # fmt: skip


def plot_trajectories(
    frame: pd.DataFrame,
    path: str | os.PathLike,
    *,
    objective: str = "surrogate",
    dpi: float = DEFAULT_DPI,
) -> Path:
    """Every descent of the run: one panel per feature dimension (the walker's raw coordinate
    over the epochs, one line per descent, i.e. per walker and restart, and per supernet cell;
    a circle where a descent starts), and a last panel with the objective at each walker's
    centre (dots, one colour per walker) and the best of them so far (black)."""
    check_plot_path(path, dpi)
    frame = frame.copy()
    for column in ("walker", "restart"):  # a trajectory of the seed's descent lacks them
        if column not in frame.columns:
            frame[column] = 0
    value = "value_raw" if "value_raw" in frame.columns else "value"
    dims = list(dict.fromkeys(frame["dimension"]))
    cells = sorted(frame["cell"].unique())
    colors = plt.get_cmap("tab10")
    styles = ("-", "--", ":", "-.")
    fig, axes = plt.subplots(1, len(dims) + 1, figsize=(3.6 * (len(dims) + 1), 3.4))
    for ax, dim in zip(axes, dims, strict=False):
        part = frame[frame["dimension"] == dim]
        for (walker, _, cell), line in part.groupby(["walker", "restart", "cell"]):
            line = line.sort_values("epoch")
            color, style = colors(int(walker) % 10), styles[cells.index(cell) % len(styles)]
            ax.plot(line["epoch"], line[value], color=color, ls=style, marker=".", ms=3, lw=1)
            ax.plot(line["epoch"].iloc[0], line[value].iloc[0], "o", mfc="none", color=color,
                    ms=5)  # fmt: skip
        ax.set_title(dim.replace("_", " "), fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    centres = frame.groupby(["epoch", "walker"], as_index=False)["objective"].first()
    ax = axes[-1]
    for walker, part in centres.groupby("walker"):
        ax.plot(part["epoch"], part["objective"], ".", ms=4, color=colors(int(walker) % 10),
                label=f"walker {walker}")  # fmt: skip
    best = centres.groupby("epoch")["objective"].min().cummin().ffill()
    ax.plot(best.index, best.to_numpy(), color="k", lw=1.2, label="best centre so far")
    ax.set_title(f"{objective} objective", fontsize=10)
    ax.set_xlabel("epoch")
    ax.set_ylabel("lower is better", fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    descents = len(frame.groupby(["walker", "restart"]))
    walkers = frame["walker"].nunique()
    cell_note = f"; line style: supernet cell (of {len(cells)})" if len(cells) > 1 else ""
    fig.suptitle(f"Finite-difference descent through the feature space of DAGs: {descents} "
                 f"descent(s) of {walkers} walker(s), one colour per walker{cell_note}",
                 fontsize=10)  # fmt: skip
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
        ax.scatter(x, values, s=22, alpha=0.8, color=METHOD_COLORS.get(method, "k"), edgecolors="k",
                   linewidths=0.3, zorder=3)  # fmt: skip
    ax.set_xticks(range(1, len(methods) + 1), [METHOD_LABELS.get(m, m) for m in methods])
    ax.set_ylabel("stand-alone test accuracy of the top-k")
    title = "Top-k architectures of each method, trained from scratch"
    if report is not None:
        title += f"\n(budget: {report['budget_mode']}, {report['repeats']} repeat(s))"
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    return save_and_close(fig, path, dpi)
