"""The cell specification (NAS-Bench-101 form), its validation, pruning and conversions.

A cell is a DAG on ``V`` vertices given by an upper-triangular 0/1 adjacency matrix: vertex 0 is
the input, vertex ``V - 1`` the output, and every interior vertex carries an operation. A cell
whose ``ops`` is ``None`` is *unlabelled* (topology only).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np

from dagspace.errors import InvalidCellError

__all__ = [
    "INPUT",
    "NASBENCH101_OPS",
    "OUTPUT",
    "CellSpec",
    "is_full_dag",
    "known_ops",
    "on_path_mask",
    "prune",
    "register_op",
    "try_prune",
]

INPUT = "input"
OUTPUT = "output"
NASBENCH101_OPS: tuple[str, ...] = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
_KNOWN_OPS: set[str] = set(NASBENCH101_OPS)


def register_op(name: str) -> None:
    """Make ``name`` a valid interior operation for :class:`CellSpec` (idempotent)."""
    if not isinstance(name, str) or not name or name in (INPUT, OUTPUT):
        raise InvalidCellError(
            f"An operation name must be a non-empty string other than {INPUT!r} and "
            f"{OUTPUT!r}; got {name!r}."
        )
    _KNOWN_OPS.add(name)


def known_ops() -> tuple[str, ...]:
    """The registered interior operation names, sorted."""
    return tuple(sorted(_KNOWN_OPS))


def _as_matrix(matrix: Any) -> np.ndarray:
    try:
        array = np.asarray(matrix)
    except (TypeError, ValueError) as err:  # ragged nested lists, unconvertible objects
        raise InvalidCellError(
            f"The 'matrix' of a cell must be a square 0/1 array; got {matrix!r:.200} ({err})."
        ) from None
    if array.ndim != 2 or array.shape[0] != array.shape[1] or array.shape[0] < 2:
        raise InvalidCellError(
            "The 'matrix' of a cell must be a square 2-D array with at least 2 vertices; "
            f"got shape {tuple(array.shape)}."
        )
    if array.dtype.kind not in "biuf":
        raise InvalidCellError(
            f"The 'matrix' of a cell must hold the numbers 0 and 1; got dtype {array.dtype}."
        )
    bad = (array != 0) & (array != 1)
    if np.any(bad):
        raise InvalidCellError(
            f"The 'matrix' of a cell must hold only 0 and 1; got {array[bad].flat[0].item()!r}."
        )
    return array.astype(np.uint8)


def _check_ops(ops: Any, num_vertices: int) -> tuple[str, ...] | None:
    if ops is None:
        return None
    if isinstance(ops, str) or not isinstance(ops, Iterable):
        raise InvalidCellError(
            f"The 'ops' of a cell must be a sequence of {num_vertices} names; got {ops!r}."
        )
    ops = tuple(ops)
    names = [op for op in ops if not isinstance(op, str)]
    if names:  # before any comparison: an array or a list among the names would not compare
        raise InvalidCellError(
            f"The 'ops' of a cell must be operation names (strings); got "
            f"{type(names[0]).__name__} {names[0]!r:.100} in {list(ops)!r:.200}."
        )
    if len(ops) != num_vertices:
        raise InvalidCellError(
            f"The 'ops' of a cell must have one name per vertex ({num_vertices}); "
            f"got {len(ops)}: {list(ops)!r}."
        )
    if ops[0] != INPUT or ops[-1] != OUTPUT:
        raise InvalidCellError(
            f"The 'ops' of a cell must start with {INPUT!r} and end with {OUTPUT!r}; "
            f"got {list(ops)!r}."
        )
    for op in ops[1:-1]:
        if op not in _KNOWN_OPS:
            raise InvalidCellError(
                f"Unknown operation {op!r} in 'ops'; expected one of {sorted(_KNOWN_OPS)} "
                "(register new ones with dagspace.register_op)."
            )
    return ops


@dataclass(frozen=True, eq=False)
class CellSpec:
    """A cell in NAS-Bench-101 form: ``matrix`` (``V x V`` upper-triangular 0/1) and ``ops``.

    The spec owns a read-only copy of its matrix. ``ops`` is a tuple of ``V`` names starting with
    ``"input"`` and ending with ``"output"``, or ``None`` for an unlabelled cell.

    Two specs compare equal when their matrices and ops are identical (not merely isomorphic:
    use :func:`dagspace.canonical_hash` for that).
    """

    matrix: np.ndarray
    ops: tuple[str, ...] | None = None
    _key: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        matrix = _as_matrix(self.matrix)
        if np.any(np.tril(matrix)):
            i, j = np.argwhere(np.tril(matrix))[0]
            raise InvalidCellError(
                "The 'matrix' of a cell must be strictly upper-triangular (edges go from a lower "
                f"to a higher vertex, which also rules out cycles); got an edge {i} -> {j}."
            )
        matrix.setflags(write=False)
        ops = _check_ops(self.ops, matrix.shape[0])
        object.__setattr__(self, "matrix", matrix)
        object.__setattr__(self, "ops", ops)
        object.__setattr__(self, "_key", matrix.tobytes() + repr(ops).encode())

    # -- basic properties -------------------------------------------------------------------
    @property
    def num_vertices(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def num_edges(self) -> int:
        return int(self.matrix.sum())

    @property
    def is_labelled(self) -> bool:
        return self.ops is not None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CellSpec) and self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        ops = "None" if self.ops is None else list(self.ops)
        return f"CellSpec(matrix={self.matrix.tolist()}, ops={ops})"

    # -- conversions --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The NAS-Bench-101 form ``{"matrix": [[...]], "ops": [...]}`` (``ops`` omitted if
        unlabelled)."""
        out: dict[str, Any] = {"matrix": self.matrix.tolist()}
        if self.ops is not None:
            out["ops"] = list(self.ops)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Any) -> CellSpec:
        if not isinstance(data, dict) or "matrix" not in data:
            raise InvalidCellError(
                "A cell must be a mapping with a 'matrix' (and optionally 'ops'); "
                f"got {type(data).__name__}: {data!r:.200}."
            )
        unknown = set(data) - {"matrix", "ops"}
        if unknown:
            raise InvalidCellError(
                f"A cell mapping takes the keys 'matrix' and 'ops'; got also "
                f"{sorted(unknown, key=repr)!r:.200}."
            )
        return cls(data["matrix"], data.get("ops"))

    @classmethod
    def from_json(cls, text: str | bytes) -> CellSpec:
        try:
            data = json.loads(text)
        except (TypeError, ValueError, RecursionError) as err:  # RecursionError: deep nesting
            raise InvalidCellError(f"A cell's JSON could not be parsed: {err}.") from None
        return cls.from_dict(data)

    def to_networkx(self) -> nx.DiGraph:
        """A ``networkx.DiGraph`` on vertices ``0..V-1`` with the node attribute ``op``."""
        graph = nx.DiGraph()
        for v in range(self.num_vertices):
            graph.add_node(v, op=None if self.ops is None else self.ops[v])
        graph.add_edges_from(map(tuple, np.argwhere(self.matrix).tolist()))
        return graph

    @classmethod
    def from_networkx(cls, graph: nx.DiGraph) -> CellSpec:
        """The inverse of :meth:`to_networkx`; nodes must be the integers ``0..V-1``."""
        nodes = sorted(graph.nodes)
        if nodes != list(range(len(nodes))):
            raise InvalidCellError(
                f"A cell graph's nodes must be the integers 0..V-1; got {nodes!r:.200}."
            )
        matrix = np.zeros((len(nodes), len(nodes)), dtype=np.uint8)
        for u, v in graph.edges:
            matrix[u, v] = 1
        ops = [graph.nodes[v].get("op") for v in nodes]
        return cls(matrix, None if all(op is None for op in ops) else ops)


