"""Analysis: the results store every job writes, rank statistics, atomic output, plots.

Plotting modules (:mod:`analysis.plots`, :mod:`analysis.space_plot`) are imported on their own,
so that reading a store never loads matplotlib. Names are imported on first use (PEP 562).
"""

from __future__ import annotations

from dagspace.lazy import lazy_exports

_EXPORTS = {  # module -> the names it exports here
    "analysis.errors": ("AnalysisError", "RunConflictError", "StoreCorruptError", "StoreError"),
    "analysis.io": ("atomic_path", "atomic_write"),
    "analysis.results": (
        "Claim",
        "ClaimOutcome",
        "EVALUATORS",
        "EvalKey",
        "EvalRecord",
        "EvalStatus",
        "InMemoryStore",
        "ResultsStore",
        "SCHEMA_VERSION",
        "SQLiteStore",
        "hash_config",
    ),
    "analysis.stats": (
        "Correlation",
        "MannWhitney",
        "Summary",
        "mann_whitney",
        "precision_at_k",
        "rank_correlation",
        "summarize",
    ),
}

__all__ = sorted(name for names in _EXPORTS.values() for name in names)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
