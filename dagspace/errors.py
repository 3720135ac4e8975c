"""Exceptions of :mod:`dagspace`, and :class:`DagrankError`, the root of every package's errors.

The root lives here because every package imports :mod:`dagspace` and :mod:`dagspace` imports
none: :class:`surrogate.errors.SurrogateError` and :class:`analysis.errors.AnalysisError` derive
from it, so the command line (and a library user) catches one type for every error the toolkit
raises on purpose.
"""

from __future__ import annotations

__all__ = [
    "CellNotInSpaceError",
    "DagrankError",
    "DagspaceError",
    "InvalidCellError",
    "InvalidSeedError",
    "InvalidSpaceError",
]


class DagrankError(Exception):
    """Base class of every error that the toolkit (any of its packages) raises on purpose."""


class DagspaceError(DagrankError):
    """Base class of every error that :mod:`dagspace` raises on purpose."""


class InvalidCellError(DagspaceError, ValueError):
    """A cell's matrix or operations do not describe a valid NAS-Bench-101 cell."""


class InvalidSpaceError(DagspaceError, ValueError):
    """A space file or a space argument is malformed."""


class InvalidSeedError(DagspaceError, ValueError, TypeError):
    """A ``seed`` argument is neither a non-negative int, a ``numpy.random.Generator`` nor None."""


class CellNotInSpaceError(DagspaceError, KeyError):
    """A cell was looked up in a space that does not contain it."""

    def __str__(self) -> str:  # KeyError would print the message with quotes
        return str(self.args[0]) if self.args else ""
