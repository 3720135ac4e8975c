"""Which supernet training ranks best? Variants of one supernet config on the same architectures.

:func:`run_supernet_study` trains one fixed sample of architectures (the validation protocol's
uniform part: ``n`` architectures drawn uniformly, each trained once per seed, through the run's
results store) and, for every variant (a set of :class:`surrogate.SupernetConfig` changes, e.g.
``{"weight_sampling": "uniform"}``), trains a supernet in ``run/supernets/<variant>/`` and
scores the same sample with the supernet-based estimators (the relative surrogate's scores and
the one-shot accuracy). Every variant's Kendall tau against the mean stand-alone accuracy is
given with its bootstrap interval and a paired bootstrap test against the first variant's (the
reference) and against the parameter count; the noise ceiling and the data's signal-to-noise
ratio are computed once. The study writes ``study.csv`` and the ``supernet_study`` section of
``summary.json``.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.rundir import job
from analysis.stats import noise_ceiling, paired_correlation_difference, rank_correlation
from analysis.validation import (
    ValidationConfig,
    ValidationError,
    accuracy_matrix,
    signal_to_noise,
    uniform_architectures,
)

__all__ = ["STUDY_ESTIMATORS", "SUPERNET_VARIANTS", "run_supernet_study"]

STUDY_ESTIMATORS = ("surrogate", "surrogate_sampling", "one_shot_accuracy")
_IDENTITY = ("supernet", "candidate", "seeds", "target", "seed")

SUPERNET_VARIANTS: dict[str, dict[str, Any]] = {
    "original": {},
    "warmup": {"warmup_epochs": 10},
    "uniform_weights": {"weight_sampling": "uniform"},
    "frozen_shortcut": {"shortcut": "frozen"},
    "constant_temperature": {"tau_start": 1.0, "tau_end": 1.0},
    "edge_lr_x3": {"edge_lr": 9e-3},
    "uniform_frozen": {"weight_sampling": "uniform", "shortcut": "frozen"},
    "combined": {"warmup_epochs": 10, "weight_sampling": "uniform", "shortcut": "frozen",
                 "tau_start": 1.0, "tau_end": 1.0},
}  # fmt: skip
"""The variants measured by default: the original GDAS-style training first (the reference),
then each remedy of :class:`surrogate.SupernetConfig` alone, then all of them together."""


@job("dagrank supernet study")
def run_supernet_study(
    run: str | os.PathLike,
    config: ValidationConfig,
    variants: dict[str, dict[str, Any]] | None = None,
    *,
    executor: Any = None,
    progress: bool = True,
    n_boot: int = 2000,
) -> pd.DataFrame:
    """Train the sample and every variant's supernet in ``run``; one row per (variant,
    estimator) of ``study.csv`` (see the module docstring)."""
    from analysis.estimators import EstimatorContext, score_architectures
    from analysis.results import SQLiteStore
    from analysis.runs import check_stored_job, dataset_spec, supernet_run, update_summary
    from analysis.validation import train_sample
    from dagspace.io import atomic_write

    variants = dict(SUPERNET_VARIANTS if variants is None else variants)
    if not variants:
        raise ValidationError("A supernet study needs at least one variant.")
    start = time.perf_counter()
    run = Path(run)
    # bound to what the trained numbers depend on, so a study can grow (more architectures,
    # more variants) in the same directory and reuse every candidate already trained
    identity = {k: v for k, v in config.to_dict().items() if k in _IDENTITY}
    check_stored_job(run, "supernet_study", identity)  # refused before anything is written
    store = SQLiteStore(run / "results.sqlite")
    store.register_run("supernet_study", identity)

    configs = {name: config.supernet.replace(**changes) for name, changes in variants.items()}
    truth = None
    rows, seconds = [], {}
    for name, supernet_config in configs.items():
        began = time.perf_counter()
        sn = supernet_run(run / "supernets" / name, supernet_config, progress=progress)
        context = EstimatorContext(sn.ranking, sn.result.supernet, sn.dataset, config.candidate,
                                   seed=config.seed)  # fmt: skip
        if truth is None:  # the sample, its training and the baselines: once
            sizes = [len(sn.ranking.space)] * len(sn.ranking.cells)
            picks = uniform_architectures(sizes, config.n, seed=config.seed)
            archs = context.cells(picks)
            records = train_sample(store, archs, config, dataset_spec(supernet_config), executor,
                             progress)  # fmt: skip
            acc = _accuracies(records, len(archs), config)
            done = np.all(np.isfinite(acc), axis=1)
            truth = acc[done].mean(axis=1)
            params = score_architectures(context, picks[done], ["params"])["params"]
            reference: dict[str, np.ndarray] = {}
        scores = score_architectures(context, picks[done], STUDY_ESTIMATORS)
        seconds[name] = round(time.perf_counter() - began, 2)
        for estimator, values in scores.items():
            reference.setdefault(estimator, values)
            rows.append(_row(name, estimator, values, truth, params, reference[estimator],
                             n_boot, config.seed))  # fmt: skip
    rows.append(_row("-", "params", params, truth, params, params, n_boot, config.seed))
    table = pd.DataFrame(rows)
    ceiling = noise_ceiling(acc[done], n_boot=n_boot, seed=config.seed)
    report = {
        "n": int(done.sum()),
        "seeds": list(config.seeds),
        "dataset": config.supernet.dataset,
        "variants": variants,
        "noise_ceiling": asdict(ceiling),
        "signal_to_noise": signal_to_noise(acc),
        "table": table.to_dict(orient="records"),
        "timing_s": {"variants": seconds, "wall": round(time.perf_counter() - start, 2)},
    }
    with atomic_write(run / "study.csv", newline="") as handle:
        table.to_csv(handle, index=False)
    update_summary(run, "supernet_study", report)
    store.close()
    return table


def _accuracies(records: dict, n: int, config: ValidationConfig) -> np.ndarray:
    """``(n, S)`` the target of every architecture under every seed (NaN where not complete)."""
    frame = pd.DataFrame(
        {
            f"{config.target}_seed{seed}": [
                r.metrics[config.target] if r.status.name == "COMPLETE" else np.nan
                for r in (records[(a, seed)] for a in range(n))
            ]
            for seed in config.seeds
        }
    )
    return accuracy_matrix(frame, config.target, config.seeds)


def _row(variant, estimator, values, truth, params, reference, n_boot, seed) -> dict[str, Any]:
    tau = rank_correlation(values, truth, n_boot=n_boot, seed=seed)
    vs_params = paired_correlation_difference(values, params, truth, n_boot=n_boot, seed=seed)
    vs_ref = paired_correlation_difference(values, reference, truth, n_boot=n_boot, seed=seed)
    return {
        "variant": variant, "estimator": estimator, "kendall": tau.value,
        "kendall_low": tau.low, "kendall_high": tau.high,
        "delta_vs_reference": vs_ref.value, "p_vs_reference": vs_ref.p_value,
        "delta_vs_params": vs_params.value, "p_vs_params": vs_params.p_value,
    }  # fmt: skip
