"""Executors: evaluate a batch of candidate trainings in this process, a process pool, or Ray.

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
import collections
import concurrent.futures as cf
import contextlib
import functools
import hashlib
import inspect
import json
import logging
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any, Self

import numpy as np
import torch

from dagspace.cell import CellSpec
from dagspace.checks import check_int
from dagspace.errors import InvalidCellError
from surrogate.candidate import CandidateConfig, CandidateResult, FaultPlan, train_candidate
from surrogate.data import Dataset, load_dataset
from surrogate.device import available_devices, resolve_device
from surrogate.errors import ConfigError

__all__ = [
    "EXECUTORS",
    "RAY_GPU_FRACTION",
    "CandidateTask",
    "DatasetSpec",
    "Executor",
    "LocalExecutor",
    "RayExecutor",
    "cpu_count",
    "make_executor",
    "run_task",
]

WORKER_DIED = "worker died"  # how the error of a task whose worker process died begins

# the share of a GPU a Ray task reserves under num_gpus_per_task="auto": four small candidate
# networks (far from filling a GPU one at a time) are packed on each GPU
RAY_GPU_FRACTION = 0.25


def cpu_count() -> int:
    """The CPU cores this process may run on."""
    with contextlib.suppress(AttributeError):  # sched_getaffinity is Linux-only
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# ------------------------------------------------------------------------------------ tasks


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


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


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
        return _canonical_json(list(self.architecture))

    def evaluator_config(self) -> dict[str, Any]:
        """What, besides the architecture and seed, sets the result: the recipe and the data.

        ``{"candidate": config.to_dict(), "dataset": dataset.to_dict()}``; the store's
        ``evaluator_config_hash`` is its hash (:meth:`evaluator_config_hash`).
        """
        return {"candidate": self.config.to_dict(), "dataset": self.dataset.to_dict()}

    def evaluator_config_hash(self) -> str:
        """SHA-256 of :meth:`evaluator_config` as canonical JSON (= ``analysis.hash_config``)."""
        return hashlib.sha256(_canonical_json(self.evaluator_config()).encode()).hexdigest()


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


def _died(detail: str) -> CandidateResult:
    return CandidateResult.failure(f"{WORKER_DIED} ({detail})", device="unknown")


def _outcome(future: cf.Future[CandidateResult]) -> CandidateResult:
    """A settled future's result; an exception that :func:`run_task` could not catch (say, a
    result that failed to unpickle) is a FAILED result too."""
    error = future.exception()
    if error is None:
        return future.result()
    return CandidateResult.failure(f"{type(error).__name__}: {error}", device="unknown")


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


# -------------------------------------------------------------------------------- executors


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


# -- the local executor: this process, or a pool of spawned processes --------------------------

_WORKER_DEVICE = "cpu"  # set in each pool worker by _init_worker


def _init_worker(counter: Any, devices: tuple[str, ...], threads: int, driver: int) -> None:
    """Pool initializer: this worker's device (round-robin over ``devices``) and threads."""
    global _WORKER_DEVICE
    with counter.get_lock():
        index = counter.value
        counter.value += 1
    _WORKER_DEVICE = devices[index % len(devices)]
    torch.set_num_threads(threads)
    _exit_with_parent(driver)  # the driver's pid, taken before the spawn: it may be dead now


def _exit_with_parent(parent: int, interval: float = 1.0) -> None:
    """End this worker within ``interval`` seconds of its driver's death (a SIGKILLed driver
    cannot shut its pool down; an orphaned worker would train on for nobody and hold the
    driver's output pipes open)."""
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _has_main_guard(source: str) -> bool:
    """Whether a module's source has a top-level ``if __name__ == "__main__":`` block."""
    import ast

    def is_guard(test: ast.expr) -> bool:
        if not (isinstance(test, ast.Compare) and len(test.ops) == 1
                and isinstance(test.ops[0], ast.Eq)):  # fmt: skip
            return False
        sides = [test.left, test.comparators[0]]
        names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
        consts = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
        return bool(names and consts)

    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return True  # not ours to judge
    return any(isinstance(node, ast.If) and is_guard(node.test) for node in tree.body)


