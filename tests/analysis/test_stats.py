"""Tests of :mod:`analysis.stats`: scipy agreement, bootstrap oracles, and error paths."""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pytest
from scipy import stats as scipy_stats

from analysis.errors import AnalysisError
from analysis.stats import (
    Correlation,
    _resampled_correlations,
    mann_whitney,
    precision_at_k,
    rank_correlation,
    summarize,
)

METHODS = ["kendall", "spearman"]
SCIPY = {"kendall": scipy_stats.kendalltau, "spearman": scipy_stats.spearmanr}


def correlated(n: int, seed: int, *, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = x + rng.normal(size=n)
    if ties:
        x, y = np.round(x), np.round(y)
    return x, y


# -- rank_correlation --------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("ties", [False, True])
def test_value_and_p_value_equal_scipy(method: str, seed: int, ties: bool) -> None:
    x, y = correlated(40, seed, ties=ties)
    got = rank_correlation(x, y, method=method, n_boot=200, seed=seed)
    want = SCIPY[method](x, y)
    assert got.value == pytest.approx(want.statistic, abs=1e-12)
    assert got.p_value == pytest.approx(want.pvalue, rel=1e-9)
    assert (got.n, got.method, got.reason) == (40, method, None)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_vectorised_bootstrap_equals_a_loop_over_scipy(method: str, seed: int) -> None:
    """The fast resampled statistics equal scipy on every resample, ties and repeats included."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 5, size=15).astype(float)  # many ties
    y = x + rng.integers(0, 3, size=15)
    x[3] = np.inf  # an extreme value, compared, not subtracted
    indices = rng.integers(0, 15, size=(300, 15))
    fast = _resampled_correlations(x, y, indices, method)
    finite_x = np.where(np.isinf(x), 1e9, x)  # scipy's own ranks need finite values here
    slow = np.array([SCIPY[method](finite_x[i], y[i]).statistic for i in indices])
    np.testing.assert_allclose(fast, slow, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("method", METHODS)
def test_interval_is_the_percentiles_of_the_documented_resamples(method: str) -> None:
    x, y = correlated(25, 7)
    got = rank_correlation(x, y, method=method, n_boot=400, ci=0.9, seed=11)
    indices = np.random.default_rng(11).integers(0, 25, size=(400, 25))
    slow = np.array([SCIPY[method](x[i], y[i]).statistic for i in indices])
    low, high = np.nanquantile(slow, [0.05, 0.95])
    assert (got.low, got.high) == pytest.approx((low, high), abs=1e-12)
    assert (got.ci_level, got.n_boot) == (0.9, 400)


@pytest.mark.parametrize("method", METHODS)
def test_interval_contains_the_value_and_narrows_with_n(method: str) -> None:
    widths = []
    for n in (20, 80, 320):
        x, y = correlated(n, 3)
        got = rank_correlation(x, y, method=method, n_boot=1000, seed=0)
        assert got.low <= got.value <= got.high
        assert -1 <= got.low < got.high <= 1
        widths.append(got.high - got.low)
    assert widths[0] > widths[1] > widths[2]
    assert widths[2] < widths[0] / 2.5  # roughly 1/sqrt(n): 4x the data, half the width


@pytest.mark.parametrize("method", METHODS)
def test_bootstrap_is_reproducible_by_seed(method: str) -> None:
    x, y = correlated(30, 5)
    first = rank_correlation(x, y, method=method, n_boot=300, seed=42)
    assert rank_correlation(x, y, method=method, n_boot=300, seed=42) == first
    other = rank_correlation(x, y, method=method, n_boot=300, seed=43)
    assert (other.low, other.high) != (first.low, first.high)
    assert other.value == first.value
    generator = np.random.default_rng(42)  # a Generator is used as given
    assert rank_correlation(x, y, method=method, n_boot=300, seed=generator) == first


def test_inputs_are_not_modified_and_lists_work() -> None:
    x, y = correlated(10, 0)
    x_before, y_before = x.copy(), y.copy()
    from_arrays = rank_correlation(x, y, n_boot=50)
    assert rank_correlation(x.tolist(), y.tolist(), n_boot=50) == from_arrays
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(y, y_before)


def test_nan_pairs_are_dropped_and_counted() -> None:
    x, y = correlated(20, 1)
    x_nan, y_nan = x.copy(), y.copy()
    x_nan[[2, 5]] = np.nan
    y_nan[7] = np.nan
    keep = np.ones(20, dtype=bool)
    keep[[2, 5, 7]] = False
    got = rank_correlation(x_nan, y_nan, n_boot=100, seed=0)
    assert got.n == 17
    assert got == rank_correlation(x[keep], y[keep], n_boot=100, seed=0)


@pytest.mark.parametrize(
    ("x", "y", "reason"),
    [
        ([1.0, 2.0], [2.0, 1.0], r"fewer than 3 pairs without NaN \(n=2\)"),
        ([1.0, 2.0, np.nan, 4.0], [1.0, np.nan, 3.0, 4.0], r"fewer than 3 pairs .*\(n=2\)"),
        ([], [], r"\(n=0\)"),
        ([3.0, 3.0, 3.0, 3.0], [1.0, 2.0, 3.0, 4.0], r"x is constant \(3.0 for all 4 pairs\)"),
        ([1.0, 2.0, 3.0], [5.0, 5.0, 5.0], r"y is constant"),
    ],
)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.filterwarnings("error")  # no RuntimeWarning from numpy or scipy either
def test_too_little_data_is_nan_with_a_reason(x, y, reason: str, method: str) -> None:
    got = rank_correlation(x, y, method=method)
    assert isinstance(got, Correlation)
    assert all(math.isnan(v) for v in (got.value, got.low, got.high, got.p_value))
    assert got.reason is not None
    assert re.search(reason, got.reason), got.reason


def test_no_interval_when_n_boot_is_zero() -> None:
    x, y = correlated(10, 0)
    got = rank_correlation(x, y, n_boot=0)
    assert not math.isnan(got.value) and math.isnan(got.low) and math.isnan(got.high)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"x": [[1, 2], [3, 4]], "y": [1, 2, 3, 4]},
            r"'x' of rank_correlation must be a 1-D array; got shape \(2, 2\)",
        ),
        (
            {"x": [1, 2, 3], "y": [1, 2]},
            r"same length \(they are paired\); got shapes \(3,\) and \(2,\)",
        ),
        ({"x": ["a", "b", "c"], "y": [1, 2, 3]}, r"'x' of rank_correlation must be a 1-D array"),
        ({"method": "pearson"}, r"'method' .*\('kendall', 'spearman'\); got 'pearson' instead"),
        ({"n_boot": -1}, r"'n_boot' .*integer >= 0; got -1 instead"),
        ({"n_boot": 2.5}, r"'n_boot' .*got 2.5 instead"),
        ({"ci": 1.0}, r"'ci' .*number in \(0, 1\); got 1.0 instead"),
    ],
)
def test_rank_correlation_bad_input(kwargs: dict, match: str) -> None:
    arguments = {"x": [1.0, 2.0, 3.0], "y": [1.0, 3.0, 2.0], **kwargs}
    with pytest.raises(AnalysisError, match=match):
        rank_correlation(arguments.pop("x"), arguments.pop("y"), **arguments)


# -- precision_at_k ----------------------------------------------------------------------------


def _precision_by_enumeration(scores: np.ndarray, truth: np.ndarray, k: int) -> float:
    """The oracle: average the plain overlap over every tie-breaking order of both arrays."""
    n = scores.size

    def top_sets(values: np.ndarray) -> list[frozenset[int]]:
        sets = []
        for order in itertools.permutations(range(n)):  # order = tie-breaking priority
            ranked = sorted(range(n), key=lambda i: (-values[i], order[i]))
            sets.append(frozenset(ranked[:k]))
        return sets

    pairs = itertools.product(top_sets(scores), top_sets(truth))
    overlaps = [len(a & b) / k for a, b in pairs]
    return float(np.mean(overlaps))


def test_precision_at_k_without_ties() -> None:
    scores = np.array([0.9, 0.1, 0.8, 0.3, 0.7])
    truth = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    assert precision_at_k(scores, truth, 1) == 1.0  # item 0 tops both
    assert precision_at_k(scores, truth, 2) == 0.5  # {0, 2} vs {0, 1}
    assert precision_at_k(scores, truth, 3) == pytest.approx(2 / 3)  # {0, 2, 4} vs {0, 1, 2}
    assert precision_at_k(scores, truth, 5) == 1.0
    assert precision_at_k(truth, truth, 2) == 1.0


@pytest.mark.parametrize("seed", range(6))
def test_precision_at_k_ties_equal_the_enumeration_oracle(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 3, size=5).astype(float)
    truth = rng.integers(0, 3, size=5).astype(float)
    for k in range(1, 6):
        want = _precision_by_enumeration(scores, truth, k)
        assert precision_at_k(scores, truth, k) == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize(
    ("scores", "truth", "k", "match"),
    [
        ([1, 2, 3], [1, 2, 3], 0, r"'k' .*integer in \[1, 3\] .*got 0 instead"),
        ([1, 2, 3], [1, 2, 3], 4, r"in \[1, 3\] .*got 4 instead"),
        ([1, 2, 3], [1, 2, 3], 1.0, r"got 1.0 instead"),
        ([1, np.nan, 3], [1, 2, 3], 1, r"'scores' .*NaN at positions \[1\]"),
        ([1, 2, 3], [1, 2], 1, r"'scores' and 'truth' .*shapes \(3,\) and \(2,\)"),
        ([[1, 2, 3]], [1, 2, 3], 1, r"'scores' of precision_at_k .*shape \(1, 3\)"),
    ],
)
def test_precision_at_k_bad_input(scores, truth, k, match: str) -> None:
    with pytest.raises(AnalysisError, match=match):
        precision_at_k(scores, truth, k)


# -- mann_whitney ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_mann_whitney_equals_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0.5, 1, size=12), rng.normal(0, 1, size=9)
    got = mann_whitney(a, b)
    want = scipy_stats.mannwhitneyu(a, b, alternative="two-sided")
    assert (got.u, got.p_value) == pytest.approx((want.statistic, want.pvalue), rel=1e-12)
    assert (got.n_a, got.n_b, got.reason) == (12, 9, None)
    wins = sum((ai > bi) + 0.5 * (ai == bi) for ai in a for bi in b)  # the effect by counting
    assert got.effect_size == pytest.approx(2 * wins / (12 * 9) - 1)


def test_mann_whitney_effect_size_sign_and_nan() -> None:
    assert mann_whitney([5, 6, 7], [1, 2]).effect_size == 1.0
    assert mann_whitney([1, 2], [5, 6, 7]).effect_size == -1.0
    got = mann_whitney([1, np.nan, 3], [2, np.nan])
    assert (got.n_a, got.n_b) == (2, 1)
    empty = mann_whitney([np.nan], [1, 2])
    assert math.isnan(empty.u) and math.isnan(empty.p_value)
    assert empty.reason == "a sample is empty after dropping NaN (n_a=0, n_b=2)"
    with pytest.raises(AnalysisError, match=r"'b' of mann_whitney must be a 1-D array; got sh"):
        mann_whitney([1, 2], [[1, 2]])


# -- summarize ---------------------------------------------------------------------------------


def test_summarize_equals_numpy() -> None:
    values = np.array([3.0, 1.0, np.nan, 4.0, 1.5, 9.0])
    got = summarize(values)
    finite = values[~np.isnan(values)]
    assert got.n == 5
    assert got.median == np.median(finite) and got.mean == pytest.approx(np.mean(finite))
    assert got.std == pytest.approx(np.std(finite, ddof=1))
    assert (got.q25, got.q75) == (np.quantile(finite, 0.25), np.quantile(finite, 0.75))


def test_summarize_small_and_bad_samples() -> None:
    one = summarize([2.0])
    assert (one.median, one.mean, one.n) == (2.0, 2.0, 1) and math.isnan(one.std)
    empty = summarize([np.nan])
    assert empty.n == 0 and math.isnan(empty.median)
    with pytest.raises(AnalysisError, match=r"'values' of summarize must be a 1-D array of num"):
        summarize(["fast", "slow"])


# -- noise ceiling, paired differences, regret -------------------------------------------------


def test_paired_difference_of_a_ranking_with_itself_is_exactly_zero():
    from analysis.stats import paired_correlation_difference

    x, y = correlated(40, 0)
    d = paired_correlation_difference(x, x.copy(), y, n_boot=500, seed=1)
    assert d.value == 0.0 and d.low == 0.0 and d.high == 0.0 and d.p_value == 1.0


def test_paired_difference_recovers_a_planted_better_ranking():
    from analysis.stats import paired_correlation_difference

    rng = np.random.default_rng(0)
    truth = rng.normal(size=80)
    good, bad = truth + 0.3 * rng.normal(size=80), rng.normal(size=80)
    d = paired_correlation_difference(good, bad, truth, n_boot=1000, seed=0)
    tau_good = scipy_stats.kendalltau(good, truth).statistic
    tau_bad = scipy_stats.kendalltau(bad, truth).statistic
    assert d.value == pytest.approx(tau_good - tau_bad)
    assert d.ratio == pytest.approx(tau_good / tau_bad)
    assert d.low > 0 and d.p_value < 0.01
    again = paired_correlation_difference(good, bad, truth, n_boot=1000, seed=0)
    assert again == d


def test_paired_difference_reports_degenerate_input():
    from analysis.stats import paired_correlation_difference

    d = paired_correlation_difference([1.0, 1.0, 1.0], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert math.isnan(d.value) and "constant" in d.reason


def test_noise_ceiling_of_identical_seeds_is_one_and_of_pure_noise_near_zero():
    from analysis.stats import noise_ceiling

    rng = np.random.default_rng(0)
    truth = rng.normal(size=60)
    same = noise_ceiling(np.stack([truth, truth, truth], axis=1), n_boot=200)
    assert same.between_seeds.value == pytest.approx(1.0) and same.seeds == 3
    assert same.seed_vs_rest.value == pytest.approx(1.0)
    noise = noise_ceiling(rng.normal(size=(400, 2)), n_boot=200)
    assert abs(noise.between_seeds.value) < 0.1
    assert noise.between_seeds.low < 0 < noise.between_seeds.high


def test_noise_ceiling_matches_the_hand_computation():
    from analysis.stats import noise_ceiling

    acc = np.random.default_rng(3).normal(size=(30, 3))
    c = noise_ceiling(acc, n_boot=0)
    tau = lambda a, b: scipy_stats.kendalltau(a, b).statistic  # noqa: E731
    pairs = np.mean([tau(acc[:, 0], acc[:, 1]), tau(acc[:, 0], acc[:, 2]),
                     tau(acc[:, 1], acc[:, 2])])  # fmt: skip
    rest = np.mean([tau(acc[:, i], np.delete(acc, i, axis=1).mean(axis=1)) for i in range(3)])
    assert c.between_seeds.value == pytest.approx(pairs)
    assert c.seed_vs_rest.value == pytest.approx(rest)


def test_noise_ceiling_needs_two_seeds():
    from analysis.stats import noise_ceiling

    with pytest.raises(AnalysisError, match="at least 2 seeds; got shape \\(5, 1\\)"):
        noise_ceiling(np.zeros((5, 1)))


def test_top_k_regret():
    from analysis.stats import top_k_regret

    truth = np.array([0.9, 0.5, 0.7, 0.95])
    assert top_k_regret([4, 3, 2, 1], truth, 1) == pytest.approx(0.05)
    assert top_k_regret([1, 2, 3, 4], truth, 1) == 0.0
    assert top_k_regret([4, 3, 2, 1], truth, 4) == 0.0
