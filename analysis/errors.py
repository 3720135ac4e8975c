"""Exceptions raised by :mod:`analysis`."""

from __future__ import annotations

from dagspace.errors import DagrankError

__all__ = [
    "AnalysisError",
    "ForeignDirectoryError",
    "PlotFormatError",
    "RecordNotFoundError",
    "RunBusyError",
    "RunConflictError",
    "RunDamagedError",
    "RunDamagedWarning",
    "RunDirectoryError",
    "StoreCorruptError",
    "StoreError",
    "StoreRecoveredWarning",
    "StoreValueError",
]


class AnalysisError(DagrankError):
    """Base class of every error that :mod:`analysis` raises on purpose."""


class PlotFormatError(AnalysisError, ValueError):
    """A plot was asked for in a file format (suffix) or at a resolution it cannot be drawn in."""


class RunDirectoryError(AnalysisError):
    """A job cannot have this run directory (see :mod:`analysis.rundir`)."""


class ForeignDirectoryError(RunDirectoryError, FileExistsError):
    """The directory holds files that no dagrank job wrote (and no ``.dagrank-run`` marker)."""


class RunBusyError(RunDirectoryError):
    """Another job holds the run directory."""


class RunDamagedError(AnalysisError, ValueError):
    """A file of a run directory cannot be read: empty, cut short, or not what a job writes."""


class RunDamagedWarning(UserWarning):
    """A reading command (plot, report) found a damaged file in a run and left it as it is."""


class StoreError(AnalysisError):
    """The results store cannot do what was asked."""


class StoreCorruptError(StoreError, ValueError):
    """A results store file is not a readable store."""


class RunConflictError(StoreError):
    """A run directory already holds results of a different configuration."""


class StoreValueError(StoreError, ValueError):
    """A value given to the results store cannot be stored (bad key, status, metrics or JSON)."""


class RecordNotFoundError(StoreError, LookupError):
    """No evaluation record has the id that was asked for."""


class StoreRecoveredWarning(UserWarning):
    """A damaged results store was moved aside and its readable records copied to a fresh one."""
