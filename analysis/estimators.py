"""Cheap estimators of stand-alone accuracy, side by side, behind one registry.

An estimator maps architectures to a score, **higher = predicted better**, without training
them. Each is one small function ``fn(context, indices) -> (n,) float64`` where ``indices``
``(n, K)`` are the architectures' cells as indices into the ranked space and ``context`` an
:class:`EstimatorContext` (the ranking, the trained supernet, the data, the candidate recipe).
The registry :data:`ESTIMATORS` holds:

- ``surrogate`` (the relative surrogate's default score, the log-likelihood ratio against the
  untrained prior), ``surrogate_sampling`` (the raw log-probability) and
  ``surrogate_per_decision``;
- ``one_shot_accuracy`` and ``one_shot_loss`` (negated): the architecture run on the
  supernet's shared weights over the validation split, its batch norms normalising with the
  architecture's own statistics (the supernet keeps no running statistics, so they are
  recomputed for every architecture on every evaluation batch of at least 256 examples);
- the zero-cost proxies at initialisation of :mod:`surrogate.zero_cost` (``synflow``,
  ``naswot``, ``jacob_cov``, ``snip``, ``grad_norm``) on a few training batches;
- ``params`` and ``macs`` of the stand-alone network; ``vertices``, ``edges`` and ``depth``
  (longest input -> output path) summed over the cells;
- ``random``: a seeded random ranking, the floor every estimator must clear.

Add your own with :func:`register_estimator`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analysis.errors import AnalysisError
from dagspace.random import check_random_state

__all__ = [
    "DEFAULT_ESTIMATORS",
    "ESTIMATORS",
    "Estimator",
    "EstimatorContext",
    "EstimatorError",
    "register_estimator",
    "score_architectures",
]


class EstimatorError(AnalysisError, ValueError):
    """An unknown or duplicate estimator, or an estimator that cannot run in this context."""


@dataclass
class EstimatorContext:
    """What estimators may use. ``supernet`` / ``dataset`` / ``candidate`` may be ``None`` for
    estimators that do not need them; ``cache`` holds work shared by several estimators."""

    ranking: Any  # surrogate.relative.Ranking
    supernet: Any = None  # surrogate.supernet.Supernet, trained
    dataset: Any = None  # surrogate.data.Dataset (the splits the supernet trained on)
    candidate: Any = None  # surrogate.candidate.CandidateConfig
    seed: int = 0
    proxy_batch: int = 64
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def space(self) -> Any:
        return self.ranking.space

    def cells(self, indices: np.ndarray) -> list[tuple[Any, ...]]:
        """The architectures of ``indices`` ``(n, K)`` as tuples of :class:`CellSpec`."""
        space = self.space
        return [tuple(space[int(i)] for i in row) for row in np.asarray(indices)]

    def need(self, *names: str, estimator: str) -> None:
        missing = [name for name in names if getattr(self, name) is None]
        if missing:
            raise EstimatorError(
                f"The estimator {estimator!r} needs {missing} in its EstimatorContext; got None."
            )


EstimatorFn = Callable[[EstimatorContext, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Estimator:
    """A named estimator: ``fn(context, indices (n, K)) -> (n,)``, higher = better;
    ``group`` places it in tables (surrogate, one-shot, zero-cost, size, baseline)."""

    name: str
    fn: EstimatorFn
    group: str
    description: str


ESTIMATORS: dict[str, Estimator] = {}


def register_estimator(name: str, fn: EstimatorFn, *, group: str = "user",
                       description: str = "") -> Estimator:  # fmt: skip
    """Add ``fn`` to :data:`ESTIMATORS` under ``name`` (a name already taken is refused)."""
    if not isinstance(name, str) or not name:
        raise EstimatorError(f"An estimator's name must be a non-empty string; got {name!r}.")
    if name in ESTIMATORS:
        raise EstimatorError(f"An estimator named {name!r} is already registered.")
    if not callable(fn):
        raise EstimatorError(f"The estimator {name!r} must be callable; got {type(fn).__name__}.")
    ESTIMATORS[name] = Estimator(name, fn, group, description)
    return ESTIMATORS[name]


# -- the relative surrogate ------------------------------------------------------------------
def _surrogate(kind: str) -> EstimatorFn:
    def score(context: EstimatorContext, indices: np.ndarray) -> np.ndarray:
        return context.ranking.architecture_scores(indices, kind)

    return score


# -- one-shot evaluation on the shared weights -----------------------------------------------
def _one_shot(context: EstimatorContext, indices: np.ndarray) -> np.ndarray:
    """``(n, 2)``: validation loss and accuracy of each architecture on the shared weights."""
    from surrogate.training import evaluate_architecture

    context.need("supernet", "dataset", estimator="one_shot")
    key = "one_shot"
    done: dict[tuple[int, ...], tuple[float, float]] = context.cache.setdefault(key, {})
    net = context.supernet
    was_training = net.training
    net.eval()
    try:
        for row, cells in zip(np.asarray(indices), context.cells(indices), strict=True):
            if tuple(row) not in done:
                done[tuple(row)] = evaluate_architecture(net, cells, context.dataset.val)
    finally:
        net.train(was_training)
    return np.array([done[tuple(row)] for row in np.asarray(indices)], dtype=np.float64)


def _one_shot_accuracy(context: EstimatorContext, indices: np.ndarray) -> np.ndarray:
    return _one_shot(context, indices)[:, 1]


def _one_shot_loss(context: EstimatorContext, indices: np.ndarray) -> np.ndarray:
    return -_one_shot(context, indices)[:, 0]


# -- zero-cost proxies and the stand-alone network's cost -------------------------------------
def _cached(context: EstimatorContext, key: str, indices: np.ndarray, compute) -> np.ndarray:
    """``compute(cells) -> float`` for every architecture not in ``context.cache[key]``."""
    done: dict[tuple, float] = context.cache.setdefault(key, {})
    for row, cells in zip(np.asarray(indices), context.cells(indices), strict=True):
        if tuple(row) not in done:
            done[tuple(row)] = float(compute(cells))
    return np.array([done[tuple(row)] for row in np.asarray(indices)], dtype=np.float64)


_PROXIES: list[str] = []  # the built-in zero-cost estimators (registered below)
_WANTED_PROXIES = "zero_cost:wanted"  # cache key: the proxies one score_architectures call wants


def _proxy(name: str) -> EstimatorFn:
    """The zero-cost proxy ``name``. The network and minibatch of an architecture are the same
    for every proxy, so the first proxy asked for computes, in one
    :func:`~surrogate.zero_cost.zero_cost_scores` call, every proxy the same
    :func:`score_architectures` call asks for (the scores are those of separate calls)."""
    _PROXIES.append(name)

    def score(context: EstimatorContext, indices: np.ndarray) -> np.ndarray:
        from surrogate.zero_cost import zero_cost_scores

        context.need("dataset", "candidate", estimator=name)
        done: dict[tuple, dict[str, float]] = context.cache.setdefault("zero_cost", {})
        wanted = context.cache.get(_WANTED_PROXIES, ())
        for row, cells in zip(np.asarray(indices), context.cells(indices), strict=True):
            known = done.setdefault(tuple(row), {})
            if name not in known:
                todo = [n for n in dict.fromkeys((name, *wanted)) if n not in known]
                known.update(zero_cost_scores(cells, context.dataset, context.candidate,
                                              seed=context.seed, batch_size=context.proxy_batch,
                                              proxies=todo))  # fmt: skip
        return np.array([done[tuple(row)][name] for row in np.asarray(indices)], dtype=np.float64)

    return score


def _network_cost(name: str) -> EstimatorFn:
    """``params`` or ``macs`` of the architecture's fresh stand-alone network."""

    def score(context: EstimatorContext, indices: np.ndarray) -> np.ndarray:
        import torch

        from surrogate.candidate import build_network
        from surrogate.network import count_macs, count_parameters

        context.need("dataset", "candidate", estimator=name)

        def compute(cells: tuple) -> float:
            net = build_network(cells, context.dataset, context.candidate, 0, torch.device("cpu"))
            if name == "params":
                return count_parameters(net)
            return count_macs(net, context.dataset.input_shape)

        return _cached(context, name, indices, compute)

    return score


