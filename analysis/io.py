"""Atomic file output (re-exported from :mod:`dagspace.io`, the lowest package)."""

from dagspace.io import atomic_path, atomic_write

__all__ = ["atomic_path", "atomic_write"]
