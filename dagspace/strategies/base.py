"""The ask/tell contract that every search strategy of :mod:`dagspace.strategies` follows.

This module imports no strategy: each one (:mod:`~dagspace.strategies.random_search`,
:mod:`~dagspace.strategies.descent`, :mod:`~dagspace.strategies.bayes`,
:mod:`~dagspace.strategies.evolution`, :mod:`~dagspace.strategies.local_search`) subclasses
:class:`Strategy` here, and :mod:`~dagspace.strategies.registry` names them.

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
import json
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from dagspace.checks import check_int, fail, is_int
from dagspace.errors import DagspaceError
from dagspace.random import SeedLike, check_random_state
from dagspace.space import Space

__all__ = [
    "Architecture",
    "Strategy",
    "StrategyError",
    "decode_value",
    "encode_value",
    "json_round_trip",
]

Architecture = tuple[int, ...]
_STATE_FORMAT = "dagrank-strategy-1"


class StrategyError(DagspaceError, ValueError):
    """A search strategy got a bad argument, architecture, value or state."""


# -- state encoding ------------------------------------------------------------------------------
def encode_value(value: float) -> float | str:
    """A told value as strict JSON (non-finite values become strings)."""
    return value if math.isfinite(value) else str(value)


def decode_value(value: float | str) -> float:
    return float(value)


def _same_value(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


_STOPPING = ("max_epochs",)  # config keys that say when to stop, not where to go


def _without(config: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in keys}


def json_round_trip(obj: object) -> object:
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
            fail(StrategyError, owner, "space", "a dagspace.Space", type(space).__name__)
        if len(space) == 0:
            fail(StrategyError, owner, "space", "a space with at least one cell", "an empty space")
        self.space = space
        self.num_cells = check_int(owner, "num_cells", num_cells, 1, StrategyError)
        self.seed = seed if is_int(seed) else None
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

    def _propose_each(self, n: int, draw: Callable[[], Architecture | None]) -> list[Architecture]:
        """Up to ``n`` proposals from ``draw()``, each marked pending before the next is drawn
        (so ``draw`` never repeats one); stops early when ``draw`` returns ``None``."""
        out: list[Architecture] = []
        while len(out) < n:
            arch = draw()
            if arch is None:
                break
            self._add_pending(arch)
            out.append(arch)
        return out

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
            "config": json_round_trip(self._config()),
            "rng": json_round_trip(self.rng.bit_generator.state),
            "history": [[list(a), encode_value(v)] for a, v in self._history],
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
        config = json_round_trip(self._config())
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
                (self._check_architecture(a, "history"), decode_value(v))
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
        if not is_int(n) or n < 1:
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
        if not all(is_int(c) and 0 <= c < n for c in arch):
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
