"""NAS-Bench-101 files of the official format built from a table, and ``dagrank bench
nasbench-file``: how fast such a file is read, cached and loaded.

:func:`build_nasbench_file` writes a file as the benchmark's are written (TFRecord framing with
masked CRC-32C, each record the JSON list with the base64 ``ModelMetrics`` protobuf; three
evaluations per record: start, halfway, end) for cells of a space and a table of one value per
cell (the shared slice's form: ``{budget}_final_validation_accuracy``, ``final_training_time``
of 108 epochs, ``trainable_parameters``). Per cell, budget and repeat:

- validation accuracy and training time: the table's value plus an offset on a coarse dyadic
  grid (``k * 2 ** (e - 12)``, ``e`` the value's binary exponent), the last repeat's offset the
  negative sum of the others, so that :func:`analysis.nasbench_cache.repeat_mean` gives back the
  table's value *exactly* whenever it is a float32 (the slice's values are; otherwise an error);
  training time at budget ``b`` is the table's 108-epoch time times ``b / 108`` (as a float32);
- test accuracy the validation accuracy plus another grid offset, train accuracy 1 - (1 -
  validation) / 2, both rounded to float32 (they are not in the slice; they only have to be
  read back exactly).

Records come in a seeded random order (the repeats of a cell and budget numbered in the order
they appear), each with the cell's interior vertices in a random topological order.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.nasbench_file import (
    METRICS,
    EvaluationData,
    ModelMetrics,
    encode_nasbench_record,
)
from analysis.tables import TableError
from analysis.tfrecord import write_tfrecord
from dagspace import Space
from dagspace.random import SeedLike, check_random_state

__all__ = ["BuiltFile", "bench_nasbench_file", "build_nasbench_file", "exact_mean_repeats"]

BUDGETS = (4, 12, 36, 108)


@dataclass(frozen=True)
class BuiltFile:
    """What :func:`build_nasbench_file` wrote: ``cells`` ``(N,)`` space indices, ``hashes``
    ``(N,)`` their module hashes, ``budgets``, per metric of
    :data:`analysis.nasbench_file.METRICS` the values ``(N, B, R)`` (repeats in file order),
    ``params`` ``(N,)``, ``records`` and ``offsets`` ``(records,)`` of each record."""

    path: Path
    cells: np.ndarray
    hashes: np.ndarray
    budgets: tuple[int, ...]
    values: dict[str, np.ndarray]
    params: np.ndarray
    offsets: np.ndarray


def _f32(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float32).astype(np.float64)


def exact_mean_repeats(mean: np.ndarray, repeats: int, rng: np.random.Generator,
                       spread: int = 8) -> np.ndarray:  # fmt: skip
    """``(n, repeats)`` float32 values (as float64) whose
    :func:`~analysis.nasbench_cache.repeat_mean` is ``mean`` ``(n,)`` to the bit (see the
    module docstring; a row whose offsets would leave float32 is drawn again, and after eight
    draws its repeats are all ``mean``).

    Raises:
        TableError: a mean that is not a float32.
    """
    from analysis.nasbench_cache import repeat_mean

    mean = np.asarray(mean, dtype=np.float64)
    if not np.array_equal(_f32(mean), mean):
        i = int(np.flatnonzero(_f32(mean) != mean)[0])
        raise TableError(f"The mean {mean[i]!r} is not a float32; repeats with exactly this "
                         "mean are built for float32 means (as NAS-Bench-101's are).")  # fmt: skip
    _, exponent = np.frexp(np.where(mean == 0, 1.0, mean))
    step = np.ldexp(1.0, exponent - 12)[:, None]
    values = np.repeat(mean[:, None], repeats, axis=1)
    todo = np.arange(len(mean))
    for _ in range(8):
        offsets = rng.integers(-spread, spread + 1, size=(len(todo), repeats)).astype(np.float64)
        offsets[:, -1] = -offsets[:, :-1].sum(axis=1)
        values[todo] = mean[todo, None] + offsets * step[todo]
        exact = (_f32(values[todo]) == values[todo]).all(axis=1) & (
            repeat_mean(values[todo], np.full(len(todo), repeats)) == mean[todo]
        )
        values[todo[~exact]] = mean[todo[~exact], None]
        todo = todo[~exact]
        if not len(todo):
            break
    return values


def _random_order(matrix: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random topological order of a DAG's vertices (``order[k]``: the old vertex placed at
    ``k``); the input stays first and the output last."""
    indegree = matrix.sum(axis=0).astype(int).tolist()
    order, ready = [], [0]
    while ready:
        vertex = ready.pop(int(rng.integers(len(ready))))
        order.append(vertex)
        for w in np.flatnonzero(matrix[vertex]).tolist():
            indegree[w] -= 1
            if indegree[w] == 0:
                ready.append(w)
    return np.asarray(order)  # a pruned cell: every vertex reached, the output last


