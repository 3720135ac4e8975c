from __future__ import annotations

import itertools

import numpy as np
import pytest

from dagspace import Embedding, InvalidSpaceError, enumerate_space
from dagspace.op_features import OP_AWARE_FEATURES, OP_FEATURES, compute_op_feature


def _longest_path_conv3x3(cell):
    """Brute force: every input -> output path, the longest ones, their most conv3x3s."""
    v = cell.num_vertices
    paths = []
    for k in range(v - 1):
        for middle in itertools.combinations(range(1, v - 1), k):
            path = (0, *middle, v - 1)
            if all(cell.matrix[a, b] for a, b in itertools.pairwise(path)):
                paths.append(path)
    longest = max(len(p) for p in paths)
    return max(sum(cell.ops[i] == "conv3x3-bn-relu" for i in p) for p in paths
               if len(p) == longest)  # fmt: skip


def test_op_features_match_per_cell_counts(space5_labelled):
    space = space5_labelled
    for i in range(0, len(space), 97):
        cell = space[i]
        interior = cell.ops[1:-1]
        assert space.feature("num_conv3x3")[i] == interior.count("conv3x3-bn-relu")
        assert space.feature("num_maxpool")[i] == interior.count("maxpool3x3")
        share = interior.count("conv1x1-bn-relu") / len(interior) if interior else 0.0
        assert space.feature("share_conv1x1")[i] == pytest.approx(share)
        assert space.feature("longest_path_conv3x3")[i] == _longest_path_conv3x3(cell)


def test_op_aware_embedding_separates_labellings(space5_labelled):
    seed, ops = Embedding(space5_labelled), Embedding(space5_labelled, OP_AWARE_FEATURES)
    assert len(ops.points_) > 5 * len(seed.points_)
    part = space5_labelled.subset([3, 9, 27])  # computed on the subset's own cells
    np.testing.assert_array_equal(part.feature("num_conv3x3"),
                                  space5_labelled.feature("num_conv3x3")[[3, 9, 27]])  # fmt: skip


def test_op_feature_errors(space6):
    with pytest.raises(InvalidSpaceError, match="Unknown feature 'num_conv3x3'; this space has"):
        space6.feature("num_conv3x3")  # unlabelled: not computed
    with pytest.raises(InvalidSpaceError, match="needs a labelled space"):
        compute_op_feature("num_conv3x3", space6.matrices, None, None)
    with pytest.raises(InvalidSpaceError, match="Unknown operation feature 'num_zero'"):
        compute_op_feature("num_zero", space6.matrices, None, None)
    other = enumerate_space(3, ["conv3x3-bn-relu"])
    with pytest.raises(InvalidSpaceError, match="needs the operation 'maxpool3x3'"):
        other.feature("num_maxpool")
    assert set(OP_AWARE_FEATURES) - {"num_edges", "longest_path"} <= set(OP_FEATURES)
