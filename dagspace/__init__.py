"""The DAG cell search space: cells, pruning, exact canonical hashing, enumeration, features,
the Euclidean embedding and the search strategies (BoTorch is imported only when a Bayesian
search proposes).

Names are imported on first use (PEP 562), so that ``import dagspace.errors`` (or the
command line's ``--help``) does not load numpy, scipy or torch.
"""

from __future__ import annotations

from dagspace.lazy import lazy_exports

_EXPORTS = {  # module -> the names it exports here
    "dagspace.cell": (
        "CellSpec",
        "INPUT",
        "NASBENCH101_OPS",
        "OUTPUT",
        "is_full_dag",
        "known_ops",
        "prune",
        "register_op",
        "try_prune",
    ),
    "dagspace.embedding": ("Embedding",),
    "dagspace.errors": (
        "CellNotInSpaceError",
        "DagrankError",
        "DagspaceError",
        "InvalidCellError",
        "InvalidSeedError",
        "InvalidSpaceError",
    ),
    "dagspace.features": ("DEFAULT_FEATURES", "FEATURES", "compute_features"),
    "dagspace.hashing": ("CanonicalForm", "canonical_form", "canonical_hash"),
    "dagspace.nasbench": ("nasbench101_hash", "nasbench101_hashes"),
    "dagspace.random": ("check_random_state",),
    "dagspace.space": ("PAD", "Space", "enumerate_space"),
    "dagspace.strategies": (
        "Architecture",
        "BayesianSearch",
        "FiniteDifferenceDescent",
        "LocalSearch",
        "RandomPointSearch",
        "RandomSearch",
        "RegularizedEvolution",
        "STRATEGIES",
        "SeedFiniteDifferenceDescent",
        "STRATEGY_CLASSES",
        "Strategy",
        "StrategyError",
        "make_strategy",
        "strategy_class",
        "strategy_seed",
    ),
}

__all__ = sorted(name for names in _EXPORTS.values() for name in names)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
