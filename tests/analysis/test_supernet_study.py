"""Tests of :mod:`analysis.supernet_study`: variants scored on one trained sample."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from analysis.supernet_study import SUPERNET_VARIANTS, run_supernet_study
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

    variants = {"original": {}, "frozen_shortcut": {"shortcut": "frozen"}}
    with LocalExecutor(workers=1) as executor:
        table = run_supernet_study(tmp_path, tiny_config, variants, executor=executor,
                                   progress=False, n_boot=100)  # fmt: skip
    assert list(table["variant"]) == ["original"] * 3 + ["frozen_shortcut"] * 3 + ["-"]
    ref = table[table["variant"] == "original"]
    assert (ref["delta_vs_reference"] == 0).all() and (ref["p_vs_reference"] == 1).all()
    assert pd.read_csv(tmp_path / "study.csv").shape == table.shape
    report = json.loads((tmp_path / "summary.json").read_text())["supernet_study"]
    assert report["n"] <= 6 and report["seeds"] == [0, 1]
    assert set(report["timing_s"]["variants"]) == set(variants)
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


def test_every_default_variant_is_a_valid_config(tiny_config):
    for changes in SUPERNET_VARIANTS.values():
        tiny_config.supernet.replace(epochs=20, **changes)  # raises if a variant is invalid
    assert next(iter(SUPERNET_VARIANTS)) == "original" and SUPERNET_VARIANTS["original"] == {}


def test_a_study_needs_a_variant(tmp_path, tiny_config):
    with pytest.raises(ValidationError, match="at least one variant"):
        run_supernet_study(tmp_path, tiny_config, {})
