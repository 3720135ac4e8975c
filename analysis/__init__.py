"""Analysis: the results store every job writes, rank statistics, atomic output, plots.

Plotting modules (:mod:`analysis.plots`, :mod:`analysis.space_plot`) are imported on their own,
so that reading a store never loads matplotlib. Names are imported on first use (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import Any

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


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'analysis' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
