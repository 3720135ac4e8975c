"""Exceptions raised by :mod:`dagspace`."""

from __future__ import annotations

__all__ = ["CellNotInSpaceError", "DagspaceError", "InvalidCellError", "InvalidSpaceError"]


class DagspaceError(Exception):
    """Base class of every error that :mod:`dagspace` raises on purpose."""


class InvalidCellError(DagspaceError, ValueError):
    """A cell's matrix or operations do not describe a valid NAS-Bench-101 cell."""


class InvalidSpaceError(DagspaceError, ValueError):
    """A space file or a space argument is malformed."""


class CellNotInSpaceError(DagspaceError, KeyError):
    """A cell was looked up in a space that does not contain it."""

    def __str__(self) -> str:  # KeyError would print the message with quotes
        return str(self.args[0]) if self.args else ""
