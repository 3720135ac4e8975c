from __future__ import annotations

import numpy as np
import pytest

from dagspace import Embedding, InvalidSpaceError
from dagspace.features import DEFAULT_FEATURES


@pytest.fixture(scope="module")
def embedding(space6):
    return Embedding(space6)


def test_standardised_and_distinct_points(embedding, space6):
    assert embedding.feature_names == DEFAULT_FEATURES
    np.testing.assert_allclose(embedding.cell_points_.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(embedding.cell_points_.std(axis=0), 1, atol=1e-12)
    assert len(embedding.points_) == 91
    raw = np.stack([space6.feature(n) for n in DEFAULT_FEATURES], axis=1)
    assert len(np.unique(raw, axis=0)) == 91
    np.testing.assert_allclose(embedding.inverse_transform(embedding.cell_points_), raw)


def brute_nearest(embedding, q):
    d = np.linalg.norm(embedding.cell_points_ - q, axis=1)
    return np.flatnonzero(d <= d.min() * (1 + 1e-9) + 1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_nearest_returns_all_tied_cells_like_brute_force(embedding, seed):
    rng = np.random.default_rng(seed)
    queries = rng.normal(size=(50, 3)) * 1.5
    queries[:10] = embedding.points_[rng.integers(len(embedding.points_), size=10)]
    for q, cells in zip(queries, embedding.nearest(queries), strict=True):
        np.testing.assert_array_equal(cells, brute_nearest(embedding, q))


def test_nearest_includes_equidistant_points(embedding):
    """The midpoint of two neighbouring points is tied between them: both are returned."""
    points = embedding.points_
    ties = 0
    for a in range(len(points)):
        dist = np.linalg.norm(points - points[a], axis=1)
        dist[a] = np.inf
        b = int(np.argmin(dist))
        mid = (points[a] + points[b]) / 2
        to_mid = np.linalg.norm(points - mid, axis=1)
        if np.sum(to_mid <= to_mid[a] * (1 + 1e-9)) == 2:  # nobody else as close
            assert set(embedding.nearest_points(mid)[0].tolist()) == {a, b}
            ties += 1
    assert ties > 10


def test_k_nearest_points(embedding):
    found = embedding.nearest_points(embedding.points_[3], k=4)[0]
    assert len(found) >= 4 and 3 in found


def test_tie_breaks(embedding):
    q = embedding.points_[
        np.argmax([len(embedding.cells_at(i)) for i in range(len(embedding.points_))])
    ]
    tied = embedding.nearest(q)[0]
    assert len(tied) > 1
    first = embedding.nearest_cell(q, tie_break="first")
    assert first[0] == tied[0]
    picks = {int(embedding.nearest_cell(q, seed=s)[0]) for s in range(30)}
    assert picks <= set(tied.tolist()) and len(picks) > 1
    assert embedding.nearest_cell(q, seed=5)[0] == embedding.nearest_cell(q, seed=5)[0]
    best = embedding.nearest_cell(q, tie_break=lambda cells: -cells.astype(float))
    assert best[0] == tied[0]
    last = embedding.nearest_cell(q, tie_break=lambda cells: cells.astype(float))
    assert last[0] == tied[-1]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda e: e.nearest(np.zeros(2)), "\\(n, 3\\) array.*got shape \\(1, 2\\)"),
        (lambda e: e.nearest(np.array([np.nan, 0, 0])), "finite"),
        (lambda e: e.nearest_points(np.zeros(3), k=0), "'k' must be an int"),
        (lambda e: e.nearest_cell(np.zeros(3), tie_break="best"), "'tie_break' must be"),
        (lambda e: e.nearest_cell(np.zeros(3), tie_break=lambda c: [1.0]), "one score per cell"),
    ],
)
def test_bad_queries(embedding, call, match):
    with pytest.raises(InvalidSpaceError, match=match):
        call(embedding)


def test_unknown_feature(space6):
    with pytest.raises(InvalidSpaceError, match="Unknown feature 'girth'"):
        Embedding(space6, features=("girth",))
