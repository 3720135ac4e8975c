"""Statistics for comparing rankings and methods: rank correlation with bootstrap CIs, and more.

Pure functions: 1-D arrays in, frozen dataclasses out; randomness only through a ``seed``
argument (normalised by :func:`dagspace.random.check_random_state`). Bad input (wrong shapes,
mismatched lengths, non-numbers, bad options) raises :class:`AnalysisError`; too little data
(fewer than 3 pairs, a constant input, an empty sample) is a result, not an error: the numbers
are NaN and ``reason`` says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats as _scipy_stats

from analysis.errors import AnalysisError
from dagspace.random import SeedLike, check_random_state

__all__ = [
    "Correlation",
    "MannWhitney",
    "NoiseCeiling",
    "PairedDifference",
    "Summary",
    "mann_whitney",
    "noise_ceiling",
    "paired_correlation_difference",
    "precision_at_k",
    "rank_correlation",
    "summarize",
    "top_k_regret",
]

_METHODS = ("kendall", "spearman")


@dataclass(frozen=True)
class Correlation:
    """A rank correlation with its percentile-bootstrap confidence interval.

    ``value`` and ``p_value`` are scipy's (Kendall's tau-b, or Spearman's rho); ``low``/``high``
    bound the ``ci_level`` interval; ``n`` counts the pairs used (NaN pairs dropped). When
    ``reason`` is not ``None`` the numbers it concerns are NaN.
    """

    value: float
    low: float
    high: float
    n: int
    method: str
    p_value: float
    ci_level: float
    n_boot: int
    reason: str | None = None


@dataclass(frozen=True)
class MannWhitney:
    """A two-sided Mann-Whitney U test of ``a`` against ``b``.

    ``u`` is the statistic of ``a``; ``effect_size`` is the rank-biserial correlation
    ``2 u / (n_a n_b) - 1``, in [-1, 1]: positive when values of ``a`` tend to exceed those of
    ``b`` (1: every ``a`` exceeds every ``b``).
    """

    u: float
    p_value: float
    n_a: int
    n_b: int
    effect_size: float
    reason: str | None = None


@dataclass(frozen=True)
class Summary:
    """Location and spread of a sample (NaN dropped); ``std`` is the sample one (``ddof=1``)."""

    median: float
    mean: float
    std: float
    q25: float
    q75: float
    n: int


def rank_correlation(
    x: Any,
    y: Any,
    *,
    method: Literal["kendall", "spearman"] = "kendall",
    n_boot: int = 2000,
    ci: float = 0.95,
    seed: SeedLike = 0,
) -> Correlation:
    """The rank correlation of paired samples, with a percentile bootstrap interval.

    Args:
        x, y: `n`-vectors of paired values (array-likes of numbers). Pairs with a NaN in either
            are dropped; infinities are ordinary, extreme values.
        method: ``"kendall"`` (tau-b, which corrects for ties) or ``"spearman"``.
        n_boot: the number of bootstrap resamples (0: no interval, ``low``/``high`` NaN).
        ci: the confidence level of the interval, in (0, 1).
        seed: the resamples are ``rng.integers(0, n, size=(n_boot, n))`` of
            ``rng = check_random_state(seed)``, so a seed fixes the interval.

    The resamples are evaluated all at once (see :func:`_resampled_correlations`): Spearman
    from row-wise ranks of the `n_boot x n` resampled arrays, Kendall from the `n x n`
    pairwise-sign matrices weighted by each resample's multiplicities, both O(n_boot n²) at
    worst, as array operations. Resamples in which ``x`` or ``y`` is constant have no
    correlation and are left out of the percentiles.

    Fewer than 3 pairs, or a constant ``x`` or ``y``, give NaN numbers and a ``reason``.
    """
    if method not in _METHODS:
        raise AnalysisError(
            f"The 'method' parameter of rank_correlation must be one of {_METHODS}; "
            f"got {method!r} instead."
        )
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise AnalysisError(
            f"The 'n_boot' parameter of rank_correlation must be an integer >= 0; "
            f"got {n_boot!r} instead."
        )
    if not isinstance(ci, (int, float, np.floating)) or not 0 < ci < 1:
        raise AnalysisError(
            f"The 'ci' parameter of rank_correlation must be a number in (0, 1); "
            f"got {ci!r} instead."
        )
    x, y = _paired(x, y, "rank_correlation")
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    n = int(x.size)
    result = dict(method=method, n=n, ci_level=float(ci), n_boot=int(n_boot))
    reason = _degenerate(x, y)
    if reason is not None:
        nan = float("nan")
        return Correlation(value=nan, low=nan, high=nan, p_value=nan, reason=reason, **result)

    if method == "kendall":
        test = _scipy_stats.kendalltau(x, y)  # tau-b
    else:
        test = _scipy_stats.spearmanr(x, y)
    low = high = float("nan")
    if n_boot > 0:
        indices = check_random_state(seed).integers(0, n, size=(int(n_boot), n))
        boot = _resampled_correlations(x, y, indices, method)
        low, high = _percentile_interval(boot, ci)
    return Correlation(
        value=float(test.statistic), low=low, high=high, p_value=float(test.pvalue), **result
    )


def precision_at_k(scores: Any, truth: Any, k: int) -> float:
    """The fraction of the top-``k`` by ``scores`` that is also in the top-``k`` by ``truth``.

    Higher is better in both (negate a loss first). Ties are broken uniformly at random, and
    the *expected* precision over that tie-breaking is returned exactly (no sampling): an item
    tied at the k-th place with ``m - 1`` others, for ``r`` remaining places, is in the top-k
    with probability ``r / m``, independently for ``scores`` and ``truth``. Without ties at the
    k-th place this is the plain overlap ``|top_k(scores) ∩ top_k(truth)| / k``.

    Args:
        scores, truth: `n`-vectors of numbers without NaN.
        k: an integer in ``[1, n]``.
    """
    scores, truth = _paired(scores, truth, "precision_at_k", names=("scores", "truth"))
    for name, values in (("scores", scores), ("truth", truth)):
        if np.isnan(values).any():
            where = np.flatnonzero(np.isnan(values))[:10].tolist()
            raise AnalysisError(
                f"The '{name}' of precision_at_k must not contain NaN; got NaN at positions "
                f"{where}. Drop or impute those items first."
            )
    n = scores.size
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
        raise AnalysisError(
            f"The 'k' parameter of precision_at_k must be an integer in [1, {n}] (the number "
            f"of items); got {k!r} instead."
        )
    overlap = np.dot(_top_k_probability(scores, int(k)), _top_k_probability(truth, int(k)))
    return float(overlap / k)


def mann_whitney(a: Any, b: Any) -> MannWhitney:
    """A two-sided Mann-Whitney U test (scipy's, ``method="auto"``) with its effect size.

    Args:
        a, b: 1-D samples of numbers (any lengths); NaN values are dropped.

    An empty sample (after dropping NaN) gives NaN numbers and a ``reason``.
    """
    a = _as_1d(a, "a", "mann_whitney")
    b = _as_1d(b, "b", "mann_whitney")
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    n_a, n_b = int(a.size), int(b.size)
    if n_a == 0 or n_b == 0:
        nan = float("nan")
        return MannWhitney(
            u=nan,
            p_value=nan,
            n_a=n_a,
            n_b=n_b,
            effect_size=nan,
            reason=f"a sample is empty after dropping NaN (n_a={n_a}, n_b={n_b})",
        )
    test = _scipy_stats.mannwhitneyu(a, b, alternative="two-sided")
    u = float(test.statistic)
    return MannWhitney(
        u=u, p_value=float(test.pvalue), n_a=n_a, n_b=n_b, effect_size=2.0 * u / (n_a * n_b) - 1.0
    )


def summarize(values: Any) -> Summary:
    """Median, mean, sample standard deviation and quartiles of ``values`` (NaN dropped).

    An empty sample gives NaN everywhere (and ``n == 0``); one value gives ``std`` NaN.
    """
    values = _as_1d(values, "values", "summarize")
    values = values[~np.isnan(values)]
    n = int(values.size)
    if n == 0:
        nan = float("nan")
        return Summary(median=nan, mean=nan, std=nan, q25=nan, q75=nan, n=0)
    q25, median, q75 = (float(q) for q in np.quantile(values, [0.25, 0.5, 0.75]))
    std = float(np.std(values, ddof=1)) if n > 1 else float("nan")
    return Summary(median=median, mean=float(np.mean(values)), std=std, q25=q25, q75=q75, n=n)


# -- helpers -----------------------------------------------------------------------------------


def _as_1d(values: Any, name: str, where: str) -> np.ndarray:
    """``values`` as a fresh 1-D float64 array, or :class:`AnalysisError` saying what it was."""
    try:
        array = np.array(values, dtype=np.float64)  # a copy: callers' arrays are never touched
    except (TypeError, ValueError) as err:
        raise AnalysisError(
            f"The '{name}' of {where} must be a 1-D array of numbers; got {values!r:.100} ({err})."
        ) from None
    if array.ndim != 1:
        raise AnalysisError(
            f"The '{name}' of {where} must be a 1-D array; got shape {array.shape}."
        )
    return array


def _paired(
    x: Any, y: Any, where: str, names: tuple[str, str] = ("x", "y")
) -> tuple[np.ndarray, np.ndarray]:
    x, y = _as_1d(x, names[0], where), _as_1d(y, names[1], where)
    if x.shape != y.shape:
        raise AnalysisError(
            f"The '{names[0]}' and '{names[1]}' of {where} must have the same length (they are "
            f"paired); got shapes {x.shape} and {y.shape}."
        )
    return x, y


def _degenerate(x: np.ndarray, y: np.ndarray) -> str | None:
    if x.size < 3:
        return f"fewer than 3 pairs without NaN (n={x.size})"
    for name, values in (("x", x), ("y", y)):
        if np.all(values == values[0]):
            return f"{name} is constant ({float(values[0])!r} for all {values.size} pairs)"
    return None


def _resampled_correlations(
    x: np.ndarray, y: np.ndarray, indices: np.ndarray, method: str
) -> np.ndarray:
    """The correlation of every resample ``(x[idx], y[idx])``, ``idx`` a row of ``indices``.

    Args:
        x, y: `n`-vectors.
        indices: a `B x m` integer array of positions into ``x`` and ``y``.

    Returns:
        A `B`-vector; NaN where a resample's ``x`` or ``y`` is constant.

    Spearman: the Pearson correlation of the row-wise average ranks of the `B x m` resampled
    arrays. Kendall (tau-b): with ``S[i, j] = sign(x_i - x_j)`` (an `n x n` matrix, likewise
    ``T`` for ``y``) and ``c`` a resample's multiplicities of the `n` items (a `B x n` matrix
    over all resamples), concordant minus discordant pairs are ``c' (S * T) c / 2`` and the
    pairs untied in ``x`` are ``c' |S| c / 2``: matrix products, with no `B x m x m` array.
    Repeated items are tied with themselves, as they are in the resampled arrays.
    """
    if method == "spearman":
        rx = _scipy_stats.rankdata(x[indices], axis=1)  # (B, m)
        ry = _scipy_stats.rankdata(y[indices], axis=1)
        rx -= rx.mean(axis=1, keepdims=True)
        ry -= ry.mean(axis=1, keepdims=True)
        numerator = np.einsum("bi,bi->b", rx, ry)
        denominator = np.sqrt(np.einsum("bi,bi->b", rx, rx) * np.einsum("bi,bi->b", ry, ry))
    else:
        n_resamples, n = indices.shape[0], x.size
        offsets = np.arange(n_resamples)[:, None] * n
        counts = np.bincount((indices + offsets).ravel(), minlength=n_resamples * n)
        counts = counts.reshape(n_resamples, n).astype(np.float64)  # (B, n), exact integers
        sx, sy = _pairwise_signs(x), _pairwise_signs(y)  # (n, n)
        numerator = np.einsum("bi,bi->b", counts @ (sx * sy), counts)
        untied_x = np.einsum("bi,bi->b", counts @ np.abs(sx), counts)
        untied_y = np.einsum("bi,bi->b", counts @ np.abs(sy), counts)
        denominator = np.sqrt(untied_x * untied_y)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)


def _pairwise_signs(values: np.ndarray) -> np.ndarray:
    """``sign(v_i - v_j)`` for every pair of an `n`-vector: an `n x n` float64 matrix.

    Comparisons rather than differences, so that equal infinities are ties, not NaN.
    """
    left, right = values[:, None], values[None, :]
    return (left > right).astype(np.float64) - (left < right).astype(np.float64)


def _top_k_probability(values: np.ndarray, k: int) -> np.ndarray:
    """Each item's probability of being in the top ``k`` when ties are broken at random."""
    threshold = np.sort(values)[::-1][k - 1]
    above = values > threshold
    tied = values == threshold
    probability = above.astype(np.float64)
    probability[tied] = (k - above.sum()) / tied.sum()
    return probability


