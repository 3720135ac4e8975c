"""Graph-level features of cells, one vectorised function each over a stacked space.

Every feature takes a stacked ``(N, V, V)`` 0/1 adjacency array of *pruned* cells, padded to
``V`` vertices the way :class:`dagspace.Space` stores them (a cell on ``v`` vertices occupies
rows and columns ``0..v-1``, its output at ``v - 1``; padding rows and columns are zero), and
returns a float64 ``(N,)`` array. Padding vertices never count. A cell's vertex count is read off
its matrix: one more than the highest vertex with an in-edge.

Topologies repeat across the labellings of a labelled space, so each function computes on the
distinct matrices only and broadcasts back (423,624 cells of NAS-Bench-101 share 2,494 matrices).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from dagspace.errors import InvalidSpaceError

__all__ = [
    "DEFAULT_FEATURES",
    "FEATURES",
    "compute_features",
    "degree_variance",
    "eccentricity_variance",
    "longest_path",
    "num_edges",
    "num_vertices",
    "shortest_path",
    "topology_keys",
    "unique_topologies",
]

FeatureFn = Callable[[np.ndarray], np.ndarray]


def _check_stack(matrices: np.ndarray) -> np.ndarray:
    matrices = np.asarray(matrices)
    if matrices.ndim != 3 or matrices.shape[1] != matrices.shape[2]:
        raise InvalidSpaceError(
            f"Features take a stacked (N, V, V) adjacency array; got shape {matrices.shape}."
        )
    return matrices


def topology_keys(matrices: np.ndarray) -> np.ndarray:
    """One key per matrix of a stack, equal exactly when the matrices are equal: ``(N,)``.

    Up to 8 vertices the bits are packed into one uint64; beyond, the packed rows are keyed by
    their bytes.
    """
    n, v, _ = matrices.shape
    packed = np.packbits(matrices.reshape(n, v * v).astype(bool), axis=1)
    if packed.shape[1] <= 8:
        padded = np.zeros((n, 8), dtype=np.uint8)
        padded[:, : packed.shape[1]] = packed
        return padded.view(np.uint64).ravel()
    return np.ascontiguousarray(packed).view(f"V{packed.shape[1]}").ravel()


def unique_topologies(matrices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct matrices of a stack ``(U, V, V)`` and, per matrix, its row there ``(N,)``."""
    _, first, inverse = np.unique(topology_keys(matrices), return_index=True, return_inverse=True)
    return matrices[first], inverse.ravel()


def _per_topology(fn: Callable[[np.ndarray], np.ndarray]) -> FeatureFn:
    """Run ``fn`` on the distinct matrices of the stack only and broadcast back."""

    @functools.wraps(fn)
    def wrapper(matrices: np.ndarray) -> np.ndarray:
        matrices = _check_stack(matrices)
        if len(matrices) == 0:
            return np.zeros(0)
        distinct, inverse = unique_topologies(matrices)
        return np.asarray(fn(distinct), dtype=np.float64)[inverse]

    return wrapper


def _vertex_mask(matrices: np.ndarray) -> np.ndarray:
    """``(N, V)`` bool: the cell's own vertices (``0..v-1``), padding excluded."""
    v = matrices.shape[1]
    has_in = matrices.any(axis=1)  # (N, V)
    last = np.where(has_in.any(axis=1), v - 1 - np.argmax(has_in[:, ::-1], axis=1), 0)
    return np.arange(v)[None, :] <= last[:, None]