def build_nasbench_file(path: str | os.PathLike, space: Space, cells: np.ndarray,
                        table: dict[str, Any], *, budgets: tuple[int, ...] = BUDGETS,
                        repeats: int = 3, seed: SeedLike = 0,
                        hashes: np.ndarray | None = None) -> BuiltFile:  # fmt: skip
    """Write a NAS-Bench-101 file of ``cells`` (indices into ``space``) with the values of
    ``table`` (a mapping of columns aligned with ``cells``; see the module docstring).
    ``hashes``: the cells' module hashes when known (else computed)."""
    rng = check_random_state(seed)
    cells = np.asarray(cells, dtype=np.int64)
    n, nb = len(cells), len(budgets)
    if hashes is None:
        hashes = space.subset(cells).nasbench101_hashes()
    values = {m: np.empty((n, nb, repeats)) for m in METRICS}
    time108 = np.asarray(table["final_training_time"], dtype=np.float64)
    for b, budget in enumerate(budgets):
        val = np.asarray(table[f"{budget}_final_validation_accuracy"], dtype=np.float64)
        values["validation_accuracy"][:, b] = exact_mean_repeats(val, repeats, rng)
        values["test_accuracy"][:, b] = _f32(exact_mean_repeats(val, repeats, rng) + np.ldexp(
            rng.integers(-64, 65, size=(n, repeats)).astype(np.float64), -12))  # fmt: skip
        values["train_accuracy"][:, b] = _f32(1 - (1 - values["validation_accuracy"][:, b]) / 2)
        scaled = (time108 * budget / 108).astype(np.float32).astype(np.float64)  # 108: exact
        values["training_time"][:, b] = exact_mean_repeats(scaled, repeats, rng)
    params = np.asarray(table["trainable_parameters"], dtype=np.int64)
    sizes = space.num_vertices[cells]
    jobs = [(i, b, r) for i in range(n) for b in range(nb) for r in range(repeats)]
    jobs = [jobs[k] for k in rng.permutation(len(jobs))]
    seen: dict[tuple[int, int], int] = {}
    ordered = {m: np.empty_like(a) for m, a in values.items()}
    payloads = []
    for i, b, _ in jobs:
        r = seen[(i, b)] = seen.get((i, b), -1) + 1  # repeats numbered in file order
        v = int(sizes[i])
        matrix = space.matrices[cells[i], :v, :v]
        names = [space.vocabulary[c] for c in space.ops[cells[i], :v]]
        order = _random_order(matrix, rng)
        point = {m: float(values[m][i, b, r]) for m in METRICS}
        for m in METRICS:
            ordered[m][i, b, r] = point[m]
        epochs = budgets[b]
        start = EvaluationData(0.0, 0.0, 0.1, 0.1, 0.1)
        half = EvaluationData(
            epochs / 2,
            point["training_time"] / 2,
            point["train_accuracy"] / 2,
            point["validation_accuracy"] / 2,
            point["test_accuracy"] / 2,
        )
        end = EvaluationData(float(epochs), point["training_time"], point["train_accuracy"],
                             point["validation_accuracy"], point["test_accuracy"],
                             f"model.ckpt-{i}" if r == 0 else "")  # fmt: skip
        metrics = ModelMetrics((start, half, end), int(params[i]), point["training_time"] + 9.5)
        payloads.append(encode_nasbench_record(str(hashes[i]), epochs,
                                               matrix[np.ix_(order, order)],
                                               [names[k] for k in order], metrics))  # fmt: skip
    write_tfrecord(path, payloads)
    sizes_on_disk = np.asarray([len(p) + 16 for p in payloads], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes_on_disk)[:-1]])
    return BuiltFile(Path(path), cells, np.asarray(hashes), tuple(budgets), ordered, params,
                     offsets)  # fmt: skip


