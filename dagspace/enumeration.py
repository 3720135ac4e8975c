"""Exact enumeration of a DAG cell space, deduplicated by the canonical form.

Algorithm (vectorised over stacked matrices, no per-graph Python loop):

1. For every vertex count ``v = 2 .. num_vertices`` take all ``2 ** (v (v - 1) / 2)``
   upper-triangular 0/1 matrices as bit rows, keep those with at most ``max_edges`` edges that are
   *full* DAGs (every vertex on an input -> output path, i.e. every non-output vertex has an
   out-edge and every non-input vertex an in-edge). Every pruned cell on at most
   ``num_vertices`` vertices is one of these, which is how NAS-Bench-101 generated its space.
2. The integer code of each matrix under every interior permutation is one float64 matrix product
   ``bits @ 2 ** positions`` (exact below 2 ** 53, i.e. up to 7 vertices). The row minimum is the
   canonical topology code (:mod:`dagspace.hashing`); one representative per distinct code is kept,
   with the set of permutations reaching the minimum (its canonical isomorphisms).
3. Labelled spaces: a labelling's canonical operation sequence is the minimum, over those
   canonical isomorphisms, of the relabelled sequence's base-``n`` code (operations ranked by
   name). Topologies that share the same set of canonical isomorphisms share the same table, so the
   distinct labellings are found once per set.

Known counts: ``num_vertices=7, max_edges=9`` with the three NAS-Bench-101 operations gives the
423,624 cells of NAS-Bench-101; unlabelled, ``num_vertices=6`` gives 2,071 topologies and
``num_vertices=7, max_edges=9`` 2,494 (checked against a brute-force isomorphism oracle in the
tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dagspace.cell import INPUT, OUTPUT, known_ops
from dagspace.errors import InvalidSpaceError
from dagspace.hashing import form_hash, interior_permutations

__all__ = [
    "MAX_ENUMERATION_VERTICES",
    "Topologies",
    "canonical_codes",
    "canonical_label_codes",
    "edge_set_bits",
    "enumerate_topologies",
    "labelled_cells",
]

MAX_ENUMERATION_VERTICES = 7
_CHUNK = 1 << 17


@dataclass(frozen=True)
class Topologies:
    """The distinct unlabelled pruned cells on exactly ``num_vertices`` vertices.

    ``matrices`` ``(T, v, v)`` uint8 representatives (upper-triangular), ``codes`` ``(T,)`` int64
    canonical topology codes, ``automorphic`` ``(T, k!)`` bool: the permutations of
    :func:`~dagspace.hashing.interior_permutations` that map the representative to its canonical
    code.
    """

    num_vertices: int
    matrices: np.ndarray
    codes: np.ndarray
    automorphic: np.ndarray


def edge_set_bits(v: int) -> np.ndarray:
    """All ``2 ** E`` upper-triangular matrices on ``v`` vertices as ``(2 ** E, E)`` uint8 bits."""
    num = v * (v - 1) // 2
    ints = np.arange(1 << num, dtype=np.int64)
    return ((ints[:, None] >> np.arange(num, dtype=np.int64)) & 1).astype(np.uint8)


def _full_dag_mask(bits: np.ndarray, v: int) -> np.ndarray:
    rows, cols = np.triu_indices(v, 1)
    as_float = bits.astype(np.float32)  # BLAS matmul; counts are small integers, exact
    has_out = (as_float @ (rows[:, None] == np.arange(v)).astype(np.float32)) > 0  # (N, v)
    has_in = (as_float @ (cols[:, None] == np.arange(v)).astype(np.float32)) > 0
    return has_out[:, : v - 1].all(axis=1) & has_in[:, 1:].all(axis=1)


def canonical_codes(
    bits: np.ndarray, v: int, with_automorphic: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Canonical topology codes of upper-triangular matrices given as ``(N, E)`` bit rows in
    ``numpy.triu_indices(v, 1)`` order: ``(N,)`` int64, and (optionally) the ``(N, k!)`` mask of
    permutations that reach the code. Exact up to 7 vertices (codes below 2 ** 53)."""
    rows, cols = np.triu_indices(v, 1)
    perms = interior_permutations(v)
    weights = np.exp2(perms[:, rows] * v + perms[:, cols]).T  # (E, P) float64, exact
    codes = np.empty(len(bits), dtype=np.int64)
    mask = np.empty((len(bits), len(perms)), dtype=bool) if with_automorphic else None
    for start in range(0, len(bits), _CHUNK):
        block = bits[start : start + _CHUNK] @ weights
        low = block.min(axis=1)
        codes[start : start + _CHUNK] = low
        if mask is not None:
            mask[start : start + _CHUNK] = block == low[:, None]
    return codes, mask