@dataclass(frozen=True)
class PairedDifference:
    """``value = corr(a, truth) - corr(b, truth)`` on the same items, with a paired bootstrap
    interval and two-sided p-value (the share of resamples on the other side of 0, doubled);
    ``ratio = corr(a, truth) / corr(b, truth)`` on those items (NaN when ``corr(b)`` is 0)."""

    value: float
    low: float
    high: float
    p_value: float
    n: int
    method: str
    n_boot: int
    reason: str | None = None
    ratio: float = float("nan")


@dataclass(frozen=True)
class NoiseCeiling:
    """How well one training seed predicts another: ``between_seeds`` is the mean correlation
    over pairs of seeds, ``seed_vs_rest`` the mean over seeds of one seed against the mean of
    the others (the ceiling for an estimator scored against a mean over seeds); intervals from
    a bootstrap over architectures."""

    between_seeds: Correlation
    seed_vs_rest: Correlation
    seeds: int


def paired_correlation_difference(
    a: Any,
    b: Any,
    truth: Any,
    *,
    method: Literal["kendall", "spearman"] = "kendall",
    n_boot: int = 2000,
    ci: float = 0.95,
    seed: SeedLike = 0,
) -> PairedDifference:
    """Is ranking ``a`` closer to ``truth`` than ranking ``b``? A paired bootstrap over items:
    every resample evaluates both correlations on the same items, so their shared noise cancels.

    Items with a NaN in ``a``, ``b`` or ``truth`` are dropped. Too few items, or a constant
    input, give NaN numbers and a ``reason``.
    """
    a, truth_a = _paired(a, truth, "paired_correlation_difference", ("a", "truth"))
    b, _ = _paired(b, truth, "paired_correlation_difference", ("b", "truth"))
    keep = ~(np.isnan(a) | np.isnan(b) | np.isnan(truth_a))
    a, b, y = a[keep], b[keep], truth_a[keep]
    nan = float("nan")
    reason = _degenerate(a, y) or _degenerate(b, y)
    if reason is not None or n_boot < 1:
        return PairedDifference(nan, nan, nan, nan, int(a.size), method, int(n_boot),
                                reason or "no bootstrap resamples")  # fmt: skip
    ca = rank_correlation(a, y, method=method, n_boot=0).value
    cb = rank_correlation(b, y, method=method, n_boot=0).value
    ratio = float(ca / cb) if cb else nan
    indices = check_random_state(seed).integers(0, a.size, size=(int(n_boot), a.size))
    diff = _resampled_correlations(a, y, indices, method) - _resampled_correlations(
        b, y, indices, method
    )
    diff = diff[np.isfinite(diff)]
    if diff.size == 0:
        return PairedDifference(ca - cb, nan, nan, nan, int(a.size), method, int(n_boot),
                                "every resample was degenerate", ratio)  # fmt: skip
    low, high = _percentile_interval(diff, ci)
    tail = min(int(np.sum(diff <= 0)), int(np.sum(diff >= 0)))
    p = min(1.0, 2.0 * (tail + 1) / (diff.size + 1))  # never 0 from a finite bootstrap
    return PairedDifference(float(ca - cb), low, high, float(p), int(a.size), method, int(n_boot),
                            ratio=ratio)  # fmt: skip


