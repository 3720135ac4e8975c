"""Finite-difference descent of one point per supernet cell through the Euclidean feature space."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import nnls

from dagspace.checks import check_float, check_int, fail
from dagspace.embedding import Embedding
from dagspace.features import DEFAULT_FEATURES
from dagspace.random import SeedLike
from dagspace.space import Space
from dagspace.strategies.base import (
    Architecture,
    Strategy,
    StrategyError,
    decode_value,
    encode_value,
    json_round_trip,
)

__all__ = ["FiniteDifferenceDescent", "project_to_hull"]

_MAX_IDLE_STEPS = 100  # consecutive steps without a new evaluation before the descent stops


def project_to_hull(points: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The point of the convex hull of ``points`` ``(M, d)`` nearest to ``x`` ``(d,)``.

    A point inside the hull is returned unchanged. Otherwise the convex weights come from
    non-negative least squares with the sum-to-one constraint added as a heavily weighted row,
    which also handles flat (lower-dimensional) hulls.
    """
    lo, hi = points.min(axis=0), points.max(axis=0)
    scale = 1.0 + float(np.abs(points).max())
    weight = 1e4 * scale
    a = np.vstack([points.T, np.full(len(points), weight)])
    lam, _ = nnls(a, np.r_[x, weight])
    y = (lam / lam.sum()) @ points
    inside = np.all(x >= lo) and np.all(x <= hi) and np.linalg.norm(y - x) <= 1e-7 * scale
    return x.copy() if inside else np.clip(y, lo, hi)


