"""Strategies that search an embedding's distinct points: the bookkeeping of *joint points*.

Many cells share one point of an :class:`dagspace.Embedding` (every labelling of a topology, and
many topologies), so a strategy that moves through the embedding (finite-difference descent,
Bayesian search) cannot tell the cells of one point apart. It chooses a *joint point* (one
distinct point per supernet cell, ``(K,)`` point indices) and evaluates one architecture at it,
drawn uniformly among those neither told nor pending: every cell of a point is equally likely,
which is what the strategies' null tests check.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection, Sequence

import numpy as np

from dagspace.checks import fail
from dagspace.embedding import Embedding
from dagspace.random import SeedLike
from dagspace.space import Space
from dagspace.strategies.base import Architecture, Strategy, StrategyError

__all__ = ["EmbeddedStrategy", "JointPoint"]

JointPoint = tuple[int, ...]
_REJECTIONS = 64  # random picks at a joint point before its free architectures are listed
_POINT_DRAWS = 256  # random joint points tried before the free ones are listed


class EmbeddedStrategy(Strategy):
    """A :class:`Strategy` over the joint points of an embedding of ``space``.

    Args:
        features: the embedding's feature names (:class:`dagspace.Embedding`).

    Keeps, for every joint point, how many of its architectures are told or pending, so that an
    exhausted one is known at once.
    """

    def __init__(
        self, space: Space, num_cells: int, seed: SeedLike, features: Sequence[str]
    ) -> None:
        super().__init__(space, num_cells, seed)
        if isinstance(features, str) or not features:
            expected = "a non-empty sequence of feature names"
            fail(StrategyError, type(self).__name__, "features", expected, features)
        self.embedding = Embedding(space, tuple(features))  # InvalidSpaceError: unknown feature
        self._cells_per_point = np.bincount(
            self.embedding.point_of_cell_, minlength=len(self.embedding.points_)
        )

    def _reset_records(self) -> None:
        super()._reset_records()
        self._point_counts: dict[JointPoint, int] = {}  # joint point -> told + pending

    def _on_seen(self, arch: Architecture) -> None:
        key = self.joint_point(arch)
        self._point_counts[key] = self._point_counts.get(key, 0) + 1

    def joint_point(self, arch: Architecture) -> JointPoint:
        """The distinct point of each of the architecture's cells."""
        return tuple(int(self.embedding.point_of_cell_[c]) for c in arch)

    def _joint_size(self, key: JointPoint) -> int:
        return math.prod(int(self._cells_per_point[p]) for p in key)

    def _is_exhausted(self, key: JointPoint) -> bool:
        """Every architecture at the joint point is told or pending."""
        return self._point_counts.get(key, 0) >= self._joint_size(key)

    def _pick_at(
        self, key: JointPoint, reserved: Collection[Architecture] = ()
    ) -> Architecture | None:
        """A uniformly random architecture at joint point ``key`` neither told, pending nor in
        ``reserved``; ``None`` when there is none."""
        taken = self._point_counts.get(key, 0) + sum(self.joint_point(a) == key for a in reserved)
        if taken >= self._joint_size(key):
            return None
        cells = [self.embedding.cells_at(p) for p in key]
        for _ in range(_REJECTIONS):
            arch = tuple(int(c[self.rng.integers(len(c))]) for c in cells)
            if not self._is_seen(arch) and arch not in reserved:
                return arch
        free = [
            a
            for a in itertools.product(*(c.tolist() for c in cells))
            if not self._is_seen(a) and a not in reserved
        ]
        return free[int(self.rng.integers(len(free)))] if free else None

    def _draw_point(self, reserved: Collection[Architecture] = ()) -> Architecture | None:
        """A uniformly random joint point among those with a free architecture (neither told,
        pending nor in ``reserved``), then a uniformly random free architecture there."""
        m = len(self.embedding.points_)
        for _ in range(_POINT_DRAWS):
            key = tuple(int(p) for p in self.rng.integers(m, size=self.num_cells))
            if not self._is_exhausted(key) and (arch := self._pick_at(key, reserved)):
                return arch
        if m**self.num_cells > 10**6:
            return self._draw_uniform()  # nearly exhausted and too many joint points to list
        free = [k for k in itertools.product(range(m), repeat=self.num_cells)
                if not self._is_exhausted(k)]  # fmt: skip
        return self._pick_at(free[int(self.rng.integers(len(free)))], reserved) if free else None
