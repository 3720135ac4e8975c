"""The DAG cell search space: cells, pruning, exact canonical hashing, enumeration, features and
the Euclidean embedding."""

from dagspace.cell import (
    INPUT,
    NASBENCH101_OPS,
    OUTPUT,
    CellSpec,
    is_full_dag,
    known_ops,
    prune,
    register_op,
    try_prune,
)
from dagspace.embedding import Embedding
from dagspace.errors import (
    CellNotInSpaceError,
    DagspaceError,
    InvalidCellError,
    InvalidSpaceError,
)
from dagspace.features import DEFAULT_FEATURES, FEATURES, compute_features
from dagspace.hashing import CanonicalForm, canonical_form, canonical_hash
from dagspace.random import check_random_state
from dagspace.space import PAD, Space, enumerate_space

__all__ = [
    "DEFAULT_FEATURES",
    "FEATURES",
    "INPUT",
    "NASBENCH101_OPS",
    "OUTPUT",
    "PAD",
    "CanonicalForm",
    "CellNotInSpaceError",
    "CellSpec",
    "DagspaceError",
    "Embedding",
    "InvalidCellError",
    "InvalidSpaceError",
    "Space",
    "canonical_form",
    "canonical_hash",
    "check_random_state",
    "compute_features",
    "enumerate_space",
    "is_full_dag",
    "known_ops",
    "prune",
    "register_op",
    "try_prune",
]
