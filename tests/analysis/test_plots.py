"""Tests of :mod:`analysis.plots`: the multinomials' picture with edges, and its errors."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.errors import AnalysisError
from analysis.plots import plot_multinomials
from dagspace import NASBENCH101_OPS


def test_multinomials_with_edges_beside_the_ops(tmp_path):
    ops = np.full((2, 3, 3), 1 / 3)
    edges = np.linspace(0, 1, 2 * 10).reshape(2, 10)
    path = plot_multinomials(ops, NASBENCH101_OPS, tmp_path / "m.png", edge_probs=edges)
    assert path.read_bytes()[:4] == b"\x89PNG"
    alone = plot_multinomials(ops, NASBENCH101_OPS, tmp_path / "ops.png")
    assert alone.stat().st_size < path.stat().st_size  # the edge panels add to the picture


def test_edges_of_the_wrong_shape_are_refused(tmp_path):
    with pytest.raises(AnalysisError, match="must be a \\(2, 10\\) array .* got shape \\(2, 6\\)"):
        plot_multinomials(np.full((2, 3, 3), 1 / 3), NASBENCH101_OPS, tmp_path / "m.png",
                          edge_probs=np.zeros((2, 6)))  # fmt: skip
    assert not (tmp_path / "m.png").exists()


def test_trajectory_plot_draws_every_descent_of_a_population(tmp_path, monkeypatch):
    """One line per walker, restart and supernet cell in every dimension panel, and a frame of
    the seed's descent (no walker or restart column) draws as one descent."""
    import matplotlib.pyplot as plt

    from analysis.search import trajectory_frame
    from analysis.search_plots import plot_trajectories
    from dagspace import FiniteDifferenceDescent, enumerate_space

    space = enumerate_space(6)
    fd = FiniteDifferenceDescent(space, 2, seed=0, walkers=2, max_epochs=6, patience=1)
    while archs := fd.ask(1000):
        fd.tell(archs, [float(a[0] % 7 + a[1] % 5) for a in archs])
    frame = trajectory_frame(fd)
    descents = frame.groupby(["walker", "restart"]).ngroups
    assert frame["walker"].nunique() == 2 and descents > 2  # restarts: several descents

    drawn = {}
    real_close = plt.close

    def keep_lines(fig=None):
        if fig is not None and hasattr(fig, "axes"):
            drawn["lines"] = [len(ax.get_lines()) for ax in fig.axes]
        return real_close(fig)

    monkeypatch.setattr(plt, "close", keep_lines)
    path = plot_trajectories(frame, tmp_path / "t.png", objective="test")
    assert path.read_bytes()[:4] == b"\x89PNG"
    # per dimension panel: a line and a start marker per descent and supernet cell
    assert drawn["lines"][:3] == [2 * descents * 2] * 3
    seed_rule = frame.drop(columns=["walker", "restart"])
    assert plot_trajectories(seed_rule, tmp_path / "s.png").exists()
