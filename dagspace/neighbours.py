"""One-step neighbours of cells inside a space: one edge flipped or one interior operation changed.

Algorithm (vectorised over a batch of cells of equal size ``v``, no per-cell Python loop):

1. *Variants*: every cell of the batch gives ``v (v - 1) / 2`` edge flips of its (pruned) matrix
   and ``(v - 2) (n_ops - 1)`` operation changes.
2. *Pruning*: vertices off every input -> output path are dropped (a sweep in vertex order,
   the matrices being upper-triangular); a variant whose input cannot reach its output is
   discarded.
3. *Canonical hash*: the exact canonical form of :mod:`dagspace.hashing` (the minimal topology
   code over interior permutations, then the minimal operation sequence over the permutations
   that reach it), computed as the enumeration computes it (:func:`canonical_codes`), then its
   BLAKE2b digest, looked up in the space. Variants outside the space (too many edges, a cell
   a space subset lacks) are not neighbours.

A flip in the pruned form cannot add a vertex (a new vertex needs an in- and an out-edge), so
neighbours have at most as many vertices as their cell; this is the neighbourhood of the
benchmark's pruned cells, as local search on NAS-Bench-101 uses it. It is not symmetric (a flip
that prunes a vertex has no flip back), and a walk on it drifts to smaller cells.

The *symmetric* neighbourhood (:func:`symmetric_neighbours`) adds the way back: ``b`` is a
neighbour of ``a`` when either is a one-step variant of the other. The search strategies walk it
with a Metropolis-Hastings correction (:func:`metropolis_neighbour`, :func:`thinned_neighbours`):
a neighbour ``b`` of ``a`` (degree ``d(a)``) is kept with probability ``min(1, d(a) / d(b))``, so
a walk from a uniformly random cell stays about uniformly distributed over the space's cells
(not exactly: a refused proposal is drawn again rather than staying, which weighs a cell by its
acceptance); with no information it prefers no cell that the null test of
:mod:`dagspace.strategies.null_test` can see.

Results are memoised per space (a space is immutable), so repeated searches over one space
compute each cell's neighbourhood once.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence

import numpy as np

from dagspace.cell import on_path_mask
from dagspace.enumeration import canonical_codes
from dagspace.hashing import form_hash, interior_permutations
from dagspace.space import Space

__all__ = [
    "canonical_hashes",
    "cell_neighbours",
    "metropolis_neighbour",
    "neighbour_counts",
    "symmetric_neighbours",
    "thinned_neighbours",
]

_MEMO: weakref.WeakKeyDictionary[Space, dict[int, np.ndarray]] = weakref.WeakKeyDictionary()
_SYMMETRIC: weakref.WeakKeyDictionary[Space, tuple[np.ndarray, np.ndarray, np.ndarray]] = (
    weakref.WeakKeyDictionary()
)
_METROPOLIS_TRIES = 64  # proposals before a walk step gives up
_BATCH = 4096  # cells expanded at once


def _variants(matrices: np.ndarray, ranks: np.ndarray | None, n_ops: int) -> tuple:
    """Edge flips and op changes of ``(c, v, v)`` cells: ``(c, m, v, v)``, ``(c, m, v)``."""
    _c, v, _ = matrices.shape
    rows, cols = np.triu_indices(v, 1)
    flips = np.repeat(matrices[:, None], len(rows), axis=1)  # (c, E, v, v)
    flips[:, np.arange(len(rows)), rows, cols] ^= 1
    if ranks is None:
        return flips, None
    flip_ranks = np.repeat(ranks[:, None], len(rows), axis=1)
    vertex, new = np.meshgrid(np.arange(1, v - 1), np.arange(1, n_ops), indexing="ij")
    vertex, shift = vertex.ravel(), new.ravel()  # op change: rank + shift (mod n_ops)
    changed = np.repeat(ranks[:, None], len(vertex), axis=1)  # (c, O, v)
    at = np.arange(len(vertex))
    changed[:, at, vertex] = (changed[:, at, vertex] + shift) % n_ops
    same = np.repeat(matrices[:, None], len(vertex), axis=1)
    return np.concatenate([flips, same], axis=1), np.concatenate([flip_ranks, changed], axis=1)


def _canonical_texts(matrices: np.ndarray, ranks: np.ndarray | None, names: Sequence[str]):
    """Canonical form texts of ``(n, v, v)`` pruned cells with op ranks ``(n, v)``."""
    _n, v, _ = matrices.shape
    rows, cols = np.triu_indices(v, 1)
    codes, automorphic = canonical_codes(matrices[:, rows, cols].astype(np.float64), v)
    if ranks is None or v == 2:
        return [f"{v}|{c}|" for c in codes.tolist()]
    k, n_ops = v - 2, len(names)
    perms = interior_permutations(v)[:, 1 : v - 1]  # (P, k)
    place = n_ops ** (k - perms).T  # (k, P)
    table = ranks[:, 1 : v - 1].astype(np.int64) @ place  # (n, P)
    big = np.iinfo(np.int64).max
    label = np.where(automorphic, table, big).min(axis=1)
    digits = (label[:, None] // n_ops ** np.arange(k - 1, -1, -1)) % n_ops
    text = np.asarray(names, dtype=object)[digits]
    return [
        f"{v}|{c}|{','.join(seq)}" for c, seq in zip(codes.tolist(), text.tolist(), strict=True)
    ]


def canonical_hashes(matrices: np.ndarray, ranks: np.ndarray | None,
                     names: Sequence[str]) -> np.ndarray:  # fmt: skip
    """:func:`dagspace.canonical_hash` of a stack of cells at once (step 3 above).

    Args:
        matrices: ``(n, v, v)`` upper-triangular 0/1 matrices, pruned or not, in any
            topological vertex order (input first, output last).
        ranks: ``(n, v)`` each vertex's operation as an index into ``names`` (input and output
            entries are ignored), or ``None`` for unlabelled cells.
        names: the interior operation names, sorted.

    Returns:
        ``(n,)`` ``U32`` hashes; ``""`` where a cell's input cannot reach its output.
    """
    n, _v, _ = matrices.shape
    out = np.full(n, "", dtype="U32")
    keep = on_path_mask(matrices)
    valid = keep[:, 0]
    size = keep.sum(axis=1)
    order = np.argsort(~keep, axis=1, kind="stable")  # kept vertices first, in order
    for w in np.unique(size[valid]).tolist():
        rows = np.flatnonzero(valid & (size == w))
        idx = order[rows, :w]
        sub = matrices[rows[:, None, None], idx[:, :, None], idx[:, None, :]]
        sub_ranks = None if ranks is None else np.take_along_axis(ranks[rows], idx, axis=1)
        out[rows] = [form_hash(t) for t in _canonical_texts(sub, sub_ranks, names)]
    return out


def _lookup(space: Space, matrices: np.ndarray, ranks: np.ndarray | None,
            names: Sequence[str]) -> np.ndarray:  # fmt: skip
    """Space indices ``(n,)`` of unpruned ``(n, v, v)`` cells (``-1``: not in the space)."""
    return space.find_hashes(canonical_hashes(matrices, ranks, names).tolist())


def _compute(space: Space, cells: np.ndarray) -> dict[int, np.ndarray]:
    names = sorted(space.op_names) if space.is_labelled else []
    rank_of_code = None
    if space.is_labelled:  # vocabulary code -> rank by name (input/output: rank 0, unused)
        rank_of_code = np.zeros(len(space.vocabulary) + 1, dtype=np.int64)
        for code, name in enumerate(space.vocabulary[2:], start=2):
            rank_of_code[code] = names.index(name)
    sizes = space._vertex_counts()[cells]
    found: dict[int, np.ndarray] = {}
    for v in np.unique(sizes).tolist():
        group = cells[sizes == v]
        for at in range(0, len(group), _BATCH):
            part = group[at : at + _BATCH]
            mats = space.matrices[part, :v, :v].astype(np.uint8)
            ranks = None if rank_of_code is None else rank_of_code[space.ops[part, :v]]
            var_m, var_r = _variants(mats, ranks, len(names))
            c, m = var_m.shape[:2]
            index = _lookup(space, var_m.reshape(c * m, v, v),
                            None if var_r is None else var_r.reshape(c * m, v),
                            names).reshape(c, m)  # fmt: skip
            for cell, row in zip(part.tolist(), index, strict=True):
                hits = np.unique(row[row >= 0])
                found[cell] = hits[hits != cell]
    return found


def cell_neighbours(space: Space, cell: int) -> np.ndarray:
    """The space indices (ascending) of the cells one edge flip or one operation change away
    from cell ``cell`` (see the module docstring), memoised per space."""
    memo = _MEMO.setdefault(space, {})
    if cell not in memo:
        memo.update(_compute(space, np.asarray([int(cell)])))
    return memo[cell]


def neighbour_counts(space: Space, cells: Sequence[int] | None = None) -> np.ndarray:
    """``(n,)`` the number of neighbours of each of ``cells`` (default: every cell), computed
    in batches and memoised."""
    memo = _MEMO.setdefault(space, {})
    cells = np.arange(len(space)) if cells is None else np.asarray(cells, dtype=np.int64)
    todo = np.asarray([c for c in cells.tolist() if c not in memo], dtype=np.int64)
    if len(todo):
        memo.update(_compute(space, todo))
    return np.asarray([len(memo[c]) for c in cells.tolist()], dtype=np.int64)


def _symmetric_graph(space: Space) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(N + 1,)`` row offsets, the concatenated ascending neighbour lists and ``(N,)`` the
    degrees of the symmetric neighbourhood of every cell (computed for the whole space once,
    memoised: a walk step reads them, it never recomputes them)."""
    graph = _SYMMETRIC.get(space)
    if graph is None:
        neighbour_counts(space)  # every cell's one-step variants, memoised
        memo, n = _MEMO[space], len(space)
        out = [memo[c] for c in range(n)]
        source = np.repeat(np.arange(n), [len(o) for o in out])
        target = np.concatenate(out) if n else np.zeros(0, dtype=np.int64)
        pairs = np.unique(np.r_[source * n + target, target * n + source])
        offsets = np.searchsorted(pairs // n, np.arange(n + 1)) if n else np.zeros(1, np.int64)
        offsets = offsets.astype(np.int64)
        graph = (offsets, (pairs % n).astype(np.int64), np.diff(offsets))
        for array in graph:  # shared by every caller: read-only
            array.flags.writeable = False
        _SYMMETRIC[space] = graph
    return graph


def symmetric_neighbours(space: Space, cell: int | None = None) -> np.ndarray:
    """The symmetric neighbourhood (see the module docstring): the ascending space indices of
    the cells that are one step from ``cell`` or from which ``cell`` is one step; with ``cell``
    ``None``, ``(N,)`` every cell's number of them (its degree)."""
    offsets, targets, degrees = _symmetric_graph(space)
    if cell is None:
        return degrees
    return targets[offsets[cell] : offsets[cell + 1]]


def metropolis_neighbour(space: Space, cell: int, rng: np.random.Generator,
                         accept: Callable[[int], bool] = lambda _: True) -> int | None:  # fmt: skip
    """One Metropolis-Hastings step of the uniform walk on the symmetric neighbourhood: a
    neighbour ``b`` of ``cell`` drawn uniformly and kept with probability
    ``min(1, d(cell) / d(b))``; drawn again (at most 64 times) while refused or while
    ``accept(b)`` is false (a cell already evaluated). ``None``: none was found."""
    around = symmetric_neighbours(space, cell)
    if not len(around):
        return None
    degree = symmetric_neighbours(space)
    for _ in range(_METROPOLIS_TRIES):
        b = int(around[rng.integers(len(around))])
        if rng.random() * degree[b] < degree[cell] and accept(b):
            return b
    return None


def thinned_neighbours(space: Space, cell: int, rng: np.random.Generator) -> np.ndarray:
    """The symmetric neighbours of ``cell``, each kept with probability
    ``min(1, d(cell) / d(b))`` (ascending): a neighbourhood that, evaluated whole from a
    uniformly random cell, samples every cell of the space about equally often."""
    around = symmetric_neighbours(space, cell)
    degree = symmetric_neighbours(space)
    return around[rng.random(len(around)) * degree[around] < degree[cell]]
