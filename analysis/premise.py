"""The seed's premise on a tabular benchmark: how much of the objective an embedding can see.

Descent and Bayesian search move through an embedding of the cells (by default the seed's three
graph features: eccentricity variance, degree variance, edge count). An embedding maps many
cells to one point; whatever varies between cells of one point is invisible to a search in it.
For each *encoding* of the cells this measures, on the cells of a table:

``variance_share``
    the share of the objective's variance that lies *between* distinct points of the encoding
    (the between-group sum of squares over the total: the correlation ratio eta squared); the
    rest lies within points. Also without the worst 1% of cells (``variance_share_trimmed``),
    whose few very low accuracies (failed trainings) dominate the variance.
``r2`` / ``kendall_tau``
    held-out fit of the same GP (BoTorch ``SingleTaskGP``, inputs in the unit cube, outcomes
    standardised, ``fit_gpytorch_mll``) trained on ``train`` random cells and scored on ``test``
    others: the coefficient of determination of its posterior mean, and Kendall's tau between
    the mean and the truth; ``r2_trimmed`` leaves the worst 1% of the held-out cells out.

Encodings: ``seed`` (the three features), ``op_aware`` (:data:`dagspace.op_features.
OP_AWARE_FEATURES`: edges, depth, conv3x3 and maxpool counts, conv3x3 on the longest path) and
``one_hot`` (the NAS-Bench-101 adjacency-and-operation encoding: the 21 upper-triangular bits of
the 7x7 matrix with the output moved to the last vertex, and one bit per interior vertex and
operation; distinct cells are distinct points).

The objective is the table's column (for a NAS-Bench-101 file, the mean of the repeats, or with
``COLUMN@sample`` the repeats drawn for the first search run); a file that covers the whole
space is measured on the whole space.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError
from analysis.rundir import job
from dagspace import DEFAULT_FEATURES, Space
from dagspace.op_features import OP_AWARE_FEATURES
from dagspace.random import SeedLike, check_random_state

__all__ = [
    "ENCODINGS",
    "PremiseError",
    "encode",
    "gp_holdout",
    "premise_points",
    "run_premise",
    "variance_share",
]

ENCODINGS = ("seed", "op_aware", "one_hot")


class PremiseError(AnalysisError, ValueError):
    """A premise measurement got a bad argument."""


def one_hot(space: Space) -> np.ndarray:
    """``(N, E + k * n_ops)``: each cell's adjacency bits (its output moved to the last of the
    space's ``V`` vertices, so equal positions mean the same vertex role) and a one-hot of the
    operation of every interior position (``k = V - 2``)."""
    n, big_v = len(space), space.max_vertices
    sizes = space._vertex_counts()
    position = np.broadcast_to(np.arange(big_v), (n, big_v)).copy()  # vertex -> padded position
    is_output = position == (sizes - 1)[:, None]
    position[is_output] = big_v - 1
    padded = np.zeros((n, big_v, big_v), dtype=np.uint8)
    rows, cols = np.nonzero(space.matrices.reshape(n, -1))
    i, j = cols // big_v, cols % big_v
    padded[rows, position[rows, i], position[rows, j]] = 1
    upper = np.triu_indices(big_v, 1)
    parts = [padded[:, upper[0], upper[1]].astype(np.float64)]
    if space.ops is not None:
        codes = np.where(is_output, -1, space.ops)[:, 1 : big_v - 1]  # interior positions
        for code in range(2, len(space.vocabulary)):
            parts.append((codes == code).astype(np.float64))
    return np.concatenate(parts, axis=1)


def encode(space: Space, encoding: str) -> np.ndarray:
    """The cells of ``space`` as points ``(N, d)`` of an encoding (see the module docstring)."""
    if encoding == "seed":
        return np.stack([space.feature(f) for f in DEFAULT_FEATURES], axis=1)
    if encoding == "op_aware":
        return np.stack([space.feature(f) for f in OP_AWARE_FEATURES], axis=1)
    if encoding == "one_hot":
        return one_hot(space)
    raise PremiseError(f"Unknown encoding {encoding!r}; expected one of {list(ENCODINGS)}.")


def variance_share(points: np.ndarray, y: np.ndarray) -> tuple[float, int]:
    """The share of ``y``'s variance between the distinct rows of ``points`` ``(N, d)``, and
    their number: ``sum_g n_g (mean_g - mean)^2 / sum (y - mean)^2`` (1 when ``y`` is
    constant within every point; about ``(points - 1) / (N - 1)`` for ``y`` unrelated)."""
    y = np.asarray(y, dtype=np.float64)
    _, group = np.unique(points, axis=0, return_inverse=True)
    group = group.ravel()
    counts = np.bincount(group)
    means = np.bincount(group, weights=y) / counts
    total = float(((y - y.mean()) ** 2).sum())
    between = float((counts * (means - y.mean()) ** 2).sum())
    return (between / total if total > 0 else float("nan")), len(counts)


def gp_holdout(points: np.ndarray, y: np.ndarray, *, train: int, test: int,
               seed: SeedLike = 0) -> dict[str, float]:  # fmt: skip
    """Held-out R^2 and Kendall tau of a GP's posterior mean (see the module docstring)."""
    import torch
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.transforms.outcome import Standardize
    from gpytorch.mlls import ExactMarginalLogLikelihood
    from scipy.stats import kendalltau

    n = len(y)
    if train < 2 or test < 2 or train + test > n:
        raise PremiseError(
            f"gp_holdout needs 'train' and 'test' >= 2 with train + test <= {n} cells; got "
            f"train={train}, test={test}."
        )
    rng = check_random_state(seed)
    order = rng.permutation(n)
    fit, held = order[:train], order[train : train + test]
    lo, hi = points.min(axis=0), points.max(axis=0)
    unit = (points - lo) / np.where(hi > lo, hi - lo, 1.0)
    x = torch.as_tensor(unit[fit], dtype=torch.float64)
    t = torch.as_tensor(y[fit, None], dtype=torch.float64)
    threads = torch.get_num_threads()
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(rng.integers(2**31)))
        torch.set_num_threads(1)
        try:
            model = SingleTaskGP(x, t, outcome_transform=Standardize(m=1))
            fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
            model.eval()
            with torch.no_grad():
                mean = model.posterior(torch.as_tensor(unit[held], dtype=torch.float64)).mean
        finally:
            torch.set_num_threads(threads)
    predicted = mean.numpy().ravel()
    truth = y[held]
    typical = truth >= np.quantile(y, 0.01)  # the held-out cells without the worst 1%
    return {"r2": _r2(truth, predicted), "r2_trimmed": _r2(truth[typical], predicted[typical]),
            "kendall_tau": float(kendalltau(predicted, truth).statistic),
            "fit_seconds": round(time.perf_counter() - start, 2)}  # fmt: skip


