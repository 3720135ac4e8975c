from __future__ import annotations

import itertools

import numpy as np
import pytest

from dagspace import NASBENCH101_OPS, CellSpec, canonical_hash, enumerate_space, try_prune
from surrogate.errors import ConfigError
from surrogate.relative import (
    SampleMap,
    cell_probabilities,
    joint_top_k,
    monte_carlo_probabilities,
)


def brute_force(space, op_probs, edge_probs):
    """Every raw sample with its probability, pruned and hashed one by one."""
    v = space.max_vertices
    rows, cols = np.triu_indices(v, 1)
    index = {h: i for i, h in enumerate(space.hashes.tolist())}
    out = np.zeros(len(space))
    valid = 0.0
    ops = space.op_names
    for bits in itertools.product([0, 1], repeat=len(rows)):
        b = np.asarray(bits)
        p_edges = np.prod(np.where(b, edge_probs, 1 - edge_probs))
        matrix = np.zeros((v, v), dtype=np.uint8)
        matrix[rows, cols] = b
        if try_prune(CellSpec(matrix)) is None:
            continue
        valid += p_edges
        labellings = [()] if ops is None else itertools.product(range(len(ops)), repeat=v - 2)
        for labels in labellings:
            p_ops = np.prod([op_probs[m, o] for m, o in enumerate(labels)]) if ops else 1.0
            names = None if ops is None else ["input", *(ops[o] for o in labels), "output"]
            h = canonical_hash(CellSpec(matrix, names))
            if h in index:
                out[index[h]] += p_edges * p_ops
    return out / out.sum(), valid


@pytest.mark.parametrize(
    ("v", "ops", "max_edges"),
    [
        (4, NASBENCH101_OPS, None),
        (5, None, None),
        (5, NASBENCH101_OPS[:2], 6),
        (4, NASBENCH101_OPS[1:], 4),
    ],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_exact_equals_brute_force(v, ops, max_edges, seed):
    space = enumerate_space(v, ops, max_edges)
    rng = np.random.default_rng(seed)
    edge_probs = rng.uniform(0.05, 0.95, v * (v - 1) // 2)
    op_probs = rng.dirichlet(np.ones(len(ops or [0])), v - 2)
    scores = SampleMap(space).probabilities(op_probs if ops else None, edge_probs)
    expected, valid = brute_force(space, op_probs, edge_probs)
    np.testing.assert_allclose(scores.probability, expected, rtol=1e-10, atol=1e-15)
    assert scores.valid_mass == pytest.approx(valid, rel=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("v", "ops", "max_edges"), [(5, NASBENCH101_OPS, None), (6, NASBENCH101_OPS, 8)]
)
def test_exact_agrees_with_monte_carlo(v, ops, max_edges):
    space = enumerate_space(v, ops, max_edges)
    rng = np.random.default_rng(3)
    edge_probs = rng.uniform(0.2, 0.9, v * (v - 1) // 2)
    op_probs = rng.dirichlet(np.ones(3), v - 2)
    exact = SampleMap(space).probabilities(op_probs, edge_probs)
    n = 20_000
    mc = monte_carlo_probabilities(space, op_probs, edge_probs, n, seed=4)
    tolerance = 5 * np.sqrt(exact.probability * (1 - exact.probability) / n) + 3 / n
    assert np.all(np.abs(exact.probability - mc.probability) <= tolerance)
    assert mc.in_space == pytest.approx(exact.in_space, abs=0.02)
    assert mc.standard_error is not None


def test_fixed_topology_ranks_exactly_its_labellings():
    space = enumerate_space(5, NASBENCH101_OPS)
    topology = CellSpec(
        [[0, 1, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 1, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
    )
    rows, cols = np.triu_indices(5, 1)
    edges = topology.matrix[rows, cols].astype(float)
    op_probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]])
    scores = SampleMap(space).probabilities(op_probs, edges)
    support = np.flatnonzero(scores.probability > 0)
    assert len(support) == 27  # no automorphism: every labelling is its own cell
    assert {canonical_hash(CellSpec(space[int(i)].matrix)) for i in support} == {
        canonical_hash(topology)
    }
    argmax_ops = [NASBENCH101_OPS[i] for i in op_probs.argmax(axis=1)]  # conv3x3, pool, pool
    best = CellSpec(topology.matrix, ["input", *argmax_ops, "output"])
    assert np.argmax(scores.probability) == space.index_of(best)
    assert scores.probability.max() == pytest.approx(0.7 * 0.8 * 0.4)


def test_automorphic_labellings_are_summed():
    # two parallel vertices: (a, b) and (b, a) are one cell
    space = enumerate_space(4, NASBENCH101_OPS)
    edges = np.array([1, 1, 0, 0, 1, 1], dtype=float)  # 0-1, 0-2, 1-3, 2-3 in triu order
    op_probs = np.array([[0.5, 0.5, 0.0], [0.25, 0.75, 0.0]])
    scores = SampleMap(space).probabilities(op_probs, edges)
    mixed = CellSpec(
        [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]],
        ["input", NASBENCH101_OPS[0], NASBENCH101_OPS[1], "output"],
    )
    assert scores.probability[space.index_of(mixed)] == pytest.approx(0.5 * 0.75 + 0.5 * 0.25)


def test_ranks_and_log_probabilities():
    space = enumerate_space(4, NASBENCH101_OPS)
    scores = SampleMap(space).probabilities(np.full((2, 3), 1 / 3), np.full(6, 0.5))
    ranks = scores.ranks()
    assert ranks.min() == 1
    order = np.argsort(ranks, kind="stable")
    assert np.all(np.diff(scores.probability[order]) <= 0)
    same = scores.probability == scores.probability[order[0]]
    assert np.all(ranks[same] == 1)
    np.testing.assert_allclose(np.exp(scores.log_probability), scores.probability)


def test_cell_probabilities_reorders_supernet_ops():
    space = enumerate_space(4, NASBENCH101_OPS)
    rng = np.random.default_rng(0)
    op_probs = rng.dirichlet(np.ones(3), (2, 2))
    edges = rng.uniform(0.1, 0.9, (2, 6))
    reversed_names = NASBENCH101_OPS[::-1]
    a = cell_probabilities(space, op_probs, edges)
    b = cell_probabilities(space, op_probs[..., ::-1], edges, op_names=reversed_names)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x.probability, y.probability)
    with pytest.raises(ConfigError, match="no op"):
        cell_probabilities(space, op_probs[..., :2], edges, op_names=NASBENCH101_OPS[:2])


