"""The DAG cell search space: cells, pruning, exact canonical hashing, enumeration, features,
the Euclidean embedding and the search strategies (BoTorch is imported only when a Bayesian
search proposes).

Names are imported on first use (PEP 562), so that ``import dagspace.errors`` (or the
command line's ``--help``) does not load numpy, scipy or torch.
"""

from __future__ import annotations

from dagspace.lazy import lazy_exports

_EXPORTS = {
    "Architecture": "dagspace.strategies",
    "BayesianSearch": "dagspace.strategies",
    "LocalSearch": "dagspace.strategies",
    "RegularizedEvolution": "dagspace.strategies",
    "STRATEGY_CLASSES": "dagspace.strategies",
    "DagrankError": "dagspace.errors",
    "InvalidSeedError": "dagspace.errors",
    "strategy_seed": "dagspace.strategies",
    "nasbench101_hash": "dagspace.nasbench",
    "nasbench101_hashes": "dagspace.nasbench",
    "CanonicalForm": "dagspace.hashing",
    "CellNotInSpaceError": "dagspace.errors",
    "CellSpec": "dagspace.cell",
    "DEFAULT_FEATURES": "dagspace.features",
    "DagspaceError": "dagspace.errors",
    "Embedding": "dagspace.embedding",
    "FEATURES": "dagspace.features",
    "FiniteDifferenceDescent": "dagspace.strategies",
    "INPUT": "dagspace.cell",
    "InvalidCellError": "dagspace.errors",
    "InvalidSpaceError": "dagspace.errors",
    "NASBENCH101_OPS": "dagspace.cell",
    "OUTPUT": "dagspace.cell",
    "PAD": "dagspace.space",
    "RandomSearch": "dagspace.strategies",
    "STRATEGIES": "dagspace.strategies",
    "Space": "dagspace.space",
    "Strategy": "dagspace.strategies",
    "StrategyError": "dagspace.strategies",
    "canonical_form": "dagspace.hashing",
    "canonical_hash": "dagspace.hashing",
    "check_random_state": "dagspace.random",
    "compute_features": "dagspace.features",
    "enumerate_space": "dagspace.space",
    "is_full_dag": "dagspace.cell",
    "known_ops": "dagspace.cell",
    "make_strategy": "dagspace.strategies",
    "prune": "dagspace.cell",
    "register_op": "dagspace.cell",
    "strategy_class": "dagspace.strategies",
    "try_prune": "dagspace.cell",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
