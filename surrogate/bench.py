"""Benchmarks: a supernet training epoch with hard sampling vs a soft mixture; stand-alone
candidates trained one at a time vs batched; a supernet epoch and a candidate at 1 vs 2
intra-op threads.

Hard (GDAS) sampling computes one operation per module and only the vertices of the sampled,
pruned cell; the soft mixture (DARTS/SNAS-like) computes every operation of every module over
the complete DAG. Both supernets start from the same weights and see the same batches; their
epochs are timed alternately (hard, soft, hard, soft, ...) in one process so that drifts of the
machine hit both alike, and the medians are compared.
"""

from __future__ import annotations

import functools
import math
import platform
import statistics
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from dagspace.cell import NASBENCH101_OPS, CellSpec
from dagspace.checks import check_int
from surrogate.config import SupernetConfig
from surrogate.data import Dataset
from surrogate.device import resolve_device
from surrogate.errors import ConfigError
from surrogate.training import SupernetTrainer

if TYPE_CHECKING:
    from surrogate.candidate import CandidateConfig
    from surrogate.tasks import DatasetSpec

__all__ = ["bench_supernet", "bench_threads", "bench_train"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_supernet(
    dataset: Dataset | str = "digits",
    *,
    channels: int = 32,
    ops: Sequence[str] = NASBENCH101_OPS,
    vertices: int = 5,
    cells: int = 3,
    num_stages: int = 2,
    batch_size: int = 64,
    epochs: int = 3,
    warmup: int = 1,
    device: str = "cpu",
    amp: bool = False,
    seed: int = 0,
) -> dict[str, Any]:
    """Median seconds per training epoch, hard vs soft, on the same network and data.

    Args:
        dataset: a :class:`Dataset`, or a name for :func:`surrogate.data.load_dataset`.
        channels, ops, vertices, cells, num_stages, batch_size: the supernet and its batches.
        epochs: timed epochs per mode (after ``warmup`` untimed ones per mode).
        device, amp, seed: as in :class:`SupernetConfig`.

    Returns:
        A flat mapping: ``device``, ``dataset``, ``channels``, ``ops`` (how many),
        ``op_names``, ``vertices``, ``cells``, ``batch_size``, ``steps_per_epoch``,
        ``epochs_timed``, ``hard_s`` and ``soft_s`` (median seconds per epoch), ``ratio``
        (``soft_s / hard_s``), ``torch``, ``threads``, ``python``.
    """
    epochs = check_int("bench_supernet", "epochs", epochs, 1, ConfigError)
    warmup = check_int("bench_supernet", "warmup", warmup, 0, ConfigError)
    total = warmup + epochs
    config = SupernetConfig(
        dataset=dataset if isinstance(dataset, str) else dataset.name,
        vertices=vertices,
        cells=cells,
        ops=tuple(ops),
        channels=channels,
        num_stages=num_stages,
        epochs=total,
        batch_size=batch_size,
        seed=seed,
        device=device,
        amp=amp,
        mode="hard",
    )
    target = resolve_device(device)
    if isinstance(dataset, str):
        from surrogate.data import load_dataset

        dataset = load_dataset(
            dataset,
            seed=seed,
            val_fraction=config.val_fraction,
            test_fraction=config.test_fraction,
            device=target,
        )
    trainers = {
        "hard": SupernetTrainer(config, dataset, target),
        "soft": SupernetTrainer(config.replace(mode="soft"), dataset, target),
    }
    times: dict[str, list[float]] = {"hard": [], "soft": []}
    for epoch in range(total):
        for mode, trainer in trainers.items():  # alternate: hard, soft, hard, soft, ...
            _sync(target)
            started = time.perf_counter()
            trainer.run_epoch(epoch, progress=False, evaluate=False)
            _sync(target)
            if epoch >= warmup:
                times[mode].append(time.perf_counter() - started)
    hard_s, soft_s = statistics.median(times["hard"]), statistics.median(times["soft"])
    return {
        "device": str(target),
        "dataset": config.dataset,
        "channels": channels,
        "ops": len(config.ops),
        "op_names": ",".join(config.ops),
        "vertices": vertices,
        "cells": cells,
        "batch_size": batch_size,
        "steps_per_epoch": len(dataset.train) // min(batch_size, len(dataset.train)),
        "epochs_timed": epochs,
        "hard_s": hard_s,
        "soft_s": soft_s,
        "ratio": soft_s / hard_s,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }


# ------------------------------------------------------------------- stand-alone training


def _matmul_gflops(device: torch.device, dtype: torch.dtype, size: int, repeats: int = 5) -> float:
    """The best GFLOP/s of ``size x size`` matrix products on ``device``: the measured peak."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator).to(device=device, dtype=dtype)
    b = torch.randn(size, size, generator=generator).to(device=device, dtype=dtype)
    a @ b  # warm up
    best = math.inf
    for _ in range(repeats):
        _sync(device)
        started = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - started)
    return 2.0 * size**3 / best / 1e9


def _timed(device: torch.device, run: Any) -> tuple[float, Any]:
    """Seconds that ``run()`` takes (device work included), and what it returned."""
    _sync(device)
    started = time.perf_counter()
    out = run()
    _sync(device)
    return time.perf_counter() - started, out


def _sample_architectures(
    count: int, cells: int, vertices: int, ops: Sequence[str], seed: int
) -> list[tuple[CellSpec, ...]]:
    from dagspace.random import check_random_state
    from dagspace.space import enumerate_space

    space = enumerate_space(vertices, ops=tuple(ops))
    rng = check_random_state(seed)
    return [
        tuple(space[int(i)] for i in rng.integers(0, len(space), size=cells)) for _ in range(count)
    ]


def _timed_pool(
    archs: Sequence[tuple[CellSpec, ...]],
    seeds: Sequence[int],
    spec: Any,
    config: Any,
    device: torch.device,
    workers: int,
) -> tuple[float, list[Any]]:
    """The wall time of a pool of ``workers`` single-threaded processes training ``archs``
    (after an untimed warm-up task per worker), and the results in order."""
    from surrogate.executors import LocalExecutor
    from surrogate.tasks import CandidateTask

    def tasks(prefix: str, recipe: Any, count: int) -> list[CandidateTask]:
        return [
            CandidateTask(f"{prefix}-{i}", a, spec, recipe, s)
            for i, (a, s) in enumerate(zip(archs[:count], seeds[:count], strict=True))
        ]

    with LocalExecutor(workers=workers, devices=[str(device)], threads_per_worker=1) as pool:
        list(pool.map(tasks("warm", config.replace(epochs=1), min(workers, len(archs)))))
        todo = tasks("bench", config, len(archs))
        start = time.perf_counter()
        done = dict(pool.map(todo))
        seconds = time.perf_counter() - start
    return seconds, [done[t] for t in todo]


def bench_train(
    architectures: Sequence[Sequence[CellSpec]] | None = None,
    ks: Sequence[int] = (8, 32),
    *,
    dataset: Dataset | DatasetSpec | str = "digits",
    config: CandidateConfig | str = "smoke",
    cells: int = 3,
    vertices: int = 5,
    ops: Sequence[str] = NASBENCH101_OPS,
    device: str = "cpu",
    threads: int | None = None,
    seed: int = 0,
    pool_workers: int = 0,
) -> dict[str, Any]:
    """Candidates trained per minute: one at a time (``train_candidate`` in a loop) vs batched
    (:func:`surrogate.batched.train_candidates`, ``K`` at a time for each ``K`` of ``ks``),
    and, with ``pool_workers``, vs the jobs' CPU default: a pool of that many single-threaded
    workers (:class:`~surrogate.executors.LocalExecutor`), each one candidate at a time.

    All modes train the same architectures with the same seeds (seed ``i`` for architecture
    ``i``), in one process, one after the other, after an untimed warm-up of each; the
    architectures are split into batches of ``K`` in order (the last may be smaller).

    Args:
        architectures: the candidates; default ``max(ks)`` architectures of ``cells`` cells
            drawn (seeded by ``seed``) from the labelled space of ``vertices`` vertices and
            ``ops`` (the supernet's default space).
        ks: the batch sizes to time.
        dataset: a :class:`Dataset`, a :class:`~surrogate.tasks.DatasetSpec`, or a name for
            :func:`surrogate.data.load_dataset` (seeded by ``seed``); the pool needs a spec or
            a name (its workers load the data themselves).
        config: the recipe, or a preset's name (:func:`~surrogate.candidate.candidate_preset`).
        device: where everything runs. threads: torch's intra-op threads for every mode
            (default: this process's setting); restored afterwards.
        pool_workers: the pool's workers (0: no pool); its start, imports and data loading are
            an untimed warm-up, as for the other modes.

    Returns:
        A flat, JSON-ready mapping: the setting (``device``, ``threads``, ``dataset``,
        ``train_examples``, ``config``, ``candidates``, ``cells``, ``vertices``, ``torch``,
        ``python``); ``single_s`` and ``single_per_min``; for each ``K``: ``k{K}_s``,
        ``k{K}_per_min``, ``k{K}_ratio`` (batched over one-at-a-time rate),
        ``k{K}_max_val_accuracy_diff`` and ``k{K}_max_train_loss_rel_diff`` (against the
        one-at-a-time results); the achieved ``*_gflops`` (``flops_counted`` says what is
        counted) and ``*_peak_fraction`` of ``peak_gflops``, which is *measured* in the same
        run (``peak_method``), not a vendor figure. With a pool: ``pool_workers``, ``pool_s``,
        ``pool_per_min``, ``pool_ratio`` and ``pool_max_val_accuracy_diff``.
    """
    from surrogate.batched import train_candidates
    from surrogate.candidate import CandidateConfig, candidate_preset, train_candidate
    from surrogate.device import amp_policy
    from surrogate.presets import PRESET_NAMES
    from surrogate.tasks import DatasetSpec

    if isinstance(config, str):
        if config not in PRESET_NAMES:
            raise ConfigError(
                f"The 'config' of bench_train must be a CandidateConfig or one of "
                f"{list(PRESET_NAMES)}; got {config!r}."
            )
        config = candidate_preset(config)
    if not isinstance(config, CandidateConfig):
        raise ConfigError(
            f"The 'config' of bench_train must be a CandidateConfig or a preset name; got "
            f"{type(config).__name__}."
        )
    sizes = list(ks) if not isinstance(ks, (int, str)) else [ks]
    if not sizes or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in sizes):
        raise ConfigError(f"The 'ks' of bench_train must be ints >= 1; got {ks!r}.")
    if threads is not None:
        threads = check_int("bench_train", "threads", threads, 1, ConfigError)
    pool_workers = check_int("bench_train", "pool_workers", pool_workers, 0, ConfigError)
    spec = DatasetSpec(name=dataset, seed=seed) if isinstance(dataset, str) else dataset
    if pool_workers and not isinstance(spec, DatasetSpec):
        raise ConfigError(
            "The pool of bench_train loads the data in its workers: give 'dataset' as a name "
            f"or a DatasetSpec, not a {type(dataset).__name__}."
        )
    target = resolve_device(device)
    archs = (
        _sample_architectures(max(sizes), cells, vertices, ops, seed)
        if architectures is None
        else [tuple(a) for a in architectures]
    )
    if not archs:
        raise ConfigError("The 'architectures' of bench_train must not be empty.")
    if isinstance(spec, DatasetSpec):
        dataset = spec.load(target)
    seeds = list(range(len(archs)))
    before = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        warm = config.replace(epochs=1)  # imports, kernels and caches, untimed
        train_candidate(archs[0], dataset, warm, 0, target)
        train_candidates(archs[:2], dataset, warm, seeds[:2], target)

        def one_at_a_time() -> list[Any]:
            return [
                train_candidate(a, dataset, config, s, target)
                for a, s in zip(archs, seeds, strict=True)
            ]

        def batched_by(k: int) -> list[Any]:
            out = []
            for i in range(0, len(archs), k):
                out += train_candidates(archs[i : i + k], dataset, config, seeds[i : i + k], target)
            return out

        single_s, single = _timed(target, one_at_a_time)
        batched = {k: _timed(target, lambda k=k: batched_by(k)) for k in sizes}
        pool = None
        if pool_workers:
            pool = _timed_pool(archs, seeds, spec, config, target, pool_workers)
        policy = amp_policy(target, config.amp)
        dtype = policy.dtype if policy.enabled and not policy.needs_scaler else torch.float32
        matmul = 2048 if target.type == "cpu" else 8192
        peak = _matmul_gflops(target, dtype, matmul)
        used_threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)

    examples = len(dataset.train)

    def gflops(results: list[Any], seconds: float) -> float:
        flops = sum(2.0 * (r.macs or 0) * examples * 3 * r.epochs_run for r in results)
        return flops / seconds / 1e9

    n = len(archs)
    out: dict[str, Any] = {
        "device": str(target),
        "threads": used_threads,
        "dataset": dataset.name,
        "train_examples": examples,
        "config": config.to_dict(),
        "candidates": n,
        "cells": len(archs[0]),
        "vertices": max(c.num_vertices for a in archs for c in a),
        "single_s": single_s,
        "single_per_min": 60.0 * n / single_s,
        "single_gflops": gflops(single, single_s),
    }
    for k, (seconds, results) in batched.items():
        pairs = list(zip(single, results, strict=True))
        out[f"k{k}_s"] = seconds
        out[f"k{k}_per_min"] = 60.0 * n / seconds
        out[f"k{k}_ratio"] = single_s / seconds
        out[f"k{k}_gflops"] = gflops(results, seconds)
        out[f"k{k}_max_val_accuracy_diff"] = max(
            abs(a.val_accuracy - b.val_accuracy) for a, b in pairs
        )
        out[f"k{k}_max_train_loss_rel_diff"] = max(
            abs(a.train_loss - b.train_loss) / max(abs(a.train_loss), 1e-12) for a, b in pairs
        )
    if pool is not None:
        pool_s, pooled = pool
        out["pool_workers"] = pool_workers
        out["pool_s"] = pool_s
        out["pool_per_min"] = 60.0 * n / pool_s
        out["pool_ratio"] = single_s / pool_s
        out["pool_max_val_accuracy_diff"] = max(
            abs(a.val_accuracy - b.val_accuracy) for a, b in zip(single, pooled, strict=True)
        )
    out["peak_gflops"] = peak
    out["single_peak_fraction"] = out["single_gflops"] / peak
    for k in batched:
        out[f"k{k}_peak_fraction"] = out[f"k{k}_gflops"] / peak
    out["flops_counted"] = (
        "2 * MACs * train_examples * 3 * epochs per candidate (forward + backward of the "
        "convolutions and the classifier); evaluation, norms, pooling and setup not counted"
    )
    out["peak_method"] = (
        f"measured in this run: best of 5 {matmul}^2 {str(dtype).removeprefix('torch.')} "
        "matrix products on the same "
        "device and threads (not a vendor figure)"
    )
    out["torch"] = torch.__version__
    out["python"] = platform.python_version()
    return out


# ------------------------------------------------------------------------ intra-op threads


def bench_threads(
    presets: Sequence[str] = ("smoke", "quick"),
    *,
    threads: Sequence[int] = (1, 2),
    epochs: int = 3,
    candidates: int = 3,
    seed: int = 0,
) -> dict[str, Any]:
    """Median seconds of a supernet training epoch and of a stand-alone candidate (one
    architecture, the preset's recipe) at each intra-op thread count, on the CPU, per preset.

    Every thread count trains its own copy of the same run; their epochs (and candidates)
    alternate (1, 2, 1, 2, ...) in one process after an untimed warm-up of each, so that a
    drift of the machine's load hits every count alike.

    Returns:
        ``{"presets": {name: {"supernet_epoch_s": {t: s}, "candidate_s": {t: s},
        "supernet_ratio", "candidate_ratio"}}, "threads", "cores", "loadavg", "torch"}``;
        a ratio is the time at the last thread count over the first (below 1: more threads
        pay).
    """
    import os

    from surrogate.candidate import candidate_preset, train_candidate
    from surrogate.config import supernet_preset
    from surrogate.device import cpu_count
    from surrogate.tasks import DatasetSpec

    epochs = check_int("bench_threads", "epochs", epochs, 1, ConfigError)
    candidates = check_int("bench_threads", "candidates", candidates, 1, ConfigError)
    counts = [check_int("bench_threads", "threads", t, 1, ConfigError) for t in threads]
    target = torch.device("cpu")
    before = torch.get_num_threads()
    out: dict[str, Any] = {}
    try:
        for name in presets:
            config = supernet_preset(name).replace(device="cpu", epochs=epochs + 1)
            spec = DatasetSpec(name=config.dataset, seed=config.seed, root=config.data_root,
                               limit=config.data_limit, val_fraction=config.val_fraction,
                               test_fraction=config.test_fraction)  # fmt: skip
            dataset = spec.load(target)
            trainers = {t: SupernetTrainer(config, dataset, target) for t in counts}
            epoch_s: dict[int, list[float]] = {t: [] for t in counts}
            for epoch in range(epochs + 1):  # the first: warm-up, untimed
                for t, trainer in trainers.items():
                    torch.set_num_threads(t)
                    started = time.perf_counter()
                    trainer.run_epoch(epoch, progress=False, evaluate=False)
                    if epoch:
                        epoch_s[t].append(time.perf_counter() - started)
            recipe = candidate_preset(name)
            archs = _sample_architectures(candidates + 1, config.cells, config.vertices,
                                          config.ops, seed)  # fmt: skip
            candidate_s: dict[int, list[float]] = {t: [] for t in counts}
            for i, arch in enumerate(archs):  # the first: warm-up, untimed
                for t in counts:
                    torch.set_num_threads(t)
                    seconds, _ = _timed(target, functools.partial(
                        train_candidate, arch, dataset, recipe, seed, target))  # fmt: skip
                    if i:
                        candidate_s[t].append(seconds)
            sup = {t: statistics.median(v) for t, v in epoch_s.items()}
            cand = {t: statistics.median(v) for t, v in candidate_s.items()}
            out[name] = {
                "supernet_epoch_s": {str(t): round(v, 4) for t, v in sup.items()},
                "candidate_s": {str(t): round(v, 4) for t, v in cand.items()},
                "supernet_ratio": round(sup[counts[-1]] / sup[counts[0]], 3),
                "candidate_ratio": round(cand[counts[-1]] / cand[counts[0]], 3),
            }
    finally:
        torch.set_num_threads(before)
    return {
        "presets": out,
        "threads": counts,
        "epochs_timed": epochs,
        "candidates_timed": candidates,
        "cores": cpu_count(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "torch": torch.__version__,
    }
