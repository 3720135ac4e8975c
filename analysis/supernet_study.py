"""Which supernet training ranks best? Variants of one supernet config on the same architectures.

:func:`run_supernet_study` trains one fixed sample of architectures (the validation protocol's
uniform part: ``n`` architectures drawn uniformly, each trained once per seed, through the run's
results store) and, for every variant (a set of :class:`surrogate.SupernetConfig` changes, e.g.
``{"arch_gradient": "score_function"}``), trains a supernet in ``run/supernets/<variant>/`` and
scores the same sample with the supernet's estimators: the relative surrogate of its trained
multinomials, and one-shot evaluation (loss and accuracy) on its shared weights. Every variant's
Kendall tau against the mean stand-alone accuracy is given with its bootstrap interval and paired
bootstrap tests against the first variant's (the reference), against the parameter count, and,
for the surrogate, against the one-shot loss of the *same* supernet (what its weights know) and,
for a distilled variant, against its teacher (what the factorised multinomials keep of it). The
noise ceiling and the data's signal-to-noise ratio are computed once. The study writes
``study.csv`` and the ``supernet_study`` section of ``summary.json``, with each variant's
supernet training time.
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

__all__ = [
    "DEFAULT_VARIANTS",
    "STUDY_ESTIMATORS",
    "SUPERNET_VARIANTS",
    "run_supernet_study",
]

STUDY_ESTIMATORS = ("surrogate", "one_shot_loss", "one_shot_accuracy")
BASELINES = ("params", "snip")
"""Scored once, beside every variant: the parameter count (the floor every estimator must
clear) and SNIP at initialisation (the best cheap estimator of the earlier validations)."""
_ONE_SHOT = "one_shot_loss"

# every key a variant sets, so that a variant means the same training whatever the defaults are
_ORIGINAL = {"weight_sampling": "learned", "shortcut": "learned", "warmup_epochs": 0,
             "tau_start": 10.0, "tau_end": 0.1, "edge_lr": None,
             "arch_gradient": "straight_through", "arch_schedule": "joint", "arch_target": "loss",
             "arch_lr": 3e-3, "arch_entropy": 0.0}  # fmt: skip
_STRAIGHT = {**_ORIGINAL, "weight_sampling": "uniform", "shortcut": "frozen"}
_SCORE = {**_STRAIGHT, "arch_gradient": "score_function", "arch_lr": 0.05}
_ENTROPY = 0.5

SUPERNET_VARIANTS: dict[str, dict[str, Any]] = {
    "original": _ORIGINAL,
    "straight_through": _STRAIGHT,
    "score_joint": {**_SCORE, "arch_schedule": "joint"},
    "score_after": {**_SCORE, "arch_schedule": "after"},
    "score_after_entropy": {**_SCORE, "arch_schedule": "after", "arch_entropy": _ENTROPY},
    "score_after_shortcut": {**_SCORE, "arch_schedule": "after", "arch_entropy": _ENTROPY,
                             "shortcut": "learned"},
    "distill_snip": {**_SCORE, "arch_schedule": "after", "arch_entropy": _ENTROPY,
                     "arch_target": "snip"},
    # the remedies of the straight-through training measured before (README)
    "warmup": {**_ORIGINAL, "warmup_epochs": 10},
    "uniform_weights": {**_ORIGINAL, "weight_sampling": "uniform"},
    "frozen_shortcut": {**_ORIGINAL, "shortcut": "frozen"},
    "constant_temperature": {**_ORIGINAL, "tau_start": 1.0, "tau_end": 1.0},
    "edge_lr_x3": {**_ORIGINAL, "edge_lr": 9e-3},
}  # fmt: skip
"""Named trainings: the original GDAS-style one (the reference), the straight-through training
with the remedies of the earlier study, the score-function gradient jointly and after the
weights (with and without the entropy term, with the input -> output edge learned), the
distillation of SNIP, and the earlier study's single remedies."""

DEFAULT_VARIANTS = tuple(list(SUPERNET_VARIANTS)[:7])
"""What ``dagrank supernet study`` measures unless told otherwise."""


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
    from analysis.distillation import check_arch_target
    from analysis.results import SQLiteStore
    from analysis.runs import check_stored_job, update_summary
    from dagspace.io import atomic_write

    variants = dict({v: SUPERNET_VARIANTS[v] for v in DEFAULT_VARIANTS} if variants is None
                    else variants)  # fmt: skip
    if not variants:
        raise ValidationError("A supernet study needs at least one variant.")
    configs = {name: config.supernet.replace(**changes) for name, changes in variants.items()}
    for supernet_config in configs.values():  # every key checked before any training
        check_arch_target(supernet_config.arch_target)
    start = time.perf_counter()
    run = Path(run)
    identity = _identity(config)  # so that a study grows in its directory (below)
    check_stored_job(run, "supernet_study", identity)  # refused before anything is written
    store = SQLiteStore(run / "results.sqlite")
    store.register_run("supernet_study", identity)
    try:
        table, report = _study(run, config, configs, store, executor, progress, n_boot)
    finally:
        store.close()
    report["variants"] = variants
    report["timing_s"]["wall"] = round(time.perf_counter() - start, 2)
    with atomic_write(run / "study.csv", newline="") as handle:
        table.to_csv(handle, index=False)
    update_summary(run, "supernet_study", report)
    return table


