"""Search objectives: what a strategy minimises (lower is better; NaN marks a diverged point).

An architecture is a tuple of cell indices into the ranked space, one per supernet cell (the
strategies' representation). Three objectives:

``surrogate`` (:class:`SurrogateObjective`, the default)
    minus the relative surrogate's score of the architecture (by default the log-likelihood
    ratio of the trained multinomials against the untrained ones; see
    :mod:`surrogate.relative`): the surrogate as the landscape the search moves over. Exact
    and free.
``supernet`` (:class:`SupernetObjective`)
    The pseudo environment: the architecture's validation loss on the supernet's shared
    weights. Between descent steps (:meth:`SupernetObjective.advance`) the shared weights are
    trained further, for ``steps`` mini-batches, on the descent's current architecture. The
    value of an architecture is the one measured when it is first evaluated.
``standalone`` (:class:`StandaloneObjective`)
    ``1 - validation accuracy`` of the architecture trained from scratch (through the store,
    so each is trained once); a diverged or failed candidate is NaN.
``module:function`` (:class:`FunctionObjective`)
    A user's own function of the architecture's cells, returning a value to minimise or an
    :class:`ObjectiveResult` with a status; stored like every evaluation.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from analysis.errors import AnalysisError
from analysis.evaluation import Request, train_architectures
from analysis.results import EvalKey, EvalStatus, ResultsStore, hash_config

__all__ = [
    "OBJECTIVES",
    "FunctionObjective",
    "ObjectiveError",
    "ObjectiveResult",
    "StandaloneObjective",
    "SupernetObjective",
    "SurrogateObjective",
]

OBJECTIVES = ("surrogate", "supernet", "standalone")
Architecture = tuple[int, ...]


class SurrogateObjective:
    """``-sum_i s_i(cell_i)``: the relative surrogate's score (the ranking's, by default the
    likelihood ratio against the untrained prior), negated (vectorised)."""

    name = "surrogate"
    evaluator = "supernet"

    def __init__(self, ranking: Any, score: str | None = None) -> None:
        self.ranking = ranking
        self.score = score or ranking.score
        self._logp = np.stack(ranking.cell_scores(self.score))  # (K, N)

    def config(self) -> dict[str, Any]:
        return {"objective": self.name, "score": self.score}

    def __call__(self, architectures: Sequence[Architecture]) -> list[float]:
        if not architectures:
            return []
        idx = np.asarray(architectures, dtype=np.int64)  # (n, K)
        rows = np.arange(self._logp.shape[0])
        return [float(v) for v in -self._logp[rows, idx].sum(axis=1)]


class SupernetObjective:
    """The supernet as a pseudo environment (see the module docstring).

    ``supernet`` is copied: the run's trained supernet is never changed. ``dataset`` is the
    supernet run's :class:`surrogate.data.Dataset` on the device; ``steps`` mini-batches of
    ``batch_size`` at learning rate ``lr`` are trained on the current architecture per
    :meth:`advance`. Its state (weights, optimiser, data generator) saves and loads, so a resumed
    descent sees the same landscape.
    """

    name = "supernet"
    evaluator = "supernet"

    def __init__(
        self,
        supernet: Any,
        dataset: Any,
        space: Any,
        *,
        steps: int = 8,
        lr: float = 0.01,
        batch_size: int = 64,
        seed: int = 0,
    ) -> None:
        import torch

        from surrogate.device import torch_generator

        self.supernet = copy.deepcopy(supernet)
        self.dataset, self.space = dataset, space
        self.steps, self.lr, self.batch_size = steps, lr, batch_size
        self.optimizer = torch.optim.SGD(self.supernet.weight_parameters(), lr=lr, momentum=0.9)
        self.generator = torch_generator(seed)
        self.advanced = 0

    def config(self) -> dict[str, Any]:
        return {"objective": self.name, "steps": self.steps, "lr": self.lr,
                "batch_size": self.batch_size}  # fmt: skip

    def _cells(self, architecture: Architecture) -> tuple[Any, ...]:
        return tuple(self.space[int(i)] for i in architecture)

    def advance(self, architecture: Architecture) -> None:
        """Train the shared weights ``steps`` mini-batches on ``architecture``."""
        import torch
        import torch.nn.functional as F

        train = self.dataset.train
        cells = self._cells(architecture)
        self.supernet.train()
        batch = min(self.batch_size, len(train))
        for _ in range(self.steps):
            pick = torch.randperm(len(train), generator=self.generator)[:batch]
            pick = pick.to(train.x.device)
            loss = F.cross_entropy(self.supernet(train.x[pick], cells), train.y[pick])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        self.advanced += 1

    def __call__(self, architectures: Sequence[Architecture]) -> list[float]:
        from surrogate.training import evaluate_architecture

        self.supernet.eval()
        values = []
        for arch in architectures:
            loss, _ = evaluate_architecture(self.supernet, self._cells(arch), self.dataset.val)
            values.append(loss if np.isfinite(loss) else float("nan"))
        return values

    def save(self, path: Path) -> None:
        import torch

        from dagspace.io import atomic_write

        buffer = io.BytesIO()
        state = {"weights": self.supernet.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "generator": self.generator.get_state(), "advanced": self.advanced}  # fmt: skip
        torch.save(state, buffer)
        with atomic_write(path, "wb") as handle:
            handle.write(buffer.getvalue())

    def load(self, path: Path) -> None:
        import torch

        state = torch.load(path, map_location="cpu", weights_only=True)
        self.supernet.load_state_dict(state["weights"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.advanced = int(state["advanced"])


class StandaloneObjective:
    """``1 - validation accuracy`` after training from scratch, through the store (cached)."""

    name = "standalone"
    evaluator = "standalone"

    def __init__(
        self,
        store: ResultsStore,
        space: Any,
        *,
        run: str,
        method: str,
        dataset: Any,
        config: Any,
        executor: Any,
        seed: int = 0,
    ) -> None:
        self.store, self.space, self.run, self.method = store, space, run, method
        self.dataset, self.candidate, self.executor, self.seed = dataset, config, executor, seed
        self.records: dict[Architecture, Any] = {}
        self.retry_failed = False  # retrain candidates that failed their last allowed attempt

    def config(self) -> dict[str, Any]:
        return {"objective": self.name, "candidate": self.candidate.to_dict(), "seed": self.seed}

    def __call__(self, architectures: Sequence[Architecture]) -> list[float]:
        requests = [Request(tuple(self.space[int(i)] for i in a), self.seed) for a in architectures]
        records = train_architectures(
            self.store, requests, run=self.run, method=self.method, dataset=self.dataset,
            config=self.candidate, executor=self.executor, retry_failed=self.retry_failed,
        )  # fmt: skip
        values = []
        for arch, record in zip(architectures, records, strict=True):
            self.records[tuple(arch)] = record
            ok = record is not None and record.status is EvalStatus.COMPLETE
            values.append(1.0 - record.metrics["val_accuracy"] if ok else float("nan"))
        return values


def record_cheap(
    store: ResultsStore,
    objective: Any,
    space: Any,
    architectures: Sequence[Architecture],
    values: Sequence[float],
    *,
    run: str,
    method: str,
    seed: int,
) -> None:
    """Store the evaluations of a cheap objective (surrogate, supernet): one row each."""
    from dagspace import canonical_hash

    config_hash = hash_config({**objective.config(), "run": run, "method": method})
    for arch, value in zip(architectures, values, strict=True):
        cells = [space[int(i)] for i in arch]
        key = EvalKey(canonical_hash(cells), objective.evaluator, config_hash, seed)
        finite = bool(np.isfinite(value))
        store.add(
            key, run=run, method=method, arch_json=[c.to_dict() for c in cells],
            status=EvalStatus.COMPLETE if finite else EvalStatus.DIVERGED,
            metrics={"objective": float(value) if finite else float("nan")},
        )  # fmt: skip


# -- a user's own objective: ``module:function`` ------------------------------------------------

USER_EVALUATOR = "user"


class ObjectiveError(AnalysisError, ValueError):
    """A ``module:function`` objective cannot be imported, or returned something unusable."""


@dataclass(frozen=True)
class ObjectiveResult:
    """What a user's objective may return instead of a bare number: the ``value`` to minimise,
    a ``status`` (``"complete"``, ``"diverged"`` or ``"failed"``; the last two are NaN to the
    strategies), an optional ``error`` text and extra ``metrics`` to store with it."""

    value: float
    status: str = "complete"
    error: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)


_SPEC_RE = re.compile(r"^(?P<module>[A-Za-z_][\w.]*):(?P<function>[A-Za-z_]\w*)$")


def is_function_spec(name: object) -> bool:
    """``True`` for ``"package.module:function"`` (``tabular:FILE`` and the built-in names are
    not: their prefix names a file or nothing)."""
    match = isinstance(name, str) and _SPEC_RE.match(name)
    return bool(match) and match["module"] not in ("tabular",)


def load_objective_function(spec: str) -> Callable[..., Any]:
    """Import the function that ``"module:function"`` names (the module found on ``sys.path``,
    the current directory included, as ``python -m`` would)."""
    import importlib
    import sys

    if not is_function_spec(spec):
        raise ObjectiveError(
            f"A user objective must be 'module:function' (e.g. 'my_objectives:latency'); "
            f"got {spec!r}."
        )
    module_name, function_name = spec.split(":")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ObjectiveError(
            f"The objective {spec!r}: cannot import the module {module_name!r} ({err}); put it "
            f"on PYTHONPATH or in the current directory."
        ) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ObjectiveError(
            f"The objective {spec!r}: the module {module_name!r} has no function "
            f"{function_name!r} (got {type(function).__name__})."
        )
    return function


def _as_result(value: Any) -> ObjectiveResult:
    """A user function's return value as an :class:`ObjectiveResult` (numbers, the class
    itself, or a mapping with ``value`` and optionally ``status``, ``error``, ``metrics``)."""
    if isinstance(value, ObjectiveResult):
        result = value
    elif isinstance(value, Mapping) and "value" in value:
        unknown = sorted(set(value) - {"value", "status", "error", "metrics"})
        if unknown:
            raise ObjectiveError(
                f"An objective's result mapping has the keys value, status, error, metrics; "
                f"got also {unknown}."
            )
        result = ObjectiveResult(**value)
    elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        result = ObjectiveResult(float(value))
    else:
        raise ObjectiveError(
            f"An objective must return a number, an ObjectiveResult or a mapping with 'value'; "
            f"got {type(value).__name__} {value!r:.80}."
        )
    if result.status not in ("complete", "diverged", "failed"):
        raise ObjectiveError(
            f"An objective's status must be 'complete', 'diverged' or 'failed'; got "
            f"{result.status!r}."
        )
    return result


class FunctionObjective:
    """A user's function of the architecture's cells (a tuple of
    :class:`~dagspace.CellSpec`, one per supernet cell) returning a value to minimise, or an
    :class:`ObjectiveResult` with a status. An exception is a ``failed`` evaluation (NaN to the
    strategies, its message stored); a non-finite value is ``diverged``.

    Every evaluation is a row of the store (evaluator ``"user"``, keyed by the architecture and
    the spec), so an architecture is evaluated once, whichever method or repeat asks again,
    and a resumed run evaluates nothing twice.
    """

    evaluator = USER_EVALUATOR
    records_itself = True  # the search driver does not record its values again

    def __init__(
        self,
        spec: str | Callable[..., Any],
        space: Any,
        *,
        store: ResultsStore | None = None,
        run: str = "python",
        method: str = "python",
    ) -> None:
        if callable(spec):
            self.function, self.name = spec, f"{spec.__module__}:{spec.__qualname__}"
        else:
            self.function, self.name = load_objective_function(spec), spec
        self.space, self.store, self.run, self.method = space, store, run, method

    def config(self) -> dict[str, Any]:
        return {"objective": self.name}

    def evaluate(self, cells: Sequence[Any]) -> ObjectiveResult:
        """The result for one architecture given as its cells (no store)."""
        try:
            result = _as_result(self.function(tuple(cells)))
        except ObjectiveError:
            raise
        except Exception as err:  # the user's code failed on this architecture: recorded
            text = " ".join(f"{type(err).__name__}: {err}".split())[:500]
            return ObjectiveResult(float("nan"), "failed", text)
        if result.status == "complete" and not np.isfinite(result.value):
            return dataclasses.replace(result, status="diverged")
        return result

    def __call__(self, architectures: Sequence[Architecture]) -> list[float]:
        from dagspace import canonical_hash

        config_hash = hash_config(self.config())
        values = []
        for arch in architectures:
            cells = [self.space[int(i)] for i in arch]
            key = None
            if self.store is not None:
                key = EvalKey(canonical_hash(cells), self.evaluator, config_hash, 0)
                stored = self.store.find(key)
                if stored is not None and stored.status in (EvalStatus.COMPLETE,
                                                            EvalStatus.DIVERGED):  # fmt: skip
                    values.append(float(stored.metrics.get("objective", float("nan"))))
                    continue
            result = self.evaluate(cells)
            value = float(result.value) if result.status == "complete" else float("nan")
            if key is not None:
                status = {"complete": EvalStatus.COMPLETE, "diverged": EvalStatus.DIVERGED,
                          "failed": EvalStatus.FAILED}[result.status]  # fmt: skip
                self.store.add(
                    key, run=self.run, method=self.method,
                    arch_json=[c.to_dict() for c in cells], status=status,
                    metrics={**result.metrics, "objective": value}, error=result.error,
                )  # fmt: skip
            values.append(value)
        return values
