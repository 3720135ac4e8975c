"""Tests of :mod:`analysis.supernet_study`: variants scored on one trained sample."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from analysis.supernet_study import DEFAULT_VARIANTS, SUPERNET_VARIANTS, run_supernet_study
from analysis.validation import ValidationError, validation_preset


@pytest.fixture(scope="module")
def tiny_config():
    config = validation_preset("smoke")
    return dataclasses.replace(
        config,
        supernet=config.supernet.replace(epochs=2, channels=4, device="cpu"),
        candidate=config.candidate.replace(epochs=1, channels=4),
        n=6,
    )


def test_variants_score_the_same_trained_architectures(tmp_path, tiny_config):
    from surrogate.executors import LocalExecutor

    variants = {
        "original": {},
        "frozen_shortcut": {"shortcut": "frozen"},
        "distilled": {
            "arch_gradient": "score_function",
            "arch_schedule": "after",
            "arch_steps": 20,
            "arch_samples": 2,
            "arch_target": "snip",
        },
    }
    with LocalExecutor(workers=1) as executor:
        table = run_supernet_study(tmp_path, tiny_config, variants, executor=executor,
                                   progress=False, n_boot=100)  # fmt: skip
    assert list(table["variant"]) == (["original"] * 3 + ["frozen_shortcut"] * 3
                                      + ["distilled"] * 3 + ["-", "-"])  # fmt: skip
    assert list(table["estimator"][-2:]) == ["params", "snip"]
    ref = table[table["variant"] == "original"]
    assert (ref["delta_vs_reference"] == 0).all() and (ref["p_vs_reference"] == 1).all()
    # the surrogate beside its own supernet's one-shot loss, and a distilled one beside its teacher
    surrogate = table[table["estimator"] == "surrogate"].set_index("variant")
    assert surrogate["p_vs_one_shot_loss"].notna().all()
    assert list(surrogate["teacher"]) == ["", "", "snip"]
    assert np.isfinite(surrogate.loc["distilled", "ratio_vs_teacher"])
    snip = table[table["estimator"] == "snip"]["kendall"].iloc[0]
    assert surrogate.loc["distilled", "ratio_vs_teacher"] == pytest.approx(
        surrogate.loc["distilled", "kendall"] / snip
    )
    assert pd.read_csv(tmp_path / "study.csv").shape == table.shape
    report = json.loads((tmp_path / "summary.json").read_text())["supernet_study"]
    assert report["n"] <= 6 and report["seeds"] == [0, 1]
    assert set(report["timing_s"]["variants"]) == set(variants)
    assert all(t["supernet"] > 0 for t in report["timing_s"]["variants"].values())
    for name in variants:  # one supernet per variant, each with its own run files
        assert (tmp_path / "supernets" / name / "supernet.pt").exists()
    frozen = json.loads((tmp_path / "supernets" / "frozen_shortcut" / "config.json").read_text())
    assert frozen["shortcut"] == "frozen"
    # the sample was trained once: 6 architectures x 2 seeds in the store
    import sqlite3

    with sqlite3.connect(tmp_path / "results.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0] == 12
    assert np.isfinite(table["kendall"].dropna()).all()
    # the study grows in the same directory: one more architecture trains only its 2 runs
    grown = dataclasses.replace(tiny_config, n=7)
    with LocalExecutor(workers=1) as executor:
        run_supernet_study(tmp_path, grown, variants, executor=executor, progress=False,
                           n_boot=100)  # fmt: skip
    with sqlite3.connect(tmp_path / "results.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0] == 14


def test_every_variant_is_a_valid_config_whatever_the_defaults(tiny_config):
    keys = set(SUPERNET_VARIANTS["original"])
    for changes in SUPERNET_VARIANTS.values():
        tiny_config.supernet.replace(epochs=20, **changes)  # raises if a variant is invalid
        assert keys <= set(changes)  # every training key set: the same training for any default
    assert DEFAULT_VARIANTS[0] == "original"
    original = tiny_config.supernet.replace(**SUPERNET_VARIANTS["original"])
    assert (original.arch_gradient, original.weight_sampling, original.shortcut) == (
        "straight_through",
        "learned",
        "learned",
    )


def test_a_study_needs_a_variant(tmp_path, tiny_config):
    with pytest.raises(ValidationError, match="at least one variant"):
        run_supernet_study(tmp_path, tiny_config, {})
