"""Tests of surrogate.executors: tasks as plain data, the local executor (in this process and in
a process pool), the Ray executor, and what a dying worker gives."""

from __future__ import annotations

import dataclasses
import math
import multiprocessing as mp
import os
import pickle
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from analysis.results import hash_config
from dagspace.cell import CellSpec
from dagspace.errors import InvalidCellError
from surrogate.candidate import CandidateResult, CandidateStatus, FaultPlan, candidate_preset
from surrogate.errors import ConfigError
from surrogate.executors import EXECUTORS, LocalExecutor, make_executor
from surrogate.ray_executor import RayExecutor
from surrogate.tasks import WORKER_DIED, CandidateTask, DatasetSpec, run_task

C3, C1, MP = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"
FORK = {"matrix": [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]],
        "ops": ["input", C3, MP, "output"]}  # fmt: skip
CHAIN = {"matrix": [[0, 1, 0], [0, 0, 1], [0, 0, 0]], "ops": ["input", C1, "output"]}
DISCONNECTED = {"matrix": [[0, 1, 0], [0, 0, 0], [0, 0, 0]], "ops": ["input", C3, "output"]}
DATA = DatasetSpec("digits", seed=0, limit=200)
SMOKE = candidate_preset("smoke").replace(epochs=1)


def task(task_id: str, seed: int = 0, **kwargs: object) -> CandidateTask:
    return CandidateTask(task_id, (FORK, CHAIN), DATA, SMOKE, seed, **kwargs)  # type: ignore[arg-type]


def numbers(result: CandidateResult) -> dict[str, object]:
    """Everything a result holds except its wall time (NaN as a string, so == works)."""
    out = dataclasses.asdict(result)
    del out["train_seconds"]
    return {k: "nan" if isinstance(v, float) and math.isnan(v) else v for k, v in out.items()}


