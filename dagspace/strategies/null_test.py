"""The null test of a search strategy: given no information, does it prefer some cells?

Algorithm (seeded, exact reference):

1. ``repeats`` runs of the strategy on ``space`` (one supernet cell), each with its own seed and
   its own objective of i.i.d. uniform noise per architecture (it holds no information), each to
   ``budget`` evaluations; the *reported best* of a run is its lowest value's cell.
2. For each statistic of a cell (its size: vertices and edges; and the embedding's features),
   a chi-square goodness-of-fit test of the reported best cells against the space's own
   distribution of that statistic, which is known exactly (every cell of the space counts once).
   Values are pooled in order into bins of expected count at least 5.
3. The strategy *passes* when no statistic's p-value falls below ``alpha / #statistics``
   (Bonferroni: the family-wise error of a strategy with no preference is at most ``alpha``).

Random search passes by construction; a strategy that samples by feature point rather than by
cell, or drifts along an asymmetric neighbourhood, fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import chisquare

from dagspace.features import DEFAULT_FEATURES
from dagspace.random import stream_seed
from dagspace.space import Space
from dagspace.strategies.registry import make_strategy

__all__ = ["NullTestResult", "goodness_of_fit", "null_best_cells", "null_test"]

_MIN_EXPECTED = 5.0


@dataclass(frozen=True)
class NullTestResult:
    """``p_values`` per statistic, the ``alpha`` of the whole test, and whether it passed;
    ``means``: the statistic's mean over the reported best cells and over the space."""

    strategy: str
    repeats: int
    budget: int
    alpha: float
    p_values: dict[str, float]
    means: dict[str, tuple[float, float]]

    @property
    def passed(self) -> bool:
        return min(self.p_values.values()) >= self.alpha / len(self.p_values)


def null_best_cells(name: str, space: Space, *, budget: int, repeats: int, seed: int = 0,
                    batch: int = 8, **options: Any) -> np.ndarray:  # fmt: skip
    """``(repeats,)`` the cell each run of strategy ``name`` reports as best under i.i.d.
    uniform noise (step 1 of the module docstring); ``batch``: architectures asked at once."""
    best = []
    for run in range(repeats):
        noise = np.random.default_rng([seed, run, 1]).random(len(space))
        strategy = make_strategy(name, space, 1, seed=stream_seed(seed, run, 2), **options)
        while len(strategy.history) < budget:
            archs = strategy.ask(min(batch, budget - len(strategy.history)))
            if not archs:
                break
            strategy.tell(archs, [float(noise[a[0]]) for a in archs])
        found = strategy.best()
        if found is not None:
            best.append(found[0][0])
    return np.asarray(best, dtype=np.int64)


def goodness_of_fit(sample: np.ndarray, population: np.ndarray) -> float:
    """The chi-square p-value of ``sample`` ``(n,)`` against the exact distribution of the
    values of ``population`` ``(N,)``, bins pooled in order to an expected count >= 5 (1.0 when
    fewer than two bins remain)."""
    values, counts = np.unique(population, return_counts=True)
    observed = np.bincount(np.searchsorted(values, sample), minlength=len(values))
    expected = counts / counts.sum() * len(sample)
    bins_o, bins_e, o, e = [], [], 0.0, 0.0
    for oi, ei in zip(observed, expected, strict=True):
        o, e = o + oi, e + ei
        if e >= _MIN_EXPECTED:
            bins_o.append(o)
            bins_e.append(e)
            o = e = 0.0
    if e > 0 and bins_o:
        bins_o[-1] += o
        bins_e[-1] += e
    if len(bins_o) < 2:
        return 1.0
    return float(chisquare(bins_o, bins_e).pvalue)


def null_test(name: str, space: Space, *, budget: int, repeats: int, alpha: float = 0.01,
              seed: int = 0, features: Sequence[str] = DEFAULT_FEATURES, batch: int = 8,
              **options: Any) -> NullTestResult:  # fmt: skip
    """Run the null test of strategy ``name`` (see the module docstring)."""
    best = null_best_cells(name, space, budget=budget, repeats=repeats, seed=seed, batch=batch,
                           **options)  # fmt: skip
    statistics = {"num_vertices": space.num_vertices.astype(np.float64)}
    for feature in dict.fromkeys(("num_edges", *features)):
        statistics[feature] = np.asarray(space.feature(feature), dtype=np.float64)
    p_values = {k: goodness_of_fit(v[best], v) for k, v in statistics.items()}
    means = {k: (float(v[best].mean()), float(v.mean())) for k, v in statistics.items()}
    return NullTestResult(name, len(best), budget, alpha, p_values, means)
