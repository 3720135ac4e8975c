"""The DAG cell search space: cells, pruning, exact canonical hashing, enumeration, features,
the Euclidean embedding and the search strategies (BoTorch is imported only when a Bayesian
search proposes)."""

from dagspace.bayes import BayesianSearch
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
from dagspace.evolution import RegularizedEvolution
from dagspace.features import DEFAULT_FEATURES, FEATURES, compute_features
from dagspace.hashing import CanonicalForm, canonical_form, canonical_hash
from dagspace.local_search import LocalSearch
from dagspace.nasbench import nasbench101_hash, nasbench101_hashes
from dagspace.random import check_random_state
from dagspace.space import PAD, Space, enumerate_space
from dagspace.strategies import (
    STRATEGIES,
    Architecture,
    FiniteDifferenceDescent,
    RandomSearch,
    Strategy,
    StrategyError,
    make_strategy,
    strategy_class,
)

__all__ = [
    "DEFAULT_FEATURES",
    "FEATURES",
    "INPUT",
    "NASBENCH101_OPS",
    "OUTPUT",
    "PAD",
    "STRATEGIES",
    "Architecture",
    "BayesianSearch",
    "CanonicalForm",
    "CellNotInSpaceError",
    "CellSpec",
    "DagspaceError",
    "Embedding",
    "FiniteDifferenceDescent",
    "InvalidCellError",
    "InvalidSpaceError",
    "LocalSearch",
    "RandomSearch",
    "RegularizedEvolution",
    "Space",
    "Strategy",
    "StrategyError",
    "canonical_form",
    "canonical_hash",
    "check_random_state",
    "compute_features",
    "enumerate_space",
    "is_full_dag",
    "known_ops",
    "make_strategy",
    "nasbench101_hash",
    "nasbench101_hashes",
    "prune",
    "register_op",
    "strategy_class",
    "try_prune",
]
