from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dagspace import NASBENCH101_OPS, CellSpec, InvalidCellError, canonical_hash, prune, try_prune
from dagspace.hashing import canonical_form, interior_permutations

from .conftest import random_cell


def isomorphic(a: CellSpec, b: CellSpec) -> bool:
    """The brute-force oracle: networkx isomorphism with the op label as node attribute."""
    return nx.is_isomorphic(
        prune(a).to_networkx(), prune(b).to_networkx(), node_match=lambda x, y: x["op"] == y["op"]
    )


def permuted(spec: CellSpec, order: np.ndarray) -> CellSpec:
    """Relabel interior vertices so that vertex i moves to order[i] (may break triangularity,
    so the result is re-sorted topologically by networkx)."""
    graph = nx.relabel_nodes(spec.to_networkx(), dict(enumerate(order.tolist())))
    topo = list(nx.lexicographical_topological_sort(graph))
    relabel = {old: new for new, old in enumerate(topo)}
    return CellSpec.from_networkx(nx.relabel_nodes(graph, relabel))


def test_interior_permutations_fix_input_and_output():
    perms = interior_permutations(5)
    assert perms.shape == (6, 5)
    assert (perms[:, 0] == 0).all() and (perms[:, -1] == 4).all()
    assert (perms[0] == np.arange(5)).all()


@pytest.mark.parametrize("seed", range(4))
def test_hash_equals_the_isomorphism_oracle_on_random_pairs(seed):
    rng = np.random.default_rng(seed)
    cells = []
    while len(cells) < 60:
        cell = try_prune(random_cell(rng, int(rng.integers(3, 7)), p=0.6))
        if cell is not None:
            cells.append(cell)
    for a, b in itertools.combinations(cells, 2):
        assert (canonical_hash(a) == canonical_hash(b)) == isomorphic(a, b)


def test_hash_distinguishes_labels_and_matches_relabelled_twins():
    # two parallel branches: swapping their ops is an isomorphism, changing one is not
    matrix = [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]]
    a = CellSpec(matrix, ["input", "conv3x3-bn-relu", "maxpool3x3", "output"])
    b = CellSpec(matrix, ["input", "maxpool3x3", "conv3x3-bn-relu", "output"])
    c = CellSpec(matrix, ["input", "maxpool3x3", "maxpool3x3", "output"])
    assert canonical_hash(a) == canonical_hash(b) != canonical_hash(c)
    assert canonical_hash(CellSpec(matrix)) != canonical_hash(a)


def test_hash_is_taken_after_pruning():
    big = CellSpec(
        [[0, 1, 0, 1], [0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]],
        ["input", "maxpool3x3", "conv3x3-bn-relu", "output"],
    )
    assert canonical_hash(big) == canonical_hash(CellSpec([[0, 1], [0, 0]], ["input", "output"]))
    with pytest.raises(InvalidCellError, match="cannot reach"):
        canonical_hash(CellSpec([[0, 0], [0, 0]]))


def test_canonical_form_is_exact_text():
    form = canonical_form(
        CellSpec([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "maxpool3x3", "output"])
    )
    assert form.text() == f"3|{(1 << 1) + (1 << 5)}|maxpool3x3"


def test_architecture_hash_depends_on_cell_order():
    a = CellSpec([[0, 1], [0, 0]], ["input", "output"])
    b = CellSpec([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "maxpool3x3", "output"])
    assert canonical_hash([a, b]) != canonical_hash([b, a])
    assert len(canonical_hash([a, b])) == 32


@settings(max_examples=150, deadline=None)
@given(
    st.integers(3, 7),
    st.integers(0, 2**32 - 1),
    st.booleans(),
)
def test_hash_is_invariant_under_every_interior_relabelling(v, seed, labelled):
    rng = np.random.default_rng(seed)
    cell = try_prune(random_cell(rng, v, labelled=labelled, p=0.7))
    if cell is None:
        return
    order = interior_permutations(cell.num_vertices)[
        rng.integers(len(interior_permutations(cell.num_vertices)))
    ]
    twin = permuted(cell, order)
    assert canonical_hash(twin) == canonical_hash(cell)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_changing_one_op_changes_the_hash_unless_isomorphic(seed):
    rng = np.random.default_rng(seed)
    cell = try_prune(random_cell(rng, 6, p=0.7))
    if cell is None or cell.num_vertices < 3:
        return
    ops = list(cell.ops)
    i = int(rng.integers(1, len(ops) - 1))
    ops[i] = next(op for op in NASBENCH101_OPS if op != ops[i])
    other = CellSpec(cell.matrix, ops)
    assert (canonical_hash(other) == canonical_hash(cell)) == isomorphic(other, cell)
