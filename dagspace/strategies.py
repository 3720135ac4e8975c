"""Search strategies over architectures of a space: random search and finite-difference descent
(Bayesian search with BoTorch lives in :mod:`dagspace.bayes`, regularised evolution in
:mod:`dagspace.evolution`, local search in :mod:`dagspace.local_search`), behind one ask/tell
contract.

An *architecture* is a tuple of cell indices into a :class:`dagspace.Space`, one per supernet
cell. Every strategy follows the same contract (:class:`Strategy`):

- ``ask(n)`` hands out up to ``n`` architectures that were neither told nor handed out before
  (each architecture is proposed at most once); ``[]`` when the strategy has nothing to propose.
  The one exception: after a restore, the architectures pending in the saved state are handed
  out again first, so a driver that crashed before telling them cannot stall the strategy.
- ``tell(architectures, values)`` reports objective values, **lower is better**. A value that is
  not finite (``nan``, ``inf``, ``-inf``) marks a *diverged* (failed) evaluation; each strategy
  documents what it does with one. An architecture may be told without having been asked; telling
  it again with the same value is a no-op, with another value an error.
- ``state_dict()`` is JSON-serialisable (strict JSON: non-finite values are written as the
  strings ``"nan"``, ``"inf"``, ``"-inf"``) and holds the RNG state and everything told;
  ``load_state_dict`` on a strategy built with the same arguments restores it exactly, so the
  restored strategy proposes what the uninterrupted one would have.
"""

from __future__ import annotations

import abc
import bisect
import inspect
import json
import math
import numbers
from collections.abc import Sequence
from typing import Any, ClassVar, NoReturn

import numpy as np
from scipy.optimize import nnls

from dagspace.embedding import Embedding
from dagspace.errors import DagspaceError
from dagspace.features import DEFAULT_FEATURES
from dagspace.random import SeedLike, check_random_state
from dagspace.space import Space

__all__ = [
    "STRATEGIES",
    "Architecture",
    "FiniteDifferenceDescent",
    "RandomSearch",
    "Strategy",
    "StrategyError",
    "make_strategy",
    "strategy_class",
]

Architecture = tuple[int, ...]
_STATE_FORMAT = "dagrank-strategy-1"


class StrategyError(DagspaceError, ValueError):
    """A search strategy got a bad argument, architecture, value or state."""


# -- small helpers ---------------------------------------------------------------------------------
def _fail(owner: str, name: str, expected: str, got: object) -> NoReturn:
    raise StrategyError(f"The {name!r} parameter of {owner} must be {expected}; got {got!r}.")


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_int(owner: str, name: str, value: object, low: int) -> int:
    if not _is_int(value) or value < low:
        _fail(owner, name, f"an int >= {low}", value)
    return int(value)


def _check_float(
    owner: str, name: str, value: object, low: float, high: float, open_low: bool = True
) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    if ok:
        value = float(value)
        ok = math.isfinite(value) and (value > low if open_low else value >= low) and value < high
    if not ok:
        left = "(" if open_low else "["
        _fail(owner, name, f"a float in {left}{low}, {high})", value)
    return value


def _encode_value(value: float) -> float | str:
    """A told value as strict JSON (non-finite values become strings)."""
    return value if math.isfinite(value) else str(value)


def _decode_value(value: float | str) -> float:
    return float(value)


