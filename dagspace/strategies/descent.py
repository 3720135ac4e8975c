"""Finite-difference descent through the Euclidean feature space of the cells.

Two step rules, one strategy each:

- ``"fd"`` (:class:`FiniteDifferenceDescent`, the default): a population of descents on the
  *lattice* of the embedding's distinct points, with restarts;
- ``"fd-seed"`` (:class:`SeedFiniteDifferenceDescent`): the seed's rule (one continuous point,
  probes at ``x ± h e_d``, ``x <- x - lr * g``), kept so that the two can be compared.

Why the lattice rule is the default. The cells of a space sit on few distinct points of the
feature space (10,000 NAS-Bench-101 cells on 129 points of the seed's three features), spaced
unevenly (one edge is 1.8 standardised units, one step of eccentricity variance 0.1). The seed's
probes at ``± h`` either land on the current point (a zero difference) or jump several points; its
step ``lr * g`` is in units of the objective (an accuracy difference of 0.01 moves it 0.005
units: it never leaves its point); and when all its probes are known it stands still. The
lattice rule takes differences between *distinct neighbouring points*, divided by their actual
displacement, moves at most one neighbour spacing per step whatever the objective's units, and
spends every query on a new architecture.

Why its probes are ``"auto"`` by default. A probe at the nearest feature point (``"points"``)
reaches a rare optimum, but with no information it samples rare points (a few cells each: small
or unusual cells) far more often than their share of the space, so the cells it reports as best
are smaller than the space's (its null test fails; on the NAS-Bench-101 slice that same prior is
part of why it beats random search). A probe drawn by cells (``"cells"``) prefers nothing but
seldom reaches a rare optimum. ``"auto"`` probes by cells until the values told show that the
objective depends on the feature points (a test at level ``evidence_alpha``), then by points:
no preference without information, a rare optimum reached once there is a trend to follow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import nnls
from scipy.stats import f as f_distribution
from scipy.stats import kruskal

from dagspace.checks import check_float, check_int, fail
from dagspace.features import DEFAULT_FEATURES
from dagspace.random import SeedLike
from dagspace.space import Space
from dagspace.strategies.base import (
    Architecture,
    StrategyError,
    decode_value,
    encode_value,
    json_round_trip,
)
from dagspace.strategies.embedded import EmbeddedStrategy, JointPoint

__all__ = [
    "PROBES",
    "RESTARTS",
    "FiniteDifferenceDescent",
    "SeedFiniteDifferenceDescent",
    "project_to_hull",
    "rank_scores",
]

_MAX_IDLE_STEPS = 100  # the seed's rule: consecutive steps without a new evaluation, then it stops
RESTARTS = ("best", "random", "points")
_MAYBE_NAN = ("objective", "estimate")  # trajectory fields that may hold a non-finite value
PROBES = ("auto", "points", "cells")


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


def rank_scores(values: Sequence[float]) -> np.ndarray:
    """Each value's mid-rank among the finite ones, scaled to ``[0, 1]`` (0: the lowest); a
    non-finite (diverged) value scores 1, as the worst. ``(n,)`` -> ``(n,)``."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    ordered = np.sort(values[finite])
    below = np.searchsorted(ordered, values, side="left")
    upto = np.searchsorted(ordered, values, side="right")
    scores = (below + upto - 1) / 2 / max(len(ordered) - 1, 1)
    return np.where(finite, scores, 1.0)


def _trend_p(x: np.ndarray, y: np.ndarray) -> float:
    """The F-test p-value of the least-squares linear trend of ``y`` ``(n,)`` over ``x``
    ``(n, k)`` (1 with fewer than ``k + 3`` values)."""
    n, k = x.shape
    if n < k + 3:
        return 1.0
    design = np.column_stack([np.ones(n), x])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    rank = np.linalg.matrix_rank(design) - 1
    rss, tss = float(((y - design @ coef) ** 2).sum()), float(((y - y.mean()) ** 2).sum())
    if rank < 1 or tss - rss <= 1e-12 * tss:
        return 1.0
    if rss <= 1e-12 * tss:
        return 0.0  # an exact trend
    return float(f_distribution.sf((tss - rss) / rank / (rss / (n - rank - 1)), rank, n - rank - 1))


