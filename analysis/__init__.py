"""Analysis: the results store every job writes, rank statistics, atomic output, plots.

Plotting modules (:mod:`analysis.plots`, :mod:`analysis.space_plot`) are imported on their own,
so that reading a store never loads matplotlib.
"""

from analysis.errors import AnalysisError, RunConflictError, StoreCorruptError, StoreError
from analysis.io import atomic_path, atomic_write
from analysis.stats import (
    Correlation,
    MannWhitney,
    Summary,
    mann_whitney,
    precision_at_k,
    rank_correlation,
    summarize,
)
from analysis.store import (
    EVALUATORS,
    SCHEMA_VERSION,
    Claim,
    ClaimOutcome,
    EvalKey,
    EvalRecord,
    EvalStatus,
    ResultsStore,
    SQLiteStore,
    hash_config,
)

__all__ = [
    "EVALUATORS",
    "SCHEMA_VERSION",
    "AnalysisError",
    "Claim",
    "ClaimOutcome",
    "Correlation",
    "EvalKey",
    "EvalRecord",
    "EvalStatus",
    "MannWhitney",
    "ResultsStore",
    "RunConflictError",
    "SQLiteStore",
    "StoreCorruptError",
    "StoreError",
    "Summary",
    "atomic_path",
    "atomic_write",
    "hash_config",
    "mann_whitney",
    "precision_at_k",
    "rank_correlation",
    "summarize",
]