def on_path_mask(matrix: np.ndarray) -> np.ndarray:
    """Boolean ``(..., V)``: which vertices of the upper-triangular ``(..., V, V)`` matrices
    (one cell, or a stack of them) lie on some input -> output path."""
    edges = np.asarray(matrix).astype(bool)
    n = edges.shape[-1]
    from_input = np.zeros(edges.shape[:-1], dtype=bool)
    from_input[..., 0] = True
    for j in range(1, n):  # upper-triangular: one pass in vertex order is a topological sweep
        from_input[..., j] = (edges[..., :j, j] & from_input[..., :j]).any(axis=-1)
    to_output = np.zeros(edges.shape[:-1], dtype=bool)
    to_output[..., -1] = True
    for i in range(n - 2, -1, -1):
        to_output[..., i] = (edges[..., i, i + 1 :] & to_output[..., i + 1 :]).any(axis=-1)
    return from_input & to_output


def is_full_dag(spec: CellSpec) -> bool:
    """True when every vertex lies on an input -> output path (nothing to prune)."""
    return bool(on_path_mask(spec.matrix).all())


def try_prune(spec: CellSpec) -> CellSpec | None:
    """Like :func:`prune`, but returns ``None`` when the input cannot reach the output."""
    keep = on_path_mask(spec.matrix)
    if not keep[0]:
        return None
    if keep.all():
        return spec
    idx = np.flatnonzero(keep)
    ops = None if spec.ops is None else [spec.ops[i] for i in idx]
    return CellSpec(spec.matrix[np.ix_(idx, idx)], ops)


def prune(spec: CellSpec) -> CellSpec:
    """Remove every vertex that is not on some input -> output path (NAS-Bench-101's rule).

    Raises:
        InvalidCellError: the input cannot reach the output, so nothing is left of the cell.
    """
    pruned = try_prune(spec)
    if pruned is None:
        raise InvalidCellError(
            "The cell's input cannot reach its output, so pruning leaves no cell; "
            f"got matrix {spec.matrix.tolist()}."
        )
    return pruned


def as_cellspecs(cells: Sequence[CellSpec] | CellSpec) -> tuple[CellSpec, ...]:
    """Normalise one cell or a sequence of cells to a tuple (an architecture)."""
    if isinstance(cells, CellSpec):
        return (cells,)
    out = tuple(cells)
    for c in out:
        if not isinstance(c, CellSpec):
            raise InvalidCellError(f"An architecture is a sequence of CellSpec; got {c!r:.200}.")
    return out
