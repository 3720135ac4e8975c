"""Benchmark: the time of a supernet training epoch with hard sampling vs a soft mixture.

Hard (GDAS) sampling computes one operation per module and only the vertices of the sampled,
pruned cell; the soft mixture (DARTS/SNAS-like) computes every operation of every module over
the complete DAG. Both supernets start from the same weights and see the same batches; their
epochs are timed alternately (hard, soft, hard, soft, ...) in one process so that drifts of the
machine hit both alike, and the medians are compared.
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Sequence
from typing import Any

import torch

from dagspace.cell import NASBENCH101_OPS
from surrogate.config import SupernetConfig
from surrogate.data import Dataset
from surrogate.device import resolve_device
from surrogate.errors import ConfigError
from surrogate.training import _Trainer

__all__ = ["bench_supernet"]


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
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(f"The 'epochs' of bench_supernet must be an int >= 1; got {epochs!r}.")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ConfigError(f"The 'warmup' of bench_supernet must be an int >= 0; got {warmup!r}.")
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
        "hard": _Trainer(config, dataset, target),
        "soft": _Trainer(config.replace(mode="soft"), dataset, target),
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
