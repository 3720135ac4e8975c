"""Random search: uniformly random architectures, never one twice (the baseline of every study)."""

from __future__ import annotations

from dagspace.strategies.base import Architecture, Strategy

__all__ = ["RandomSearch"]


class RandomSearch(Strategy):
    """Uniform sampling over the distinct architectures, without repeats.

    Every ask draws uniformly among the architectures neither told nor pending, so asking for
    ``N ** K`` proposals in a row yields every architecture once, in a seeded random order.
    Diverged values are simply recorded: random search does not use the values.
    """

    name = "random"

    def _propose(self, n: int) -> list[Architecture]:
        return self._propose_each(n, self._draw_uniform)