def reference(tasks: list[CandidateTask]) -> dict[str, dict[str, object]]:
    """run_task on each task, one after the other, in this process with one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return {t.task_id: numbers(run_task(t)) for t in tasks}
    finally:
        torch.set_num_threads(before)


def collect(
    pairs: Iterator[tuple[CandidateTask, CandidateResult]], tasks: list[CandidateTask]
) -> dict[str, CandidateResult]:
    """``{task_id: result}``, checking that each given task came back once, as the same object."""
    out: dict[str, CandidateResult] = {}
    for given, result in pairs:
        assert any(given is t for t in tasks) and given.task_id not in out
        out[given.task_id] = result
    assert sorted(out) == sorted(t.task_id for t in tasks)
    return out


BATCH = [task("a", 0), task("b", 1), task("c", 2)]


@pytest.fixture(scope="module")
def expected() -> dict[str, dict[str, object]]:
    return reference(BATCH)


@pytest.fixture(scope="module")
def pool() -> Iterator[LocalExecutor]:
    """One two-worker pool for the module (spawning workers is the slow part)."""
    with LocalExecutor(workers=2, devices=["cpu"], threads_per_worker=1) as executor:
        yield executor


# --------------------------------------------------------------------------- tasks


def test_task_holds_plain_validated_data() -> None:
    t = CandidateTask("t", [CellSpec.from_dict(FORK), CHAIN], DATA, SMOKE, 3, attempt=2)
    assert t.architecture == (FORK, CHAIN) and all(type(c) is dict for c in t.architecture)
    assert t.cells() == (CellSpec.from_dict(FORK), CellSpec.from_dict(CHAIN))
    assert t.arch_json == (
        '[{"matrix":[[0,1,1,0],[0,0,0,1],[0,0,0,1],[0,0,0,0]],"ops":["input","conv3x3-bn-relu",'
        '"maxpool3x3","output"]},{"matrix":[[0,1,0],[0,0,1],[0,0,0]],"ops":["input",'
        '"conv1x1-bn-relu","output"]}]'
    )
    same = CandidateTask("t", (FORK, CHAIN), DATA, SMOKE, 3, attempt=2)
    assert t == same and hash(t) == hash(same) and len({t, same}) == 1
    assert pickle.loads(pickle.dumps(t)) == t
    assert (t.seed, t.attempt, t.fault) == (3, 2, None)


def test_evaluator_config_hash() -> None:
    t = task("t")
    assert t.evaluator_config() == {"candidate": SMOKE.to_dict(), "dataset": DATA.to_dict()}
    assert t.evaluator_config_hash() == hash_config(t.evaluator_config())  # the store's hash
    # the id, seed, attempt and faults do not set the evaluator; the recipe and data do
    assert task("u", seed=5, attempt=3).evaluator_config_hash() == t.evaluator_config_hash()
    other_config = CandidateTask("t", (FORK, CHAIN), DATA, SMOKE.replace(lr=0.1), 0)
    other_data = CandidateTask("t", (FORK, CHAIN), dataclasses.replace(DATA, limit=300), SMOKE, 0)
    hashes = {t.evaluator_config_hash(), other_config.evaluator_config_hash(),
              other_data.evaluator_config_hash()}  # fmt: skip
    assert len(hashes) == 3


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"task_id": ""}, ConfigError, "'task_id' of a CandidateTask must be a non-empty string"),
        ({"task_id": 7}, ConfigError, "'task_id' of a CandidateTask .*; got 7"),
        ({"architecture": FORK}, InvalidCellError,
         "'architecture' of a CandidateTask must be a list of cells in NAS-Bench-101 form; got"
         " dict"),
        ({"architecture": []}, InvalidCellError, "'architecture' of a CandidateTask has no cell"),
        ({"architecture": [FORK, {"matrix": [[0, 1], [1, 0]], "ops": ["input", "output"]}]},
         InvalidCellError, "must be strictly upper-triangular"),
        ({"architecture": [FORK, {"matrix": [[0, 1, 0], [0, 0, 1], [0, 0, 0]],
                                  "ops": ["input", "conv5x5", "output"]}]},
         InvalidCellError, "Unknown operation 'conv5x5'"),
        ({"architecture": [FORK, {"matrix": [[0, 1], [0, 0]]}]}, InvalidCellError,
         r"Cell 1 of a CandidateTask's architecture must be labelled"),
        ({"architecture": [FORK]}, ConfigError,
         r"at least one cell per stage \(config.num_stages = 2\); got 1 cell\(s\)"),
        ({"dataset": "digits"}, ConfigError, "'dataset' of a CandidateTask must be a DatasetSpec;"
         " got str"),
        ({"config": SMOKE.to_dict()}, ConfigError,
         "'config' of a CandidateTask must be a CandidateConfig; got dict"),
        ({"seed": -1}, ConfigError, "'seed' parameter of CandidateTask must be an int >= 0; got"
         " -1"),
        ({"attempt": 0}, ConfigError, "'attempt' parameter of CandidateTask must be an int >= 1"),
        ({"fault": {"kill_worker": True}}, ConfigError,
         "'fault' of a CandidateTask must be a FaultPlan or None; got dict"),
    ],
)  # fmt: skip
def test_task_validation(changes: dict[str, object], error: type[Exception], message: str) -> None:
    args = {"task_id": "t", "architecture": (FORK, CHAIN), "dataset": DATA, "config": SMOKE,
            "seed": 0, **changes}  # fmt: skip
    with pytest.raises(error, match=message):
        CandidateTask(**args)  # type: ignore[arg-type]


def test_dataset_spec_normalises_numbers() -> None:
    spec = DatasetSpec(seed=np.int64(0), limit=np.int64(200), val_fraction=np.float32(0.25))
    t = CandidateTask("t", (FORK, CHAIN), spec, SMOKE, 0)
    assert t.evaluator_config_hash() == hash_config(t.evaluator_config())  # JSON-ready
    assert spec.to_dict() == {"name": "digits", "seed": 0, "root": None, "limit": 200,
                              "val_fraction": 0.25, "test_fraction": 0.2}  # fmt: skip
    assert type(spec.seed) is int and type(spec.limit) is int
    assert DatasetSpec(root=Path("/data")).root == os.fspath(Path("/data"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": ""}, "'name' of a DatasetSpec must be a non-empty string; got ''"),
        ({"seed": -2}, "'seed' parameter of DatasetSpec must be an int >= 0; got -2"),
        ({"limit": 0}, "'limit' parameter of DatasetSpec must be an int >= 1; got 0"),
        ({"root": 3}, "'root' of a DatasetSpec must be a path or None; got 3"),
        ({"val_fraction": 0}, r"'val_fraction' of a DatasetSpec must be a number in \(0, 1\)"),
        ({"test_fraction": "0.2"}, r"'test_fraction' .* in \(0, 1\); got '0.2'"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "must sum to less than 1"),
    ],
)
def test_dataset_spec_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DatasetSpec(**kwargs)  # type: ignore[arg-type]


def test_run_task_never_raises_for_the_task_itself() -> None:
    bad_data = CandidateTask("t", (FORK, CHAIN), DatasetSpec("no-such-data"), SMOKE, 0)
    result = run_task(bad_data)
    assert result.status is CandidateStatus.FAILED
    assert result.error.startswith("DatasetError:") and "no-such-data" in result.error
    untrainable = run_task(CandidateTask("t", (DISCONNECTED, CHAIN), DATA, SMOKE, 0))
    assert untrainable.status is CandidateStatus.FAILED
    assert untrainable.error.startswith("InvalidCellError:")
    assert "input cannot reach its output" in untrainable.error
    diverged = run_task(task("t", fault=FaultPlan(nan_at_epoch=0)))
    assert diverged.status is CandidateStatus.DIVERGED and diverged.diverged_epoch == 0
    killer = run_task(task("t", fault=FaultPlan(kill_worker=True)))  # not honoured here
    assert killer.status is CandidateStatus.COMPLETE


# --------------------------------------------------------------------------- local executor


def test_in_process_equals_run_task(expected: dict[str, dict[str, object]]) -> None:
    faulty = [task("nan", fault=FaultPlan(nan_at_epoch=0)),
              task("raise", fault=FaultPlan(raise_at_epoch=0))]  # fmt: skip
    tasks = [*BATCH, *faulty]
    before = torch.get_num_threads()
    with LocalExecutor(workers=1, devices=["cpu"], threads_per_worker=1) as executor:
        pairs = []
        for pair in executor.map(tasks):
            assert torch.get_num_threads() == 1
            pairs.append(pair)
    assert torch.get_num_threads() == before  # restored
    results = collect(iter(pairs), tasks)
    assert [t.task_id for t, _ in pairs] == [t.task_id for t in tasks]  # in order
    assert {k: numbers(results[k]) for k in expected} == expected
    assert results["nan"].status is CandidateStatus.DIVERGED
    assert results["raise"].status is CandidateStatus.FAILED
    assert "injected fault at epoch 0" in results["raise"].error


@pytest.mark.slow
def test_pool_equals_run_task(pool: LocalExecutor, expected: dict[str, dict[str, object]]) -> None:
    results = collect(pool.map(BATCH), BATCH)
    assert {k: numbers(r) for k, r in results.items()} == expected
    again = collect(pool.map(BATCH), BATCH)  # the pool is reused across calls
    assert {k: numbers(r) for k, r in again.items()} == expected


@pytest.mark.slow
def test_pool_survives_a_worker_killed_between_batches(
    pool: LocalExecutor, expected: dict[str, dict[str, object]]
) -> None:
    collect(pool.map(BATCH[:1]), BATCH[:1])  # the pool is up (warm after the test above)
    workers = mp.active_children()
    assert workers
    os.kill(workers[0].pid, signal.SIGKILL)  # as the OOM killer would
    workers[0].join()
    # Give the pool a moment to notice (if it has not, the next batch breaks it instead:
    # either way every task must complete).
    time.sleep(0.5)
    results = collect(pool.map(BATCH[1:2]), BATCH[1:2])  # one task: one worker to start
    assert numbers(results["b"]) == expected["b"]


@pytest.mark.slow
def test_pool_worker_death_fails_only_its_task(
    pool: LocalExecutor, expected: dict[str, dict[str, object]]
) -> None:
    killer = task("killer", fault=FaultPlan(kill_worker=True))
    tasks = [BATCH[0], killer, BATCH[1]]  # the killer shares the pool with "a"
    results = collect(pool.map(tasks), tasks)
    died = results.pop("killer")
    assert died.status is CandidateStatus.FAILED
    assert died.error.startswith(f"{WORKER_DIED} (BrokenProcessPool")
    # "a" was run again, alone, in a fresh pool; "b" in another after the killer's death
    assert {k: numbers(r) for k, r in results.items()} == {k: expected[k] for k in results}


@pytest.mark.slow
def test_pool_workers_leave_ctrl_c_to_the_driver(pool: LocalExecutor) -> None:
    """Issue 20, item 11: Ctrl-C reaches every process of the group; a worker ignores it (no
    traceback per worker), and the driver, interrupted, ends its workers without waiting."""
    collect(pool.map(BATCH[:1]), BATCH[:1])  # the pool is up
    assert pool._pool.submit(signal.getsignal, signal.SIGINT).result() == signal.SIG_IGN
    workers = list(pool._pool._processes.values())
    pool._kill_pool()
    for worker in workers:
        worker.join(timeout=10)
        assert not worker.is_alive()
    results = collect(pool.map(BATCH[:1]), BATCH[:1])  # a fresh pool where one is needed
    assert results["a"].status is CandidateStatus.COMPLETE


def test_map_rejects_bad_task_lists() -> None:
    for executor in (LocalExecutor(workers=1, devices=["cpu"]), LocalExecutor(2, ["cpu"])):
        with executor, pytest.raises(ConfigError, match="must be unique; got 'a' twice"):
            executor.map([task("a"), task("b"), task("a", seed=1)])
        with executor, pytest.raises(ConfigError, match="takes CandidateTask objects; got 'a'"):
            executor.map([task("a"), "a"])  # type: ignore[list-item]
        assert executor._pool is None  # nothing was started


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"workers": 0}, "'workers' parameter of LocalExecutor must be an int >= 1; got 0"),
        ({"devices": "cpu"}, r"'devices' parameter of LocalExecutor must be a non-empty list"),
        ({"devices": []}, r"'devices' parameter of LocalExecutor .*; got \[\]"),
        ({"devices": ["gpu"]}, "'device' must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got 'gpu'"),
        ({"threads_per_worker": 0}, "'threads_per_worker' .* must be an int >= 1; got 0"),
    ],
)
def test_local_executor_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        LocalExecutor(**kwargs)  # type: ignore[arg-type]


def test_make_executor() -> None:
    assert set(EXECUTORS) == {"local", "ray"}
    executor = make_executor("local", workers=2, devices=["cpu"])
    assert isinstance(executor, LocalExecutor) and executor.workers == 2
    assert repr(executor) == "LocalExecutor(workers=2, devices=['cpu'], threads_per_worker=None)"
    with pytest.raises(ConfigError, match=r"'kind' .* must be one of \['local', 'ray'\]; got 'x'"):
        make_executor("x")
    with pytest.raises(ConfigError, match="must be one of .*; got None"):
        make_executor(None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="Bad options for the 'local' executor: .*'address'"):
        make_executor("local", address="auto")
    with pytest.raises(ConfigError, match="'workers' parameter of LocalExecutor"):
        make_executor("local", workers=-1)


def test_ray_executor_without_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(ConfigError, match=r"needs the 'ray' package.*pip install 'dagrank\[ray\]'"):
        make_executor("ray")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_cpus_per_task": 0}, "'num_cpus_per_task' parameter of RayExecutor must be an int"),
        (
            {"num_gpus_per_task": -1},
            "'num_gpus_per_task' .* must be a number >= 0 or 'auto'; got -1",
        ),
        ({"num_gpus_per_task": "all"}, "'num_gpus_per_task' .* or 'auto'; got 'all'"),
        ({"max_retries": -1}, "'max_retries' parameter of RayExecutor must be an int >= 0"),
        ({"num_cpus": 0}, "'num_cpus' parameter of RayExecutor must be an int >= 1; got 0"),
    ],
)
def test_ray_executor_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):  # checked before Ray is imported or started
        RayExecutor(**kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- Ray executor


@pytest.mark.slow
def test_ray_executor_equals_run_task_and_reports_dead_workers(
    expected: dict[str, dict[str, object]],
) -> None:
    ray = pytest.importorskip("ray")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=80 * 1024**2,
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        killer = task("killer", fault=FaultPlan(kill_worker=True))
        tasks = [*BATCH, killer]
        with make_executor("ray", max_retries=1, num_gpus_per_task="auto") as executor:
            assert executor.gpus == 0.0  # "auto" on a cluster without GPUs: CPU tasks
            results = collect(executor.map(tasks), tasks)
        assert ray.is_initialized()  # an instance the executor did not start is left running
    finally:
        ray.shutdown()
    died = results.pop("killer")
    assert died.status is CandidateStatus.FAILED
    assert died.error.startswith(f"{WORKER_DIED} (WorkerCrashedError")
    assert died.error.endswith("retried 1x)")  # Ray ran it twice, and both workers died
    assert {k: numbers(r) for k, r in results.items()} == expected


@pytest.mark.slow
def test_ray_packs_small_candidates_by_gpu_fractions() -> None:
    ray = pytest.importorskip("ray")
    from surrogate.ray_executor import RAY_GPU_FRACTION

    # a local instance that declares one GPU (no task runs, so none is needed)
    ray.init(num_cpus=8, num_gpus=1, include_dashboard=False, log_to_driver=False,
             object_store_memory=80 * 1024**2, configure_logging=False)  # fmt: skip
    try:
        auto = RayExecutor(num_gpus_per_task="auto")
        assert auto.gpus == RAY_GPU_FRACTION == 0.25
        assert auto.capacity == 4  # four candidates share the one GPU
        assert RayExecutor(num_gpus_per_task=0.5).capacity == 2
        assert RayExecutor(num_gpus_per_task=0).capacity == 8  # CPU tasks: one per CPU
    finally:
        ray.shutdown()
