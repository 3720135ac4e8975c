"""Executors: evaluate a batch of candidate trainings in this process or a pool of processes
(:class:`LocalExecutor`), or on Ray (:class:`~surrogate.ray_executor.RayExecutor`), behind the
contract of :class:`surrogate.tasks.Executor`; :func:`make_executor` builds either by name.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import inspect
import multiprocessing as mp
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import torch

from dagspace.checks import check_int
from surrogate.candidate import CandidateResult
from surrogate.device import available_devices, cpu_count, resolve_device
from surrogate.errors import ConfigError
from surrogate.ray_executor import RayExecutor
from surrogate.tasks import CandidateTask, Executor, run_task, worker_died

__all__ = [
    "EXECUTORS",
    "LocalExecutor",
    "check_main_guard",
    "make_executor",
]


def _outcome(future: cf.Future[CandidateResult]) -> CandidateResult:
    """A settled future's result; an exception that :func:`run_task` could not catch (say, a
    result that failed to unpickle) is a FAILED result too."""
    error = future.exception()
    if error is None:
        return future.result()
    return CandidateResult.failure(f"{type(error).__name__}: {error}", device="unknown")


_WORKER_DEVICE = "cpu"  # set in each pool worker by _init_worker


def _init_worker(counter: Any, devices: tuple[str, ...], threads: int, driver: int) -> None:
    """Pool initializer: this worker's device (round-robin over ``devices``) and threads."""
    global _WORKER_DEVICE
    with counter.get_lock():
        index = counter.value
        counter.value += 1
    _WORKER_DEVICE = devices[index % len(devices)]
    torch.set_num_threads(threads)
    # Ctrl-C reaches the whole process group: the driver alone handles it (and shuts the pool
    # down); a worker that took it too would print a traceback for every Ctrl-C
    signal.signal(signal.SIGINT, signal.SIG_IGN)
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

    def _kill_pool(self) -> None:
        """End every worker now (their tasks are lost; the store keeps what was finished)."""
        if self._pool is not None:
            for process in list(getattr(self._pool, "_processes", {}).values()):
                process.kill()
            self._drop_pool(wait=False)

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
                        yield task, worker_died(f"{type(error).__name__}: {error}")
                    else:
                        suspects.append(task)
                running.clear()
        except KeyboardInterrupt:  # Ctrl-C: the workers ignore it; end them, do not wait
            self._kill_pool()
            raise
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
