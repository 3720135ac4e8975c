"""Tests of :mod:`analysis.validation`: the uniform sample, the figures on planted and null
data (noise ceiling, paired tests, regret), the composition and the plot."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis.validation import (
    ValidationConfig,
    ValidationError,
    estimator_table,
    plot_validation,
    summarize_validation,
    uniform_architectures,
)


def test_uniform_sample_is_distinct_seeded_and_uniform():
    picks = uniform_architectures([40, 40, 40], 200, seed=1)
    assert picks.shape == (200, 3) and len({tuple(p) for p in picks.tolist()}) == 200
    np.testing.assert_array_equal(picks, uniform_architectures([40, 40, 40], 200, seed=1))
    counts = np.bincount(picks.ravel(), minlength=40)
    assert counts.min() > 0  # every cell appears: no cell is favoured by the draw
    small = uniform_architectures([2, 3], 6, seed=0)
    assert {tuple(p) for p in small.tolist()} == {(a, b) for a in range(2) for b in range(3)}
    with pytest.raises(ValidationError, match="Asked for 7 distinct architectures; the space "
                                              "holds only 6"):  # fmt: skip
        uniform_architectures([2, 3], 7)


def make_frame(n=60, seeds=(0, 1), noise=0.005, seed=0):
    """A planted estimator (close to the truth), a pure-noise one, params, random."""
    rng = np.random.default_rng(seed)
    quality = rng.normal(size=n)
    frame = pd.DataFrame({
        "uniform": np.arange(n) < n - 10,
        "cell_vertices": ["5,4" if i % 2 else "3,5" for i in range(n)],
        "score_planted": quality + 0.2 * rng.normal(size=n),
        "score_noise": rng.normal(size=n),
        "score_params": rng.integers(1000, 5000, size=n).astype(float),
        "score_random": rng.permutation(n).astype(float),
        "params": 1000.0,
    })  # fmt: skip
    for s in seeds:
        frame[f"test_accuracy_seed{s}"] = 0.8 + 0.02 * quality + noise * rng.normal(size=n)
    frame["test_accuracy"] = frame[[f"test_accuracy_seed{s}" for s in seeds]].mean(axis=1)
    return frame


def test_summary_recovers_a_planted_estimator_and_shows_none_in_noise(tmp_path):
    frame = make_frame()
    frame.loc[3, "test_accuracy_seed1"] = np.nan  # a failed run is left out, not fatal
    s = summarize_validation(frame, top_k=5, n_boot=300)
    assert s.n == 59 and s.n_uniform == 49 and s.seeds == (0, 1)
    planted, noise = s.estimators["planted"], s.estimators["noise"]
    assert planted.kendall.value > 0.6 and planted.kendall.low > 0.4
    assert noise.kendall.low < 0 < noise.kendall.high
    assert planted.vs_params.low > 0 and planted.vs_params.p_value < 0.01
    assert noise.vs_params.p_value > 0.05  # "not distinguishable"
    assert s.ceiling.seed_vs_rest.value > 0.7
    assert planted.tau_over_ceiling == pytest.approx(
        planted.kendall.value / s.ceiling.seed_vs_rest.value
    )
    assert planted.regret_at_k <= noise.regret_at_k
    assert s.best == "planted"
    assert s.signal_to_noise["ratio"] > 2
    assert s.composition["uniform"] == {"3 vertices": 25, "4 vertices": 25, "5 vertices": 50}
    again = summarize_validation(frame, top_k=5, n_boot=300)  # NaN != NaN: compare as JSON
    assert json.dumps(again.to_dict(), default=float) == json.dumps(s.to_dict(), default=float)
    table = estimator_table(s)
    assert list(table["estimator"]) == ["planted", "noise", "params", "random"]
    png = plot_validation(frame, s, tmp_path / "validation.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_pure_noise_data_has_no_ceiling_and_no_signal():
    frame = make_frame(n=200, noise=1.0)
    s = summarize_validation(frame, n_boot=300)
    assert abs(s.ceiling.between_seeds.value) < 0.15
    assert s.signal_to_noise["ratio"] < 1


def test_the_summary_needs_seed_columns():
    frame = make_frame().drop(columns=["test_accuracy_seed0", "test_accuracy_seed1"])
    with pytest.raises(ValidationError, match="no 'test_accuracy_seed<s>' column"):
        summarize_validation(frame)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"n": 0}, "'n' must be an int >= 1; got 0"),
        ({"seeds": (1, 1)}, "'seeds' must be distinct ints; got \\(1, 1\\)"),
        ({"estimators": ("surrogate", "magic")}, "Unknown estimator\\(s\\) \\['magic'\\]"),
        ({"target": "loss"}, "'target' must be 'test_accuracy' or 'val_accuracy'"),
        ({"include_top": -1}, "'include_top' must be an int >= 0; got -1"),
    ],
)
def test_bad_validation_configs(changes, message):
    from surrogate.candidate import candidate_preset
    from surrogate.config import supernet_preset

    with pytest.raises(ValidationError, match=message):
        ValidationConfig(supernet_preset("smoke"), candidate_preset("smoke"), **changes)


def test_a_smaller_uniform_sample_is_a_prefix_of_a_larger_one():
    small = uniform_architectures([30, 30], 50, seed=4)
    large = uniform_architectures([30, 30], 400, seed=4)
    np.testing.assert_array_equal(small, large[:50])