def enumerate_topologies(num_vertices: int, max_edges: int | None = None) -> Topologies:
    """Every distinct full DAG on exactly ``num_vertices`` vertices with ``<= max_edges`` edges."""
    v = num_vertices
    if not 2 <= v <= MAX_ENUMERATION_VERTICES:
        raise InvalidSpaceError(
            f"Exact enumeration takes 2 to {MAX_ENUMERATION_VERTICES} vertices; got {v}."
        )
    bits = edge_set_bits(v)
    if max_edges is not None:
        bits = bits[bits.sum(axis=1, dtype=np.int64) <= max_edges]
    bits = bits[_full_dag_mask(bits, v)]
    codes, _ = canonical_codes(bits, v, with_automorphic=False)
    unique_codes, first = np.unique(codes, return_index=True)
    reps = bits[first]
    _, automorphic = canonical_codes(reps, v)
    rows, cols = np.triu_indices(v, 1)
    matrices = np.zeros((len(reps), v, v), dtype=np.uint8)
    matrices[:, rows, cols] = reps
    return Topologies(v, matrices, unique_codes, automorphic)


def canonical_label_codes(automorphic: np.ndarray, v: int, n_ops: int) -> np.ndarray:
    """For each distinct set of canonical isomorphisms ``(U, k!)``, the canonical operation code
    of every labelling: ``(U, n_ops ** k)`` int64. Labelling ``L`` gives vertex ``i`` (1-based
    interior) the op rank ``digit_i(L)``, most significant digit first."""
    k = v - 2
    perms = interior_permutations(v)[:, 1 : v - 1]  # (P, k): new position of interior vertex i
    digits = (np.arange(n_ops**k)[:, None] // n_ops ** np.arange(k - 1, -1, -1)) % n_ops
    place = n_ops ** (k - perms).T  # (k, P): weight of the position each vertex moves to
    table = digits @ place  # (n_ops**k, P)
    big = np.iinfo(np.int64).max
    return np.stack([np.where(mask, table, big).min(axis=1) for mask in automorphic])


def labelled_cells(
    topologies: Topologies, ops: Sequence[str] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expand topologies into distinct labelled cells.

    Returns ``(topology_index (N,), labelling (N, k) op ranks in sorted(ops) order, hashes (N,))``.
    With ``ops=None`` each topology is one unlabelled cell.
    """
    v = topologies.num_vertices
    k = v - 2
    if ops is None or k == 0:
        index = np.arange(len(topologies.codes))
        labels = np.zeros((len(index), k), dtype=np.int64)
        seqs = None if ops is None else [""] * len(index)
        return index, labels, _hashes(v, topologies.codes[index], seqs)
    names = sorted(ops)
    n = len(names)
    patterns, pattern_of = np.unique(topologies.automorphic, axis=0, return_inverse=True)
    canon = canonical_label_codes(patterns, v, n)
    index_parts, label_parts, code_parts = [], [], []
    for u in range(len(patterns)):
        canon_codes, rep_labelling = np.unique(canon[u], return_index=True)
        tops = np.flatnonzero(pattern_of == u)
        index_parts.append(np.repeat(tops, len(rep_labelling)))
        label_parts.append(np.tile(rep_labelling, len(tops)))
        code_parts.append(np.tile(canon_codes, len(tops)))
    index = np.concatenate(index_parts)
    order = np.lexsort((np.concatenate(label_parts), index))
    index = index[order]
    lab_int = np.concatenate(label_parts)[order]
    canon_codes = np.concatenate(code_parts)[order]
    place = n ** np.arange(k - 1, -1, -1)
    labels = (lab_int[:, None] // place) % n
    canon_digits = (canon_codes[:, None] // place) % n
    op_text = np.asarray(names, dtype=object)[canon_digits]
    seqs = [",".join(row) for row in op_text.tolist()]
    return index, labels, _hashes(v, topologies.codes[index], seqs)


def _hashes(v: int, codes: np.ndarray, seqs: Sequence[str] | None) -> np.ndarray:
    if seqs is None:
        seqs = [""] * len(codes)
    texts = [f"{v}|{c}|{s}" for c, s in zip(codes.tolist(), seqs, strict=True)]
    return np.asarray([form_hash(t) for t in texts], dtype="U32")


def check_ops(ops: Sequence[str] | None) -> tuple[str, ...] | None:
    """Validate an operation list for enumeration: distinct, registered, no input/output."""
    if ops is None:
        return None
    ops = tuple(ops)
    registered = set(known_ops())
    bad = [op for op in ops if op not in registered or op in (INPUT, OUTPUT)]
    if not ops or bad or len(set(ops)) != len(ops):
        raise InvalidSpaceError(
            f"The 'ops' of a space must be distinct registered operation names (one of "
            f"{sorted(registered)}); got {list(ops)!r}."
        )
    return ops
