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
