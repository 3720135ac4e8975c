"""Which executor a job trains its candidates with when none is given (CPU here; the GPU
machines are simulated by what ``available_devices`` reports)."""

from __future__ import annotations

import pytest
import torch

import analysis.evaluation as evaluation
import surrogate.batched as batched
import surrogate.device as device_module
import surrogate.executors as executors
from surrogate.batched import BatchedExecutor
from surrogate.executors import LocalExecutor


@pytest.fixture
def gpus(monkeypatch: pytest.MonkeyPatch):
    """Pretend this machine has the CUDA devices given to the returned function."""

    def pretend(count: int) -> None:
        names = ["cpu", *(f"cuda:{i}" for i in range(count))]
        monkeypatch.setattr(device_module, "available_devices", lambda: names)
        for module in (batched, executors):
            monkeypatch.setattr(module, "resolve_device", lambda d: torch.device(str(d)))

    return pretend


def test_cpu_default_is_a_pool_of_single_threaded_workers(gpus) -> None:
    gpus(0)
    executor = evaluation.default_executor("auto")
    assert isinstance(executor, LocalExecutor)
    assert executor.devices == ("cpu",)
    assert executor.threads_per_worker == 1


def test_every_cpu_executor_of_a_job_trains_at_the_jobs_thread_count(gpus) -> None:
    """Issue 20, item 10: `--workers N` and `--executor batched` took the machine's cores
    (cores // workers, or the process's threads), so their numbers depended on the machine."""
    from surrogate.device import CPU_TRAINING_THREADS

    gpus(0)
    assert evaluation.make_job_executor("local", workers=1).threads_per_worker == 1
    assert evaluation.make_job_executor("local", workers=3).threads_per_worker == 1
    assert evaluation.make_job_executor("batched").threads == CPU_TRAINING_THREADS == 1


def test_one_gpu_default_is_batched_on_that_gpu(gpus) -> None:
    gpus(1)
    executor = evaluation.default_executor("auto")
    assert isinstance(executor, BatchedExecutor)
    assert (executor.device, executor.batch_size) == ("cuda:0", evaluation.GPU_BATCH)
    assert executor.capacity == evaluation.GPU_BATCH


def test_several_gpus_get_one_worker_each(gpus) -> None:
    gpus(3)
    executor = evaluation.default_executor(None)
    assert isinstance(executor, LocalExecutor)
    assert executor.workers == 3
    assert executor.devices == ("cuda:0", "cuda:1", "cuda:2")


def test_an_explicit_cpu_device_keeps_the_pool_on_a_gpu_machine(gpus) -> None:
    gpus(2)
    executor = evaluation.default_executor("cpu")
    assert isinstance(executor, LocalExecutor)
    assert executor.devices == ("cpu",)
