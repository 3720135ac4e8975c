"""Random search: uniformly random architectures, never one twice (the baseline of every study),
and random search over the embedding's distinct points (the baseline of the strategies that
search the embedding)."""

from __future__ import annotations

from collections.abc import Sequence

from dagspace.features import DEFAULT_FEATURES
from dagspace.random import SeedLike
from dagspace.space import Space
from dagspace.strategies.base import Architecture, Strategy
from dagspace.strategies.embedded import EmbeddedStrategy

__all__ = ["RandomPointSearch", "RandomSearch"]


class RandomSearch(Strategy):
    """Uniform sampling over the distinct architectures, without repeats.

    Every ask draws uniformly among the architectures neither told nor pending, so asking for
    ``N ** K`` proposals in a row yields every architecture once, in a seeded random order.
    Diverged values are simply recorded: random search does not use the values.
    """

    name = "random"

    def _propose(self, n: int) -> list[Architecture]:
        return self._propose_each(n, self._draw_uniform)


class RandomPointSearch(EmbeddedStrategy):
    """Random search over the distinct points of the embedding: a uniformly random joint point
    among those with a free architecture, then a uniformly random free architecture there.

    It uses no value, only where the embedding puts the cells, so what it gains or loses against
    :class:`RandomSearch` is a *prior*: rare feature points (a few cells each: small cells,
    unusual shapes) are drawn as often as points that hold hundreds of cells. A strategy that
    moves through the embedding's points (finite-difference descent, Bayesian search) inherits
    that prior unless it weighs points by their cells; this baseline measures it, and is the
    positive control of the strategies' null test (it fails it, by design).

    Args:
        features: the embedding's feature names (default: the seed's three).
    """

    name = "random-points"

    def __init__(self, space: Space, num_cells: int, seed: SeedLike, *,
                 features: Sequence[str] = DEFAULT_FEATURES) -> None:  # fmt: skip
        super().__init__(space, num_cells, seed, features)

    def _propose(self, n: int) -> list[Architecture]:
        return self._propose_each(n, self._draw_point)

    def _config(self) -> dict:
        return {**super()._config(), "features": list(self.embedding.feature_names)}
