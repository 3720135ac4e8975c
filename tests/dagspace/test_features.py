from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from dagspace import FEATURES, InvalidSpaceError, compute_features
from dagspace.features import (
    degree_variance,
    eccentricity_variance,
    longest_path,
    num_edges,
    num_vertices,
    shortest_path,
)


def reference(cell) -> dict[str, float]:
    """Per-graph networkx definitions of every feature."""
    graph = cell.to_networkx()
    out = cell.num_vertices - 1
    ecc = np.array(list(nx.eccentricity(graph.to_undirected()).values()), dtype=float)
    deg = np.array([d for _, d in graph.degree()], dtype=float)
    paths = [len(p) - 1 for p in nx.all_simple_paths(graph, 0, out)] or [1]
    return {
        "eccentricity_variance": ecc.var(),
        "degree_variance": deg.var(),
        "num_edges": graph.number_of_edges(),
        "num_vertices": graph.number_of_nodes(),
        "longest_path": max(paths),
        "shortest_path": nx.shortest_path_length(graph, 0, out),
    }


def test_every_feature_equals_networkx_on_the_whole_six_vertex_space(space6):
    expected = np.array([[reference(cell)[name] for name in FEATURES] for cell in space6])
    got = compute_features(space6.matrices, tuple(FEATURES))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_padding_vertices_never_count(space6):
    cell = space6[5]  # a small cell, padded to 6 vertices in the stack
    assert cell.num_vertices < 6
    own = np.zeros((1, 7, 7), dtype=np.uint8)
    v = cell.num_vertices
    own[0, :v, :v] = cell.matrix
    tight = cell.matrix[None]
    for fn in (
        eccentricity_variance,
        degree_variance,
        num_edges,
        num_vertices,
        longest_path,
        shortest_path,
    ):
        assert fn(own)[0] == fn(tight)[0]


def test_equal_variances_are_equal_floats(space6):
    values = eccentricity_variance(space6.matrices)
    rational = {round(x, 9) for x in values.tolist()}
    assert len(set(values.tolist())) == len(rational)


@pytest.mark.parametrize("bad", [np.zeros((3, 3)), np.zeros((2, 3, 4))])
def test_features_reject_unstacked_input(bad):
    with pytest.raises(InvalidSpaceError, match="stacked \\(N, V, V\\)"):
        num_edges(bad)


def test_empty_stack():
    assert num_edges(np.zeros((0, 4, 4), dtype=np.uint8)).shape == (0,)