def _same_value(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


_STOPPING = ("max_epochs",)  # config keys that say when to stop, not where to go


def _without(config: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in keys}


def _json_round_trip(obj: object) -> object:
    return json.loads(json.dumps(obj))


class Strategy(abc.ABC):
    """The ask/tell contract of a search strategy (see the module docstring).

    Args:
        space: the cells every supernet cell chooses from.
        num_cells: ``K``, the number of supernet cells (the length of an architecture).
        seed: the only source of randomness (``int`` for reproducibility); no global RNG is used.

    Subclasses set ``name``, implement :meth:`ask`, and may extend ``_config``, ``_after_tell``,
    ``_extra_state`` / ``_load_extra_state`` and ``_on_seen``.
    """

    name: ClassVar[str]

    def __init__(self, space: Space, num_cells: int, seed: SeedLike) -> None:
        owner = type(self).__name__
        if not isinstance(space, Space):
            _fail(owner, "space", "a dagspace.Space", type(space).__name__)
        if len(space) == 0:
            _fail(owner, "space", "a space with at least one cell", "an empty space")
        self.space = space
        self.num_cells = _check_int(owner, "num_cells", num_cells, 1)
        self.seed = seed if _is_int(seed) else None
        self.rng = check_random_state(seed)
        self._reset_records()

    def _reset_records(self) -> None:
        self._history: list[tuple[Architecture, float]] = []
        self._told: dict[Architecture, float] = {}
        self._pending: dict[Architecture, None] = {}  # asked, not yet told (ordered)
        self._reoffer: list[Architecture] = []  # pending at a restore: handed out again first
        self._seen_codes: list[int] | None = None  # sorted codes of told + pending, built lazily

    # -- the contract -------------------------------------------------------------------------
    def ask(self, n: int) -> list[Architecture]:
        """Up to ``n`` architectures never told nor handed out before; ``[]`` when done.

        After :meth:`load_state_dict`, the architectures that were pending when the state was
        saved come first (in their original order), so a driver that lost them re-evaluates them.

        Raises:
            StrategyError: ``n`` is not a positive int.
        """
        n = self._check_n(n)
        out = [a for a in self._reoffer if a in self._pending][:n]
        self._reoffer = [a for a in self._reoffer if a in self._pending and a not in out]
        if len(out) < n:
            out += self._propose(n - len(out))
        return out

    @abc.abstractmethod
    def _propose(self, n: int) -> list[Architecture]:
        """Up to ``n >= 1`` new proposals, each marked pending with :meth:`_add_pending`."""

    def tell(self, architectures: Sequence[Architecture], values: Sequence[float]) -> None:
        """Report objective values (lower is better; non-finite = diverged) of architectures.

        The whole call is checked before anything is recorded.

        Raises:
            StrategyError: malformed architectures or values, mismatched lengths, or an
                architecture told before with a different value.
        """
        archs = self._check_architectures(architectures, "architectures")
        vals = self._check_values(values)
        if len(archs) != len(vals):
            raise StrategyError(
                f"tell() needs one value per architecture: got {len(archs)} architectures and "
                f"{len(vals)} values."
            )
        new: dict[Architecture, float] = {}
        for arch, value in zip(archs, vals, strict=True):
            known = self._told.get(arch, new.get(arch))
            if known is not None:
                if not _same_value(known, value):
                    raise StrategyError(
                        f"The architecture {arch} was already told the value {known}; got "
                        f"{value} now (a told value cannot change)."
                    )
                continue
            new[arch] = value
        for arch, value in new.items():
            self._record(arch, value)
        self._after_tell()

    @property
    def history(self) -> list[tuple[Architecture, float]]:
        """Every ``(architecture, value)`` told so far, in the order told."""
        return list(self._history)

    @property
    def pending(self) -> list[Architecture]:
        """Architectures handed out by :meth:`ask` and not told yet (after a restore: the ones
        outstanding when the state was saved, which :meth:`ask` hands out again)."""
        return list(self._pending)

    def best(self) -> tuple[Architecture, float] | None:
        """The told architecture with the lowest finite value (the first one on ties)."""
        finite = [(v, i) for i, (_, v) in enumerate(self._history) if math.isfinite(v)]
        if not finite:
            return None
        _, i = min(finite)
        return self._history[i]

    # -- persistence ----------------------------------------------------------------------------
    def _config(self) -> dict[str, Any]:
        """The constructor arguments a restored strategy must share (JSON-serialisable)."""
        return {
            "num_cells": self.num_cells,
            "space_cells": len(self.space),
            "space_max_vertices": self.space.max_vertices,
            "space_labelled": self.space.is_labelled,
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: config, RNG state, history, pending, and the
        strategy's own state. ``json.dumps(state, allow_nan=False)`` works."""
        return {
            "format": _STATE_FORMAT,
            "strategy": self.name,
            "seed": self.seed,
            "config": _json_round_trip(self._config()),
            "rng": _json_round_trip(self.rng.bit_generator.state),
            "history": [[list(a), _encode_value(v)] for a, v in self._history],
            "pending": [list(a) for a in self._pending],
            "extra": self._extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (possibly after a JSON round trip).

        Raises:
            StrategyError: the state is malformed, of another strategy, or was saved by a
                strategy built with other arguments.
        """
        if not isinstance(state, dict) or state.get("format") != _STATE_FORMAT:
            got = state.get("format") if isinstance(state, dict) else type(state).__name__
            raise StrategyError(
                f"A strategy state must be a dict with format {_STATE_FORMAT!r}; got {got!r}."
            )
        if state.get("strategy") != self.name:
            raise StrategyError(
                f"This state belongs to the strategy {state.get('strategy')!r}; expected "
                f"{self.name!r}."
            )
        config = _json_round_trip(self._config())
        saved = state.get("config")
        # a stopping rule (max_epochs) may change between runs: a resumed descent may be given
        # more epochs; everything else decides the path and must match
        if not isinstance(saved, dict) or _without(saved, _STOPPING) != _without(config, _STOPPING):
            raise StrategyError(
                f"This state was saved by a {type(self).__name__} built with "
                f"{state.get('config')}; this one was built with {config}."
            )
        try:
            history = [
                (self._check_architecture(a, "history"), _decode_value(v))
                for a, v in state["history"]
            ]
            pending = [self._check_architecture(a, "pending") for a in state["pending"]]
            self.rng.bit_generator.state = state["rng"]
            self.seed = state["seed"]
            self._reset_records()
            for arch, value in history:
                self._record(arch, value)
            for arch in pending:
                self._add_pending(arch)
            self._reoffer = list(pending)
            self._load_extra_state(state["extra"])
        except (KeyError, TypeError, ValueError) as err:
            if isinstance(err, StrategyError):
                raise
            raise StrategyError(f"Malformed {self.name!r} strategy state: {err!r}.") from None

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, extra: dict[str, Any]) -> None:  # noqa: B027 (optional hook)
        pass

    # -- bookkeeping ----------------------------------------------------------------------------
    def _record(self, arch: Architecture, value: float) -> None:
        self._history.append((arch, value))
        self._told[arch] = value
        if arch in self._pending:
            del self._pending[arch]
        else:
            self._mark_seen(arch)

    def _add_pending(self, arch: Architecture) -> None:
        self._pending[arch] = None
        self._mark_seen(arch)

    def _mark_seen(self, arch: Architecture) -> None:
        if self._seen_codes is not None:
            bisect.insort(self._seen_codes, self._code(arch))
        self._on_seen(arch)

    def _on_seen(self, arch: Architecture) -> None:  # noqa: B027 (optional hook)
        """Called once for every architecture that becomes told or pending."""

    def _after_tell(self) -> None:  # noqa: B027 (optional hook)
        pass

    def _is_seen(self, arch: Architecture) -> bool:
        return arch in self._told or arch in self._pending

    @property
    def _num_seen(self) -> int:
        return len(self._told) + len(self._pending)

    @property
    def num_architectures(self) -> int:
        """``N ** K``: every architecture of the space."""
        return len(self.space) ** self.num_cells

    def _code(self, arch: Architecture) -> int:
        code = 0
        for cell in arch:
            code = code * len(self.space) + cell
        return code

    def _decode(self, code: int) -> Architecture:
        cells = []
        for _ in range(self.num_cells):
            code, cell = divmod(code, len(self.space))
            cells.append(cell)
        return tuple(reversed(cells))

    def _draw_uniform(self) -> Architecture | None:
        """A uniformly random architecture neither told nor pending (``None``: none is left).

        While at least half of the space is unseen, draws are rejected until an unseen one comes
        up (under two tries on average); otherwise the ``r``-th unseen architecture, ``r``
        uniform, is found by bisection over the sorted codes of the seen ones.
        """
        total, seen = self.num_architectures, self._num_seen
        if seen >= total:
            return None
        if 2 * seen < total or total > 2**62:
            while True:
                arch = tuple(
                    int(c) for c in self.rng.integers(len(self.space), size=self.num_cells)
                )
                if not self._is_seen(arch):
                    return arch
        if self._seen_codes is None:
            self._seen_codes = sorted(self._code(a) for a in (*self._told, *self._pending))
        codes = self._seen_codes
        r = int(self.rng.integers(total - seen))
        lo, hi = 0, len(codes)  # the first j with codes[j] - j > r: r unseen codes lie before it
        while lo < hi:
            mid = (lo + hi) // 2
            if codes[mid] - mid > r:
                hi = mid
            else:
                lo = mid + 1
        return self._decode(r + lo)

    # -- input checks ---------------------------------------------------------------------------
    def _check_n(self, n: object) -> int:
        if not _is_int(n) or n < 1:
            raise StrategyError(f"ask() needs a positive int 'n'; got {n!r}.")
        return int(n)

    def _check_architecture(self, arch: object, what: str) -> Architecture:
        if isinstance(arch, (str, bytes)) or not isinstance(arch, (Sequence, np.ndarray)):
            raise StrategyError(
                f"Each of the {what} must be a sequence of {self.num_cells} cell indices; got "
                f"{arch!r}."
            )
        if len(arch) != self.num_cells:
            raise StrategyError(
                f"An architecture has one cell index per supernet cell: expected length "
                f"{self.num_cells}, got length {len(arch)} ({tuple(arch)!r})."
            )
        n = len(self.space)
        if not all(_is_int(c) and 0 <= c < n for c in arch):
            raise StrategyError(
                f"Cell indices must be ints in [0, {n}) (the space's cells); got {tuple(arch)!r}."
            )
        return tuple(int(c) for c in arch)

    def _check_architectures(self, archs: object, what: str) -> list[Architecture]:
        if isinstance(archs, (str, bytes)) or not isinstance(archs, (Sequence, np.ndarray)):
            raise StrategyError(f"The {what} must be a sequence of architectures; got {archs!r}.")
        return [self._check_architecture(a, what) for a in archs]

    @staticmethod
    def _check_values(values: object) -> list[float]:
        if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
            raise StrategyError(f"The values must be a sequence of floats; got {values!r}.")
        out = []
        for value in values:
            if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
                raise StrategyError(f"Each value must be a real number; got {value!r}.")
            out.append(float(value))
        return out


# -- random search ---------------------------------------------------------------------------------
class RandomSearch(Strategy):
    """Uniform sampling over the distinct architectures, without repeats.

    Every ask draws uniformly among the architectures neither told nor pending, so asking for
    ``N ** K`` proposals in a row yields every architecture once, in a seeded random order.
    Diverged values are simply recorded: random search does not use the values.
    """

    name = "random"

    def __init__(self, space: Space, num_cells: int, seed: SeedLike) -> None:
        super().__init__(space, num_cells, seed)

    def _propose(self, n: int) -> list[Architecture]:
        out: list[Architecture] = []
        while len(out) < n:
            arch = self._draw_uniform()
            if arch is None:
                break
            self._add_pending(arch)
            out.append(arch)
        return out


# -- finite-difference descent ------------------------------------------------------------------
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
            _fail(owner, "features", "a non-empty sequence of feature names", features)
        self.embedding = Embedding(space, tuple(features))  # InvalidSpaceError: unknown feature
        self.h = _check_float(owner, "h", h, 0.0, math.inf)
        self.lr = _check_float(owner, "lr", lr, 0.0, math.inf)
        self.momentum = _check_float(owner, "momentum", momentum, 0.0, 1.0, open_low=False)
        if tie_break not in ("random", "first"):
            _fail(owner, "tie_break", "'random' or 'first'", tie_break)
        self.tie_break = tie_break
        if max_epochs is not None:
            max_epochs = _check_int(owner, "max_epochs", max_epochs, 1)
        self.max_epochs = max_epochs
        if isinstance(init, str):
            if init != "random":
                _fail(owner, "init", "'random' or an architecture", init)
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
                {**row, "objective": _encode_value(row["objective"])} for row in self._trajectory
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
        self._step = _json_round_trip(extra["step"])
        self._trajectory = [
            {**row, "objective": _decode_value(row["objective"])} for row in extra["trajectory"]
        ]


# -- the registry ----------------------------------------------------------------------------------
STRATEGIES: tuple[str, ...] = ("bayes", "evolution", "fd", "local", "random")


def strategy_class(name: str) -> type[Strategy]:
    """The class registered as ``name`` (BayesianSearch's module imports no torch by itself)."""
    if name == "fd":
        return FiniteDifferenceDescent
    if name == "random":
        return RandomSearch
    if name == "bayes":
        from dagspace.bayes import BayesianSearch  # dagspace.bayes imports this module

        return BayesianSearch
    if name == "evolution":
        from dagspace.evolution import RegularizedEvolution  # it imports this module

        return RegularizedEvolution
    if name == "local":
        from dagspace.local_search import LocalSearch  # it imports this module

        return LocalSearch
    raise StrategyError(f"Unknown strategy {name!r}; expected one of {list(STRATEGIES)}.")


def make_strategy(
    name: str, space: Space, num_cells: int, *, seed: SeedLike, **options: Any
) -> Strategy:
    """Build the strategy registered as ``name`` (``"fd"``, ``"random"``, ``"bayes"``,
    ``"evolution"``, ``"local"``) with its keyword ``options``.

    Raises:
        StrategyError: an unknown name or an option the strategy does not take (and any bad
            argument, see the strategy's class).
    """
    cls = strategy_class(name)
    params = inspect.signature(cls.__init__).parameters
    allowed = sorted(p.name for p in params.values() if p.kind is inspect.Parameter.KEYWORD_ONLY)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise StrategyError(
            f"Unknown option(s) {unknown} for the {name!r} strategy; expected some of {allowed}."
        )
    return cls(space, num_cells, seed, **options)