def noise_ceiling(
    accuracies: Any,
    *,
    method: Literal["kendall", "spearman"] = "kendall",
    n_boot: int = 2000,
    ci: float = 0.95,
    seed: SeedLike = 0,
) -> NoiseCeiling:
    """The noise ceiling of ``accuracies`` ``(n, S)``: architectures x training seeds (NaN for a
    missing run; architectures without every seed are dropped). Needs ``S >= 2``."""
    acc = np.asarray(accuracies, dtype=np.float64)
    if acc.ndim != 2 or acc.shape[1] < 2:
        raise AnalysisError(
            "The 'accuracies' of noise_ceiling must be an (architectures, seeds) array with at "
            f"least 2 seeds; got shape {acc.shape}."
        )
    acc = acc[np.all(np.isfinite(acc), axis=1)]
    s = acc.shape[1]
    pairs = [(i, j) for i in range(s) for j in range(i + 1, s)]
    rest = [(acc[:, i], np.delete(acc, i, axis=1).mean(axis=1)) for i in range(s)]
    between = _mean_correlation([(acc[:, i], acc[:, j]) for i, j in pairs], method, n_boot, ci,
                                seed)  # fmt: skip
    vs_rest = _mean_correlation(rest, method, n_boot, ci, seed)
    return NoiseCeiling(between, vs_rest, s)


