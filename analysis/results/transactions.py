"""SQLite transactions: one call, one transaction; retries while the file is locked; error kinds."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

try:  # POSIX only; without it, opening (and recovering) a store is not serialised across processes
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__: list[str] = []

_T = TypeVar("_T")

SQLITE_BUSY = 5
SQLITE_LOCKED = 6
SQLITE_IOERR = 10
SQLITE_CORRUPT = 11
SQLITE_FULL = 13
SQLITE_NOTADB = 26


def sqlite_transaction(
    conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], _T], *, write: bool
) -> _T:
    conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        result = fn(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
    return result


def retry_busy(fn: Callable[[], _T], timeout: float) -> _T:
    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        try:
            return fn()
        except sqlite3.Error as err:
            if not is_busy(err) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(2 * delay, 0.25)


def error_code(err: sqlite3.Error) -> int | None:
    code = getattr(err, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF  # the primary code of an extended one


def is_busy(err: sqlite3.Error) -> bool:
    return _is_kind(err, (SQLITE_BUSY, SQLITE_LOCKED), ("locked", "busy"))


def is_corrupt(err: sqlite3.Error) -> bool:
    return _is_kind(err, (SQLITE_CORRUPT, SQLITE_NOTADB), ("malformed", "not a database"))


def _is_kind(err: sqlite3.Error, codes: tuple[int, ...], words: tuple[str, ...]) -> bool:
    """Whether ``err`` has one of the primary result ``codes``; by its message where the
    sqlite3 module gives no code."""
    code = error_code(err)
    if code is not None:
        return code in codes
    text = str(err).lower()
    return any(word in text for word in words)


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (a sidecar file) while opening the store."""
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