def bench_nasbench_file(slice_path: str | os.PathLike, out_dir: str | os.PathLike, *,
                        space: Space | None = None, budgets: tuple[int, ...] = BUDGETS,
                        repeats: int = 3, seed: int = 0, limit: int | None = None,
                        whole_space: bool = False,
                        reference_bytes: int = 1 << 20) -> dict[str, Any]:  # fmt: skip
    """Build a file of the official format from the slice (its first ``limit`` rows; all by
    default) in ``out_dir``, then time, in one run: reading and caching it (the one-off
    enumeration of the NAS-Bench-101 space timed apart), loading the cache, the vectorised
    CRC-32C over every record against the per-byte reference on ``reference_bytes``. Checks
    that the cache's means are the slice's values.

    ``whole_space``: a file of the official size instead, every cell of ``space`` with the
    slice's values in turn (cell ``i`` gets row ``i mod rows``): the scale of the real files."""
    import json

    from analysis.nasbench_cache import nasbench101_space, open_nasbench, repeat_mean
    from analysis.tfrecord import crc32c_many, crc32c_reference, iter_record_batches

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {k: v[:limit] for k, v in json.loads(Path(slice_path).read_text()).items()}
    began = time.perf_counter()
    space = space if space is not None else nasbench101_space()
    keys = np.asarray(data["key"])
    index = pd.Index(space.nasbench101_hashes().tolist()).get_indexer(keys.tolist())
    join_s = time.perf_counter() - began
    if (index < 0).any():
        raise TableError(f"{int((index < 0).sum())} keys of {slice_path} are not NAS-Bench-101 "
                         f"hashes of cells of the space ({len(space)} cells).")  # fmt: skip
    if whole_space:
        rows = np.arange(len(space)) % len(keys)
        data = {k: np.asarray(v)[rows] for k, v in data.items()}
        index, keys = np.arange(len(space)), space.nasbench101_hashes()
        data["key"] = keys
    kind = "full" if len(budgets) > 1 else "only108"
    path = out_dir / f"nasbench_{'space' if whole_space else 'slice'}_{kind}.tfrecord"
    began = time.perf_counter()
    built = build_nasbench_file(path, space, index, data, budgets=budgets, repeats=repeats,
                                seed=seed, hashes=keys)  # fmt: skip
    write_s = time.perf_counter() - began
    cache = path.with_name(path.name + ".dagrank.npz")
    if cache.exists():
        cache.unlink()
    began = time.perf_counter()
    nasbench101_space()  # enumerated once per process: timed apart from the reading
    enumerate_s = time.perf_counter() - began
    began = time.perf_counter()
    table = open_nasbench(path, progress=False)
    read_s = time.perf_counter() - began
    began = time.perf_counter()
    loaded = open_nasbench(path, progress=False)
    load_s = time.perf_counter() - began
    # the CRCs alone, both ways, on the same file in the same run
    raw = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    starts, lengths = [], []
    for batch in iter_record_batches(path):
        starts.append(batch.offsets + 12)
        lengths.append(batch.lengths)
    starts, lengths = np.concatenate(starts), np.concatenate(lengths)
    began = time.perf_counter()
    crc32c_many(raw, starts, lengths)
    crc_s = time.perf_counter() - began
    sample = raw[: min(reference_bytes, len(raw))].tobytes()
    began = time.perf_counter()
    crc32c_reference(sample)
    reference_s = time.perf_counter() - began
    del built, raw
    row = pd.Index(loaded.module_hash.tolist()).get_indexer(np.asarray(keys).tolist())
    exact = all(
        np.array_equal(repeat_mean(loaded.values["validation_accuracy"][row, b],
                                   loaded.counts[row, b]),
                       np.asarray(data[f"{bud}_final_validation_accuracy"], dtype=np.float64))
        for b, bud in enumerate(loaded.budgets.tolist())
    )  # fmt: skip
    mb = path.stat().st_size / 1e6
    crc_mb_s = lengths.sum() / 1e6 / crc_s
    reference_mb_s = len(sample) / 1e6 / reference_s
    return {
        "file": str(path), "file_mb": round(mb, 2), "records": int(table.records),
        "cells": len(table), "budgets": table.budgets.tolist(), "repeats": table.repeats,
        "join_slice_s": round(join_s, 2), "write_s": round(write_s, 2),
        "nb101_space_s": round(enumerate_s, 2),
        "read_and_cache_s": round(read_s, 2),
        "records_per_s": round(table.records / read_s), "mb_per_s": round(mb / read_s, 2),
        "cache_mb": round(Path(table.path).stat().st_size / 1e6, 2),
        "cache_load_s": round(load_s, 3),
        "load_speedup_vs_read": round(read_s / load_s, 1),
        "crc32c_vectorised_mb_per_s": round(crc_mb_s, 1),
        "crc32c_reference_mb_per_s": round(reference_mb_s, 2),
        "crc32c_speedup": round(crc_mb_s / reference_mb_s, 1),
        "crc32c_share_of_read": round(crc_s / read_s, 3),
        "means_equal_slice": bool(exact),
    }  # fmt: skip
