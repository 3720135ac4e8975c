"""Candidate tasks and the executor contract: what a worker needs as plain data, running one,
and the base class every backend (:mod:`surrogate.executors`, :mod:`surrogate.ray_executor`,
:class:`surrogate.batched.BatchedExecutor`) implements.

A :class:`CandidateTask` holds everything a worker needs as plain data (the architecture in
NAS-Bench-101 form, a :class:`DatasetSpec` that the worker loads itself, the recipe, the seed),
so it crosses process and machine boundaries with no torch state. :meth:`Executor.map` yields
``(task, result)`` pairs as the results come in, so the caller (the only writer of the results
store) can record each at once. A task's own problems (divergence, an exception, a worker
process that dies) come back as a DIVERGED or FAILED :class:`CandidateResult`; they never stop
the other tasks.
"""

from __future__ import annotations

import abc
import functools
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any, Self

import numpy as np
import torch

from dagspace.canonical_json import canonical_json, json_sha256
from dagspace.cell import CellSpec
from dagspace.checks import check_int
from dagspace.errors import InvalidCellError
from surrogate.candidate import CandidateConfig, CandidateResult, FaultPlan, train_candidate
from surrogate.data import Dataset, load_dataset
from surrogate.device import resolve_device
from surrogate.errors import ConfigError

__all__ = [
    "WORKER_DIED",
    "CandidateTask",
    "DatasetSpec",
    "Executor",
    "run_task",
    "worker_died",
]

WORKER_DIED = "worker died"  # how the error of a task whose worker process died begins


@dataclass(frozen=True)
class DatasetSpec:
    """How a worker loads the data: the arguments of :func:`surrogate.data.load_dataset`.

    Each process loads a spec once per device and keeps it (:meth:`load` is cached).
    """

    name: str = "digits"
    seed: int = 0
    root: str | None = None
    limit: int | None = None
    val_fraction: float = 0.2
    test_fraction: float = 0.2

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(
                f"The 'name' of a DatasetSpec must be a non-empty string; got {self.name!r}."
            )
        object.__setattr__(
            self, "seed", check_int("DatasetSpec", "seed", self.seed, 0, ConfigError)
        )
        if self.root is not None:
            try:
                object.__setattr__(self, "root", os.fspath(self.root))
            except TypeError:
                raise ConfigError(
                    f"The 'root' of a DatasetSpec must be a path or None; got {self.root!r}."
                ) from None
        if self.limit is not None:
            object.__setattr__(
                self, "limit", check_int("DatasetSpec", "limit", self.limit, 1, ConfigError)
            )
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            ok = isinstance(value, (int, float, np.integer, np.floating))
            if isinstance(value, bool) or not ok or not 0 < value < 1:
                raise ConfigError(
                    f"The {name!r} of a DatasetSpec must be a number in (0, 1); got {value!r}."
                )
            object.__setattr__(self, name, float(value))
        if self.val_fraction + self.test_fraction >= 1:
            raise ConfigError(
                "The 'val_fraction' and 'test_fraction' of a DatasetSpec must sum to less than 1 "
                f"(the rest is the training split); got {self.val_fraction!r} + "
                f"{self.test_fraction!r}."
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load(self, device: str | torch.device = "cpu") -> Dataset:
        """The dataset, on ``device``; loaded once per process and device, then reused."""
        return _load_cached(self, str(resolve_device(device)))


@functools.lru_cache(maxsize=4)
def _load_cached(spec: DatasetSpec, device: str) -> Dataset:
    return load_dataset(
        spec.name,
        seed=spec.seed,
        root=spec.root,
        val_fraction=spec.val_fraction,
        test_fraction=spec.test_fraction,
        limit=spec.limit,
        device=device,
    )


@dataclass(frozen=True)
class CandidateTask:
    """One candidate to train: plain data only, so it pickles small and safely.

    ``architecture``: the cells in NAS-Bench-101 form (``{"matrix": [[...]], "ops": [...]}``;
    :class:`CellSpec` objects are accepted too), validated and stored as fresh dicts.
    ``task_id`` names the task in the caller's bookkeeping (unique within one
    :meth:`Executor.map`); ``attempt`` is carried through untouched (the store's attempt
    number). ``fault`` injects faults, for tests and reliability drills only.

    Raises:
        dagspace.InvalidCellError: a cell is malformed or unlabelled (a cell that is well
            formed but cannot be trained, say one whose input cannot reach its output, is a
            FAILED result).
        ConfigError: another field has the wrong type or range, or the architecture has fewer
            cells than ``config.num_stages``.
    """

    task_id: str
    architecture: tuple[dict[str, Any], ...]
    dataset: DatasetSpec
    config: CandidateConfig
    seed: int
    attempt: int = 1
    fault: FaultPlan | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.task_id, str) or not self.task_id:
            raise ConfigError(
                f"The 'task_id' of a CandidateTask must be a non-empty string; got "
                f"{self.task_id!r}."
            )
        cells = self.architecture
        if isinstance(cells, (CellSpec, Mapping, str)) or not isinstance(cells, Iterable):
            raise InvalidCellError(
                "The 'architecture' of a CandidateTask must be a list of cells in NAS-Bench-101 "
                f"form; got {type(cells).__name__}: {cells!r:.200}."
            )
        specs = [c if isinstance(c, CellSpec) else CellSpec.from_dict(c) for c in cells]
        if not specs:
            raise InvalidCellError("The 'architecture' of a CandidateTask has no cell.")
        for i, spec in enumerate(specs):
            if spec.ops is None:
                raise InvalidCellError(
                    f"Cell {i} of a CandidateTask's architecture must be labelled (an 'ops' "
                    f"list); got {spec.to_dict()!r:.200}."
                )
        object.__setattr__(self, "architecture", tuple(spec.to_dict() for spec in specs))
        for name, kind in (("dataset", DatasetSpec), ("config", CandidateConfig)):
            if not isinstance(getattr(self, name), kind):
                raise ConfigError(
                    f"The {name!r} of a CandidateTask must be a {kind.__name__}; got "
                    f"{type(getattr(self, name)).__name__}."
                )
        if len(specs) < self.config.num_stages:
            raise ConfigError(
                f"The 'architecture' of a CandidateTask must have at least one cell per stage "
                f"(config.num_stages = {self.config.num_stages}); got {len(specs)} cell(s)."
            )
        object.__setattr__(
            self, "seed", check_int("CandidateTask", "seed", self.seed, 0, ConfigError)
        )
        object.__setattr__(
            self, "attempt", check_int("CandidateTask", "attempt", self.attempt, 1, ConfigError)
        )
        if self.fault is not None and not isinstance(self.fault, FaultPlan):
            raise ConfigError(
                f"The 'fault' of a CandidateTask must be a FaultPlan or None; got "
                f"{type(self.fault).__name__}."
            )

    def __hash__(self) -> int:  # the architecture's dicts are not hashable; its JSON is
        return hash((self.task_id, self.arch_json, self.dataset, self.config, self.seed,
                     self.attempt, self.fault))  # fmt: skip

    def cells(self) -> tuple[CellSpec, ...]:
        """The architecture as :class:`CellSpec` objects."""
        return tuple(CellSpec.from_dict(cell) for cell in self.architecture)

    @property
    def arch_json(self) -> str:
        """The architecture as canonical JSON text (a list of NAS-Bench-101 cells)."""
        return canonical_json(list(self.architecture))

    def evaluator_config(self) -> dict[str, Any]:
        """What, besides the architecture and seed, sets the result: the recipe and the data.

        ``{"candidate": config.to_dict(), "dataset": dataset.to_dict()}``; the store's
        ``evaluator_config_hash`` is its hash (:meth:`evaluator_config_hash`).
        """
        return {"candidate": self.config.to_dict(), "dataset": self.dataset.to_dict()}

    def evaluator_config_hash(self) -> str:
        """SHA-256 of :meth:`evaluator_config` as canonical JSON (= ``analysis.hash_config``)."""
        return json_sha256(self.evaluator_config())


