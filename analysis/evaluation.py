"""Stand-alone training through the results store: the one driver loop that every job uses.

:func:`train_architectures` takes ``(architecture, seed)`` requests and returns each one's
stored record. The driver is the only writer of the store: it claims every request (a key
already COMPLETE or DIVERGED is a cache hit and trains nothing), hands the acquired ones to an
executor, and finishes each record as its result comes in, so a kill loses at most the
candidates in flight. A result whose worker process died (its error starts ``"worker died"``)
is claimed again, as attempt ``n + 1`` with the same architecture and seed, up to
``max_attempts``; any other failure is final for this call (training is deterministic, so a
retry would fail the same way; a later run claims it again while attempts are left).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from analysis.results import EvalKey, EvalRecord, EvalStatus, ResultsStore
from dagspace import CellSpec, canonical_hash

__all__ = ["GPU_BATCH", "Request", "default_executor", "train_architectures"]

# candidates stacked at once by the default executor on one GPU
GPU_BATCH = 32

WORKER_DIED = "worker died"


@dataclass(frozen=True)
class Request:
    """One stand-alone evaluation to have: an architecture (``K`` cells) and a training seed."""

    cells: tuple[CellSpec, ...]
    seed: int


def _key(request: Request, config_hash: str) -> EvalKey:
    return EvalKey(canonical_hash(list(request.cells)), "standalone", config_hash, request.seed)


def train_architectures(
    store: ResultsStore,
    requests: Sequence[Request],
    *,
    run: str,
    method: str,
    dataset: Any,
    config: Any,
    executor: Any,
    max_attempts: int = 3,
    on_record: Callable[[Request, EvalRecord], None] | None = None,
    faults: dict[int, Any] | None = None,
    retry_failed: bool = False,
) -> list[EvalRecord]:
    """Train every request that the store does not already hold; return one record per request.

    ``dataset`` is a :class:`surrogate.tasks.DatasetSpec`, ``config`` a
    :class:`surrogate.candidate.CandidateConfig`, ``executor`` a
    :class:`surrogate.tasks.Executor`. ``on_record`` is called for every record as it is
    finished (or found in the cache), e.g. to advance a progress bar. ``faults`` maps a request
    index to a :class:`surrogate.candidate.FaultPlan` (reliability drills only). Requests with
    the same key are trained once. Returns the latest record of each request's key: COMPLETE,
    DIVERGED or FAILED (with its reason); a key another live process holds RUNNING is BUSY and
    comes back RUNNING.

    ``retry_failed``: a key whose latest record is FAILED, even at its last allowed attempt
    (three "worker died", say, from a script that crashed its pool), gets ``max_attempts``
    more attempts in this call: it is retrained on purpose (``--retry-failed``).
    """
    from surrogate.tasks import CandidateTask

    faults = dict(faults or {})
    arch = {i: tuple(c.to_dict() for c in r.cells) for i, r in enumerate(requests)}
    probe = [
        CandidateTask("probe", arch[i], dataset, config, r.seed) for i, r in enumerate(requests)
    ]
    config_hash = probe[0].evaluator_config_hash() if probe else ""
    keys = [_key(r, config_hash) for r in requests]
    limits = dict.fromkeys(keys, max_attempts)
    if retry_failed:
        for k in limits:
            latest = store.find(k)
            if latest is not None and latest.status is EvalStatus.FAILED:
                limits[k] = latest.attempt + max_attempts
    done: dict[EvalKey, EvalRecord] = {}
    chunk = max(1, int(getattr(executor, "capacity", 1)))
    pending = list(range(len(requests)))
    while pending:
        retry: set[EvalKey] = set()
        # claim no more than the executor runs at once: a killed driver then leaves at most
        # that many records RUNNING (each later reaped as a dead worker's failed attempt)
        for start in range(0, len(pending), chunk):
            retry |= _round(store, requests, pending[start : start + chunk], keys, probe, arch,
                            done, run=run, method=method, dataset=dataset, config=config,
                            executor=executor, max_attempts=limits, on_record=on_record,
                            faults=faults)  # fmt: skip
        pending = [i for i in pending if keys[i] in retry]
        for i in pending:
            faults.pop(i, None)  # an injected fault strikes the first attempt only
    return [done.get(k) or store.find(k) for k in keys]


def default_executor(device: str | None = "auto") -> Any:
    """The executor a job uses when none is given.

    On the CPU: a pool of one single-threaded worker per core. Small cell networks do not
    scale over threads, so this trains about ``cores`` times as many candidates per minute as
    one multi-threaded process (on the project's 2-core CPU, more than batched training too:
    ``dagrank bench train``), and each candidate's numbers are those of one thread, however
    many cores run the pool (a resumed run gets exactly the numbers of an uninterrupted one).

    On one GPU: :class:`surrogate.batched.BatchedExecutor`, :data:`GPU_BATCH` candidates
    stacked in one process, since one small network at a time leaves a GPU waiting on kernel
    launches (a stack that does not fit trains its candidates one at a time, with a warning).
    With several GPUs: one worker per GPU, so that every GPU is busy.
    """
    from surrogate.device import cpu_count
    from surrogate.executors import LocalExecutor

    if device in (None, "auto"):
        from surrogate.device import available_devices

        gpus = [d for d in available_devices() if d != "cpu"]
        devices = gpus or ["cpu"]
    else:
        devices = [device]
    if devices == ["cpu"]:
        return LocalExecutor(workers=max(1, cpu_count()), devices=devices, threads_per_worker=1)
    if len(devices) == 1:
        from surrogate.batched import BatchedExecutor

        return BatchedExecutor(batch_size=GPU_BATCH, device=devices[0])
    return LocalExecutor(workers=len(devices), devices=devices)


def make_job_executor(
    kind: str = "local",
    *,
    workers: int | None = None,
    address: str | None = None,
    device: str | None = None,
    batch_size: int = 8,
    gpus_per_candidate: float | str = "auto",
) -> Any:
    """The executor the command line asks for: ``local`` (:func:`default_executor` unless
    ``workers`` is given), ``batched`` (:class:`surrogate.batched.BatchedExecutor`, ``batch_size``
    candidates stacked in one process) or ``ray`` (a cluster at ``address``, or a local one;
    ``gpus_per_candidate`` GPUs reserved per candidate, ``"auto"``: a quarter of one where the
    cluster has GPUs)."""
    from surrogate.device import CPU_TRAINING_THREADS
    from surrogate.executors import make_executor

    if kind == "local" and workers is None:
        return default_executor(device)
    if kind == "local":  # the jobs' thread count, not the machine's cores / workers
        devices = None if device in (None, "auto") else [device]
        return make_executor("local", workers=workers, devices=devices,
                             threads_per_worker=CPU_TRAINING_THREADS)  # fmt: skip
    if kind == "batched":
        from surrogate.batched import BatchedExecutor

        return BatchedExecutor(batch_size=batch_size, threads=CPU_TRAINING_THREADS,
                               device="cpu" if device in (None, "auto") else device)  # fmt: skip
    options: dict[str, Any] = {"num_gpus_per_task": gpus_per_candidate}
    if address:
        options["address"] = address
    return make_executor(kind, **options)


def _round(store, requests, indices, keys, probe, arch, done, *, run, method, dataset, config,
           executor, max_attempts, on_record, faults) -> set[EvalKey]:  # fmt: skip
    """Claim ``indices``, train what was acquired, finish it; return the keys to retry."""
    from surrogate.tasks import CandidateTask

    tasks, owners = [], {}
    for i in indices:
        if keys[i] in done or any(keys[j] == keys[i] for j in owners.values()):
            continue
        claim = store.claim(
            keys[i], run=run, method=method, arch_json=probe[i].arch_json,
            max_attempts=max_attempts[keys[i]],
        )  # fmt: skip
        if not claim.must_evaluate:
            done[keys[i]] = claim.record
            if on_record is not None:
                on_record(requests[i], claim.record)
            continue
        task_id = str(claim.record.id)
        tasks.append(
            CandidateTask(task_id, arch[i], dataset, config, requests[i].seed,
                          attempt=claim.record.attempt, fault=faults.get(i))
        )  # fmt: skip
        owners[task_id] = i
    retry: set[EvalKey] = set()
    for task, result in executor.map(tasks):
        i = owners[task.task_id]
        record = store.finish(
            int(task.task_id), EvalStatus[result.status.name], result.metrics(), result.error
        )
        if (result.error or "").startswith(WORKER_DIED) and record.attempt < max_attempts[keys[i]]:
            retry.add(keys[i])
            continue
        done[keys[i]] = record
        if on_record is not None:
            on_record(requests[i], record)
    return retry
