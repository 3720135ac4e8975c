from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dagspace import CellSpec, InvalidCellError, is_full_dag, prune, register_op, try_prune

OPS5 = ["input", "conv3x3-bn-relu", "maxpool3x3", "conv1x1-bn-relu", "output"]
M5 = [[0, 1, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 1, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]


def test_cellspec_owns_a_read_only_copy():
    matrix = np.array(M5)
    spec = CellSpec(matrix, OPS5)
    matrix[0, 1] = 0
    assert spec.matrix[0, 1] == 1
    with pytest.raises(ValueError, match="read-only"):
        spec.matrix[0, 1] = 0
    assert spec.num_vertices == 5 and spec.num_edges == 6 and spec.ops == tuple(OPS5)


@pytest.mark.parametrize(
    ("matrix", "ops", "match"),
    [
        ([[0, 1, 0]], None, "square 2-D array"),
        ([[0]], None, "at least 2 vertices"),
        ([[0, 2], [0, 0]], None, "only 0 and 1; got 2"),
        ([[0, 0.5], [0, 0]], None, "only 0 and 1; got 0.5"),
        ([["a", "b"], ["c", "d"]], None, "numbers 0 and 1; got dtype"),
        ([[0, 1], [1, 0]], None, "strictly upper-triangular.*edge 1 -> 0"),
        ([[1, 1], [0, 0]], None, "edge 0 -> 0"),
        ([[0, 1], [0]], None, "square 0/1 array"),
        (M5, OPS5[:-1], "one name per vertex \\(5\\); got 4"),
        (M5, ["conv3x3-bn-relu", *OPS5[1:]], "start with 'input'"),
        (M5, [*OPS5[:-1], "input"], "end with 'output'"),
        (M5, ["input", "conv5x5", *OPS5[2:]], "Unknown operation 'conv5x5'"),
        (M5, "input", "sequence of 5 names"),
    ],
)
def test_invalid_cells_are_rejected_with_what_was_received(matrix, ops, match):
    with pytest.raises(InvalidCellError, match=match):
        CellSpec(matrix, ops)


def test_invalid_cell_error_is_a_value_error():
    assert issubclass(InvalidCellError, ValueError)


def test_json_round_trip_in_nasbench_form():
    spec = CellSpec(M5, OPS5)
    data = json.loads(spec.to_json())
    assert data == {"matrix": M5, "ops": OPS5}
    assert CellSpec.from_json(spec.to_json()) == spec
    unlabelled = CellSpec(M5)
    assert "ops" not in unlabelled.to_dict()
    assert CellSpec.from_json(unlabelled.to_json()) == unlabelled


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "could not be parsed"),
        ("[1, 2]", "must be a mapping"),
        ('{"ops": []}', "must be a mapping with a 'matrix'"),
        ('{"matrix": [[0,1],[0,0]], "extra": 1}', "got also \\['extra'\\]"),
    ],
)
def test_bad_json_is_rejected(text, match):
    with pytest.raises(InvalidCellError, match=match):
        CellSpec.from_json(text)


def test_networkx_round_trip():
    spec = CellSpec(M5, OPS5)
    graph = spec.to_networkx()
    assert graph.number_of_edges() == 6 and graph.nodes[1]["op"] == "conv3x3-bn-relu"
    assert CellSpec.from_networkx(graph) == spec
    assert CellSpec.from_networkx(CellSpec(M5).to_networkx()) == CellSpec(M5)
    with pytest.raises(InvalidCellError, match="integers 0..V-1"):
        CellSpec.from_networkx(nx.relabel_nodes(graph, {0: 10}))


def test_register_op_extends_the_vocabulary():
    register_op("sepconv3x3-test")
    CellSpec([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "sepconv3x3-test", "output"])
    with pytest.raises(InvalidCellError, match="other than 'input'"):
        register_op("input")


def test_prune_removes_vertices_off_every_path():
    # vertex 1 has no way to the output, vertex 3 no way from the input
    matrix = [[0, 1, 1, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
    spec = CellSpec(matrix, ["input", "maxpool3x3", "conv3x3-bn-relu", "conv1x1-bn-relu", "output"])
    pruned = prune(spec)
    assert pruned == CellSpec(
        [[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "conv3x3-bn-relu", "output"]
    )
    assert is_full_dag(pruned) and not is_full_dag(spec)
    assert prune(pruned) is pruned


def test_prune_of_a_disconnected_cell_raises_or_returns_none():
    spec = CellSpec([[0, 1, 0], [0, 0, 0], [0, 0, 0]])
    with pytest.raises(InvalidCellError, match="input cannot reach its output"):
        prune(spec)
    assert try_prune(spec) is None


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 7).flatmap(lambda v: st.lists(st.booleans(), min_size=v * v, max_size=v * v)))
def test_prune_keeps_exactly_the_vertices_on_input_output_paths(bits):
    v = round(len(bits) ** 0.5)
    matrix = np.triu(np.asarray(bits, dtype=np.uint8).reshape(v, v), 1)
    graph = nx.DiGraph(matrix)
    on_path = {0, v - 1} if nx.has_path(graph, 0, v - 1) else set()
    on_path |= {u for u in graph if nx.has_path(graph, 0, u) and nx.has_path(graph, u, v - 1)}
    pruned = try_prune(CellSpec(matrix))
    if not nx.has_path(graph, 0, v - 1):
        assert pruned is None
        return
    keep = sorted(on_path)
    assert pruned.num_vertices == len(keep)
    np.testing.assert_array_equal(pruned.matrix, matrix[np.ix_(keep, keep)])


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.none(), st.integers(), st.text(), st.lists(st.lists(st.integers()))))
def test_fuzzed_cell_input_only_raises_invalid_cell_error(matrix):
    try:
        CellSpec(matrix)
    except InvalidCellError as err:
        assert str(err)


def test_on_path_mask_of_a_stack_equals_the_mask_of_each_matrix():
    from dagspace.cell import on_path_mask

    rng = np.random.default_rng(0)
    matrices = np.triu(rng.integers(0, 2, size=(500, 6, 6)), 1).astype(np.uint8)  # (N, V, V)
    stacked = on_path_mask(matrices)  # (N, V)
    assert stacked.shape == (500, 6)
    assert np.array_equal(stacked, np.stack([on_path_mask(m) for m in matrices]))
    for m, mask in zip(matrices[:100], stacked[:100], strict=True):  # networkx as the oracle
        graph = nx.DiGraph(m)
        on_path = (nx.descendants(graph, 0) | {0}) & (nx.ancestors(graph, 5) | {5})
        expected = on_path if 5 in nx.descendants(graph, 0) else set()
        assert set(np.flatnonzero(mask).tolist()) == expected
    assert 0 < stacked[:, 0].mean() < 1  # both reachable and unreachable cells are tested
