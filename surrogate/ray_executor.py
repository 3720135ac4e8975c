"""The Ray executor: candidate tasks on a Ray cluster (or a local Ray instance), with GPU shares."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

import torch

from dagspace.checks import check_int
from surrogate.candidate import CandidateResult
from surrogate.device import cpu_count
from surrogate.errors import ConfigError
from surrogate.tasks import CandidateTask, Executor, run_task, worker_died

__all__ = ["RAY_GPU_FRACTION", "RayExecutor"]

# the share of a GPU a Ray task reserves under num_gpus_per_task="auto": four small candidate
# networks (far from filling a GPU one at a time) are packed on each GPU
RAY_GPU_FRACTION = 0.25


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
                        result = worker_died(f"{_first_line(err)}; retried {self.max_retries}x")
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
