from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from dagspace import (
    NASBENCH101_OPS,
    CellSpec,
    InvalidCellError,
    InvalidSpaceError,
    enumerate_space,
    nasbench101_hash,
    nasbench101_hashes,
    register_op,
)
from dagspace.nasbench import nasbench101_labels

SLICE = Path(__file__).resolve().parents[3] / "shared" / "data" / "nb101_slice_10k.json"
if not SLICE.exists():  # a worktree beside shared/, or the repository inside it
    SLICE = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb101_slice_10k.json"


def test_every_slice_key_is_the_hash_of_exactly_one_cell(nb101_space, tmp_path):
    if not SLICE.exists():
        pytest.skip(f"the shared NAS-Bench-101 slice is not at {SLICE}")
    keys = json.loads(SLICE.read_text())["key"]
    hashes = nb101_space.nasbench101_hashes()
    unique = np.unique(hashes)
    assert len(unique) == len(nb101_space) == 423_624  # no collision over the whole space
    assert np.isin(keys, unique).all() and len(set(keys)) == len(keys) == 10_000
    # the column is kept with the space: saved once computed, loaded back
    loaded = type(nb101_space).load(nb101_space.save(tmp_path / "nb101.npz"))
    assert "nasbench101_hashes" in loaded._cache
    np.testing.assert_array_equal(loaded.nasbench101_hashes(), hashes)


def test_fast_hashes_equal_the_per_cell_reference(space5_labelled, nb101_space):
    fast = space5_labelled.nasbench101_hashes()
    assert list(fast) == [nasbench101_hash(cell) for cell in space5_labelled]
    rng = np.random.default_rng(0)
    sample = rng.choice(len(nb101_space), size=300, replace=False)
    part = nb101_space.subset(sample)
    labels = nasbench101_labels(part.ops, part.vocabulary)
    fresh = nasbench101_hashes(part.matrices, labels, part.num_vertices.astype(int))
    assert list(fresh) == [nasbench101_hash(nb101_space[int(i)]) for i in sample]


def _relabelled(cell: CellSpec, rng: np.random.Generator) -> CellSpec:
    """The cell with its vertices renumbered in a random topological order."""
    graph = cell.to_networkx()
    order, indegree = [], dict(graph.in_degree())
    ready = [v for v, d in indegree.items() if d == 0]
    while ready:
        v = ready.pop(int(rng.integers(len(ready))))
        order.append(v)
        for w in graph.successors(v):
            indegree[w] -= 1
            if indegree[w] == 0:
                ready.append(w)
    return CellSpec.from_networkx(nx.relabel_nodes(graph, {v: i for i, v in enumerate(order)}))


@pytest.mark.parametrize("seed", range(3))
def test_hash_is_invariant_under_relabelling(seed, space5_labelled):
    rng = np.random.default_rng(seed)
    for i in rng.choice(len(space5_labelled), size=40, replace=False):
        cell = space5_labelled[int(i)]
        other = _relabelled(cell, rng)
        assert nasbench101_hash(other) == nasbench101_hash(cell)
    # an unpruned cell hashes as its pruned form
    cell = CellSpec(
        [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]],
        ["input", "conv3x3-bn-relu", "maxpool3x3", "output"],
    )
    pruned = CellSpec([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "conv3x3-bn-relu", "output"])
    assert nasbench101_hash(cell) == nasbench101_hash(pruned)


def test_hash_tells_operations_apart():
    matrix = [[0, 1, 0], [0, 0, 1], [0, 0, 0]]
    hashes = {nasbench101_hash(CellSpec(matrix, ["input", op, "output"])) for op in NASBENCH101_OPS}
    assert len(hashes) == 3


def test_bad_input_raises_typed_errors():
    with pytest.raises(InvalidCellError, match="needs a labelled cell"):
        nasbench101_hash(CellSpec([[0, 1], [0, 0]]))
    register_op("zeroize")
    with pytest.raises(InvalidCellError, match="labels only the operations .* got 'zeroize'"):
        nasbench101_hash(CellSpec(np.eye(3, k=1), ["input", "zeroize", "output"]))
    with pytest.raises(InvalidCellError, match="cannot reach its output"):
        nasbench101_hash(CellSpec([[0, 0], [0, 0]], ["input", "output"]))
    with pytest.raises(InvalidSpaceError, match=r"takes matrices \(N, V, V\).*got \(2, 3\)"):
        nasbench101_hashes(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(InvalidSpaceError, match="unlabelled"):
        enumerate_space(3).nasbench101_hashes()
    with pytest.raises(InvalidSpaceError, match=r"this space has \['input', 'output', 'zeroize'\]"):
        enumerate_space(3, ["zeroize"]).nasbench101_hashes()
