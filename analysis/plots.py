"""Plots of the supernet's multinomials: final probabilities (heatmaps) and their history.

Functions take data and a path and write one figure, atomically (a temporary file beside the
target, then ``os.replace``), in the format the path's suffix names (``.png``, ``.svg``,
``.pdf``: :func:`save_figure`, which every plot of the toolkit uses) at ``dpi``. They build
``matplotlib.figure.Figure`` objects directly, so they never touch pyplot's global state or the
user's backend.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from analysis.errors import AnalysisError, PlotFormatError
from dagspace.io import atomic_write

__all__ = [
    "DEFAULT_DPI",
    "PLOT_FORMATS",
    "check_plot_path",
    "plot_multinomial_history",
    "plot_multinomials",
    "save_and_close",
    "save_figure",
]

PLOT_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}  # suffix -> matplotlib format
DEFAULT_DPI = 110.0


def check_plot_path(path: str | os.PathLike[str], dpi: float = DEFAULT_DPI) -> str:
    """The matplotlib format that ``path``'s suffix names; raises :class:`PlotFormatError` for
    another suffix or a ``dpi`` that is not a positive number."""
    suffix = Path(path).suffix.lower()
    if suffix not in PLOT_FORMATS:
        raise PlotFormatError(
            f"A plot file must end in one of {', '.join(PLOT_FORMATS)}; got {str(path)!r}."
        )
    ok = isinstance(dpi, (int, float)) and not isinstance(dpi, bool) and 0 < dpi <= 2400
    if not ok:
        raise PlotFormatError(
            f"The plot resolution (dpi) must be a number in (0, 2400]; got {dpi!r}."
        )
    return PLOT_FORMATS[suffix]


def save_figure(figure: Any, path: str | os.PathLike[str], dpi: float = DEFAULT_DPI) -> Path:
    """Render ``figure`` to ``path`` in the format of its suffix (:data:`PLOT_FORMATS`) at
    ``dpi``, atomically (a temporary file beside the target, then ``os.replace``)."""
    fmt = check_plot_path(path, dpi)
    target = Path(path)
    with atomic_write(target, "wb") as handle:
        figure.savefig(handle, format=fmt, dpi=dpi)
    return target


def save_and_close(
    figure: Any, path: str | os.PathLike[str], dpi: float = DEFAULT_DPI, *, tight: bool = True
) -> Path:
    """:func:`save_figure` a pyplot ``figure`` (after ``tight_layout`` when ``tight``), then close
    it, saved or not, so a long study does not accumulate open figures."""
    import matplotlib.pyplot as plt

    if tight:
        figure.tight_layout()
    try:
        return save_figure(figure, path, dpi)
    finally:
        plt.close(figure)


def _save_png(figure: Figure, path: str | os.PathLike[str], dpi: float = DEFAULT_DPI) -> Path:
    FigureCanvasAgg(figure)
    return save_figure(figure, path, dpi)


def _check_probs(op_probs: Any, op_names: Sequence[str], what: str, ndim: int) -> np.ndarray:
    probs = np.asarray(op_probs, dtype=np.float64)
    if probs.ndim != ndim or probs.shape[-1] != len(op_names) or 0 in probs.shape:
        shape = "(K, V-2, n_ops)" if ndim == 3 else "(epochs, K, V-2, n_ops)"
        raise AnalysisError(
            f"The {what} must be a non-empty {shape} array with n_ops = len(op_names) = "
            f"{len(op_names)}; got shape {probs.shape}."
        )
    return probs


def plot_multinomials(
    op_probs: Any,
    op_names: Sequence[str],
    path: str | os.PathLike[str],
    *,
    title: str = "",
    edge_probs: Any = None,
    dpi: float = DEFAULT_DPI,
) -> Path:
    """Heatmaps of the final multinomials: per cell, modules x ops, and (with ``edge_probs``)
    beside it the probability of every edge as an upper-triangular ``V x V`` matrix.

    Args:
        op_probs: ``(K, V-2, n_ops)`` probabilities (rows sum to 1).
        op_names: the ``n_ops`` operation names (columns).
        path: the file to write (``.png``, ``.svg`` or ``.pdf``).
        title: an optional figure title.
        edge_probs: ``(K, E)`` probabilities that each edge is present (``triu_indices(V, 1)``
            order, ``E = V (V-1) / 2``), or ``None`` for the op panels only.
        dpi: the resolution.

    Returns:
        The path written.
    """
    check_plot_path(path, dpi)
    probs = _check_probs(op_probs, op_names, "'op_probs'", 3)
    cells, modules, n_ops = probs.shape
    v = modules + 2
    edges = None
    if edge_probs is not None:
        edges = np.asarray(edge_probs, dtype=np.float64)
        if edges.shape != (cells, v * (v - 1) // 2):
            raise AnalysisError(
                f"The 'edge_probs' must be a ({cells}, {v * (v - 1) // 2}) array (cells x edges "
                f"of the complete DAG on {v} vertices); got shape {edges.shape}."
            )
    panels = 1 if edges is None else 2
    width = 2.0 + (1.1 * n_ops + (0.55 * v if edges is not None else 0)) * cells
    figure = Figure(figsize=(width, 2.4 + 0.45 * max(modules, v if edges is not None else 0)),
                    layout="constrained")  # fmt: skip
    axes = figure.subplots(1, cells * panels, squeeze=False)[0]
    image = None
    for k in range(cells):
        ax = axes[k * panels]
        image = ax.imshow(probs[k], vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
        _annotate(ax, probs[k])
        ax.set_xticks(range(n_ops), [str(n) for n in op_names], rotation=35, ha="right")
        ax.set_yticks(range(modules), [f"vertex {m + 1}" for m in range(modules)])
        ax.set_title(f"cell {k}: ops", fontsize=10)
        if edges is not None:
            ax = axes[k * panels + 1]
            matrix = np.full((v, v), np.nan)
            matrix[np.triu_indices(v, 1)] = edges[k]
            ax.imshow(matrix, vmin=0.0, vmax=1.0, cmap="viridis", aspect="equal")
            _annotate(ax, matrix)
            labels = ["in", *(str(i) for i in range(1, v - 1)), "out"]
            ax.set_xticks(range(v), labels, fontsize=8)
            ax.set_yticks(range(v), labels, fontsize=8)
            ax.set_title(f"cell {k}: edges (row -> column)", fontsize=10)
    figure.colorbar(image, ax=list(axes), label="probability", shrink=0.9)
    figure.suptitle(title or "Sampling probability of each operation and edge, per cell")
    return _save_png(figure, path, dpi)


def _annotate(ax: Any, values: np.ndarray) -> None:
    """Write every finite value of a heatmap into its square."""
    for (r, c), value in np.ndenumerate(values):
        if np.isfinite(value):
            color = "black" if value > 0.6 else "white"
            ax.text(c, r, f"{value:.2f}", ha="center", va="center", fontsize=7, color=color)


def plot_multinomial_history(
    history: Any,
    path: str | os.PathLike[str],
    op_names: Sequence[str] | None = None,
    *,
    title: str = "",
    dpi: float = DEFAULT_DPI,
) -> Path:
    """The sampling probability of each op per module and cell over the epochs (a line each).

    Args:
        history: ``(epochs, K, V-2, n_ops)`` probabilities, or a sequence of records with an
            ``op_probabilities`` ``(K, V-2, n_ops)`` attribute (e.g.
            :class:`surrogate.training.EpochRecord`) and optionally ``epoch`` (0-based; the
            axis numbers epochs from 1, as the files and the progress bar do).
        path: the file to write (``.png``, ``.svg`` or ``.pdf``).
        op_names: the legend's names (default ``op 0``, ``op 1``, ...).
        title: an optional figure title.
        dpi: the resolution.

    Returns:
        The path written. A grid: a row per cell, a column per module.
    """
    check_plot_path(path, dpi)
    records = list(history) if not isinstance(history, np.ndarray) else None
    if records and hasattr(records[0], "op_probabilities"):
        stacked = np.stack([np.asarray(r.op_probabilities) for r in records])
        epochs = np.array([getattr(r, "epoch", i) for i, r in enumerate(records)]) + 1
    else:
        stacked = np.asarray(history, dtype=np.float64)
        epochs = np.arange(1, stacked.shape[0] + 1) if stacked.ndim else np.arange(0)
    n_ops = stacked.shape[-1] if stacked.ndim == 4 else 0
    names = [f"op {o}" for o in range(n_ops)] if op_names is None else list(op_names)
    probs = _check_probs(stacked, names, "'history'", 4)
    _, cells, modules, n_ops = probs.shape
    figure = Figure(figsize=(0.8 + 2.6 * modules, 0.8 + 2.0 * cells), layout="constrained")
    axes = figure.subplots(cells, modules, squeeze=False, sharex=True, sharey=True)
    for k in range(cells):
        for m in range(modules):
            ax = axes[k, m]
            for o in range(n_ops):
                ax.plot(epochs, probs[:, k, m, o], marker="." if len(epochs) < 30 else None)
            ax.set_ylim(0.0, 1.0)
            ax.set_title(f"cell {k}, vertex {m + 1}", fontsize=9)
            if k == cells - 1:
                ax.set_xlabel("epoch")
            if m == 0:
                ax.set_ylabel("probability")
    figure.legend(names, loc="outside lower center", ncols=min(n_ops, 4), fontsize=8)
    figure.suptitle(title or "Sampling probability of each operation over training")
    return _save_png(figure, path, dpi)