def _identity(config: ValidationConfig) -> dict[str, Any]:
    """What the trained sample depends on (and nothing else, so that a study grows in its
    directory: more architectures, more variants, a new supernet training): the data and its
    split, the space of the sample, the stand-alone recipe, seeds, target and sample seed."""
    from analysis.runs import dataset_spec

    supernet = config.supernet
    data = {k: v for k, v in asdict(dataset_spec(supernet)).items()}
    space = {"vertices": supernet.vertices, "cells": supernet.cells, "ops": list(supernet.ops)}
    return {"data": data, "space": space, "candidate": config.candidate.to_dict(),
            "seeds": list(config.seeds), "target": config.target, "seed": config.seed}  # fmt: skip


def _study(run, config, configs, store, executor, progress, n_boot):
    """Train the sample once, then every variant's supernet; the table and the report."""
    from analysis.estimators import EstimatorContext, score_architectures
    from analysis.runs import dataset_spec, supernet_run
    from analysis.validation import train_sample

    truth = None
    rows, seconds = [], {}
    reference: dict[str, np.ndarray] = {}
    for name, supernet_config in configs.items():
        sn = supernet_run(run / "supernets" / name, supernet_config, progress=progress,
                          candidate=config.candidate)  # fmt: skip
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
            baselines = score_architectures(context, picks[done], BASELINES)
        began = time.perf_counter()
        scores = score_architectures(context, picks[done], STUDY_ESTIMATORS)
        seconds[name] = {"supernet": round(sn.result.train_seconds, 2),
                         "scoring": round(time.perf_counter() - began, 2)}  # fmt: skip
        teacher = supernet_config.arch_target
        for estimator, values in scores.items():
            reference.setdefault(estimator, values)
            compare = {"one_shot_loss": scores[_ONE_SHOT]} if estimator == "surrogate" else {}
            if estimator == "surrogate" and teacher != "loss":
                compare[teacher] = _teacher_scores(teacher, baselines, context, picks[done])
            rows.append(_row(name, estimator, values, truth, baselines["params"],
                             reference[estimator], compare, n_boot, config.seed))  # fmt: skip
    for name, values in baselines.items():
        rows.append(_row("-", name, values, truth, baselines["params"], values, {}, n_boot,
                         config.seed))  # fmt: skip
    ceiling = noise_ceiling(acc[done], n_boot=n_boot, seed=config.seed)
    report = {
        "n": int(done.sum()),
        "seeds": list(config.seeds),
        "dataset": config.supernet.dataset,
        "noise_ceiling": asdict(ceiling),
        "signal_to_noise": signal_to_noise(acc),
        "timing_s": {"variants": seconds},
    }
    table = pd.DataFrame(rows)
    report["table"] = table.to_dict(orient="records")
    return table, report


def _teacher_scores(teacher, baselines, context, picks) -> np.ndarray:
    from analysis.estimators import score_architectures

    if teacher in baselines:
        return baselines[teacher]
    return score_architectures(context, picks, [teacher])[teacher]


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


def _row(variant, estimator, values, truth, params, reference, compare, n_boot, seed):
    """One row of the table: tau with its interval, paired tests against the reference
    variant's same estimator and the parameter count, and against each of ``compare``
    (``name -> scores``: the same supernet's one-shot loss, a distilled variant's teacher:
    columns ``*_vs_one_shot_loss`` and ``*_vs_teacher``), with the ratio of the taus."""
    tau = rank_correlation(values, truth, n_boot=n_boot, seed=seed)
    vs_params = paired_correlation_difference(values, params, truth, n_boot=n_boot, seed=seed)
    vs_ref = paired_correlation_difference(values, reference, truth, n_boot=n_boot, seed=seed)
    row = {
        "variant": variant, "estimator": estimator, "n": tau.n, "kendall": tau.value,
        "kendall_low": tau.low, "kendall_high": tau.high,
        "delta_vs_reference": vs_ref.value, "p_vs_reference": vs_ref.p_value,
        "delta_vs_params": vs_params.value, "p_vs_params": vs_params.p_value,
        "teacher": "",
    }  # fmt: skip
    for which in ("one_shot_loss", "teacher"):
        row.update({f"delta_vs_{which}": np.nan, f"p_vs_{which}": np.nan,
                    f"ratio_vs_{which}": np.nan})  # fmt: skip
    for name, other in compare.items():
        which = "one_shot_loss" if name == _ONE_SHOT else "teacher"
        if which == "teacher":
            row["teacher"] = name
        diff = paired_correlation_difference(values, other, truth, n_boot=n_boot, seed=seed)
        row[f"delta_vs_{which}"] = diff.value
        row[f"p_vs_{which}"] = diff.p_value
        row[f"ratio_vs_{which}"] = diff.ratio
    return row