@pytest.mark.parametrize(
    ("op_probs", "edges", "match"),
    [
        (np.full((2, 3), 1 / 3), np.full(5, 0.5), "'edge_probs' must be 6"),
        (np.full((2, 3), 1 / 3), np.full(6, 1.5), "'edge_probs' must be 6"),
        (np.full((3, 3), 1 / 3), np.full(6, 0.5), "'op_probs' must be a non-negative \\(2, 3\\)"),
        (np.full((2, 3), 1 / 3), np.zeros(6), "no valid cell"),
    ],
)
def test_bad_probabilities(op_probs, edges, match):
    space = enumerate_space(4, NASBENCH101_OPS)
    with pytest.raises(ConfigError, match=match):
        SampleMap(space).probabilities(op_probs, edges)


@pytest.mark.parametrize("seed", range(3))
def test_joint_top_k_equals_the_product_space(seed):
    rng = np.random.default_rng(seed)
    cells = [np.log(rng.dirichlet(np.ones(n))) for n in (7, 5, 6)]
    exhaustive = sorted(
        (
            (sum(c[i] for c, i in zip(cells, idx, strict=True)), idx)
            for idx in itertools.product(*(range(len(c)) for c in cells))
        ),
        key=lambda pair: -pair[0],
    )[:10]
    got = joint_top_k(cells, 10)
    np.testing.assert_allclose([s for s, _ in got], [s for s, _ in exhaustive])
    assert got[0][1] == exhaustive[0][1]
    with pytest.raises(ConfigError, match="'k' must be a positive int"):
        joint_top_k(cells, 0)


# -- the score: likelihood ratio against the untrained prior ---------------------------------
def _untrained_supernet(vertices, cells=2, ops=NASBENCH101_OPS):
    from surrogate.supernet import Supernet

    return Supernet(vertices, cells, ops, input_shape=(1, 8, 8), num_classes=3, channels=4)


@pytest.mark.parametrize(("v", "ops"), [(5, NASBENCH101_OPS), (4, NASBENCH101_OPS), (5, None)])
def test_untrained_supernet_scores_exactly_zero_everywhere(v, ops):
    """The null test: an untrained supernet shows no preference over the whole space."""
    from surrogate.relative import SCORES, rank_space

    net = _untrained_supernet(v)
    space = enumerate_space(v, ops)
    ranking = rank_space(space, net.op_probabilities(), net.edge_probabilities(), net.ops)
    for kind in ("likelihood_ratio", "per_decision"):
        for scores in ranking.cell_scores(kind):
            assert np.array_equal(scores, np.zeros(len(space)))
    assert ranking.score == SCORES[0] == "likelihood_ratio"
    # while the raw sampling probability has a strong size preference
    sampling = ranking.cell_scores("sampling")[0]
    assert space.num_vertices[np.argmax(sampling)] == 2
    top = ranking.top_k(3)
    assert (top["score"] == 0).all() and (top["score_name"] == "likelihood_ratio").all()


