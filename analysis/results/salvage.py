"""Damaged store files: a page cut short, salvage of every readable valid row, recovery."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import sqlite3
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis.errors import StoreCorruptError, StoreRecoveredWarning, StoreValueError
from analysis.results.records import EvalKey, EvalStatus, canonical_arch, check_text
from analysis.results.schema import RECORD_COLUMNS, create_schema
from analysis.results.transactions import sqlite_transaction

__all__: list[str] = []


@dataclass(frozen=True)
class _Salvage:
    evaluations: list[tuple[Any, ...]]  # rows in RECORD_COLUMNS order
    runs: list[tuple[Any, ...]]
    state: list[tuple[Any, ...]]
    issued: int | None  # the evaluations id sequence, when it could be read


def _salvage(damaged: Path) -> _Salvage:
    """Read every readable, valid row of ``damaged`` (from a scratch copy; it stays as it is)."""
    with tempfile.TemporaryDirectory(prefix="dagrank-salvage-") as scratch:
        copy = Path(scratch) / "damaged.sqlite"
        shutil.copyfile(damaged, copy)
        if Path(f"{damaged}-wal").exists():
            shutil.copyfile(f"{damaged}-wal", f"{copy}-wal")
        _drop_partial_page(copy)
        try:
            conn = sqlite3.connect(copy, isolation_level=None)
        except sqlite3.Error:
            return _Salvage([], [], [], None)
        try:
            try:  # read past a database size that the truncated file no longer has
                conn.execute("PRAGMA writable_schema = ON")
            except sqlite3.Error:
                return _Salvage([], [], [], None)
            issued = None
            with contextlib.suppress(sqlite3.Error, TypeError, ValueError):
                row = conn.execute(
                    "SELECT seq FROM sqlite_sequence WHERE name = 'evaluations'"
                ).fetchone()
                issued = None if row is None else int(row[0])
            evaluations = [
                row
                for row in (
                    _valid_evaluation(r) for r in _salvage_table(conn, "evaluations", issued)
                )
                if row is not None
            ]
            runs = [
                (r["name"], r["config_json"], r["config_hash"], r["created_at"])
                for r in _salvage_table(conn, "runs", None)
                if _valid_texts(r, ("name", "config_json", "config_hash", "created_at"))
                and _is_json(r["config_json"])
            ]
            state = [
                (r["name"], r["value_json"], r["updated_at"])
                for r in _salvage_table(conn, "state", None)
                if _valid_texts(r, ("name", "value_json", "updated_at"))
                and _is_json(r["value_json"])
            ]
        finally:
            conn.close()
    return _Salvage(_number_attempts(evaluations), runs, state, issued)


def _header_page_size(header: bytes) -> int | None:
    """The page size that a database file's 100-byte header states, or None if it is not one."""
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        return None
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        return None
    return page_size


def partial_page(path: Path) -> str | None:
    """What is wrong if ``path`` ends part-way through a page; None if it ends on a page edge."""
    try:
        with path.open("rb") as handle:
            page_size = _header_page_size(handle.read(100))
            size = handle.seek(0, os.SEEK_END)
    except OSError:
        return None  # SQLite itself will say what is wrong
    if page_size is None or size % page_size == 0:
        return None
    return (
        f"the file ends part-way through page {size // page_size + 1}: {size} bytes is not a "
        f"whole number of {page_size}-byte pages"
    )


def _drop_partial_page(path: Path) -> None:
    """Cut a file that ends mid-page back to whole pages.

    The missing rest of a partial page reads as zeros, and SQLite would return the cells it
    still points to as rows with fields cut short; without the page they are simply unreadable.
    """
    with path.open("r+b") as handle:
        page_size = _header_page_size(handle.read(100))
        if page_size is None:
            return
        size = handle.seek(0, os.SEEK_END)
        handle.truncate(size - size % page_size)


def _salvage_table(
    conn: sqlite3.Connection, table: str, upper: int | None, max_gap: int = 10_000
) -> list[dict[str, Any]]:
    """Every row of ``table`` that SQLite can still read, by rowid, skipping damaged pages.

    Scans forward until the first damaged page, backward likewise, then probes the rowids in
    between one at a time (up to ``upper``, or until ``max_gap`` rowids in a row are missing).
    """
    try:
        names = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
    except sqlite3.Error:
        return []
    if not names:
        return []
    select = f"SELECT rowid, * FROM {table}"
    rows: dict[int, tuple[Any, ...]] = {}

    def scan(order: str) -> tuple[int | None, bool]:
        last = None
        try:
            for row in conn.execute(f"{select} ORDER BY rowid {order}"):
                rows[row[0]] = row[1:]
                last = row[0]
        except sqlite3.Error:
            return last, False
        return last, True

    first_gap, complete = scan("ASC")
    if not complete:
        end, _ = scan("DESC")
        rowid = 0 if first_gap is None else first_gap
        stop = end if end is not None and end > rowid else upper
        misses = 0
        while (stop is None and misses < max_gap) or (stop is not None and rowid < stop):
            rowid += 1
            try:
                row = conn.execute(f"{select} WHERE rowid = ?", (rowid,)).fetchone()
            except sqlite3.Error:
                row = None
            if row is None:
                misses += 1
            else:
                misses = 0
                rows[row[0]] = row[1:]
    return [dict(zip(names, rows[rowid], strict=False)) for rowid in sorted(rows)]


