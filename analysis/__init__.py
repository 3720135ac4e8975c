"""Analysis: the results store every job writes, rank statistics, atomic output, plots.

Plotting modules (:mod:`analysis.plots`, :mod:`analysis.space_plot`) are imported on their own,
so that reading a store never loads matplotlib. Names are imported on first use (PEP 562).
"""

from __future__ import annotations

from dagspace.lazy import lazy_exports

_EXPORTS = {
    "AnalysisError": "analysis.errors",
    "Claim": "analysis.results",
    "ClaimOutcome": "analysis.results",
    "Correlation": "analysis.stats",
    "EVALUATORS": "analysis.results",
    "EvalKey": "analysis.results",
    "EvalRecord": "analysis.results",
    "EvalStatus": "analysis.results",
    "InMemoryStore": "analysis.results",
    "MannWhitney": "analysis.stats",
    "ResultsStore": "analysis.results",
    "RunConflictError": "analysis.errors",
    "SCHEMA_VERSION": "analysis.results",
    "SQLiteStore": "analysis.results",
    "StoreCorruptError": "analysis.errors",
    "StoreError": "analysis.errors",
    "Summary": "analysis.stats",
    "atomic_path": "analysis.io",
    "atomic_write": "analysis.io",
    "hash_config": "analysis.results",
    "mann_whitney": "analysis.stats",
    "precision_at_k": "analysis.stats",
    "rank_correlation": "analysis.stats",
    "summarize": "analysis.stats",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
