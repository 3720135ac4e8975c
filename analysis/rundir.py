"""The run directory's contract: what a job may write into, when, and who else may at the time.

A job (``supernet train``, ``supernet study``, ``validate``, ``trajectory``, ``compare``,
``analyze features``, ``demo``) writes only into a directory that is

* **new**: absent, or empty; or
* **a dagrank run**: it holds the marker :data:`MARKER` (``.dagrank-run``), the first file a
  job writes into a new directory. A run made before markers existed is recognised by its
  files: every entry is a name that a job writes (:data:`RUN_FILES`) and its ``config.json``
  or ``results.sqlite`` reads as one of a job's.

Anything else is refused (:class:`ForeignDirectoryError`, naming the files found) before any
work, so a job never overwrites a file it did not write.

**One job at a time.** :func:`hold` takes an advisory lock on the directory itself (``flock``
on the directory: a read-only finished run can be held, and read, too) and writes who holds
it (pid, host, job, since) to :data:`LOCK` (``.dagrank-lock``), removed at release. A second
job is refused (:class:`RunBusyError`) in one line that names the holder. The kernel releases
the lock when its holder ends, however it ends, so a ``.dagrank-lock`` that a killed job left
behind is stale: the next job takes over (with a warning). One that names another host is
refused, since its holder cannot be seen from here (remove it if no job runs there). A process
may hold a directory again while it holds it: the demo holds its run while validate,
trajectory and compare hold it in turn.

**A refused job changes nothing.** Every job checks its flags, configs and the run's stored
configs before its first write; a job that is refused, or fails, before writing a file of its
own leaves a new directory as it found it (its marker, and the directories it made, removed).

``plot`` and ``report`` hold nothing: they read the store read-only and write only their
plots and ``report.md``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fnmatch
import functools
import json
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from analysis.errors import ForeignDirectoryError, RunBusyError, RunDirectoryError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the holder file alone
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "LOCK",
    "MARKER",
    "RUN_FILES",
    "check_run_path",
    "hold",
    "holder",
    "is_run",
    "job",
    "set_aside",
]

MARKER = ".dagrank-run"
LOCK = ".dagrank-lock"
FORMAT = "dagrank-run/1"

# Every name a job writes into a run directory (fnmatch patterns). A directory that holds only
# these, and whose config.json or results.sqlite reads as a job's, is a run made before markers.
RUN_FILES = (
    MARKER, LOCK, "config.json", "config.json.epochs-*", "supernet.pt", "history.csv",
    "multinomials.csv", "multinomials.png", "multinomial_history.png", "space.npz",
    "space6.npz", "space6.png", "space-*.npz", "ranking.npz", "ranking.csv", "joint_topk.csv",
    "results.sqlite", "results.sqlite-*", "results.sqlite.*", "evaluations.csv",
    "summary.json", "summary.json.unreadable", "validation.csv", "estimators.csv",
    "validation.png", "trajectories.csv", "trajectory.png", "top*.csv", "compare.png",
    "tabular_curves.csv", "tabular_regret.csv", "tabular_compare.png", "premise.csv",
    "premise.png", "study.csv", "report.md", "pseudo_env", "supernets",
    ".*.*",  # an atomic write's temporary file, left by a killed job
)  # fmt: skip

_LOG = logging.getLogger("dagrank")
_F = TypeVar("_F", bound=Callable[..., Any])


def check_run_path(run: str | os.PathLike[str]) -> Path:
    """``run`` as a path; :class:`RunDirectoryError` for an empty name (an unset shell
    variable, which would make the current directory the run) or a path that is a file."""
    if not str(run).strip():
        raise RunDirectoryError(
            f"A run directory must be named (--run DIR); got {str(run)!r}, which would be the "
            "current directory."
        )
    path = Path(run)
    if path.exists() and not path.is_dir():
        raise RunDirectoryError(f"The run path {str(path)!r} exists and is not a directory.")
    return path


def _matches(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in RUN_FILES)


def _readable_as_run(run: Path) -> bool:
    """Whether a directory without a marker holds a job's config.json or results store."""
    from surrogate.config import config_from_dict

    config = run / "config.json"
    if config.is_file():
        with contextlib.suppress(Exception):
            config_from_dict(json.loads(config.read_text(encoding="utf-8")))
            return True
    store = run / "results.sqlite"
    if store.is_file() and store.stat().st_size > 0:
        from analysis.results import store_problem

        return store_problem(store) is None
    return False