def _points_p(cells: np.ndarray, y: np.ndarray, strategy: EmbeddedStrategy) -> float:
    """The Kruskal-Wallis p-value of ``y`` ``(n,)`` across the joint points of ``cells``
    ``(n, K)`` told at least twice (1 with fewer than two such points)."""
    points = strategy.embedding.point_of_cell_[cells]  # (n, K)
    _, group = np.unique(points, axis=0, return_inverse=True)
    groups = [y[group.ravel() == g] for g in range(group.max() + 1)]
    groups = [g for g in groups if len(g) >= 2]
    if len(groups) < 2 or np.ptp(np.concatenate(groups)) == 0:
        return 1.0
    return float(kruskal(*groups).pvalue)


class _Descent(EmbeddedStrategy):
    """What both step rules share: the step in progress, epochs, stopping, trajectory, state.

    A *step* (epoch) is a set of architectures to evaluate; once all are told it completes
    (:meth:`_complete_step` moves the descent and appends its trajectory rows) and the next one
    begins, until ``max_epochs`` steps are done or the rule has nothing left to evaluate.
    """

    def __init__(self, space: Space, num_cells: int, seed: SeedLike, features: Sequence[str],
                 init: str | Sequence[int], max_epochs: int | None) -> None:  # fmt: skip
        super().__init__(space, num_cells, seed, features)
        self._max_epochs = self._check_max_epochs(max_epochs)
        if isinstance(init, str):
            if init != "random":
                fail(StrategyError, type(self).__name__, "init", "'random' or an architecture",
                     init)  # fmt: skip
            self._init: Architecture | None = None
        else:
            self._init = self._check_architecture(init, "init")
        self.init = init if isinstance(init, str) else list(self._init)  # type: ignore[arg-type]
        self._epoch = 0
        self._trajectory: list[dict[str, Any]] = []
        self._step: dict[str, Any] | None = None
        self._stop: str | None = None  # why no step is in progress: "epochs", "done"

    def _check_max_epochs(self, value: int | None) -> int | None:
        if value is None:
            return None
        return check_int(type(self).__name__, "max_epochs", value, 1, StrategyError)

    # -- public state ---------------------------------------------------------------------------
    @property
    def epoch(self) -> int:
        """The number of completed steps."""
        return self._epoch

    @property
    def max_epochs(self) -> int | None:
        """Stop after this many completed steps (``None``: never). Raising it on a descent that
        stopped there continues it (a resumed run given more epochs)."""
        return self._max_epochs

    @max_epochs.setter
    def max_epochs(self, value: int | None) -> None:
        self._max_epochs = self._check_max_epochs(value)
        if self._step is None and self._stop == "epochs":
            self._start_step()
            self._advance()

    @property
    def finished(self) -> bool:
        """``True`` once ``max_epochs`` steps are done or there is nothing left to evaluate."""
        return self._step is None

    @property
    def trajectory(self) -> list[dict[str, Any]]:
        """One row per completed step, walker, supernet cell and dimension (see the class)."""
        return [dict(row) for row in self._trajectory]

    # -- the walk -------------------------------------------------------------------------------
    def _propose(self, n: int) -> list[Architecture]:
        if self._step is None:
            return []
        fresh = [a for a in self._step_architectures(self._step) if not self._is_seen(a)]
        for arch in fresh[:n]:
            self._add_pending(arch)
        return fresh[:n]

    def _after_tell(self) -> None:
        self._advance()

    def _start_step(self) -> None:
        done = self._max_epochs is not None and self._epoch >= self._max_epochs
        self._step = None if done else self._new_step()
        self._stop = "epochs" if done else (None if self._step is not None else "done")

    def _advance(self) -> None:
        """Complete every step whose evaluations are all told; start the next one."""
        while self._step is not None and all(
            a in self._told for a in self._step_architectures(self._step)
        ):
            self._complete_step(self._step)
            self._epoch += 1
            self._start_step()

    def _step_architectures(self, step: dict[str, Any]) -> list[Architecture]:
        raise NotImplementedError

    def _new_step(self) -> dict[str, Any] | None:
        raise NotImplementedError

    def _complete_step(self, step: dict[str, Any]) -> None:
        raise NotImplementedError

    def _row(self, epoch_row: dict[str, Any], cell: int, point: np.ndarray,
             gradient: np.ndarray, arch: Architecture | None) -> None:  # fmt: skip
        """Append the rows of one supernet cell: one per dimension."""
        raw = self.embedding.inverse_transform(point[None, :])[0]
        index = -1 if arch is None else int(arch[cell])
        for d, feature in enumerate(self.embedding.feature_names):
            self._trajectory.append(
                {
                    **epoch_row,
                    "cell": cell,
                    "dimension": feature,
                    "value": float(point[d]),
                    "value_raw": float(raw[d]),
                    "gradient": float(gradient[d]),
                    "cell_index": index,
                    "cell_hash": "" if arch is None else str(self.space.hashes[index]),
                }
            )

    # -- persistence ----------------------------------------------------------------------------
    def _config(self) -> dict[str, Any]:
        return {
            **super()._config(),
            "features": list(self.embedding.feature_names),
            "init": self.init,
            "max_epochs": self._max_epochs,
        }

    def _extra_state(self) -> dict[str, Any]:
        return {
            "epoch": self._epoch,
            "step": self._step,
            "stop": self._stop,
            "trajectory": [
                {**row, **{k: encode_value(row[k]) for k in _MAYBE_NAN}} for row in self._trajectory
            ],
        }

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        self._epoch = int(extra["epoch"])
        self._step = json_round_trip(extra["step"])
        self._stop = extra["stop"]
        self._trajectory = [
            {**row, **{k: decode_value(row[k]) for k in _MAYBE_NAN}} for row in extra["trajectory"]
        ]
        if self._step is None and self._stop == "epochs":  # built with more epochs: go on
            self._start_step()
            self._advance()