def _masked_variance(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Population variance of integer ``values`` over ``mask``, as ``(n S2 - S1^2) / n^2`` in
    integers: one correctly rounded division, so equal variances are equal floats."""
    values = np.where(mask, values, 0).astype(np.int64)
    count = mask.sum(axis=1, dtype=np.int64)
    s1, s2 = values.sum(axis=1), (values * values).sum(axis=1)
    return (count * s2 - s1 * s1) / (count * count)


@_per_topology
def num_vertices(matrices: np.ndarray) -> np.ndarray:
    """Number of vertices of the pruned cell, input and output included."""
    return _vertex_mask(matrices).sum(axis=1)


@_per_topology
def num_edges(matrices: np.ndarray) -> np.ndarray:
    """Number of edges."""
    return matrices.sum(axis=(1, 2))


@_per_topology
def degree_variance(matrices: np.ndarray) -> np.ndarray:
    """Population variance (ddof=0) of in-degree + out-degree over the cell's vertices."""
    degree = matrices.sum(axis=1) + matrices.sum(axis=2)
    return _masked_variance(degree, _vertex_mask(matrices))


def _undirected_distances(matrices: np.ndarray) -> np.ndarray:
    """``(N, V, V)`` shortest-path lengths in the undirected graph (``inf`` if unreachable),
    by breadth-first search expressed as boolean matrix products."""
    n, v, _ = matrices.shape
    adjacency = (matrices | matrices.transpose(0, 2, 1)).astype(np.float32)
    reached = np.broadcast_to(np.eye(v, dtype=bool), (n, v, v)).copy()
    dist = np.where(reached, 0.0, np.inf)
    for step in range(1, v):
        grown = (reached.astype(np.float32) @ adjacency) > 0
        dist[grown & ~reached] = step
        if not (grown & ~reached).any():
            break
        reached |= grown
    return dist


@_per_topology
def eccentricity_variance(matrices: np.ndarray) -> np.ndarray:
    """Population variance (ddof=0) of the vertices' eccentricities in the undirected graph.

    A vertex's eccentricity is its greatest shortest-path distance to any vertex of the cell
    (a pruned cell is connected, so it is finite).
    """
    mask = _vertex_mask(matrices)
    pair = mask[:, :, None] & mask[:, None, :]
    dist = np.where(pair, _undirected_distances(matrices), 0.0)
    return _masked_variance(dist.max(axis=2).astype(np.int64), mask)


def _path_lengths(matrices: np.ndarray, longest: bool) -> np.ndarray:
    """Longest (or shortest) input -> output path length in edges, by one sweep in vertex order
    (upper-triangular matrices are topologically sorted)."""
    n, v, _ = matrices.shape
    none, pick = (-np.inf, np.max) if longest else (np.inf, np.min)
    length = np.full((n, v), none)
    length[:, 0] = 0
    for j in range(1, v):
        length[:, j] = pick(np.where(matrices[:, :j, j] > 0, length[:, :j] + 1, none), axis=1)
    last = _vertex_mask(matrices).sum(axis=1) - 1
    return length[np.arange(n), last]


@_per_topology
def longest_path(matrices: np.ndarray) -> np.ndarray:
    """Number of edges on the longest input -> output path (the cell's depth)."""
    return _path_lengths(matrices, longest=True)


@_per_topology
def shortest_path(matrices: np.ndarray) -> np.ndarray:
    """Number of edges on the shortest input -> output path."""
    return _path_lengths(matrices, longest=False)


FEATURES: dict[str, FeatureFn] = {
    "eccentricity_variance": eccentricity_variance,
    "degree_variance": degree_variance,
    "num_edges": num_edges,
    "num_vertices": num_vertices,
    "longest_path": longest_path,
    "shortest_path": shortest_path,
}
DEFAULT_FEATURES: tuple[str, ...] = ("eccentricity_variance", "degree_variance", "num_edges")


def compute_features(
    matrices: np.ndarray, names: tuple[str, ...] | list[str] = tuple(FEATURES)
) -> np.ndarray:
    """The named features side by side: a float64 ``(N, len(names))`` array."""
    unknown = [name for name in names if name not in FEATURES]
    if unknown:
        raise InvalidSpaceError(
            f"Unknown feature(s) {unknown}; expected names from {list(FEATURES)}."
        )
    return np.stack([FEATURES[name](matrices) for name in names], axis=1)
