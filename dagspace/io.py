"""Atomic file output for every package: write a temporary file beside the target, flush, fsync,
rename, fsync the directory. (It lives in dagspace, the package every other one may import.)

A reader, or a run that is interrupted (an exception, Ctrl-C, a full disk), sees either the old
complete file or the new complete one, never a partial file at the target path. Only a process
killed outright (``SIGKILL``, a power cut) can leave its hidden temporary file
(``.<name>.<random><suffix>``) beside the target; the target itself is still whole.

The file gets the mode that ``open()`` would have given it: an existing target keeps its mode,
a new one gets ``0o666`` less the process's umask (``mkstemp`` alone would make every file
``0o600``, unreadable to the rest of a shared lab directory).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import threading
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
    with _naming(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
        try:
            os.fchmod(fd, _target_mode(path))
        finally:
            os.close(fd)
    try:
        yield Path(tmp)
        with _naming(path):
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    _fsync_directory(path.parent)


@contextlib.contextmanager
def _naming(path: Path) -> Iterator[None]:
    """Re-raise an ``OSError`` about the hidden temporary file as one about ``path``, the file
    the caller asked for (``Permission denied: 'report.md'``, not ``'.report.md.x1y2'``)."""
    try:
        yield
    except OSError as err:
        if err.filename is None or Path(err.filename) == path:
            raise
        raise type(err)(err.errno, err.strerror, str(path)) from None


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **open_kwargs: object) -> Iterator[IO]:
    """Open a temporary file for writing (``"w"`` or ``"wb"``) that replaces ``path`` on success;
    ``open_kwargs`` go to :func:`open` (``newline=""`` for CSV, say)."""
    with atomic_path(path) as tmp, open(tmp, mode, **open_kwargs) as handle:
        yield handle
        handle.flush()


_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's umask (read by setting it and setting it back, under a lock)."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _target_mode(path: Path) -> int:
    """The permission bits a plain ``open(path, "w")`` would leave ``path`` with."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o666 & ~current_umask()


def _fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable, where directories can be opened (POSIX)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