def check_main_guard(main: Any = None) -> None:
    """Refuse to start a spawn pool from a script without ``if __name__ == "__main__":``.

    A spawned worker re-imports the caller's main script (as ``__mp_main__``); without the
    guard the script's job runs again inside every worker, which then dies trying to start a
    pool of its own, and every candidate fails three times as "worker died". (PyTorch's
    DataLoader documentation gives the same advice.) Interactive sessions, ``-c`` and
    notebooks have no script to re-import and pass.

    Raises:
        MainGuardError: the main script has no top-level ``if __name__ == "__main__":``.
    """
    from surrogate.errors import MainGuardError

    main = sys.modules.get("__main__") if main is None else main
    path = getattr(main, "__file__", None)
    if not path or not str(path).endswith(".py") or not os.path.isfile(path):
        return
    try:
        with open(path, encoding="utf-8") as handle:
            source = handle.read()
    except (OSError, UnicodeDecodeError):
        return
    if not _has_main_guard(source):
        raise MainGuardError(
            f"{path} starts a dagrank job at import time, without an 'if __name__ == "
            f'"__main__":\' guard; the worker pool re-imports the script in every worker '
            f"(spawn), which would run the job again there. Put the script's job under "
            f"'if __name__ == \"__main__\":' (or train in this process: "
            f"executor=LocalExecutor(workers=1))."
        )


def _pool_run(task: CandidateTask) -> CandidateResult:
    """What a pool worker runs; ``fault.kill_worker`` ends the worker process, as a crash."""
    if task.fault is not None and task.fault.kill_worker:
        os._exit(1)
    return run_task(task, _WORKER_DEVICE)


