"""A Euclidean embedding of a space: standardised graph features and nearest-cell lookup.

Many cells share one feature point (all labellings of a topology do, and many topologies too),
so the lookup works on the *distinct* points: :meth:`Embedding.nearest` returns every cell at
the nearest point(s), and :meth:`Embedding.nearest_cell` picks one of them by a tie-break policy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.spatial import cKDTree

from dagspace.errors import InvalidSpaceError
from dagspace.features import DEFAULT_FEATURES
from dagspace.random import SeedLike, check_random_state
from dagspace.space import Space

__all__ = ["Embedding", "TieBreak"]

TieBreak = str | Callable[[np.ndarray], np.ndarray]
_TIE_RTOL = 1e-9


class Embedding:
    """Standardised features of a space's cells, with a KD-tree over the distinct points.

    Args:
        space: the enumerated space.
        features: the feature names that span the embedding (default: eccentricity variance,
            degree variance, edge count).

    Attributes (fitted, read-only):
        mean_, scale_: ``(d,)`` the standardisation (a constant feature gets scale 1).
        cell_points_: ``(N, d)`` every cell's standardised point.
        points_: ``(M, d)`` the distinct points; ``point_of_cell_`` ``(N,)`` the row of each cell.
    """

    def __init__(self, space: Space, features: Sequence[str] = DEFAULT_FEATURES) -> None:
        self.space = space
        self.feature_names = tuple(features)
        raw = np.stack([space.feature(name) for name in self.feature_names], axis=1)
        self.mean_ = raw.mean(axis=0)
        std = raw.std(axis=0)
        self.scale_ = np.where(std > 0, std, 1.0)
        self.cell_points_ = self.transform(raw)
        self.points_, inverse = np.unique(self.cell_points_, axis=0, return_inverse=True)
        self.point_of_cell_ = inverse.ravel()
        order = np.argsort(self.point_of_cell_, kind="stable")
        bounds = np.searchsorted(self.point_of_cell_[order], np.arange(len(self.points_) + 1))
        self._cells_by_point = np.split(order, bounds[1:-1])
        self._tree = cKDTree(self.points_)
        for array in (
            self.mean_,
            self.scale_,
            self.cell_points_,
            self.points_,
            self.point_of_cell_,
        ):
            array.flags.writeable = False

    @property
    def dim(self) -> int:
        return len(self.feature_names)

    def transform(self, raw: np.ndarray) -> np.ndarray:
        """Raw feature values ``(n, d)`` to standardised points ``(n, d)``."""
        return (np.asarray(raw, dtype=np.float64) - self.mean_) / self.scale_

    def inverse_transform(self, points: np.ndarray) -> np.ndarray:
        """Standardised points ``(n, d)`` back to raw feature values."""
        return np.asarray(points, dtype=np.float64) * self.scale_ + self.mean_

    def cells_at(self, point_index: int) -> np.ndarray:
        """The cells (space indices, ascending) at distinct point ``point_index``."""
        return self._cells_by_point[point_index]

    def _check_points(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points, dtype=np.float64)
        if points.ndim == 1:
            points = points[None, :]
        if points.ndim != 2 or points.shape[1] != self.dim:
            raise InvalidSpaceError(
                f"Query points must be an (n, {self.dim}) array (features "
                f"{list(self.feature_names)}); got shape {points.shape}."
            )
        if not np.isfinite(points).all():
            raise InvalidSpaceError("Query points must be finite; got NaN or inf.")
        return points

    def nearest_points(self, points: np.ndarray, k: int = 1) -> list[np.ndarray]:
        """For each query point, the indices of its ``k`` nearest distinct points, plus every
        further point tied with the ``k``-th in distance (relative tolerance 1e-9)."""
        points = self._check_points(points)
        if not isinstance(k, (int, np.integer)) or not 1 <= k <= len(self.points_):
            raise InvalidSpaceError(
                f"'k' must be an int in [1, {len(self.points_)}] (distinct points); got {k!r}."
            )
        dist, _ = self._tree.query(points, k=k)
        kth = np.atleast_2d(dist.T).T[:, -1] if k > 1 else np.atleast_1d(dist)
        radius = kth * (1 + _TIE_RTOL) + 1e-12
        found = self._tree.query_ball_point(points, radius)
        return [np.asarray(sorted(ix), dtype=np.int64) for ix in found]

    def nearest(self, points: np.ndarray, k: int = 1) -> list[np.ndarray]:
        """For each query point, *all* cells at its ``k`` nearest distinct points (ties
        included), as ascending space indices."""
        return [
            np.sort(np.concatenate([self.cells_at(p) for p in ix]))
            for ix in self.nearest_points(points, k)
        ]

    def nearest_cell(
        self, points: np.ndarray, tie_break: TieBreak = "random", seed: SeedLike = 0
    ) -> np.ndarray:
        """One cell per query point ``(n,)`` among those :meth:`nearest` returns for ``k=1``.

        ``tie_break``: ``"random"`` (uniform, from ``seed``), ``"first"`` (lowest index), or a
        callable ``score(cell_indices) -> scores`` (the highest score wins, then the lowest index).
        """
        tied = self.nearest(points, k=1)
        if tie_break == "first":
            return np.asarray([cells[0] for cells in tied], dtype=np.int64)
        if tie_break == "random":
            rng = check_random_state(seed)
            return np.asarray([cells[rng.integers(len(cells))] for cells in tied], dtype=np.int64)
        if callable(tie_break):
            picks = []
            for cells in tied:
                scores = np.asarray(tie_break(cells), dtype=np.float64)
                if scores.shape != cells.shape:
                    raise InvalidSpaceError(
                        f"A tie-break score must return one score per cell, shape {cells.shape}; "
                        f"got {scores.shape}."
                    )
                picks.append(cells[np.argmax(scores)])  # argmax: first maximum, lowest index
            return np.asarray(picks, dtype=np.int64)
        raise InvalidSpaceError(
            f"'tie_break' must be 'random', 'first' or a callable; got {tie_break!r}."
        )

    def bounds(self) -> np.ndarray:
        """``(2, d)``: the lowest and highest standardised coordinate of the space's points."""
        return np.stack([self.points_.min(axis=0), self.points_.max(axis=0)])
