"""Atomic file output for every package: write a temporary file beside the target, flush, fsync,
rename, fsync the directory. (It lives in dagspace, the package every other one may import.)

A reader, or a run that is interrupted (an exception, Ctrl-C, a full disk), sees either the old
complete file or the new complete one, never a partial file at the target path. Only a process
killed outright (``SIGKILL``, a power cut) can leave its hidden temporary file
(``.<name>.<random><suffix>``) beside the target; the target itself is still whole.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_path", "atomic_write"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename.

    On any error the temporary file is removed and an existing ``path`` is left untouched, so a
    reader sees either the old complete file or the new complete one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    _fsync_directory(path.parent)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **open_kwargs: object) -> Iterator[IO]:
    """Open a temporary file for writing (``"w"`` or ``"wb"``) that replaces ``path`` on success;
    ``open_kwargs`` go to :func:`open` (``newline=""`` for CSV, say)."""
    with atomic_path(path) as tmp, open(tmp, mode, **open_kwargs) as handle:
        yield handle
        handle.flush()


def _fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable, where directories can be opened (POSIX)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
