"""NAS-Bench-101's module fingerprint of a cell, so that the benchmark's tables join to a space.

Algorithm (the benchmark's ``graph_util.hash_module`` applied to the pruned cell, as its
``ModelSpec.hash_spec`` does), written from its description:

1. Label the vertices: ``-1`` the input, ``-2`` the output, and an interior vertex the index of
   its operation in ``(conv3x3-bn-relu, conv1x1-bn-relu, maxpool3x3)``.
2. Each vertex starts with the MD5 hex digest of the text of the tuple
   ``(out-degree, in-degree, label)``, e.g. ``"(1, 0, -1)"``.
3. ``v`` rounds (``v``: the pruned cell's vertex count): every vertex's new digest is the MD5 of
   its in-neighbours' digests sorted and joined, ``"|"``, its out-neighbours' digests sorted and
   joined, ``"|"``, its own digest.
4. The fingerprint is the MD5 of the text of the sorted list of the final digests (Python's
   ``str`` of a list of strings: ``"['0a…', '3f…']"``).

Like any Weisfeiler-Lehman style hash it is invariant under relabelling the interior vertices;
unlike :func:`dagspace.canonical_hash` it is not exact in principle, but on the 423,624 cells of
NAS-Bench-101 it has no collision (the benchmark keys its results with it).

:func:`nasbench101_hash` is the per-cell reference. :func:`nasbench101_hashes` computes the same
digests for a whole stacked space: digests become integer ids ranked in string order (so sorting
ids sorts digests), each round keys every vertex by ``(sorted in-ids, sorted out-ids, own id)``
with numpy, and MD5 runs once per *distinct* key. Measured on the 423,624 NAS-Bench-101 cells:
see ``dagrank bench nasbench-hash`` and the README.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from dagspace.cell import INPUT, NASBENCH101_OPS, OUTPUT, CellSpec, prune
from dagspace.errors import InvalidCellError, InvalidSpaceError

__all__ = ["NASBENCH101_LABELS", "nasbench101_hash", "nasbench101_hashes", "nasbench101_labels"]

NASBENCH101_LABELS: tuple[str, ...] = NASBENCH101_OPS  # label i <-> NASBENCH101_OPS[i]
_INPUT_LABEL, _OUTPUT_LABEL = -1, -2


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def _labels(ops: Sequence[str]) -> list[int]:
    interior = []
    for op in ops[1:-1]:
        if op not in NASBENCH101_LABELS:
            raise InvalidCellError(
                f"NAS-Bench-101's hash labels only the operations {list(NASBENCH101_LABELS)}; "
                f"got {op!r} in {list(ops)!r}."
            )
        interior.append(NASBENCH101_LABELS.index(op))
    return [_INPUT_LABEL, *interior, _OUTPUT_LABEL]


def nasbench101_hash(spec: CellSpec) -> str:
    """NAS-Bench-101's 32-hex-digit module hash of ``spec`` after pruning (the reference).

    Raises:
        InvalidCellError: the cell is unlabelled, has an operation NAS-Bench-101 does not have,
            or its input cannot reach its output.
    """
    if spec.ops is None:
        raise InvalidCellError(
            "NAS-Bench-101's hash needs a labelled cell (ops); got an unlabelled one."
        )
    pruned = prune(spec)
    matrix = pruned.matrix
    v = pruned.num_vertices
    labels = _labels(pruned.ops)
    in_deg, out_deg = matrix.sum(axis=0).tolist(), matrix.sum(axis=1).tolist()
    digests = [_md5(str((out_deg[i], in_deg[i], labels[i]))) for i in range(v)]
    for _ in range(v):
        digests = [
            _md5(
                "".join(sorted(digests[w] for w in range(v) if matrix[w, i]))
                + "|"
                + "".join(sorted(digests[w] for w in range(v) if matrix[i, w]))
                + "|"
                + digests[i]
            )
            for i in range(v)
        ]
    return _md5(str(sorted(digests)))


# -- the stacked version ---------------------------------------------------------------------------
def nasbench101_labels(ops: np.ndarray, vocabulary: Sequence[str]) -> np.ndarray:
    """A labelled space's operation codes ``(N, V)`` (into ``vocabulary``, ``-1`` padding) as
    NAS-Bench-101 labels ``(N, V)`` int64 (padding stays ``-3``, never read).

    Raises:
        InvalidSpaceError: the vocabulary has an operation NAS-Bench-101 does not have.
    """
    table = []
    for name in vocabulary:
        if name == INPUT:
            table.append(_INPUT_LABEL)
        elif name == OUTPUT:
            table.append(_OUTPUT_LABEL)
        elif name in NASBENCH101_LABELS:
            table.append(NASBENCH101_LABELS.index(name))
        else:
            raise InvalidSpaceError(
                f"NAS-Bench-101's hash labels only the operations {list(NASBENCH101_LABELS)}; "
                f"this space has {list(vocabulary)}."
            )
    lookup = np.asarray([*table, -3], dtype=np.int64)  # code -1 (padding) -> -3
    return lookup[np.asarray(ops, dtype=np.int64)]


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_CHUNK_CELLS = 1 << 16  # cells hashed at once


def _hex(raw: np.ndarray) -> np.ndarray:
    """``(..., 16)`` raw digests to ``(..., 32)`` ASCII lowercase hex bytes."""
    out = np.empty((*raw.shape[:-1], 32), dtype=np.uint8)
    out[..., 0::2], out[..., 1::2] = _HEX[raw >> 4], _HEX[raw & 15]
    return out


def _sort_keys(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two big-endian uint64 halves of raw digests: sorting by ``(hi, lo)`` sorts the hex text."""
    halves = np.ascontiguousarray(raw).view(">u8").astype(np.uint64)
    return halves[..., 0], halves[..., 1]


