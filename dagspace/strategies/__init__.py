"""Search strategies over the architectures of a space, one module each over one base.

- :mod:`~dagspace.strategies.base`: the ask/tell contract (:class:`Strategy`), the state format;
- :mod:`~dagspace.strategies.random_search`: random search (over architectures, and over the
  embedding's distinct points);
- :mod:`~dagspace.strategies.embedded`: the joint points of an embedding (descent, Bayesian);
- :mod:`~dagspace.strategies.descent`: finite-difference descent through the feature space (the
  lattice rule, ``fd``, and the seed's rule, ``fd-seed``);
- :mod:`~dagspace.strategies.bayes`: Bayesian search with BoTorch;
- :mod:`~dagspace.strategies.evolution`: regularised evolution;
- :mod:`~dagspace.strategies.local_search`: local search;
- :mod:`~dagspace.strategies.registry`: the one registry (name -> class, seed streams).
"""

from __future__ import annotations

from dagspace.strategies.base import Architecture, Strategy, StrategyError
from dagspace.strategies.bayes import BayesianSearch
from dagspace.strategies.descent import (
    FiniteDifferenceDescent,
    SeedFiniteDifferenceDescent,
    project_to_hull,
)
from dagspace.strategies.evolution import RegularizedEvolution
from dagspace.strategies.local_search import LocalSearch
from dagspace.strategies.random_search import RandomPointSearch, RandomSearch
from dagspace.strategies.registry import (
    STRATEGIES,
    STRATEGY_CLASSES,
    make_strategy,
    strategy_class,
    strategy_seed,
)

__all__ = [
    "STRATEGIES",
    "STRATEGY_CLASSES",
    "Architecture",
    "BayesianSearch",
    "FiniteDifferenceDescent",
    "LocalSearch",
    "RandomPointSearch",
    "RandomSearch",
    "RegularizedEvolution",
    "SeedFiniteDifferenceDescent",
    "Strategy",
    "StrategyError",
    "make_strategy",
    "project_to_hull",
    "strategy_class",
    "strategy_seed",
]
