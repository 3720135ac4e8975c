from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.validation import plot_validation, stratified_architectures, summarize_validation


def test_stratified_sample_covers_the_score_range_and_includes_the_top():
    rng = np.random.default_rng(0)
    log_probs = [np.log(rng.dirichlet(np.ones(40))) for _ in range(3)]
    picks, scores = stratified_architectures(log_probs, 20, seed=1)
    assert picks.shape == (20, 3) and len({tuple(p) for p in picks.tolist()}) == 20
    best = tuple(int(np.argmax(lp)) for lp in log_probs)
    assert tuple(picks[0]) == best
    np.testing.assert_allclose(
        scores, [sum(lp[i] for lp, i in zip(log_probs, p, strict=True)) for p in picks.tolist()]
    )
    assert np.all(np.diff(scores) <= 0)
    # one pick per stratum: the picks spread over the pool's range, not only its top
    _, pool_scores = stratified_architectures(log_probs, 400, seed=1)
    assert scores[-1] < np.quantile(pool_scores, 0.1)
    again, _ = stratified_architectures(log_probs, 20, seed=1)
    np.testing.assert_array_equal(picks, again)


def test_stratified_sample_skips_impossible_architectures():
    log_probs = [np.array([0.0, -np.inf, -1.0]), np.array([-np.inf, -0.5])]
    picks, scores = stratified_architectures(log_probs, 2, seed=0, pool=100)
    assert np.isfinite(scores).all() and set(picks[:, 1].tolist()) == {1}
    with pytest.raises(ValueError, match="Only 2 distinct architectures"):
        stratified_architectures(log_probs, 3, seed=0, pool=100)


def make_frame(n=30, seed=0):
    rng = np.random.default_rng(seed)
    score = rng.normal(size=n)
    return pd.DataFrame(
        {
            "surrogate_score": score,
            "test_accuracy": 0.8 + 0.05 * score + 0.01 * rng.normal(size=n),
            "params": rng.integers(1000, 5000, size=n),
        }
    )


def test_summary_figures(tmp_path):
    frame = make_frame()
    frame.loc[3, "test_accuracy"] = np.nan  # a failed candidate is left out, not fatal
    summary = summarize_validation(frame, seed=0, n_boot=300)
    assert summary.n == 29
    assert summary.surrogate_kendall.value > 0.6
    assert summary.surrogate_kendall.low <= summary.surrogate_kendall.value
    assert summary.surrogate_precision_at_k >= 0.6
    assert abs(summary.random_kendall.value) < 0.4 and abs(summary.params_kendall.value) < 0.4
    assert summary.to_dict()["surrogate_spearman"]["method"] == "spearman"
    again = summarize_validation(frame, seed=0, n_boot=300)
    assert again == summary
    png = plot_validation(frame, summary, tmp_path / "scatter.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
