"""Tests of :mod:`analysis.estimators`: the null (an untrained supernet shows no preference),
planted preferences, hand-computed size figures, the registry's errors."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.estimators import (
    DEFAULT_ESTIMATORS,
    ESTIMATORS,
    EstimatorContext,
    EstimatorError,
    register_estimator,
    score_architectures,
)
from dagspace import NASBENCH101_OPS, enumerate_space
from surrogate.relative import rank_space


@pytest.fixture(scope="module")
def space():
    return enumerate_space(4, NASBENCH101_OPS)


@pytest.fixture(scope="module")
def untrained(space):
    from surrogate.candidate import candidate_preset
    from surrogate.data import load_dataset
    from surrogate.supernet import Supernet

    data = load_dataset("digits", limit=300, seed=0)
    net = Supernet(4, 2, NASBENCH101_OPS, input_shape=data.input_shape,
                   num_classes=data.num_classes, channels=4)  # fmt: skip
    ranking = rank_space(space, net.op_probabilities(), net.edge_probabilities(), net.ops)
    candidate = candidate_preset("smoke").replace(channels=4)
    return EstimatorContext(ranking, net, data, candidate, seed=0, proxy_batch=16)


def some_architectures(space, n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(len(space), size=(n, 2))


def test_untrained_supernet_scores_every_architecture_zero(untrained, space):
    idx = some_architectures(space, 40)
    scores = score_architectures(untrained, idx, ["surrogate", "surrogate_per_decision"])
    for values in scores.values():
        assert np.array_equal(values, np.zeros(40))


def test_planted_op_preference_reaches_the_surrogate_estimator(space):
    op_probs = np.tile([0.9, 0.05, 0.05], (2, 2, 1))
    ranking = rank_space(space, op_probs, np.full((2, 6), 0.5), NASBENCH101_OPS)
    context = EstimatorContext(ranking)
    idx = some_architectures(space, 30, seed=1)
    got = score_architectures(context, idx, ["surrogate"])["surrogate"]
    expected = []
    for row in idx:
        total = 0.0
        for i in row:
            ops = space[int(i)].ops[1:-1]
            a = sum(op == "conv3x3-bn-relu" for op in ops)
            total += a * np.log(2.7) + (len(ops) - a) * np.log(0.15)
        expected.append(total)
    np.testing.assert_allclose(got, expected, atol=1e-9)


def test_size_estimators_equal_a_hand_count(untrained, space):
    idx = some_architectures(space, 6, seed=2)
    scores = score_architectures(untrained, idx, ["vertices", "edges", "depth"])
    for a, row in enumerate(idx):
        cells = [space[int(i)] for i in row]
        assert scores["vertices"][a] == sum(c.num_vertices for c in cells)
        assert scores["edges"][a] == sum(int(c.matrix.sum()) for c in cells)
        # depth: longest input -> output path, by dynamic programming over each matrix
        depth = 0
        for c in cells:
            longest = [0] * c.num_vertices
            for j in range(1, c.num_vertices):
                longest[j] = max(longest[i] + 1 for i in range(j) if c.matrix[i, j])
            depth += longest[-1]
        assert scores["depth"][a] == depth


def test_network_figures_are_those_of_the_candidate_network(untrained, space):
    import torch

    from surrogate.candidate import build_network
    from surrogate.device import derive_seeds
    from surrogate.network import count_macs, count_parameters

    idx = some_architectures(space, 3, seed=3)
    scores = score_architectures(untrained, idx, ["params", "macs", "synflow", "naswot", "snip",
                                                  "grad_norm", "jacob_cov"])  # fmt: skip
    for a, row in enumerate(idx):
        cells = tuple(space[int(i)] for i in row)
        net = build_network(cells, untrained.dataset, untrained.candidate,
                            derive_seeds(0, 3)[0], torch.device("cpu"))  # fmt: skip
        assert scores["params"][a] == count_parameters(net)
        assert scores["macs"][a] == count_macs(net, untrained.dataset.input_shape)
    for name in ("synflow", "snip", "grad_norm"):
        assert np.isfinite(scores[name]).all() and (scores[name] > 0).all(), name


def test_proxies_scored_together_equal_each_scored_alone(untrained, space):
    from dataclasses import replace

    idx = some_architectures(space, 3, seed=4)
    names = ["synflow", "naswot", "jacob_cov", "snip", "grad_norm"]
    together = score_architectures(replace(untrained, cache={}), idx, names)
    for name in names:
        alone = score_architectures(replace(untrained, cache={}), idx, [name])[name]
        np.testing.assert_array_equal(together[name], alone)


def test_one_shot_estimators_run_on_the_shared_weights(untrained, space):
    idx = some_architectures(space, 4, seed=4)
    scores = score_architectures(untrained, idx, ["one_shot_accuracy", "one_shot_loss"])
    assert ((scores["one_shot_accuracy"] >= 0) & (scores["one_shot_accuracy"] <= 1)).all()
    assert (scores["one_shot_loss"] < 0).all()
    again = score_architectures(untrained, idx, ["one_shot_accuracy"])
    np.testing.assert_array_equal(again["one_shot_accuracy"], scores["one_shot_accuracy"])
    assert untrained.supernet.training  # the supernet's mode is restored


def test_random_estimator_is_a_seeded_function_of_the_architecture(untrained, space):
    idx = some_architectures(space, 50, seed=5)
    a = score_architectures(untrained, idx, ["random"])["random"]
    b = score_architectures(untrained, idx[::-1], ["random"])["random"][::-1]
    np.testing.assert_array_equal(a, b)  # the same architecture, the same score, in any order
    other = EstimatorContext(untrained.ranking, seed=1)
    c = score_architectures(other, idx, ["random"])["random"]
    assert not np.array_equal(a, c) and len(np.unique(a)) == 50


def test_every_builtin_is_registered_in_table_order():
    assert DEFAULT_ESTIMATORS[:3] == ("surrogate", "surrogate_sampling", "surrogate_per_decision")
    assert {"synflow", "naswot", "jacob_cov", "snip", "grad_norm", "params", "macs", "random",
            "one_shot_accuracy", "vertices", "edges", "depth"} <= set(ESTIMATORS)  # fmt: skip


def test_a_user_estimator_and_the_registry_errors(untrained, space):
    register_estimator("first_cell_index", lambda ctx, idx: idx[:, 0].astype(float))
    try:
        idx = some_architectures(space, 5)
        got = score_architectures(untrained, idx, ["first_cell_index"])
        np.testing.assert_array_equal(got["first_cell_index"], idx[:, 0])
        with pytest.raises(EstimatorError, match="'first_cell_index' is already registered"):
            register_estimator("first_cell_index", lambda ctx, idx: idx[:, 0])
    finally:
        del ESTIMATORS["first_cell_index"]
    with pytest.raises(EstimatorError, match="Unknown estimator\\(s\\) \\['nope'\\]"):
        score_architectures(untrained, some_architectures(space), ["nope"])
    with pytest.raises(EstimatorError, match="must be an \\(n, 2\\) array of cell indices"):
        score_architectures(untrained, np.zeros((3, 3), dtype=int), ["random"])
    register_estimator("bad_shape", lambda ctx, idx: np.zeros(1))
    try:
        with pytest.raises(EstimatorError, match="one score per architecture \\(5,\\)"):
            score_architectures(untrained, some_architectures(space, 5), ["bad_shape"])
    finally:
        del ESTIMATORS["bad_shape"]
    with pytest.raises(EstimatorError, match="must be callable"):
        register_estimator("not_callable", 3)


def test_an_estimator_without_what_it_needs_says_so(untrained, space):
    bare = EstimatorContext(untrained.ranking)
    with pytest.raises(EstimatorError, match="needs \\['supernet', 'dataset'\\]"):
        score_architectures(bare, some_architectures(space), ["one_shot_accuracy"])