class FiniteDifferenceDescent(Strategy):
    """Finite-difference descent of one point per supernet cell through the standardised feature
    space (:class:`dagspace.Embedding`), evaluating the nearest cells.

    Each step (epoch) evaluates, for the current points ``x`` ``(K, d)``:

    - the *current* architecture: for every cell ``i`` the nearest cell of ``x_i``;
    - for every cell ``i`` and dimension ``d``, the architectures whose cell ``i`` is the nearest
      cell of ``x_i - h e_d`` and of ``x_i + h e_d`` (the other cells: the current ones).

    *Nearest cell* of a point: among the cells at the nearest distinct point(s), the current cell
    of that supernet cell if it is one of them (so a probe that does not leave the current point
    reuses the current evaluation and contributes a zero difference, and the current cell does not
    hop between the many labellings of one point), otherwise the embedding's tie-break
    (``"random"``: uniform from the seeded generator, as :meth:`Embedding.nearest_cell`;
    ``"first"``: the lowest index).

    Then ``g[i, d] = (f(plus) - f(minus)) / (2 h)``, ``velocity <- momentum * velocity + g``,
    ``x <- project(x - lr * velocity)``, where *project* moves every ``x_i`` to the nearest point
    of the convex hull of the space's distinct points (:func:`project_to_hull`; a point inside is
    left alone, the velocity is kept). The step then records one trajectory row per
    ``(cell, dimension)`` and the next step begins.

    Architectures are never asked twice: a value told before (in any step, or without being
    asked) is reused. A step whose evaluations are all known completes at once; after
    100 consecutive such steps the descent has stalled and :meth:`ask` returns ``[]``, as it does
    after ``max_epochs`` steps.

    Diverged values (``nan``, ``±inf``) count, when a step's gradient is computed, as the worst
    finite value told so far plus the spread of the finite values (``max - min``, at least 1), so
    the descent moves away from them; before any finite value is known they count as equal
    (zero difference). The trajectory keeps the raw value (``objective`` is ``nan`` for a
    diverged current architecture).

    Args:
        features: the embedding's feature names (default: eccentricity variance, degree
            variance, edge count).
        h: the probe offset in standardised units. The default 1.0 makes the ``±h`` probes of a
            cell land on another distinct point in about 80% of cases for the 6-vertex and the
            labelled NAS-Bench-101 spaces (0.5: about 50%).
        lr: the step size, in standardised units per unit of objective difference.
        momentum: in ``[0, 1)``; 0 is plain gradient descent.
        init: ``"random"`` (a uniformly random cell per supernet cell, its point as ``x``) or an
            architecture (the points of its cells).
        tie_break: ``"random"`` or ``"first"`` (see above).
        max_epochs: stop after this many completed steps (``None``: never).
    """

    name = "fd"

    def __init__(
        self,
        space: Space,
        num_cells: int,
        seed: SeedLike,
        *,
        features: Sequence[str] = DEFAULT_FEATURES,
        h: float = 1.0,
        lr: float = 0.5,
        momentum: float = 0.0,
        init: str | Sequence[int] = "random",
        tie_break: str = "random",
        max_epochs: int | None = None,
    ) -> None:
        super().__init__(space, num_cells, seed)
        owner = type(self).__name__
        if isinstance(features, str) or not features:
            expected = "a non-empty sequence of feature names"
            fail(StrategyError, owner, "features", expected, features)
        self.embedding = Embedding(space, tuple(features))  # InvalidSpaceError: unknown feature
        self.h = check_float(owner, "h", h, 0.0, math.inf, StrategyError)
        self.lr = check_float(owner, "lr", lr, 0.0, math.inf, StrategyError)
        self.momentum = check_float(
            owner, "momentum", momentum, 0.0, 1.0, StrategyError, open_low=False
        )
        if tie_break not in ("random", "first"):
            fail(StrategyError, owner, "tie_break", "'random' or 'first'", tie_break)
        self.tie_break = tie_break
        if max_epochs is not None:
            max_epochs = check_int(owner, "max_epochs", max_epochs, 1, StrategyError)
        self.max_epochs = max_epochs
        if isinstance(init, str):
            if init != "random":
                fail(StrategyError, owner, "init", "'random' or an architecture", init)
            start = tuple(int(c) for c in self.rng.integers(len(space), size=self.num_cells))
        else:
            start = self._check_architecture(init, "init")
        self.init = init if isinstance(init, str) else list(start)
        self._current: Architecture = start
        self._x = self.embedding.cell_points_[list(start)].copy()  # (K, d)
        self._velocity = np.zeros_like(self._x)
        self._epoch = 0
        self._idle_steps = 0
        self._trajectory: list[dict[str, Any]] = []
        self._step: dict[str, Any] | None = self._new_step()
        self._advance()

    # -- public state ---------------------------------------------------------------------------
    @property
    def current(self) -> Architecture:
        """The architecture at the current points (nearest cells)."""
        return self._current

    @property
    def epoch(self) -> int:
        """The number of completed steps."""
        return self._epoch

    @property
    def points(self) -> np.ndarray:
        """``(K, d)`` the current standardised points (a copy)."""
        return self._x.copy()

    @property
    def finished(self) -> bool:
        """``True`` once ``max_epochs`` steps are done or the descent has stalled."""
        return self._step is None

    @property
    def trajectory(self) -> list[dict[str, Any]]:
        """One row per completed step, supernet cell and dimension: ``epoch``, ``cell``,
        ``dimension`` (feature name), ``value`` (the coordinate of ``x`` at the start of the
        step, standardised) and ``value_raw`` (in feature units), ``gradient`` (the central
        difference), ``objective`` (the raw value of the step's current architecture),
        ``cell_index`` and ``cell_hash`` (the current cell of that supernet cell)."""
        return [dict(row) for row in self._trajectory]

    # -- ask / tell -----------------------------------------------------------------------------
    def _propose(self, n: int) -> list[Architecture]:
        if self._step is None:
            return []
        out: list[Architecture] = []
        for arch in self._step_architectures(self._step):
            if len(out) == n:
                break
            if not self._is_seen(arch):
                self._add_pending(arch)
                out.append(arch)
        return out

    def _after_tell(self) -> None:
        self._advance()

    # -- the descent ----------------------------------------------------------------------------
    @staticmethod
    def _step_architectures(step: dict[str, Any]) -> list[Architecture]:
        """The step's distinct architectures, in evaluation order: current, then probes."""
        archs = [tuple(step["center"])]
        for _, _, minus, plus in step["probes"]:
            archs += [tuple(minus), tuple(plus)]
        return list(dict.fromkeys(archs))

    def _nearest(self, points: np.ndarray, prefer: Sequence[int]) -> list[int]:
        picks = []
        for cells, preferred in zip(self.embedding.nearest(points), prefer, strict=True):
            at = np.searchsorted(cells, preferred)
            if at < len(cells) and cells[at] == preferred:
                picks.append(int(preferred))
            elif self.tie_break == "first":
                picks.append(int(cells[0]))
            else:
                picks.append(int(cells[self.rng.integers(len(cells))]))
        return picks

    def _new_step(self) -> dict[str, Any]:
        k, d = self._x.shape
        cell, dim, sign = np.meshgrid(np.arange(k), np.arange(d), (-1.0, 1.0), indexing="ij")
        cell, dim, sign = cell.ravel(), dim.ravel(), sign.ravel()
        probes = self._x[cell].copy()
        probes[np.arange(len(probes)), dim] += sign * self.h
        picks = self._nearest(probes, [self._current[i] for i in cell])
        rows = []
        for j in range(0, len(picks), 2):
            i = int(cell[j])
            minus, plus = list(self._current), list(self._current)
            minus[i], plus[i] = picks[j], picks[j + 1]
            rows.append([i, int(dim[j]), minus, plus])
        step = {"center": list(self._current), "probes": rows}
        step["fresh"] = any(not self._is_seen(a) for a in self._step_architectures(step))
        return step

    def _effective(self, arch: Architecture, penalty: float) -> float:
        value = self._told[arch]
        return value if math.isfinite(value) else penalty

    def _penalty(self) -> float:
        finite = [v for v in self._told.values() if math.isfinite(v)]
        if not finite:
            return 0.0
        worst, best = max(finite), min(finite)
        return worst + max(worst - best, 1.0)

    def _advance(self) -> None:
        """Complete every step whose evaluations are all told; start the next one."""
        while self._step is not None and all(
            a in self._told for a in self._step_architectures(self._step)
        ):
            self._complete_step(self._step)
            self._idle_steps = 0 if self._step["fresh"] else self._idle_steps + 1
            done = self.max_epochs is not None and self._epoch >= self.max_epochs
            self._step = None if done or self._idle_steps >= _MAX_IDLE_STEPS else self._new_step()

    def _complete_step(self, step: dict[str, Any]) -> None:
        penalty = self._penalty()
        gradient = np.zeros_like(self._x)
        for i, d, minus, plus in step["probes"]:
            diff = self._effective(tuple(plus), penalty) - self._effective(tuple(minus), penalty)
            gradient[i, d] = diff / (2 * self.h)
        raw = self.embedding.inverse_transform(self._x)
        objective = self._told[tuple(step["center"])]
        for i in range(self.num_cells):
            cell = self._current[i]
            for d, feature in enumerate(self.embedding.feature_names):
                self._trajectory.append(
                    {
                        "epoch": self._epoch,
                        "cell": i,
                        "dimension": feature,
                        "value": float(self._x[i, d]),
                        "value_raw": float(raw[i, d]),
                        "gradient": float(gradient[i, d]),
                        "objective": objective,
                        "cell_index": cell,
                        "cell_hash": str(self.space.hashes[cell]),
                    }
                )
        self._velocity = self.momentum * self._velocity + gradient
        moved = self._x - self.lr * self._velocity
        points = self.embedding.points_
        self._x = np.stack([project_to_hull(points, row) for row in moved])
        self._current = tuple(self._nearest(self._x, self._current))
        self._epoch += 1

    # -- persistence ----------------------------------------------------------------------------
    def _config(self) -> dict[str, Any]:
        return {
            **super()._config(),
            "features": list(self.embedding.feature_names),
            "h": self.h,
            "lr": self.lr,
            "momentum": self.momentum,
            "init": self.init,
            "tie_break": self.tie_break,
            "max_epochs": self.max_epochs,
        }

    def _extra_state(self) -> dict[str, Any]:
        return {
            "x": self._x.tolist(),
            "velocity": self._velocity.tolist(),
            "current": list(self._current),
            "epoch": self._epoch,
            "idle_steps": self._idle_steps,
            "step": self._step,
            "trajectory": [
                {**row, "objective": encode_value(row["objective"])} for row in self._trajectory
            ],
        }

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        shape = self._x.shape
        x = np.asarray(extra["x"], dtype=np.float64)
        velocity = np.asarray(extra["velocity"], dtype=np.float64)
        if x.shape != shape or velocity.shape != shape:
            raise StrategyError(
                f"A finite-difference state needs points and velocity of shape {shape}; got "
                f"{x.shape} and {velocity.shape}."
            )
        self._x, self._velocity = x, velocity
        self._current = self._check_architecture(extra["current"], "current")
        self._epoch = int(extra["epoch"])
        self._idle_steps = int(extra["idle_steps"])
        self._step = json_round_trip(extra["step"])
        self._trajectory = [
            {**row, "objective": decode_value(row["objective"])} for row in extra["trajectory"]
        ]