def _md5_rows(rows: np.ndarray) -> np.ndarray:
    """Raw MD5 digests ``(m, 16)`` of the rows of a ``(m, L)`` uint8 array, one message each."""
    m, length = rows.shape
    view = memoryview(np.ascontiguousarray(rows).reshape(-1))
    md5 = hashlib.md5
    raw = b"".join([md5(view[i : i + length]).digest() for i in range(0, m * length, length)])
    return np.frombuffer(raw, dtype=np.uint8).reshape(m, 16)


def _degree_groups(adjacency: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The vertices of ``(n, v, v)`` cells grouped by ``(in-degree, out-degree)``: per group
    the flat vertex indices ``(m,)`` and their in- and out-neighbours' flat indices ``(m, a)``,
    ``(m, b)`` (a message of the group has a fixed length)."""
    n, v, _ = adjacency.shape
    flat = np.arange(n * v).reshape(n, v)
    in_deg = adjacency.sum(axis=1).ravel()
    out_deg = adjacency.sum(axis=2).ravel()
    # neighbour lists, ascending vertex number, as (n * v, v) with -1 padding
    ins = np.where(adjacency.transpose(0, 2, 1), flat[:, None, :], -1).reshape(n * v, v)
    outs = np.where(adjacency, flat[:, None, :], -1).reshape(n * v, v)
    ins, outs = -np.sort(-ins, axis=1), -np.sort(-outs, axis=1)  # real neighbours first
    groups = []
    for a, b in sorted(set(zip(in_deg.tolist(), out_deg.tolist(), strict=True))):
        members = np.flatnonzero((in_deg == a) & (out_deg == b))
        groups.append((members, ins[members, :a], outs[members, :b]))
    return groups


def _sorted_by_digest(index: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Each row of vertex indices ``(m, a)`` reordered so that their digests ascend."""
    if index.shape[1] < 2:
        return index
    order = np.lexsort((lo[index], hi[index]), axis=1)
    return np.take_along_axis(index, order, axis=1)


def _round(groups: list, raw: np.ndarray) -> np.ndarray:
    """One round: new raw digests ``(n * v, 16)`` from the current ones."""
    hexes = _hex(raw)  # (n * v, 32)
    hi, lo = _sort_keys(raw)
    new = np.empty_like(raw)
    for members, ins, outs in groups:
        m = len(members)
        bar = np.full((m, 1), ord("|"), dtype=np.uint8)
        rows = np.concatenate(
            [hexes[_sorted_by_digest(ins, hi, lo)].reshape(m, -1), bar,
             hexes[_sorted_by_digest(outs, hi, lo)].reshape(m, -1), bar, hexes[members]],
            axis=1,
        )  # fmt: skip
        new[members] = _md5_rows(rows)
    return new


def _group_hashes(matrices: np.ndarray, labels: np.ndarray) -> list[str]:
    """The fingerprints of cells that all have exactly ``v`` vertices: ``(n, v, v)``, ``(n, v)``."""
    n, v, _ = matrices.shape
    in_deg, out_deg = matrices.sum(axis=1), matrices.sum(axis=2)  # (n, v)
    code = ((out_deg.astype(np.int64) * 64 + in_deg) * 8 + labels + 2).ravel()  # (n * v,)
    keys, inverse = np.unique(code, return_inverse=True)
    triples = [(int(k) // 512, int(k) // 8 % 64, int(k) % 8 - 2) for k in keys.tolist()]
    first = [hashlib.md5(str(t).encode()).digest() for t in triples]
    table = np.frombuffer(b"".join(first), dtype=np.uint8).reshape(len(keys), 16)
    raw = table[inverse.ravel()]  # (n * v, 16): round 0, the (out, in, label) digests
    groups = _degree_groups(matrices.astype(bool))
    for _ in range(v):
        raw = _round(groups, raw)
    raw = raw.reshape(n, v, 16)
    hi, lo = _sort_keys(raw)
    ordered = _hex(np.take_along_axis(raw, np.lexsort((lo, hi), axis=1)[:, :, None], axis=1))
    sep = np.frombuffer(b"', '", dtype=np.uint8)
    body = np.concatenate([ordered, np.broadcast_to(sep, (n, v, 4))], axis=2).reshape(n, -1)
    text = np.concatenate(
        [np.broadcast_to(np.frombuffer(b"['", np.uint8), (n, 2)), body[:, :-4],
         np.broadcast_to(np.frombuffer(b"']", np.uint8), (n, 2))], axis=1
    )  # fmt: skip
    return _hex(_md5_rows(text)).view("S32").ravel().astype("U32").tolist()


def nasbench101_hashes(
    matrices: np.ndarray, labels: np.ndarray, num_vertices: np.ndarray
) -> np.ndarray:
    """NAS-Bench-101's module hash of every cell of a stack, equal to :func:`nasbench101_hash`.

    Args:
        matrices: ``(N, V, V)`` 0/1 adjacency of *pruned* cells, padded as
            :class:`dagspace.Space` stores them (a cell on ``v`` vertices in rows and columns
            ``0..v-1``, its output at ``v - 1``).
        labels: ``(N, V)`` int NAS-Bench-101 labels (``-1`` input, ``-2`` output, ``0..2``
            interior); padding entries are ignored.
        num_vertices: ``(N,)`` each cell's vertex count ``v``.

    Returns:
        ``(N,)`` ``U32`` hex digests. Cells are hashed in groups of equal vertex count (each
        runs ``v`` rounds), 65,536 cells at a time.
    """
    matrices = np.asarray(matrices)
    labels = np.asarray(labels)
    sizes = np.asarray(num_vertices, dtype=np.int64)
    n = len(matrices)
    if (
        matrices.ndim != 3
        or matrices.shape[1:] != (matrices.shape[1],) * 2
        or labels.shape != matrices.shape[:2]
        or sizes.shape != (n,)
    ):
        raise InvalidSpaceError(
            "nasbench101_hashes takes matrices (N, V, V), labels (N, V) and num_vertices (N,); "
            f"got {matrices.shape}, {labels.shape} and {sizes.shape}."
        )
    out = np.empty(n, dtype="U32")
    for v in np.unique(sizes).tolist():
        rows = np.flatnonzero(sizes == v)
        for at in range(0, len(rows), _CHUNK_CELLS):
            part = rows[at : at + _CHUNK_CELLS]
            out[part] = _group_hashes(matrices[part, :v, :v].astype(np.int64), labels[part, :v])
    return out
