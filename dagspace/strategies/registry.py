"""The one registry of search strategies: name -> class, in the order of their seed streams.

The order is part of reproducibility: a study's method ``m`` draws its seed from the stream
``(seed, repeat, index of m)`` (:func:`strategy_seed`), so a new strategy is appended, never
inserted. Importing this module imports every strategy module, and none of them imports torch
(Bayesian search imports BoTorch when it first proposes).
"""

from __future__ import annotations

import inspect
from typing import Any

from dagspace.random import SeedLike, stream_seed
from dagspace.space import Space
from dagspace.strategies.base import Strategy, StrategyError
from dagspace.strategies.bayes import BayesianSearch
from dagspace.strategies.descent import FiniteDifferenceDescent, SeedFiniteDifferenceDescent
from dagspace.strategies.evolution import RegularizedEvolution
from dagspace.strategies.local_search import LocalSearch
from dagspace.strategies.random_search import RandomPointSearch, RandomSearch

__all__ = [
    "STRATEGIES",
    "STRATEGY_CLASSES",
    "are_strategy_names",
    "check_options",
    "make_strategy",
    "strategy_class",
    "strategy_seed",
]

STRATEGY_CLASSES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (
        FiniteDifferenceDescent,
        RandomSearch,
        BayesianSearch,
        RegularizedEvolution,
        LocalSearch,
        SeedFiniteDifferenceDescent,
        RandomPointSearch,
    )
}
# ("fd", "random", "bayes", "evolution", "local", "fd-seed", "random-points")
STRATEGIES: tuple[str, ...] = tuple(STRATEGY_CLASSES)


def strategy_class(name: str) -> type[Strategy]:
    """The class registered as ``name``.

    Raises:
        StrategyError: ``name`` is not registered.
    """
    if name not in STRATEGY_CLASSES:
        raise StrategyError(f"Unknown strategy {name!r}; expected one of {list(STRATEGIES)}.")
    return STRATEGY_CLASSES[name]


def are_strategy_names(names: object) -> bool:
    """Whether ``names`` is a non-empty sequence of distinct registered strategy names (what a
    study's ``methods`` must be)."""
    if isinstance(names, str) or not isinstance(names, (tuple, list)) or not names:
        return False
    return all(n in STRATEGY_CLASSES for n in names) and len(set(names)) == len(names)


def strategy_seed(seed: int, repeat: int, name: str) -> int:
    """The seed of strategy ``name`` in repeat ``repeat`` of a study seeded ``seed``: one stream
    per (repeat, strategy), so adding a method or a repeat leaves the others' numbers as they are.
    """
    strategy_class(name)
    stream = STRATEGIES.index(name)
    return stream_seed(seed, repeat, stream)


def make_strategy(
    name: str, space: Space, num_cells: int, *, seed: SeedLike, **options: Any
) -> Strategy:
    """Build the strategy registered as ``name`` (``"fd"``, ``"random"``, ``"bayes"``,
    ``"evolution"``, ``"local"``, ``"fd-seed"``, ``"random-points"``) with its keyword
    ``options``.

    Raises:
        StrategyError: an unknown name or an option the strategy does not take (and any bad
            argument, see the strategy's class).
    """
    check_options(name, options)
    return strategy_class(name)(space, num_cells, seed, **options)


def check_options(name: str, options: Any) -> None:
    """Refuse an option the strategy ``name`` does not take (a study checks its options with
    this before anything runs).

    Raises:
        StrategyError: an unknown name, or an unknown option.
    """
    params = inspect.signature(strategy_class(name).__init__).parameters
    allowed = sorted(p.name for p in params.values() if p.kind is inspect.Parameter.KEYWORD_ONLY)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise StrategyError(
            f"Unknown option(s) {unknown} for the {name!r} strategy; expected some of {allowed}."
        )