class LocalExecutor(Executor):
    """Runs tasks on this machine: in this process (``workers=1``), or in a pool of
    ``workers`` spawned processes, one task per worker at a time.

    Args:
        workers: how many tasks run at once.
        devices: where tasks run, e.g. ``["cuda:0", "cuda:1"]``; pool workers take them
            round-robin (so ``workers=len(devices)`` puts one candidate on each GPU). Default:
            every CUDA device, or the CPU when there is none.
        threads_per_worker: torch's intra-op threads in each worker; default ``cpu_count //
            workers`` (at least 1). With ``workers=1`` the default leaves this process's
            setting alone; a given value is set while :meth:`map` runs, then restored.

    On the CPU, results are bit-identical for the same task and the same number of threads,
    whether run in this process or in a pool. A pool worker that dies (a segfault, the OOM
    killer, ``os._exit``) breaks the pool: the pool is rebuilt, and the tasks that were running
    are run again one at a time, to tell the task that kills its worker (FAILED, ``"worker died
    (...)"``) from the ones that were merely beside it.
    """

    def __init__(
        self,
        workers: int = 1,
        devices: Sequence[str] | None = None,
        *,
        threads_per_worker: int | None = None,
    ) -> None:
        self.workers = check_int("LocalExecutor", "workers", workers, 1, ConfigError)
        self.capacity = self.workers
        if devices is None:
            devices = [d for d in available_devices() if d != "cpu"] or ["cpu"]
        if isinstance(devices, str) or not devices:
            raise ConfigError(
                "The 'devices' parameter of LocalExecutor must be a non-empty list of devices "
                f"(e.g. ['cuda:0', 'cuda:1']); got {devices!r}."
            )
        self.devices = tuple(str(resolve_device(d)) for d in devices)
        if threads_per_worker is not None:
            threads_per_worker = check_int(
                "LocalExecutor", "threads_per_worker", threads_per_worker, 1, ConfigError
            )
        self.threads_per_worker = threads_per_worker
        self._pool: cf.ProcessPoolExecutor | None = None

    def __repr__(self) -> str:
        return (
            f"LocalExecutor(workers={self.workers}, devices={list(self.devices)}, "
            f"threads_per_worker={self.threads_per_worker})"
        )

    def _map(self, tasks: list[CandidateTask]) -> Iterator[tuple[CandidateTask, CandidateResult]]:
        return self._map_here(tasks) if self.workers == 1 else self._map_pool(tasks)

    def _map_here(
        self, tasks: list[CandidateTask]
    ) -> Iterator[tuple[CandidateTask, CandidateResult]]:
        before = torch.get_num_threads()
        try:
            for task in tasks:
                if self.threads_per_worker is not None:
                    torch.set_num_threads(self.threads_per_worker)
                yield task, run_task(task, self.devices[0])
        finally:
            torch.set_num_threads(before)

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        check_main_guard()
        context = mp.get_context("spawn")  # no fork: torch's threads and CUDA do not survive it
        threads = self.threads_per_worker or max(1, cpu_count() // self.workers)
        counter = context.Value("i", 0)
        return cf.ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=context,
            initializer=_init_worker,
            initargs=(counter, self.devices, threads, os.getpid()),
        )

    def _drop_pool(self, *, wait: bool) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=True)
            self._pool = None

    def _map_pool(
        self, tasks: list[CandidateTask]
    ) -> Iterator[tuple[CandidateTask, CandidateResult]]:
        pending = collections.deque(tasks)
        suspects: collections.deque[CandidateTask] = collections.deque()  # run one at a time
        running: dict[cf.Future[CandidateResult], CandidateTask] = {}
        try:
            while pending or suspects or running:
                self._fill(pending, suspects, running)
                done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                if not any(isinstance(f.exception(), BrokenProcessPool) for f in done):
                    for future in done:
                        yield running.pop(future), _outcome(future)
                    continue
                # A worker died: every task in the pool is lost. Rebuild, then sort them out.
                self._drop_pool(wait=True)
                isolated = len(running) == 1
                for future, task in list(running.items()):
                    error = future.exception()
                    if not isinstance(error, BrokenProcessPool):
                        yield task, _outcome(future)
                    elif isolated:
                        yield task, _died(f"{type(error).__name__}: {error}")
                    else:
                        suspects.append(task)
                running.clear()
        finally:
            if running:  # the caller stopped early: let the running tasks end, drop the rest
                self._drop_pool(wait=False)

    def _fill(
        self,
        pending: collections.deque[CandidateTask],
        suspects: collections.deque[CandidateTask],
        running: dict[cf.Future[CandidateResult], CandidateTask],
    ) -> None:
        """Submit tasks: one suspect alone, or pending tasks up to one per worker."""
        if running and suspects:
            return
        source, limit = (suspects, 1) if suspects else (pending, self.workers)
        while source and len(running) < limit:
            if self._pool is None:
                self._pool = self._new_pool()
            task = source.popleft()
            try:
                future = self._pool.submit(_pool_run, task)
            except BrokenProcessPool:
                # A worker died while no task of ours ran on it (say, killed between two calls
                # of map). With tasks running, the caller's wait sees their futures break and
                # sorts them out; with none, a fresh pool is safe to start here.
                source.appendleft(task)
                if running:
                    return
                self._drop_pool(wait=True)
                continue
            running[future] = task

    def close(self) -> None:
        self._drop_pool(wait=True)


# -- the Ray executor ----------------------------------------------------------------------------


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as err:
        raise ConfigError(
            "The Ray executor needs the 'ray' package, which is not installed: "
            "pip install 'dagrank[ray]'."
        ) from err
    return ray


def _ray_run(task: CandidateTask, threads: int, gpus: float) -> CandidateResult:
    """What a Ray task runs (Ray shows it only the GPUs it was given: ``cuda`` is its own)."""
    if task.fault is not None and task.fault.kill_worker:
        os._exit(1)
    torch.set_num_threads(threads)
    device = "cuda" if gpus > 0 and torch.cuda.is_available() else "cpu"
    return run_task(task, device)


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[0] if lines else ''}"