def run_task(task: CandidateTask, device: str | torch.device = "cpu") -> CandidateResult:
    """Evaluate ``task`` in this process on ``device`` (what every executor's worker runs).

    Never raises for the task's own problems: an error while loading the data or building the
    network is a FAILED result too. ``task.fault.kill_worker`` is not honoured here.
    """
    started = time.perf_counter()
    try:
        dataset = task.dataset.load(device)
        return train_candidate(
            task.cells(), dataset, task.config, task.seed, device, fault=task.fault
        )
    except Exception as err:  # a bad spec or an unavailable device: this task fails, not all
        return CandidateResult.failure(
            f"{type(err).__name__}: {err}",
            device=str(device),
            seconds=time.perf_counter() - started,
        )


def worker_died(detail: str) -> CandidateResult:
    """The FAILED result of a task whose worker process died (its error starts ``WORKER_DIED``)."""
    return CandidateResult.failure(f"{WORKER_DIED} ({detail})", device="unknown")


def _check_unique(tasks: Iterable[CandidateTask]) -> list[CandidateTask]:
    out = list(tasks)
    seen: set[str] = set()
    for task in out:
        if not isinstance(task, CandidateTask):
            raise ConfigError(f"Executor.map takes CandidateTask objects; got {task!r:.200}.")
        if task.task_id in seen:
            raise ConfigError(
                f"The task ids given to Executor.map must be unique; got {task.task_id!r} twice."
            )
        seen.add(task.task_id)
    return out


class Executor(abc.ABC):
    """Evaluates candidate tasks; the contract of every backend.

    :meth:`map` yields one ``(task, result)`` pair per task, each task exactly once (the very
    object given), in the order the results come in. It raises only for bad arguments (not
    tasks, or repeated task ids): a task that diverges, raises, or whose worker process dies
    yields a DIVERGED or FAILED result (a dead worker's error starts ``"worker died"``) and the
    other tasks go on. Executors do not retry tasks that fail or diverge: the caller decides,
    with a new ``attempt``. Only a dead worker makes a backend run a task again (the local pool
    reruns, one at a time, the tasks that were running beside it; Ray reruns a task up to
    ``max_retries`` times, and a FAILED result's error says how often). Use an executor as a
    context manager, or call :meth:`close`.

    ``capacity`` is how many candidates the backend trains at once: a driver hands it batches
    of about that size, so that a killed driver leaves no more than that many in flight.
    """

    capacity: int = 1

    def map(
        self, tasks: Iterable[CandidateTask]
    ) -> Iterator[tuple[CandidateTask, CandidateResult]]:
        """Evaluate ``tasks``; yield ``(task, result)`` as each result comes in.

        Raises (at once, before anything runs):
            ConfigError: an item is not a CandidateTask, or two tasks share an id.
        """
        return self._map(_check_unique(tasks))

    @abc.abstractmethod
    def _map(self, tasks: list[CandidateTask]) -> Iterator[tuple[CandidateTask, CandidateResult]]:
        """Evaluate the checked ``tasks``, as :meth:`map` promises."""

    def close(self) -> None:  # noqa: B027 - a no-op unless a backend holds resources
        """Release the executor's workers (idempotent)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