# -- graph size ------------------------------------------------------------------------------
def _graph(feature: str) -> EstimatorFn:
    def score(context: EstimatorContext, indices: np.ndarray) -> np.ndarray:
        column = context.space.feature(feature).astype(np.float64)  # (N,)
        return column[np.asarray(indices, dtype=np.int64)].sum(axis=1)

    return score


def _random(context: EstimatorContext, indices: np.ndarray) -> np.ndarray:
    """A seeded random score per architecture (a function of the architecture and the seed)."""
    idx = np.asarray(indices, dtype=np.uint64)
    weights = np.uint64(len(context.space)) ** np.arange(idx.shape[1], dtype=np.uint64)[::-1]
    keys = idx @ weights  # one integer per architecture (wraps mod 2**64: a hash)
    salt = np.uint64(check_random_state(context.seed).integers(1, 2**62))
    with np.errstate(over="ignore"):
        mixed = (keys + salt) * np.uint64(0x9E3779B97F4A7C15)
        mixed ^= mixed >> np.uint64(29)
    return (mixed >> np.uint64(11)).astype(np.float64)


for _name, _fn, _group, _text in [
    ("surrogate", _surrogate("likelihood_ratio"), "surrogate",
     "log-likelihood ratio of the trained multinomials against the untrained ones"),
    ("surrogate_sampling", _surrogate("sampling"), "surrogate",
     "raw log-probability under the trained sampling process"),
    ("surrogate_per_decision", _surrogate("per_decision"), "surrogate",
     "likelihood ratio per decision of the cell"),
    ("one_shot_accuracy", _one_shot_accuracy, "one-shot",
     "validation accuracy on the supernet's shared weights"),
    ("one_shot_loss", _one_shot_loss, "one-shot",
     "minus the validation loss on the supernet's shared weights"),
    ("synflow", _proxy("synflow"), "zero-cost", "SynFlow at initialisation"),
    ("naswot", _proxy("naswot"), "zero-cost", "NASWOT activation-pattern score"),
    ("jacob_cov", _proxy("jacob_cov"), "zero-cost", "Jacobian covariance score"),
    ("snip", _proxy("snip"), "zero-cost", "SNIP saliency at initialisation"),
    ("grad_norm", _proxy("grad_norm"), "zero-cost", "gradient norm at initialisation"),
    ("params", _network_cost("params"), "size", "trainable parameters"),
    ("macs", _network_cost("macs"), "size", "multiply-accumulates per example"),
    ("vertices", _graph("num_vertices"), "size", "vertices, summed over the cells"),
    ("edges", _graph("num_edges"), "size", "edges, summed over the cells"),
    ("depth", _graph("longest_path"), "size", "longest input -> output path, summed"),
    ("random", _random, "baseline", "a seeded random ranking"),
]:  # fmt: skip
    register_estimator(_name, _fn, group=_group, description=_text)

