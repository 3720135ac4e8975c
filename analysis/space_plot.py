"""The picture of a space in its three default features (the seed's figure)."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from analysis.plots import DEFAULT_DPI, check_plot_path, save_and_close
from dagspace import DEFAULT_FEATURES, Space

__all__ = ["plot_space"]

_LABELS = {
    "eccentricity_variance": "eccentricity variance",
    "degree_variance": "degree variance",
    "num_edges": "edges",
}


def plot_space(
    space: Space, path: str | os.PathLike, features=DEFAULT_FEATURES, *, dpi: float = DEFAULT_DPI
) -> Path:
    """A 3-D scatter of the distinct feature points and two 2-D projections, each point sized
    by how many cells share it (area proportional to the count); ``.png``, ``.svg`` or ``.pdf``
    by ``path``'s suffix."""
    check_plot_path(path, dpi)
    raw = np.stack([space.feature(name) for name in features], axis=1)
    points, counts = np.unique(raw, axis=0, return_counts=True)
    size = 8 + 400 * counts / counts.max()
    labels = [_LABELS.get(name, name) for name in features]
    fig = plt.figure(figsize=(15.5, 4.8))
    fig.subplots_adjust(left=0.02, right=0.86, wspace=0.32)
    ax3 = fig.add_subplot(1, 3, 1, projection="3d")
    sc = ax3.scatter(*points.T, s=size, c=np.log10(counts), cmap="viridis", alpha=0.75)
    ax3.set_xlabel(labels[0])
    ax3.set_ylabel(labels[1])
    ax3.set_zlabel(labels[2])
    for k, (i, j) in enumerate([(0, 2), (1, 2)], start=2):
        ax = fig.add_subplot(1, 3, k)
        ax.scatter(
            points[:, i],
            points[:, j],
            s=size,
            c=np.log10(counts),
            cmap="viridis",
            alpha=0.75,
            edgecolors="k",
            linewidths=0.3,
        )
        ax.set_xlabel(labels[i])
        ax.set_ylabel(labels[j])
        ax.grid(alpha=0.3)
    fig.colorbar(sc, cax=fig.add_axes((0.89, 0.15, 0.012, 0.7)), label="log10(cells at the point)")
    kind = "labelled" if space.is_labelled else "unlabelled"
    fig.suptitle(
        f"{len(space):,} {kind} cells (≤{space.max_vertices} vertices"
        f"{'' if space.max_edges is None else f', ≤{space.max_edges} edges'}) at "
        f"{len(points)} distinct feature points"
    )
    return save_and_close(fig, path, dpi, tight=False)
