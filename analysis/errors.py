"""Exceptions raised by :mod:`analysis`."""

from __future__ import annotations

__all__ = ["AnalysisError", "StoreError", "StoreCorruptError", "RunConflictError"]


class AnalysisError(Exception):
    """Base class of every error that :mod:`analysis` raises on purpose."""


class StoreError(AnalysisError):
    """The results store cannot do what was asked."""


class StoreCorruptError(StoreError, ValueError):
    """A results store file is not a readable store."""


class RunConflictError(StoreError):
    """A run directory already holds results of a different configuration."""