def _valid_texts(row: Mapping[str, Any], names: Sequence[str]) -> bool:
    return all(isinstance(row.get(name), str) and row[name] for name in names)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _valid_evaluation(row: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """``row`` (version 1 or 2 columns) as a version-2 row, or ``None`` if it looks damaged.

    SQLite keeps no checksums, so a damaged row can only be told by its contents: every field
    must have its type, texts must be non-empty, JSON must parse to the right shape, times must
    be ISO-8601 with an offset, and the times present must fit the status.
    """
    values = {name: row.get(name) for name in RECORD_COLUMNS}
    try:
        EvalKey(
            values["arch_hash"],
            values["evaluator"],
            values["evaluator_config_hash"],
            values["seed"],
        )
        check_text("run", values["run"])
        check_text("method", values["method"])
        canonical_arch(values["arch_json"])
        status = EvalStatus[values["status"]]
        metrics = json.loads(values["metrics_json"])
        times = {
            name: _parse_time(values[name]) for name in ("created_at", "started_at", "finished_at")
        }
    except (StoreValueError, KeyError, TypeError, ValueError):
        return None
    checks = (
        isinstance(values["id"], int) and values["id"] >= 1,
        values["attempt"] is None
        or (isinstance(values["attempt"], int) and values["attempt"] >= 1),
        isinstance(metrics, dict)
        and all(isinstance(v, (int, float)) or v is None for v in metrics.values()),
        values["error"] is None or isinstance(values["error"], str),
        values["host"] is None or (isinstance(values["host"], str) and bool(values["host"])),
        values["pid"] is None or (isinstance(values["pid"], int) and values["pid"] > 0),
        times["created_at"] is not None,
        status is not EvalStatus.RUNNING or times["started_at"] is not None,
        status.is_finished == (times["finished_at"] is not None),
    )
    if not all(checks):
        return None
    return tuple(values[name] for name in RECORD_COLUMNS)


def _parse_time(text: Any) -> dt.datetime | None:
    """``None`` for ``None``; an aware datetime for ISO-8601 text with an offset; else raises."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise TypeError(f"expected ISO-8601 text, got {type(text).__name__}")
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"expected a UTC offset in {text!r}")
    return moment


def _number_attempts(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Give version-1 rows (attempt None) attempts per key in id order; drop duplicates."""
    index = {name: i for i, name in enumerate(RECORD_COLUMNS)}
    key_of = [index[name] for name in ("arch_hash", "evaluator", "evaluator_config_hash", "seed")]
    taken: dict[tuple[Any, ...], set[int]] = {}
    out = []
    for row in sorted(rows, key=lambda r: r[index["id"]]):
        key = tuple(row[i] for i in key_of)
        used = taken.setdefault(key, set())
        attempt = row[index["attempt"]]
        if attempt is None:
            attempt = max(used, default=0) + 1
        if attempt in used:
            continue
        used.add(attempt)
        row = list(row)
        row[index["attempt"]] = attempt
        out.append(tuple(row))
    return out


def _write_salvage(path: Path, salvage: _Salvage) -> None:
    """Create a fresh version-2 store at ``path`` holding the salvaged rows."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:

        def fill(conn: sqlite3.Connection) -> None:
            create_schema(conn)
            conn.executemany(
                f"INSERT INTO evaluations ({', '.join(RECORD_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(RECORD_COLUMNS))})",
                salvage.evaluations,
            )
            conn.executemany("INSERT OR IGNORE INTO runs VALUES (?, ?, ?, ?)", salvage.runs)
            conn.executemany("INSERT OR IGNORE INTO state VALUES (?, ?, ?)", salvage.state)
            if salvage.issued is not None:  # never hand out an id the damaged file had issued
                updated = conn.execute(
                    "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'evaluations'",
                    (salvage.issued,),
                ).rowcount
                if not updated:
                    conn.execute(
                        "INSERT INTO sqlite_sequence (name, seq) VALUES ('evaluations', ?)",
                        (salvage.issued,),
                    )

        sqlite_transaction(conn, fill, write=True)
    finally:
        conn.close()


def recover_damaged(path: Path, problem: str) -> None:
    """Move the damaged store ``path`` aside, salvage its records into a fresh store there, and
    warn (:class:`StoreRecoveredWarning`, pointing at the caller of the store's method)."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while aside.exists():
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        n += 1
    try:
        os.rename(path, aside)
        for suffix in ("-wal", "-shm"):  # the journal belongs with its database
            sidecar = Path(f"{path}{suffix}")
            if sidecar.exists():
                os.rename(sidecar, f"{aside}{suffix}")
    except OSError as err:
        raise StoreCorruptError(
            f"The results store {path} is damaged ({problem}) and could not be moved "
            f"aside to {aside} ({err}); nothing was changed."
        ) from err
    fresh = path.with_name(f"{path.name}.recovering-{stamp}")
    try:
        salvage = _salvage(aside)
        _write_salvage(fresh, salvage)
        os.rename(fresh, path)
    except (OSError, sqlite3.Error) as err:
        with contextlib.suppress(OSError):
            os.unlink(fresh)
        raise StoreCorruptError(
            f"The results store {path} was damaged ({problem}) and moved aside to "
            f"{aside} (kept), but recovering its records failed ({err})."
        ) from err
    issued = f" of the {salvage.issued} ids issued" if salvage.issued is not None else ""
    warnings.warn(
        f"The results store {path} was damaged ({problem}). It was moved to {aside} "
        f"(kept, not deleted), and {len(salvage.evaluations)} evaluation records{issued}, "
        f"{len(salvage.runs)} runs and {len(salvage.state)} state entries were recovered "
        f"into a fresh store at {path}, which accepts new results.",
        StoreRecoveredWarning,
        stacklevel=5,  # recover_damaged, _open, _transact, the store's method, its caller
    )