# -- the lattice rule (the default) ----------------------------------------------------------------
class FiniteDifferenceDescent(_Descent):
    """Finite-difference descent on the lattice of the embedding's distinct points, with
    restarts, one walker or a population (the default descent; see the module docstring).

    The space's cells sit on the distinct points of :class:`dagspace.Embedding` (standardised
    features); a *walker* stands at one joint point (one point per supernet cell) and every
    evaluation is a new architecture, drawn uniformly among the free ones (neither told nor
    pending) at its joint point: several cells share a point, and each visit evaluates another.

    Each step (epoch), every walker evaluates its *centre* (its joint point) and, for every
    supernet cell ``i`` and dimension ``d``, a *probe below* and a *probe above*, where cell
    ``i`` moves to another distinct point ``q`` displaced along ``d`` (by more along ``d`` than
    in all other dimensions together, ``|Δ_d| >= ||Δ_others||``, when there is such a point).
    Which one, ``probes``:

    - ``"auto"`` (default): ``"points"`` once the values told show that the objective depends on
      the feature points, ``"cells"`` until then (decided at the start of every step, see
      *Evidence* below). With no information it stays with ``"cells"`` (but for a chance
      ``evidence_alpha`` of the steps), so it prefers no cell (its null test passes); under a
      planted trend it switches within a few steps and then reaches a rare optimum as
      ``"points"`` does (its planted test).
    - ``"points"``: the point nearest to ``x ± h e_d`` (none at a border). Every walk
      visits points whatever their number of cells, so with no information it samples rare
      feature points (few cells each: small or unusual cells) more often than their share of
      the space; its null test fails, as Bayesian search's does (the ``random-points`` strategy
      measures that prior alone). It reaches any point, a rare optimum included.
    - ``"cells"``: a Metropolis-Hastings proposal whose stationary distribution is the space's
      own distribution of cells: ``q`` is drawn, in proportion to its cells ``c(q)``, from the
      points displaced by ``0 < ±Δ_d <= 2 h`` (the region ``R_d^±(p)``), and kept with
      probability ``min(1, C(R_d^±(p)) / C(R_d^∓(q)))`` (``C``: the cells of a region),
      otherwise the probe is another cell of ``p`` (so is it at a border). With no information it
      samples cells as random search does (its null test passes), but it seldom probes a point
      of few cells, so it finds a rare optimum no sooner than random search.

    *Evidence* (:meth:`evidence`): the p-value that the values told depend on where their cells
    lie, the smaller (Bonferroni, times 2) of two tests on the rank scores of every finite value
    told: the F-test of their least-squares linear trend over the standardised features (of
    every supernet cell), and the Kruskal-Wallis test across the joint points told at least
    twice. ``"auto"`` probes by points while it is below ``evidence_alpha`` (default 0.01).

    A point's *estimate* is the mean, over every architecture told at it so far (by any walker),
    of the value's rank score (:func:`rank_scores`: its mid-rank among every finite value told,
    in ``[0, 1]``; diverged values score 1, the worst). Ranks make the rule independent of the
    objective's units and of outliers (a few NAS-Bench-101 cells train to 10% accuracy); the
    mean over a point's cells pools every visit, which the noise within a point (most of the
    accuracy's variance on NAS-Bench-101) needs.

    The *difference* along ``d`` is taken between the two probes' points, divided by their
    actual displacement: ``g[i, d] = (est(above) - est(below)) / (x_above[d] - x_below[d])``
    (0 when both stayed at ``p``). Each cell then moves to the downhill probe of its steepest
    dimension (among those whose downhill probe left ``p``): a step bounded by the local spacing
    of the points, whatever the objective's scale; it stays where every difference is 0.

    Restarts. A step *improves* when one of its values beats the walker's best since its
    (re)start. After ``patience`` steps without improvement, or at once after a step with no new
    architecture to evaluate, the walker restarts: ``"best"`` (default) at the joint point of
    the best architecture told so far, evaluating another of its cells (its probes then perturb
    it: an iterated local search; a random start as ``"random"`` when that point has nothing
    new); ``"random"`` at a uniformly random free architecture (a cell-uniform start, as random
    search draws); ``"points"`` at a uniformly random feature point (the prior of
    ``random-points``: rare points as often as common ones, which fails the null test). With no
    information the best is a uniformly random cell, so ``"best"`` prefers none. A population
    whose walkers all restart at the one best point loses its spread: give it ``"random"``. The
    walkers step together; every query is a new architecture, and :meth:`ask` returns ``[]``
    only when ``max_epochs`` steps are done or every architecture is told.

    Args:
        features: the embedding's feature names (default: eccentricity variance, degree
            variance, edge count).
        probes: ``"auto"`` (default), ``"points"`` or ``"cells"`` (see above).
        evidence_alpha: the level of the evidence that switches ``"auto"`` to point probes
            (default 0.01).
        walkers: the population size (default 1). The walkers step together, so one step is a
            batch of ``walkers * (1 + 2 K d)`` queries (7 for one cell in three features): use
            several when that many evaluations run at once. For sequential queries one walker
            is the most sample-efficient (each step learns from all before it), and its restarts
            already make it a multi-start descent.
        h: the probes' scale in standardised units (default 1: one standard deviation of each
            feature over the space, the seed's probe offset).
        patience: steps without improvement before a walker restarts (default 2).
        restart: ``"best"`` (default), ``"random"`` or ``"points"`` (see above).
        init: ``"random"`` or an architecture (walker 0 starts there; the others at random).
        max_epochs: stop after this many completed steps (``None``: never).

    The trajectory has one row per completed step, walker, supernet cell and dimension:
    ``epoch``, ``walker``, ``restart`` (how often that walker restarted before: one descent is
    one ``(walker, restart)``), ``probes`` (the step's probes: ``"points"`` or ``"cells"``),
    ``cell``, ``dimension``, ``value`` / ``value_raw`` (the walker's point, standardised / in
    feature units), ``gradient``, ``estimate`` (the rank estimate of its point), ``objective``
    (the raw value of its centre; ``nan`` when there was none), ``cell_index`` and
    ``cell_hash`` (the centre's cell; ``-1`` and ``""`` without one).
    """

    name = "fd"

    def __init__(
        self,
        space: Space,
        num_cells: int,
        seed: SeedLike,
        *,
        features: Sequence[str] = DEFAULT_FEATURES,
        probes: str = "auto",
        walkers: int = 1,
        h: float = 1.0,
        patience: int = 2,
        restart: str = "best",
        evidence_alpha: float = 0.01,
        init: str | Sequence[int] = "random",
        max_epochs: int | None = None,
    ) -> None:
        super().__init__(space, num_cells, seed, features, init, max_epochs)
        owner = type(self).__name__
        self.evidence_alpha = check_float(owner, "evidence_alpha", evidence_alpha, 0.0, 1.0,
                                          StrategyError)  # fmt: skip
        if probes not in PROBES:
            fail(StrategyError, owner, "probes", f"one of {list(PROBES)}", probes)
        self.probes = probes
        self.walkers = check_int(owner, "walkers", walkers, 1, StrategyError)
        self.h = check_float(owner, "h", h, 0.0, math.inf, StrategyError)
        self.patience = check_int(owner, "patience", patience, 1, StrategyError)
        if restart not in RESTARTS:
            fail(StrategyError, owner, "restart", f"one of {list(RESTARTS)}", restart)
        self.restart = restart
        self._lattice: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._walkers: list[dict[str, Any]] = [
            {"point": None, "best": math.inf, "stall": 0, "restart": 0} for _ in range(self.walkers)
        ]
        self._start_step()

    def _reset_records(self) -> None:
        super()._reset_records()
        self._told_at: dict[JointPoint, list[Architecture]] = {}

    def _record(self, arch: Architecture, value: float) -> None:
        super()._record(arch, value)
        self._told_at.setdefault(self.joint_point(arch), []).append(arch)

    # -- public state ---------------------------------------------------------------------------
    @property
    def points(self) -> np.ndarray:
        """``(walkers, K, d)`` every walker's standardised point (``nan`` before its start)."""
        out = np.full((self.walkers, self.num_cells, self.embedding.dim), np.nan)
        for w, walker in enumerate(self._walkers):
            if walker["point"] is not None:
                out[w] = self.embedding.points_[walker["point"]]
        return out

    @property
    def current(self) -> Architecture:
        """The best architecture told so far (before any: the initial one, or walker 0's first
        centre)."""
        best = self.best()
        if best is not None:
            return best[0]
        if self._init is not None:
            return self._init
        rows = self._step["walkers"] if self._step else []
        center = rows[0]["center"] if rows else None
        return tuple(center) if center is not None else (0,) * self.num_cells

    # -- the lattice ----------------------------------------------------------------------------
    def _geometry(self, point: int) -> tuple[np.ndarray, np.ndarray]:
        """``(d, 2, M)`` the displacement of every point from ``point`` towards each side of
        each dimension (below: ``-Δ_d``, above: ``Δ_d``), and whether it lies in that side's
        cone (``|Δ_d| >= ||Δ_others||``)."""
        cached = self._lattice.get(point)
        if cached is None:
            delta = self.embedding.points_ - self.embedding.points_[point]  # (M, d)
            along = np.stack([-delta, delta], axis=1).T  # (d, 2, M)
            off2 = (delta**2).sum(axis=1) - delta.T[:, None, :] ** 2
            cached = along, (along > 0) & (off2 <= along**2)
            self._lattice[point] = cached
        return cached

    def region(self, point: int, d: int, side: int) -> np.ndarray:
        """The points of ``R_d^-`` (``side`` 0) or ``R_d^+`` (1) of ``point``: in the cone,
        displaced by at most ``2 h`` (ascending indices)."""
        along, cone = self._geometry(point)
        return np.flatnonzero(cone[d, side] & (along[d, side] <= 2 * self.h))

    def _region_cells(self, point: int, d: int, side: int) -> int:
        return int(self._cells_per_point[self.region(point, d, side)].sum())

    def evidence(self) -> float:
        """The p-value that the values told so far depend on the feature points (*Evidence* in
        the class docstring); 1 while there are too few values to tell."""
        told = [(a, v) for a, v in self._told.items() if math.isfinite(v)]
        scores = rank_scores([v for _, v in told])
        if len(told) < 2 or np.ptp(scores) == 0:
            return 1.0
        cells = np.asarray([a for a, _ in told], dtype=np.int64)  # (n, K)
        x = self.embedding.cell_points_[cells].reshape(len(told), -1)  # (n, K d)
        return min(1.0, 2 * min(_trend_p(x, scores), _points_p(cells, scores, self)))

    def _step_probes(self) -> str:
        if self.probes != "auto":
            return self.probes
        return "points" if self.evidence() < self.evidence_alpha else "cells"

    def _probe_point(self, point: int, d: int, side: int, probes: str) -> int:
        """The point that probes ``point`` along ``d`` (side 0: below, 1: above)."""
        if probes == "points":
            along, cone = self._geometry(point)
            pool = cone[d, side] if cone[d, side].any() else along[d, side] > 0
            if not pool.any():
                return point  # a border
            x = self.embedding.points_
            target = x[point] + (2 * side - 1) * self.h * np.eye(self.embedding.dim)[d]
            candidates = np.flatnonzero(pool)
            return int(candidates[np.argmin(((x[candidates] - target) ** 2).sum(axis=1))])
        region = self.region(point, d, side)
        if len(region) == 0:
            return point
        counts = self._cells_per_point[region].astype(np.float64)
        q = int(region[self.rng.choice(len(region), p=counts / counts.sum())])
        keep = self._region_cells(point, d, side) / self._region_cells(q, d, 1 - side)
        return q if keep >= 1 or self.rng.random() < keep else point

    # -- the steps ------------------------------------------------------------------------------
    def _draw_start(self, reserved: set[Architecture]) -> Architecture | None:
        if self.restart == "points":
            return self._draw_point(reserved)
        for _ in range(64):
            arch = self._draw_uniform()
            if arch is None or arch not in reserved:
                return arch
        return None

    def _new_step(self) -> dict[str, Any] | None:
        reserved: set[Architecture] = set()

        def take(arch: Architecture | None) -> list[int] | None:
            if arch is None:
                return None
            reserved.add(arch)
            return list(arch)

        rows, probes = [], self._step_probes()
        for w, walker in enumerate(self._walkers):
            center = None
            if walker["point"] is None:
                first = w == 0 and self._epoch == 0 and self._init is not None
                center = self._init if first else self._draw_start(reserved)
                if center is None:
                    continue  # nothing left to start from
                walker["point"] = list(self.joint_point(center))
            key = tuple(walker["point"])
            if center is None or self._is_seen(center):
                center = self._pick_at(key, reserved)
            row: dict[str, Any] = {"walker": w, "point": list(key), "center": take(center),
                                   "probes": []}  # fmt: skip
            for i in range(self.num_cells):
                for d in range(self.embedding.dim):
                    probe = [i, d]
                    for side in (0, 1):
                        q = self._probe_point(key[i], d, side, probes)
                        moved = (*key[:i], q, *key[i + 1 :])
                        probe += [q, take(self._pick_at(moved, reserved))]
                    row["probes"].append(probe)
            rows.append(row)
        return {"walkers": rows, "probes": probes} if rows else None

    def _step_architectures(self, step: dict[str, Any]) -> list[Architecture]:
        archs = []
        for row in step["walkers"]:
            archs.append(row["center"])
            for _, _, _, below, _, above in row["probes"]:
                archs += [below, above]
        return list(dict.fromkeys(tuple(a) for a in archs if a is not None))

    def _complete_step(self, step: dict[str, Any]) -> None:
        told = list(self._told.items())
        scores = dict(zip((a for a, _ in told), rank_scores([v for _, v in told]), strict=True))

        def estimate(key: JointPoint) -> float | None:
            archs = self._told_at.get(key)
            return float(np.mean([scores[a] for a in archs])) if archs else None

        points = self.embedding.points_
        for row in step["walkers"]:
            walker = self._walkers[row["walker"]]
            key = tuple(row["point"])
            gradient = np.zeros((self.num_cells, self.embedding.dim))
            downhill = np.array(key)[:, None].repeat(self.embedding.dim, axis=1)  # (K, d)
            for i, d, below, _, above, _ in row["probes"]:
                lo = estimate((*key[:i], below, *key[i + 1 :]))
                hi = estimate((*key[:i], above, *key[i + 1 :]))
                span = points[above, d] - points[below, d]
                if lo is not None and hi is not None and span > 0:
                    gradient[i, d] = (hi - lo) / span
                    downhill[i, d] = below if hi > lo else above if hi < lo else key[i]
            archs = [tuple(a) for a in self._step_architectures({"walkers": [row]})]
            values = [self._told[a] for a in archs if math.isfinite(self._told[a])]
            improved = bool(values) and min(values) < walker["best"]
            center = None if row["center"] is None else tuple(row["center"])
            centre_estimate = estimate(key)
            epoch_row = {
                "epoch": self._epoch,
                "walker": row["walker"],
                "restart": walker["restart"],
                "probes": step.get("probes", self.probes),  # (a step stored before "auto")
                "estimate": math.nan if centre_estimate is None else centre_estimate,
                "objective": math.nan if center is None else self._told[center],
            }
            for i in range(self.num_cells):
                self._row(epoch_row, i, points[key[i]], gradient[i], center)
            walker["best"] = min([walker["best"], *values])
            walker["stall"] = 0 if improved else walker["stall"] + 1
            if not archs or walker["stall"] >= self.patience:
                self._restart(walker)
            else:
                leaves = np.abs(gradient) * (downhill != np.array(key)[:, None])
                steepest = np.argmax(leaves, axis=1)
                walker["point"] = [int(downhill[i, steepest[i]]) for i in range(self.num_cells)]

    def _restart(self, walker: dict[str, Any]) -> None:
        best = self.best() if self.restart == "best" else None
        point = None if best is None else list(self.joint_point(best[0]))
        if point is not None and self._is_exhausted(tuple(point)):
            point = None  # nothing new at the best's point: a random start instead
        walker.update(point=point, best=math.inf, stall=0, restart=walker["restart"] + 1)

    # -- persistence ----------------------------------------------------------------------------
    def _config(self) -> dict[str, Any]:
        return {**super()._config(), "probes": self.probes, "walkers": self.walkers,
                "h": self.h, "patience": self.patience, "restart": self.restart,
                "evidence_alpha": self.evidence_alpha}  # fmt: skip

    def _extra_state(self) -> dict[str, Any]:
        walkers = [{**w, "best": encode_value(w["best"])} for w in self._walkers]
        return {**super()._extra_state(), "walkers": walkers}

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        walkers = extra["walkers"]
        if len(walkers) != self.walkers:
            raise StrategyError(
                f"A finite-difference state needs {self.walkers} walkers; got {len(walkers)}."
            )
        self._walkers = [{**w, "best": decode_value(w["best"])} for w in walkers]
        super()._load_extra_state(extra)


