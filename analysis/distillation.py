"""Distillation: a registered cheap estimator as the target that the multinomials are fitted to.

With ``SupernetConfig.arch_target`` set to an estimator's name (``"snip"``, ...), the
score-function fit of the multinomials (:mod:`surrogate.score_function`) minimises the expected
value of a loss made from that estimator instead of the supernet's validation loss, so any cheap
estimator becomes an exact ranking of the whole space (the relative surrogate of the fitted
multinomials). The loss of an architecture is minus the *quantile* of its score among a fixed
reference pool of architectures drawn uniformly from the space (mid-ranks, interpolated, in
``[0, 1]``): monotone in the score, so it ranks as the estimator does, and free of the score's
scale and heavy tails (zero-cost proxies span orders of magnitude), which would otherwise decide
the size of the score-function steps. A NaN score counts as the worst.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from analysis.estimators import ESTIMATORS, EstimatorContext, EstimatorError

__all__ = ["REFERENCE_POOL", "check_arch_target", "distillation_target", "quantiles"]

REFERENCE_POOL = 128
"""Architectures drawn uniformly whose scores define the quantile of a score."""
_NOT_TEACHERS = ("surrogate", "one-shot")  # groups: the multinomials themselves, and "loss"


def check_arch_target(name: str) -> None:
    """Refuse an ``arch_target`` that is neither ``"loss"`` nor a registered estimator that can
    teach (not the relative surrogate itself; the one-shot loss is ``"loss"``)."""
    if name == "loss":
        return
    teachers = sorted(n for n, e in ESTIMATORS.items() if e.group not in _NOT_TEACHERS)
    if name not in ESTIMATORS or ESTIMATORS[name].group in _NOT_TEACHERS:
        raise EstimatorError(
            f"The supernet's arch_target must be 'loss' or a registered estimator from "
            f"{teachers}; got {name!r}."
        )


def quantiles(scores: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``(n,)`` the mid-rank quantile in ``[0, 1]`` of each score among the ``reference``
    scores (NaN in ``scores`` -> 0; NaN references are left out)."""
    ref = np.sort(np.asarray(reference, dtype=np.float64))
    ref = ref[~np.isnan(ref)]
    scores = np.asarray(scores, dtype=np.float64)
    if not len(ref):
        return np.zeros(len(scores))
    below = np.searchsorted(ref, scores, side="left")
    upto = np.searchsorted(ref, scores, side="right")
    out = (below + upto) / (2.0 * len(ref))
    return np.where(np.isnan(scores), 0.0, out)


class _SpaceOnly:
    """What an estimator reads of a ranking when none exists yet: the space and the cells."""

    def __init__(self, space: Any, num_cells: int) -> None:
        self.space = space
        self.cells = (None,) * num_cells


def distillation_target(
    name: str,
    space: Any,
    num_cells: int,
    dataset: Any,
    candidate: Any,
    *,
    seed: int = 0,
    pool: int = REFERENCE_POOL,
) -> Any:
    """The ``arch_target`` callable of :func:`surrogate.training.train_supernet` for the
    estimator ``name``: architectures (``K`` unpruned ``CellSpec`` each) -> ``(S,)`` losses,
    minus the quantile of the estimator's score among ``pool`` architectures drawn uniformly
    (seeded) from ``space`` (a score is computed once per architecture). The reference pool is
    scored at the first call, so a run that trains nothing more (a finished one, resumed) pays
    nothing for it."""
    from analysis.estimators import score_architectures
    from analysis.validation import uniform_architectures

    check_arch_target(name)
    context = EstimatorContext(_SpaceOnly(space, num_cells), None, dataset, candidate, seed=seed)
    reference: list[np.ndarray] = []

    def target(architectures: Sequence[tuple[Any, ...]]) -> np.ndarray:
        if not reference:
            picks = uniform_architectures([len(space)] * num_cells, pool, seed=seed)
            reference.append(score_architectures(context, picks, [name])[name])
        indices = np.array([[space.index_of(cell) for cell in arch] for arch in architectures])
        scores = score_architectures(context, indices.reshape(-1, num_cells), [name])[name]
        return -quantiles(scores, reference[0])

    return target
