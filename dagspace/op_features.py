"""Operation-aware features of a labelled space: what the seed's graph features cannot see.

The seed's embedding (eccentricity variance, degree variance, edge count) reads the matrix only,
so every labelling of a topology sits at one point; on NAS-Bench-101 the operations carry most
of the accuracy's variance. These features read the operations too. Each takes the stacked
``(N, V, V)`` matrices, the ``(N, V)`` operation codes (``-1`` padding) and the space's
vocabulary, and returns a float64 ``(N,)`` array:

- ``num_<op>``: interior vertices with the operation (``conv3x3``, ``conv1x1``, ``maxpool``);
- ``share_<op>``: that count over the interior vertex count (0 for a cell without any);
- ``longest_path_conv3x3``: the most 3x3 convolutions on any longest input -> output path.

A space computes them on first use (:meth:`dagspace.Space.feature`), so an
:class:`~dagspace.Embedding` (and the descent and Bayesian search over it) can span them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from dagspace.errors import InvalidSpaceError

__all__ = ["OP_AWARE_FEATURES", "OP_FEATURES", "compute_op_feature"]

OpFeatureFn = Callable[[np.ndarray, np.ndarray, Sequence[str]], np.ndarray]
_SHORT = {"conv3x3": "conv3x3-bn-relu", "conv1x1": "conv1x1-bn-relu", "maxpool": "maxpool3x3"}


def _code(vocabulary: Sequence[str], op: str) -> int:
    if op not in vocabulary:
        raise InvalidSpaceError(
            f"The operation feature needs the operation {op!r}; this space has {list(vocabulary)}."
        )
    return list(vocabulary).index(op)


def _count(op: str) -> OpFeatureFn:
    def feature(matrices: np.ndarray, ops: np.ndarray, vocabulary: Sequence[str]) -> np.ndarray:
        return (ops == _code(vocabulary, op)).sum(axis=1).astype(np.float64)

    feature.__doc__ = f"Interior vertices with {op}."
    return feature


def _share(op: str) -> OpFeatureFn:
    def feature(matrices: np.ndarray, ops: np.ndarray, vocabulary: Sequence[str]) -> np.ndarray:
        interior = (ops >= 2).sum(axis=1)
        count = (ops == _code(vocabulary, op)).sum(axis=1)
        return np.where(interior > 0, count / np.maximum(interior, 1), 0.0)

    feature.__doc__ = f"Share of the interior vertices with {op}."
    return feature


def longest_path_ops(matrices: np.ndarray, ops: np.ndarray, code: int) -> np.ndarray:
    """``(N,)``: the most vertices of operation ``code`` on any longest input -> output path,
    by one sweep in vertex order over (length, count) pairs compared lexicographically."""
    n, v, _ = matrices.shape
    length = np.full((n, v), -1, dtype=np.int64)  # -1: not reachable from the input
    count = np.zeros((n, v), dtype=np.int64)
    length[:, 0] = 0
    for j in range(1, v):
        edge = matrices[:, :j, j].astype(bool) & (length[:, :j] >= 0)
        score = np.where(edge, length[:, :j] * 64 + count[:, :j], -1)  # (length, count) as one int
        best = score.max(axis=1)
        reach = best >= 0
        length[:, j] = np.where(reach, best // 64 + 1, -1)
        count[:, j] = np.where(reach, best % 64 + (ops[:, j] == code), 0)
    has_in = matrices.any(axis=1)
    last = np.where(has_in.any(axis=1), v - 1 - np.argmax(has_in[:, ::-1], axis=1), 0)
    return count[np.arange(n), last].astype(np.float64)


def _longest_path(op: str) -> OpFeatureFn:
    def feature(matrices: np.ndarray, ops: np.ndarray, vocabulary: Sequence[str]) -> np.ndarray:
        return longest_path_ops(matrices, ops, _code(vocabulary, op))

    feature.__doc__ = f"The most {op} vertices on a longest input -> output path."
    return feature


OP_FEATURES: dict[str, OpFeatureFn] = {
    **{f"num_{short}": _count(op) for short, op in _SHORT.items()},
    **{f"share_{short}": _share(op) for short, op in _SHORT.items()},
    "longest_path_conv3x3": _longest_path(_SHORT["conv3x3"]),
}
# an embedding that sees operations: edges, depth and what the path and the cell compute with
OP_AWARE_FEATURES: tuple[str, ...] = (
    "num_edges",
    "longest_path",
    "num_conv3x3",
    "num_maxpool",
    "longest_path_conv3x3",
)


def compute_op_feature(
    name: str, matrices: np.ndarray, ops: np.ndarray | None, vocabulary: Sequence[str] | None
) -> np.ndarray:
    """One operation-aware feature ``(N,)`` of a labelled stack.

    Raises:
        InvalidSpaceError: an unknown name, or an unlabelled stack.
    """
    if name not in OP_FEATURES:
        raise InvalidSpaceError(
            f"Unknown operation feature {name!r}; expected one of {list(OP_FEATURES)}."
        )
    if ops is None or vocabulary is None:
        raise InvalidSpaceError(
            f"The operation feature {name!r} needs a labelled space; this one is unlabelled."
        )
    return OP_FEATURES[name](np.asarray(matrices), np.asarray(ops), tuple(vocabulary))
