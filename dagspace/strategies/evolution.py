"""Regularised evolution (Real et al. 2019, "Regularized Evolution for Image Classifier
Architecture Search") on the ask/tell contract of :mod:`dagspace.strategies.base`.

Algorithm: the *population* is the last ``population`` architectures told a finite value, in
the order told (so the oldest leaves when a child is told: ageing, not culling the worst).
Until ``population`` architectures are told or pending, proposals are uniformly random. Then
each proposal samples ``tournament`` members of the population uniformly without replacement,
takes the best (lowest value; the earliest told on ties) as the parent, and mutates it: one
supernet cell, chosen uniformly, takes one Metropolis-Hastings step on the symmetric one-edge /
one-operation neighbourhood of the space (:func:`dagspace.neighbours.metropolis_neighbour`: a
neighbour drawn uniformly, kept with probability ``min(1, d(a) / d(b))`` of the degrees), drawn
again while its architecture is told or pending. The mutation therefore leaves the uniform
distribution over cells as it is: with no information the population does not drift (the
one-way neighbourhood of pruned cells drifted to smaller cells, as a flip can prune a vertex
but never add one). If no such child is found, the proposal is a uniformly random unseen
architecture instead (so is it with an empty population, e.g. when every value told diverged).
Diverged values never enter the population; their architectures are not proposed again.

The population is a function of the history, so the state needs nothing beyond the common one.
"""

from __future__ import annotations

import math

from dagspace.checks import check_int
from dagspace.neighbours import metropolis_neighbour
from dagspace.random import SeedLike
from dagspace.space import Space
from dagspace.strategies.base import Architecture, Strategy, StrategyError

__all__ = ["RegularizedEvolution"]


class RegularizedEvolution(Strategy):
    """Regularised (ageing) evolution (see the module docstring).

    Args:
        population: the population size (default 20: a fifth of the 100 that Real et al. used
            on NAS-Bench-101, to fit the benchmark's 150-query budget).
        tournament: the tournament sample size (default 5).
    """

    name = "evolution"

    def __init__(
        self,
        space: Space,
        num_cells: int,
        seed: SeedLike,
        *,
        population: int = 20,
        tournament: int = 5,
    ) -> None:
        super().__init__(space, num_cells, seed)
        owner = type(self).__name__
        self.population = check_int(owner, "population", population, 1, StrategyError)
        self.tournament = check_int(owner, "tournament", tournament, 1, StrategyError)

    def members(self) -> list[tuple[Architecture, float]]:
        """The current population, oldest first."""
        finite = [(a, v) for a, v in self._history if math.isfinite(v)]
        return finite[-self.population :]

    def _propose(self, n: int) -> list[Architecture]:
        def draw() -> Architecture | None:  # a child once the population is full, else uniform
            child = self._child() if self._num_seen >= self.population else None
            return child if child is not None else self._draw_uniform()

        return self._propose_each(n, draw)

    def _child(self) -> Architecture | None:
        members = self.members()
        if not members:
            return None
        size = min(self.tournament, len(members))
        picks = self.rng.choice(len(members), size=size, replace=False)
        parent = min(picks.tolist(), key=lambda i: (members[i][1], i))
        return self._mutate(members[parent][0])

    def _mutate(self, parent: Architecture) -> Architecture | None:
        position = int(self.rng.integers(self.num_cells))

        def child(cell: int) -> Architecture:
            return (*parent[:position], cell, *parent[position + 1 :])

        cell = metropolis_neighbour(self.space, parent[position], self.rng,
                                    lambda c: not self._is_seen(child(c)))  # fmt: skip
        return None if cell is None else child(cell)

    def _config(self) -> dict:
        return {**super()._config(), "population": self.population,
                "tournament": self.tournament}  # fmt: skip
