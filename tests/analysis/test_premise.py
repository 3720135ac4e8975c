"""The premise measurements: variance share between feature points and held-out GP fits."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.premise import PremiseError, encode, gp_holdout, one_hot, variance_share
from dagspace import NASBENCH101_OPS, enumerate_space


@pytest.fixture(scope="module")
def space():
    return enumerate_space(5, NASBENCH101_OPS)


def test_variance_share_planted_and_null():
    points = np.repeat(np.arange(10), 50)[:, None]
    planted = np.repeat(np.linspace(0, 1, 10), 50)  # constant within every point
    assert variance_share(points, planted) == (pytest.approx(1.0), 10)
    null = np.random.default_rng(0).normal(size=500)  # unrelated to the points
    share, _ = variance_share(points, null)
    assert share < 0.06  # about (10 - 1) / (500 - 1) = 0.018
    assert np.isnan(variance_share(points, np.ones(500))[0])


def test_one_hot_is_exact_and_aligns_outputs(space):
    codes = one_hot(space)
    assert codes.shape == (len(space), 10 + 3 * 3)
    assert len(np.unique(codes, axis=0)) == len(space)  # distinct cells, distinct points
    two = space[0]  # input -> output: the one edge lands on (0, V-1)
    assert two.num_vertices == 2 and codes[0, 3] == 1 and codes[0].sum() == 1
    assert encode(space, "seed").shape == (len(space), 3)


def test_gp_holdout_planted_and_null(space):
    points = encode(space, "op_aware")
    planted = points @ np.array([0.02, 0.01, 0.03, -0.02, 0.01])
    good = gp_holdout(points, planted, train=60, test=200, seed=0)
    assert good["r2"] > 0.9 and good["kendall_tau"] > 0.8
    null = np.random.default_rng(1).normal(size=len(space))
    bad = gp_holdout(points, null, train=60, test=200, seed=0)
    assert bad["r2"] < 0.2 and abs(bad["kendall_tau"]) < 0.2


def test_bad_arguments(space):
    with pytest.raises(PremiseError, match="Unknown encoding 'wl'"):
        encode(space, "wl")
    with pytest.raises(PremiseError, match="train=1, test=5"):
        gp_holdout(encode(space, "seed"), np.zeros(len(space)), train=1, test=5)