@pytest.mark.parametrize("seed", [0, 1])
def test_likelihood_ratio_equals_brute_force(seed):
    from surrogate.relative import prior_probabilities, score_cells

    space = enumerate_space(4, NASBENCH101_OPS)
    rng = np.random.default_rng(seed)
    edge_probs = rng.uniform(0.05, 0.95, 6)
    op_probs = rng.dirichlet(np.ones(3), 2)
    sample_map = SampleMap(space)
    scores = sample_map.probabilities(op_probs, edge_probs)
    prior = prior_probabilities(space, sample_map)
    expected_theta, _ = brute_force(space, op_probs, edge_probs)
    expected_0, _ = brute_force(space, np.full((2, 3), 1 / 3), np.full(6, 0.5))
    np.testing.assert_allclose(
        score_cells(scores, prior), np.log(expected_theta) - np.log(expected_0), atol=1e-10
    )
    np.testing.assert_allclose(score_cells(scores, prior, "sampling"), np.log(expected_theta))


def test_planted_op_preference_orders_by_modules_that_carry_it_not_by_size():
    """conv3x3 at 0.9 in every module (edges untrained): s = a ln 2.7 + b ln 0.15 for a cell
    with a conv3x3 modules and b others, whatever its topology or size."""
    from surrogate.relative import rank_space

    space = enumerate_space(5, NASBENCH101_OPS)
    op_probs = np.tile([0.9, 0.05, 0.05], (2, 3, 1))  # (K, V-2, n_ops)
    edge_probs = np.full((2, 10), 0.5)
    ranking = rank_space(space, op_probs, edge_probs, NASBENCH101_OPS)
    ops = space.ops[:, 1:-1]
    interior = space.num_vertices - 2
    a = ((ops == 2) & (np.arange(ops.shape[1]) < interior[:, None])).sum(axis=1)
    expected = a * np.log(2.7) + (interior - a) * np.log(0.15)
    for scores in ranking.cell_scores():
        np.testing.assert_allclose(scores, expected, atol=1e-9)
    # the top cell is a largest all-conv3x3 cell, not the empty cell the sampling score picks
    best = ranking.top_k(1)
    import json

    cells = json.loads(best["architecture"].iloc[0])
    assert all(len(c["ops"]) == 5 and set(c["ops"][1:-1]) == {"conv3x3-bn-relu"} for c in cells)
    sampling_best = np.argmax(ranking.cell_scores("sampling")[0])
    assert space.num_vertices[sampling_best] < 5


def test_unknown_score_is_refused():
    from surrogate.relative import rank_space

    space = enumerate_space(4, NASBENCH101_OPS)
    with pytest.raises(ConfigError, match="'score' must be one of"):
        rank_space(space, np.full((1, 2, 3), 1 / 3), np.full((1, 6), 0.5), score="size")


@pytest.mark.parametrize("seed", [0, 1])
def test_tied_architectures_are_listed_once_with_their_count(seed):
    """A frozen input -> output edge (probability 1/2, its prior) makes cells that differ only
    in that edge tie; the top-k lists each score once, as the cell the prior prefers, and counts
    the architectures that share it (checked against the raw k-best over every architecture)."""
    from surrogate.relative import TIE_DECIMALS, distinct_top_k, rank_space

    space = enumerate_space(4, NASBENCH101_OPS)
    rng = np.random.default_rng(seed)
    edge_probs = rng.uniform(0.1, 0.9, (2, 6))
    edge_probs[:, 2] = 0.5  # the input -> output edge of V = 4, frozen
    op_probs = rng.dirichlet(np.ones(3), (2, 2))
    ranking = rank_space(space, op_probs, edge_probs, op_names=NASBENCH101_OPS)
    raw = joint_top_k(ranking.cell_scores(), 40)
    raw_scores = np.round([s for s, _ in raw], TIE_DECIMALS)
    assert len(set(raw_scores)) < len(raw_scores)  # the raw top has ties
    top = ranking.top(5)
    scores = [s for s, _, _ in top]
    assert len(set(np.round(scores, TIE_DECIMALS))) == 5 and scores == sorted(scores)[::-1]
    per_cell = [np.round(c, TIE_DECIMALS) for c in ranking.cell_scores()]
    prior = ranking.prior.log_probability
    for _, idx, ties in top:
        levels = [per_cell[c][i] for c, i in enumerate(idx)]
        members = [np.flatnonzero(per_cell[c] == level) for c, level in enumerate(levels)]
        assert ties == np.prod([len(m) for m in members])  # every architecture of that score
        for c, i in enumerate(idx):  # the representative: the prior's most probable member
            assert prior[i] == prior[members[c]].max()
    assert top[0][0] == pytest.approx(raw[0][0])
    frame = ranking.top_k(5)
    assert list(frame["ties"]) == [t for _, _, t in top]
    with pytest.raises(ConfigError, match="positive int"):
        distinct_top_k(ranking.cell_scores(), 0, [prior, prior])
