"""Local search (White et al. 2021, "Local Search is State of the Art for Neural Architecture
Search Benchmarks") on the ask/tell contract of :mod:`dagspace.strategies.base`.

Algorithm (best improvement with random restarts):

1. *Start*: a uniformly random architecture neither told nor pending.
2. *Neighbourhood*: once the current architecture is told, its neighbours (one supernet cell
   replaced by one of its one-edge / one-operation neighbours inside the space,
   :func:`dagspace.neighbours.cell_neighbours`) that are not yet told or pending are proposed,
   in a seeded random order.
   The order is drawn once per climb step, so the proposals do not depend on the batch sizes
   asked for.
3. *Move*: when every neighbour is told, the current architecture becomes the best neighbour
   (lowest finite value; the first in neighbour order on ties) if it is strictly better;
   otherwise the current one is a local optimum and the search restarts at step 1. Neighbours
   told earlier (in another climb, or without being asked) count with their told value.

A start whose value diverged restarts at once; diverged neighbours never win. While some of the
current neighbourhood is pending (an asynchronous driver), :meth:`ask` has nothing to propose
and returns ``[]``. The state adds the current and the start architecture and the shuffled
neighbourhood to the common one.
"""

from __future__ import annotations

import math
from typing import Any

from dagspace.neighbours import cell_neighbours
from dagspace.random import SeedLike
from dagspace.space import Space
from dagspace.strategies.base import Architecture, Strategy

__all__ = ["LocalSearch"]


class LocalSearch(Strategy):
    """Best-improvement local search with random restarts (see the module docstring)."""

    name = "local"

    def __init__(self, space: Space, num_cells: int, seed: SeedLike) -> None:
        super().__init__(space, num_cells, seed)
        self._current: Architecture | None = None
        self._start: Architecture | None = None
        self._queue: list[Architecture] | None = None  # the current's neighbours, shuffled
        self.restarts = 0

    @property
    def current(self) -> Architecture | None:
        """The architecture the climb is at (``None`` before a start is told)."""
        return self._current

    def neighbours(self, arch: Architecture) -> list[Architecture]:
        """Every architecture one cell-neighbour away from ``arch``, position by position."""
        return [
            (*arch[:k], int(c), *arch[k + 1 :])
            for k in range(self.num_cells)
            for c in cell_neighbours(self.space, arch[k])
        ]

    def _propose(self, n: int) -> list[Architecture]:
        if self._current is None:
            if self._start is not None:  # the start is pending
                return []
            arch = self._draw_uniform()
            if arch is None:
                return []
            self._start = arch
            self._add_pending(arch)
            return [arch]
        if self._queue is None:  # shuffled once per climb step: proposals do not depend on n
            free = [a for a in self.neighbours(self._current) if not self._is_seen(a)]
            self._queue = [free[i] for i in self.rng.permutation(len(free)).tolist()]
        out = [a for a in self._queue if not self._is_seen(a)][:n]
        for arch in out:
            self._add_pending(arch)
        return out

    def _after_tell(self) -> None:
        while True:
            if self._current is None:
                if self._start is None or self._start not in self._told:
                    return
                start, self._start = self._start, None
                if not math.isfinite(self._told[start]):
                    self.restarts += 1
                    return
                self._current = start
            around = self.neighbours(self._current)
            if any(a not in self._told for a in around):
                return
            best = min(
                (a for a in around if math.isfinite(self._told[a])),
                key=lambda a: self._told[a],
                default=None,
            )
            self._queue = None
            if best is not None and self._told[best] < self._told[self._current]:
                self._current = best
            else:  # a local optimum
                self._current = None
                self.restarts += 1
                return

    def _extra_state(self) -> dict[str, Any]:
        return {
            "current": None if self._current is None else list(self._current),
            "start": None if self._start is None else list(self._start),
            "queue": None if self._queue is None else [list(a) for a in self._queue],
            "restarts": self.restarts,
        }

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        current, start = extra["current"], extra["start"]
        self._current = None if current is None else self._check_architecture(current, "current")
        self._start = None if start is None else self._check_architecture(start, "start")
        queue = extra["queue"]
        self._queue = (
            None if queue is None else [self._check_architecture(a, "queue") for a in queue]
        )
        self.restarts = int(extra["restarts"])