class RayExecutor(Executor):
    """Runs each task as a Ray task, on a local Ray instance or a cluster.

    Args:
        address: a cluster to join (``"auto"``, ``"ray://host:10001"``, ...); ``None`` starts
            a local instance with ``num_cpus`` CPUs (default: this machine's), no dashboard.
            If Ray is already initialised in this process, that instance is used (and left
            running by :meth:`close`).
        num_cpus_per_task: CPUs Ray reserves for a task (also its torch threads).
        num_gpus_per_task: GPUs Ray reserves per task (a fraction packs several small
            candidates on one GPU); with a GPU, the task trains on it. ``"auto"``:
            :data:`RAY_GPU_FRACTION` of a GPU when the cluster has GPUs, else none.
        max_retries: how often Ray reruns a task whose worker process died; after that the
            task is FAILED with ``"worker died (...)"``.

    Every node must be able to import this package (install it in the cluster's image) and
    load the tasks' datasets locally.

    Raises:
        ConfigError: ``ray`` is not installed (``pip install 'dagrank[ray]'``), or a bad
            argument.
    """

    def __init__(
        self,
        address: str | None = None,
        num_cpus_per_task: int = 1,
        num_gpus_per_task: float | str = 0,
        max_retries: int = 2,
        *,
        num_cpus: int | None = None,
    ) -> None:
        self.threads = check_int(
            "RayExecutor", "num_cpus_per_task", num_cpus_per_task, 1, ConfigError
        )
        self.max_retries = check_int("RayExecutor", "max_retries", max_retries, 0, ConfigError)
        auto = num_gpus_per_task == "auto"
        ok = isinstance(num_gpus_per_task, (int, float)) and not isinstance(num_gpus_per_task, bool)
        if not auto and (not ok or not 0 <= num_gpus_per_task):  # type: ignore[operator]
            raise ConfigError(
                "The 'num_gpus_per_task' parameter of RayExecutor must be a number >= 0 or "
                f"'auto'; got {num_gpus_per_task!r}."
            )
        if num_cpus is not None:
            check_int("RayExecutor", "num_cpus", num_cpus, 1, ConfigError)
        ray = self._ray = _import_ray()
        self._owns_ray = False
        if not ray.is_initialized():
            options: dict[str, Any] = {}
            if address is None:
                options["num_cpus"] = num_cpus or cpu_count()
            ray.init(
                address=address,
                ignore_reinit_error=True,
                include_dashboard=False,
                logging_level=logging.WARNING,
                log_to_driver=False,
                **options,
            )
            self._owns_ray = True
        resources = ray.cluster_resources()
        if auto:
            self.gpus = RAY_GPU_FRACTION if resources.get("GPU", 0) > 0 else 0.0
        else:
            self.gpus = float(num_gpus_per_task)  # type: ignore[arg-type]
        self._remote = ray.remote(
            num_cpus=self.threads, num_gpus=self.gpus, max_retries=self.max_retries
        )(_ray_run)
        slots = resources.get("CPU", 1) // self.threads
        if self.gpus > 0:
            slots = min(slots, resources.get("GPU", 0) // self.gpus)
        self.capacity = max(1, int(slots))

    def _map(self, tasks: list[CandidateTask]) -> Iterator[tuple[CandidateTask, CandidateResult]]:
        ray = self._ray
        died = (
            ray.exceptions.WorkerCrashedError,
            ray.exceptions.NodeDiedError,
            ray.exceptions.LocalRayletDiedError,
            ray.exceptions.OutOfMemoryError,  # Ray's memory monitor killed the worker
        )
        refs = {self._remote.remote(task, self.threads, self.gpus): task for task in tasks}
        try:
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=1)
                for ref in ready:
                    task = refs.pop(ref)
                    try:
                        result = ray.get(ref)
                    except died as err:
                        result = _died(f"{_first_line(err)}; retried {self.max_retries}x")
                    except ray.exceptions.RayError as err:
                        result = CandidateResult.failure(_first_line(err), device="unknown")
                    yield task, result
        finally:
            for ref in refs:  # the caller stopped early
                with contextlib.suppress(Exception):
                    ray.cancel(ref)

    def close(self) -> None:
        if self._owns_ray and self._ray.is_initialized():
            self._ray.shutdown()
        self._owns_ray = False


# ----------------------------------------------------------------------------------- factory

EXECUTORS: dict[str, type[Executor]] = {"local": LocalExecutor, "ray": RayExecutor}


def make_executor(kind: str, **options: Any) -> Executor:
    """The executor ``kind`` (``"local"`` or ``"ray"``) built with ``options``.

    Raises:
        ConfigError: an unknown kind or option (or what the executor itself rejects).
    """
    cls = EXECUTORS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ConfigError(
            f"The 'kind' parameter of make_executor must be one of {sorted(EXECUTORS)}; got "
            f"{kind!r}."
        )
    try:
        inspect.signature(cls).bind(**options)
    except TypeError as err:
        raise ConfigError(f"Bad options for the {kind!r} executor: {err}.") from None
    return cls(**options)
