"""Exact canonical form and hash of a cell, invariant under relabelling its interior vertices.

Algorithm. A pruned cell on ``v`` vertices has a unique source (the input, vertex 0) and a unique
sink (the output, vertex ``v - 1``), so every isomorphism fixes both and permutes only the
``k = v - 2`` interior vertices. For a permutation ``p`` (``p[i]`` is the new position of vertex
``i``) the relabelled matrix gets the integer code ``sum(2 ** (p[i] * v + p[j]) for edges i->j)``
and the relabelled operations the sequence ``ops'[p[i]] = ops[i]`` over positions ``1..v-2``.
The canonical form is the lexicographic minimum of ``(matrix code, operation sequence)`` over all
``k!`` permutations, operations compared by name. Two cells are isomorphic (with labels) exactly
when their canonical forms are equal: the form is exact, not a Weisfeiler-Lehman style
fingerprint. :func:`canonical_hash` is the 128-bit BLAKE2b digest of that form's text.

Cost: ``k!`` permutations, 120 for the 7-vertex NAS-Bench-101 cells. The enumeration in
:mod:`dagspace.enumeration` computes the same form for whole stacks of matrices at once.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from dagspace.cell import CellSpec, prune

__all__ = [
    "CanonicalForm",
    "canonical_form",
    "canonical_hash",
    "form_hash",
    "interior_permutations",
]


@dataclass(frozen=True)
class CanonicalForm:
    """The exact canonical form of a pruned cell.

    ``num_vertices`` of the pruned cell, ``matrix_code`` (the minimal integer code of its
    adjacency over interior relabellings) and ``ops`` (the minimal interior operation sequence
    among the relabellings that reach that code; ``None`` for an unlabelled cell).
    """

    num_vertices: int
    matrix_code: int
    ops: tuple[str, ...] | None

    def text(self) -> str:
        ops = "" if self.ops is None else ",".join(self.ops)
        return f"{self.num_vertices}|{self.matrix_code}|{ops}"


@lru_cache(maxsize=16)
def interior_permutations(num_vertices: int) -> np.ndarray:
    """All relabellings that fix input and output: an int64 ``(k!, v)`` array, ``k = v - 2``.

    Row ``p`` maps vertex ``i`` to position ``perms[p, i]``; row 0 is the identity.
    """
    v = num_vertices
    interior = list(itertools.permutations(range(1, v - 1)))
    perms = np.empty((len(interior), v), dtype=np.int64)
    perms[:, 0] = 0
    perms[:, v - 1] = v - 1
    if v > 2:
        perms[:, 1 : v - 1] = np.asarray(interior, dtype=np.int64).reshape(len(interior), v - 2)
    perms.flags.writeable = False
    return perms


def _matrix_codes(matrix: np.ndarray, perms: np.ndarray) -> list[int]:
    """The integer code of ``matrix`` under every permutation (Python ints: exact for any v)."""
    v = matrix.shape[0]
    rows, cols = np.nonzero(matrix)
    positions = perms[:, rows] * v + perms[:, cols]  # (P, edges)
    return [sum(1 << int(b) for b in row) for row in positions]


def canonical_form(spec: CellSpec) -> CanonicalForm:
    """The exact canonical form of ``spec`` after pruning (see the module docstring).

    Raises:
        InvalidCellError: the cell's input cannot reach its output.
    """
    pruned = prune(spec)
    v = pruned.num_vertices
    perms = interior_permutations(v)
    codes = _matrix_codes(pruned.matrix, perms)
    best = min(codes)
    if pruned.ops is None:
        return CanonicalForm(v, best, None)
    ops = np.asarray(pruned.ops, dtype=object)
    candidates = []
    for p, code in zip(perms, codes, strict=True):
        if code == best:
            relabelled = np.empty(v, dtype=object)
            relabelled[p] = ops
            candidates.append(tuple(relabelled[1 : v - 1]))
    return CanonicalForm(v, best, min(candidates))


def form_hash(text: str) -> str:
    """The 32-hex-digit BLAKE2b digest of a canonical form's text."""
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def canonical_hash(spec: CellSpec | Sequence[CellSpec]) -> str:
    """A 32-hex-digit hash of the cell's exact canonical form.

    Equal for isomorphic cells (same pruned graph up to relabelling the interior vertices, same
    operations on corresponding vertices), different otherwise, up to a 128-bit digest collision.
    For an architecture (a sequence of cells) the hash of the cells' hashes in order.
    """
    if isinstance(spec, CellSpec):
        return form_hash(canonical_form(spec).text())
    return form_hash("+".join(canonical_hash(cell) for cell in spec))