def _mean_correlation(pairs, method, n_boot, ci, seed) -> Correlation:
    """The mean correlation over several paired vectors of the same items, with a bootstrap
    over items that resamples all pairs together."""
    n = pairs[0][0].size
    nan = float("nan")
    reasons = [_degenerate(x, y) for x, y in pairs]
    if any(reasons):
        return Correlation(nan, nan, nan, n, method, nan, ci, n_boot, next(r for r in reasons if r))
    values = [rank_correlation(x, y, method=method, n_boot=0).value for x, y in pairs]
    low = high = nan
    if n_boot > 0:
        indices = check_random_state(seed).integers(0, n, size=(int(n_boot), n))
        boot = np.mean([_resampled_correlations(x, y, indices, method) for x, y in pairs], axis=0)
        low, high = _percentile_interval(boot, ci)
    return Correlation(float(np.mean(values)), low, high, n, method, nan, ci, int(n_boot))


def top_k_regret(scores: Any, truth: Any, k: int) -> float:
    """``max(truth) - max(truth of the k items that score highest)``: what trusting the
    estimator's top ``k`` loses against the best item of the sample (0 = it found it).
    NaN pairs are dropped; ties in ``scores`` at the cut are resolved by order of appearance."""
    s, t = _paired(scores, truth, "top_k_regret", ("scores", "truth"))
    keep = ~(np.isnan(s) | np.isnan(t))
    s, t = s[keep], t[keep]
    if s.size == 0:
        return float("nan")
    top = np.argsort(-s, kind="stable")[: max(1, min(int(k), s.size))]
    return float(t.max() - t[top].max())


def _percentile_interval(boot: np.ndarray, ci: float) -> tuple[float, float]:
    """The ``ci`` percentile interval of bootstrap values (NaN resamples left out; NaN, NaN
    when every resample is NaN)."""
    if np.all(np.isnan(boot)):
        return float("nan"), float("nan")
    alpha = (1.0 - ci) / 2.0
    low, high = np.nanquantile(boot, [alpha, 1.0 - alpha])
    return float(low), float(high)
