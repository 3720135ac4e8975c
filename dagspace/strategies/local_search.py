"""Local search (White et al. 2021, "Local Search is State of the Art for Neural Architecture
Search Benchmarks") on the ask/tell contract of :mod:`dagspace.strategies.base`.

Algorithm (best improvement with random restarts):

1. *Start*: a uniformly random architecture neither told nor pending.
2. *Neighbourhood*: once the current architecture is told, its neighbourhood is drawn: one
   supernet cell replaced by one of its neighbours in the symmetric one-edge / one-operation
   neighbourhood of the space, each kept with probability ``min(1, d(a) / d(b))`` of the
   degrees (:func:`dagspace.neighbours.thinned_neighbours`); those not yet told or pending are
   proposed, in a seeded random order. The neighbourhood and its order are drawn once per climb
   step, so the proposals do not depend on the batch sizes asked for. The thinning makes a
   climb from a uniformly random start sample every cell about equally often: with no
   information it prefers no cell (every neighbour of the one-way neighbourhood of pruned cells
   has at most as many vertices as its cell, and the climbs drifted to smaller cells).
3. *Move*: when every neighbour is told, the current architecture becomes the best neighbour
   (lowest finite value; the first in neighbour order on ties) if it is strictly better;
   otherwise the current one is a local optimum and the search restarts at step 1. Neighbours
   told earlier (in another climb, or without being asked) count with their told value.

A start whose value diverged restarts at once; diverged neighbours never win. While some of the
current neighbourhood is pending (an asynchronous driver), :meth:`ask` has nothing to propose
and returns ``[]``. The state adds the current and the start architecture and the shuffled
neighbourhood (``around``) to the common one.
"""

from __future__ import annotations

import math
from typing import Any

from dagspace.neighbours import thinned_neighbours
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
        self._around: list[Architecture] | None = None  # the current's neighbourhood, shuffled
        self.restarts = 0

    @property
    def current(self) -> Architecture | None:
        """The architecture the climb is at (``None`` before a start is told)."""
        return self._current

    def _draw_neighbourhood(self, arch: Architecture) -> list[Architecture]:
        """A drawn neighbourhood of ``arch`` (step 2 of the module docstring), shuffled."""
        around = [
            (*arch[:k], int(c), *arch[k + 1 :])
            for k in range(self.num_cells)
            for c in thinned_neighbours(self.space, arch[k], self.rng)
        ]
        return [around[i] for i in self.rng.permutation(len(around)).tolist()]

    def _climb_to(self, arch: Architecture) -> None:
        self._current, self._around = arch, self._draw_neighbourhood(arch)

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
        if self._around is None:  # a state written before the neighbourhood was drawn
            self._around = self._draw_neighbourhood(self._current)
        out = [a for a in self._around if not self._is_seen(a)][:n]
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
                self._climb_to(start)
            if self._around is None:  # a state written before the neighbourhood was drawn
                self._around = self._draw_neighbourhood(self._current)
            around = self._around
            if any(a not in self._told for a in around):
                return
            best = min(
                (a for a in around if math.isfinite(self._told[a])),
                key=lambda a: self._told[a],
                default=None,
            )
            if best is not None and self._told[best] < self._told[self._current]:
                self._climb_to(best)
            else:  # a local optimum
                self._current, self._around = None, None
                self.restarts += 1
                return

    def _extra_state(self) -> dict[str, Any]:
        return {
            "current": None if self._current is None else list(self._current),
            "start": None if self._start is None else list(self._start),
            "around": None if self._around is None else [list(a) for a in self._around],
            "restarts": self.restarts,
        }

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        current, start = extra["current"], extra["start"]
        self._current = None if current is None else self._check_architecture(current, "current")
        self._start = None if start is None else self._check_architecture(start, "start")
        around = extra.get("around", extra.get("queue"))  # "queue": a state written before
        self._around = (
            None if around is None else [self._check_architecture(a, "around") for a in around]
        )
        self.restarts = int(extra["restarts"])
