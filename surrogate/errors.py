"""Exceptions raised by :mod:`surrogate`."""

from __future__ import annotations

from dagspace.errors import DagrankError

__all__ = ["ConfigError", "DatasetError", "MainGuardError", "SurrogateError", "TrainingError"]


class SurrogateError(DagrankError):
    """Base class of every error that :mod:`surrogate` raises on purpose."""


class DatasetError(SurrogateError, ValueError):
    """A dataset is missing, malformed, or asked for with bad arguments."""


class ConfigError(SurrogateError, ValueError):
    """A configuration value is out of range or of the wrong type."""


class TrainingError(SurrogateError, RuntimeError):
    """Training could not go on (for example, every resample of a Gumbel sample was not finite)."""


class MainGuardError(SurrogateError, RuntimeError):
    """A worker pool would re-import a script that runs its job at import time (no
    ``if __name__ == "__main__":`` guard), and so start the job again in every worker."""