# -- the seed's rule -------------------------------------------------------------------------------
class SeedFiniteDifferenceDescent(_Descent):
    """The seed's finite-difference descent: one continuous point per supernet cell, probes at
    ``x ± h e_d`` (kept for comparison with the lattice rule, :class:`FiniteDifferenceDescent`).

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

    The trajectory rows are those of :class:`FiniteDifferenceDescent` with ``walker`` and
    ``restart`` 0, ``value`` the continuous point at the start of the step and ``estimate``
    ``nan``.
    """

    name = "fd-seed"

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
        super().__init__(space, num_cells, seed, features, init, max_epochs)
        owner = type(self).__name__
        self.h = check_float(owner, "h", h, 0.0, math.inf, StrategyError)
        self.lr = check_float(owner, "lr", lr, 0.0, math.inf, StrategyError)
        self.momentum = check_float(
            owner, "momentum", momentum, 0.0, 1.0, StrategyError, open_low=False
        )
        if tie_break not in ("random", "first"):
            fail(StrategyError, owner, "tie_break", "'random' or 'first'", tie_break)
        self.tie_break = tie_break
        start = self._init
        if start is None:
            start = tuple(int(c) for c in self.rng.integers(len(space), size=self.num_cells))
        self._current: Architecture = start
        self._x = self.embedding.cell_points_[list(start)].copy()  # (K, d)
        self._velocity = np.zeros_like(self._x)
        self._idle_steps = 0
        self._start_step()
        self._advance()

    @property
    def current(self) -> Architecture:
        """The architecture at the current points (nearest cells)."""
        return self._current

    @property
    def points(self) -> np.ndarray:
        """``(K, d)`` the current standardised points (a copy)."""
        return self._x.copy()

    def _step_architectures(self, step: dict[str, Any]) -> list[Architecture]:
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

    def _new_step(self) -> dict[str, Any] | None:
        if self._idle_steps >= _MAX_IDLE_STEPS:
            return None  # stalled
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

    def _complete_step(self, step: dict[str, Any]) -> None:
        penalty = self._penalty()
        gradient = np.zeros_like(self._x)
        for i, d, minus, plus in step["probes"]:
            diff = self._effective(tuple(plus), penalty) - self._effective(tuple(minus), penalty)
            gradient[i, d] = diff / (2 * self.h)
        center = tuple(step["center"])
        epoch_row = {"epoch": self._epoch, "walker": 0, "restart": 0, "estimate": math.nan,
                     "objective": self._told[center]}  # fmt: skip
        for i in range(self.num_cells):
            self._row(epoch_row, i, self._x[i], gradient[i], center)
        self._velocity = self.momentum * self._velocity + gradient
        moved = self._x - self.lr * self._velocity
        points = self.embedding.points_
        self._x = np.stack([project_to_hull(points, row) for row in moved])
        self._current = tuple(self._nearest(self._x, self._current))
        self._idle_steps = 0 if step["fresh"] else self._idle_steps + 1

    # -- persistence ----------------------------------------------------------------------------
    def _config(self) -> dict[str, Any]:
        return {**super()._config(), "h": self.h, "lr": self.lr, "momentum": self.momentum,
                "tie_break": self.tie_break}  # fmt: skip

    def _extra_state(self) -> dict[str, Any]:
        return {
            **super()._extra_state(),
            "x": self._x.tolist(),
            "velocity": self._velocity.tolist(),
            "current": list(self._current),
            "idle_steps": self._idle_steps,
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
        self._idle_steps = int(extra["idle_steps"])
        super()._load_extra_state(extra)