DEFAULT_ESTIMATORS: tuple[str, ...] = tuple(ESTIMATORS)
"""Every built-in estimator, in table order."""


def score_architectures(
    context: EstimatorContext, indices: np.ndarray, names: Sequence[str] = DEFAULT_ESTIMATORS
) -> dict[str, np.ndarray]:
    """Every estimator of ``names`` on the architectures ``indices`` ``(n, K)``: name -> ``(n,)``.

    A non-finite score (a proxy that overflowed, a cell the process never produces) is kept as
    it is: ``-inf`` ranks last, NaN is dropped by the statistics.
    """
    unknown = [name for name in names if name not in ESTIMATORS]
    if unknown:
        raise EstimatorError(
            f"Unknown estimator(s) {unknown}; expected names from {sorted(ESTIMATORS)}."
        )
    indices = np.asarray(indices, dtype=np.int64)
    if indices.ndim != 2 or indices.shape[1] != len(context.ranking.cells):
        raise EstimatorError(
            f"Architectures must be an (n, {len(context.ranking.cells)}) array of cell indices; "
            f"got shape {indices.shape}."
        )
    context.cache[_WANTED_PROXIES] = tuple(name for name in names if name in _PROXIES)
    out = {}
    for name in names:
        values = np.asarray(ESTIMATORS[name].fn(context, indices), dtype=np.float64)
        if values.shape != (len(indices),):
            raise EstimatorError(
                f"The estimator {name!r} must return one score per architecture "
                f"({len(indices)},); got shape {values.shape}."
            )
        out[name] = values
    return out
