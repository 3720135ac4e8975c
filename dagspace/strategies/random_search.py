"""Random search: uniformly random architectures, never one twice (the baseline of every study)."""

from __future__ import annotations

from dagspace.random import SeedLike
from dagspace.space import Space
from dagspace.strategies.base import Architecture, Strategy

__all__ = ["RandomSearch"]


class RandomSearch(Strategy):
    """Uniform sampling over the distinct architectures, without repeats.

    Every ask draws uniformly among the architectures neither told nor pending, so asking for
    ``N ** K`` proposals in a row yields every architecture once, in a seeded random order.
    Diverged values are simply recorded: random search does not use the values.
    """

    name = "random"

    def __init__(self, space: Space, num_cells: int, seed: SeedLike) -> None:
        super().__init__(space, num_cells, seed)

    def _propose(self, n: int) -> list[Architecture]:
        out: list[Architecture] = []
        while len(out) < n:
            arch = self._draw_uniform()
            if arch is None:
                break
            self._add_pending(arch)
            out.append(arch)
        return out