def _r2(truth: np.ndarray, predicted: np.ndarray) -> float:
    total = float(((truth - truth.mean()) ** 2).sum())
    return 1.0 - float(((truth - predicted) ** 2).sum()) / total if total > 0 else float("nan")


@dataclass(frozen=True)
class PremiseResult:
    frame: pd.DataFrame
    report: dict[str, Any]
    run_dir: Path


def premise_points(run: Path, config: Any) -> tuple[Space, np.ndarray, Any]:
    """The table's cells with a finite value (a space), their values ``(N,)`` and the
    objective (:class:`analysis.tabular.TabularObjective`), from the run's cached space."""
    from analysis.tabular import open_table

    _, objective = open_table(run, config)
    space, y = objective.results.space, objective.for_repeat(0).accuracy_  # @sample: one draw
    keep = np.isfinite(y)
    if not keep.all():
        space, y = space.subset(np.flatnonzero(keep)), y[keep]
    return space, y, objective


@job("dagrank analyze features")
def run_premise(run: str | os.PathLike, config: Any, *, train: int = 500, test: int = 2000,
                encodings: tuple[str, ...] = ENCODINGS) -> PremiseResult:  # fmt: skip
    """Measure every encoding on the table of ``config`` (an
    :class:`analysis.tabular.TabularConfig`); writes ``premise.csv``, ``premise.png`` and the
    ``premise`` section of ``summary.json``."""
    from analysis.runs import update_summary
    from analysis.tabular_plots import plot_premise
    from dagspace.io import atomic_write

    run = Path(run)
    space, y, objective = premise_points(run, config)
    trimmed = y >= np.quantile(y, 0.01)
    rows = []
    for encoding in encodings:
        points = encode(space, encoding)
        share, distinct = variance_share(points, y)
        share_trim, _ = variance_share(points[trimmed], y[trimmed])
        fit = gp_holdout(points, y, train=min(train, len(y) // 2), seed=config.seed,
                         test=min(test, len(y) - min(train, len(y) // 2)))  # fmt: skip
        rows.append({"encoding": encoding, "dimensions": points.shape[1],
                     "distinct_points": distinct, "variance_share": share,
                     "variance_share_trimmed": share_trim, **fit})  # fmt: skip
    frame = pd.DataFrame(rows)
    with atomic_write(run / "premise.csv", newline="") as handle:
        frame.to_csv(handle, index=False)
    report = {
        "table": objective.results.source,
        "column": objective.column,
        "cells": len(space),
        "train": int(min(train, len(y) // 2)),
        "seed_features": list(DEFAULT_FEATURES),
        "op_aware_features": list(OP_AWARE_FEATURES),
        "encodings": {r["encoding"]: {k: v for k, v in r.items() if k != "encoding"} for r in rows},
        "config": config.to_dict(),  # what `dagrank plot` reopens the table with
    }
    plot_premise(space, y, run / "premise.png", column=objective.column)
    update_summary(run, "premise", report)
    return PremiseResult(frame, report, run)