def _kind(run: Path) -> str:
    """``"new"`` (empty), ``"run"`` (marked, or a run made before markers); else refuse."""
    names = sorted(p.name for p in run.iterdir())
    if MARKER in names:
        return "run"
    if not [n for n in names if n != LOCK]:
        return "new"
    foreign = [n for n in names if not _matches(n)]
    if not foreign and _readable_as_run(run):
        return "run"
    shown = foreign or names
    listed = ", ".join(shown[:6]) + (f" and {len(shown) - 6} more" if len(shown) > 6 else "")
    raise ForeignDirectoryError(
        f"{run} is neither empty nor a dagrank run (it has no {MARKER} marker); it holds "
        f"{listed}. A job writes only into a new or empty directory or a dagrank run, so that "
        "it never overwrites a file it did not write: use another run directory."
    )


def is_run(run: str | os.PathLike[str]) -> bool:
    """Whether ``run`` is a dagrank run directory (marked, or made before markers)."""
    run = Path(run)
    if not run.is_dir():
        return False
    try:
        return _kind(run) == "run"
    except ForeignDirectoryError:
        return False


def holder(run: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Who holds (or last held, if it was killed) ``run``: its ``.dagrank-lock``, or ``None``."""
    try:
        data = json.loads((Path(run) / LOCK).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _describe(info: dict[str, Any] | None) -> str:
    if info is None:
        return "another job (it has not yet said which)"
    return (
        f"`{info.get('job', '?')}` (pid {info.get('pid', '?')} on host "
        f"{info.get('host', '?')}, since {info.get('since', '?')})"
    )


# -- the lock ----------------------------------------------------------------------------------
_HELD: dict[tuple[int, int], int] = {}  # (device, inode) of each directory this process holds
_HELD_GUARD = threading.Lock()


def _open_dir(run: Path) -> int:
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    return os.open(run, flags)


def _try_lock(fd: int) -> bool:
    if fcntl is None:  # pragma: no cover
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _busy(run: Path) -> RunBusyError:
    return RunBusyError(
        f"{run} is held by {_describe(holder(run))}; one job at a time writes a run directory. "
        "Wait for it to end, or use another run directory."
    )


def _take_over_stale(run: Path) -> None:
    """Check a ``.dagrank-lock`` found while this process got the lock: stale (its holder
    ended) on this host, refused when it names another host."""
    info = holder(run)
    if not (run / LOCK).exists():
        return
    host = socket.gethostname()
    if info is not None and info.get("host") not in (None, host):
        raise RunBusyError(
            f"{run} is held by {_describe(info)}, which this host cannot check; if no job runs "
            f"there any more, remove {run / LOCK} and run again."
        )
    _LOG.warning("%s: taking over from %s, which ended without releasing it", run,
                 _describe(info))  # fmt: skip


def _write_json(path: Path, data: dict[str, Any]) -> None:
    from dagspace.io import atomic_write

    with atomic_write(path) as handle:
        json.dump(data, handle)
        handle.write("\n")


def _made_dirs(run: Path) -> list[Path]:
    """Make ``run`` (and missing parents); the directories made, deepest first."""
    missing = []
    for path in (run, *run.parents):
        if path.exists():
            break
        missing.append(path)
    run.mkdir(parents=True, exist_ok=True)
    return missing


def _remove_made(made: list[Path]) -> None:
    """Remove the directories this job made, deepest first, where they are still empty."""
    for path in made:
        with contextlib.suppress(OSError):
            path.rmdir()


def _undo(run: Path, made: list[Path]) -> None:
    """Leave a new directory as it was found when the job wrote nothing of its own there:
    remove its marker and the directories it made."""
    with contextlib.suppress(OSError):
        if {p.name for p in run.iterdir()} <= {MARKER, LOCK}:
            (run / MARKER).unlink(missing_ok=True)
            (run / LOCK).unlink(missing_ok=True)
            _remove_made(made)


@contextlib.contextmanager
def hold(run: str | os.PathLike[str], job: str) -> Iterator[Path]:
    """Hold the run directory ``run`` while the block runs, for ``job`` (its name in messages:
    ``"dagrank compare"``); see the module docstring.

    Raises:
        RunDirectoryError: ``run`` is empty or a file.
        ForeignDirectoryError: ``run`` holds files no job wrote.
        RunBusyError: another job holds ``run``.
    """
    run = check_run_path(run)
    made = _made_dirs(run)
    fd = _open_dir(run)
    stat = os.fstat(fd)
    key = (stat.st_dev, stat.st_ino)
    with _HELD_GUARD:
        again = key in _HELD
        if again:
            _HELD[key] += 1
    if again:  # this process holds it already: the outer hold writes and releases
        os.close(fd)
        try:
            yield run
        finally:
            with _HELD_GUARD:
                _HELD[key] -= 1
        return
    try:
        try:
            if not _try_lock(fd):
                raise _busy(run)
            kind = _kind(run)
            _take_over_stale(run)
        except RunDirectoryError:
            _remove_made(made)
            raise
        if kind == "new":  # the marker first: from now on the directory is a dagrank run
            _write_json(run / MARKER, {"format": FORMAT, "created": _now(), "by": job})
        with contextlib.suppress(OSError):  # a read-only finished run can still be read
            _write_json(run / LOCK, {"job": job, "pid": os.getpid(),
                                     "host": socket.gethostname(), "since": _now()})  # fmt: skip
        with _HELD_GUARD:
            _HELD[key] = 1
        done = False
        try:
            yield run
            done = True
        finally:
            with _HELD_GUARD:
                del _HELD[key]
            with contextlib.suppress(OSError):
                (run / LOCK).unlink(missing_ok=True)
            if not done and kind == "new":
                _undo(run, made)
    finally:
        os.close(fd)  # releases the lock


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def job(name: str) -> Callable[[_F], _F]:
    """Decorate a job whose first argument is its run directory: it runs holding it, at the
    jobs' intra-op thread count (:func:`surrogate.device.job_threads`: a run's numbers do not
    depend on the machine's cores)."""

    def decorate(fn: _F) -> _F:
        @functools.wraps(fn)
        def wrapper(run: str | os.PathLike[str], *args: Any, **kwargs: Any) -> Any:
            from surrogate.device import job_threads

            with hold(run, name) as path, job_threads():
                return fn(path, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def set_aside(run: str | os.PathLike[str]) -> Path | None:
    """Move the run directory ``run`` aside to ``<run>.old-<UTC time>`` (never deleted), so
    that a job starts it over (``--fresh``); returns where it went (``None``: no directory, or
    an empty one). Only a dagrank run is moved, and only when no job holds it.

    Raises:
        ForeignDirectoryError: ``run`` is not a dagrank run (it is left where it is).
        RunBusyError: another job holds it.
    """
    run = check_run_path(run)
    if not run.exists():
        return None
    fd = _open_dir(run)
    try:
        if not _try_lock(fd):
            raise _busy(run)
        if _kind(run) == "new":
            return None
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        aside, n = run.with_name(f"{run.name}.old-{stamp}"), 1
        while aside.exists():
            aside, n = run.with_name(f"{run.name}.old-{stamp}-{n}"), n + 1
        run.rename(aside)
        return aside
    finally:
        os.close(fd)
