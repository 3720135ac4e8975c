"""Issue 6, item 4: writes cut short leave every complete record and no partial file.

The results store is cut at many offsets (its main file, and its write-ahead log mid-frame); a
supernet checkpoint and a CSV export are interrupted half way through their write (Ctrl-C, a
full disk, SIGKILL). What must hold each time: every complete record (or the previous complete
file) is still there, the damage is set aside with a warning, and new writes work.
"""

from __future__ import annotations

import errno
import shutil
import signal
import sqlite3
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest

from analysis.errors import StoreRecoveredWarning
from analysis.results import EvalStatus, SQLiteStore
from tests.reliability.conftest import ARCH, fill, key, put, run_python, tiny_config, tiny_dataset

N = 60


def _page_size(path: Path) -> int:
    con = sqlite3.connect(path)
    try:
        return con.execute("PRAGMA page_size").fetchone()[0]
    finally:
        con.close()


def _pages_holding(data: bytes, marker: bytes, page_size: int) -> list[int]:
    """The (0-based) pages of ``data`` where ``marker`` occurs."""
    pages, at = [], data.find(marker)
    while at >= 0:
        pages.append(at // page_size)
        at = data.find(marker, at + 1)
    return pages


def _recovered_count(message: str) -> int:
    return int(message.split(" evaluation records")[0].rsplit(" ", 1)[1])


# -- the main file cut short -------------------------------------------------------------------

# Where to cut: the last byte missing, half of the last page, two whole pages, half way through
# the pages that hold the records, right before them (the schema, the run and the state whole),
# and inside the 100-byte header (nothing recoverable; still set aside, still a working store).
CUTS = ("last-byte", "mid-last-page", "two-pages", "mid-data", "before-data", "header-only")


def _cut_size(cut: str, size: int, page: int, first_data_page: int) -> int:
    pages = size // page
    return {
        "last-byte": size - 1,
        "mid-last-page": (pages - 1) * page + page // 2,
        "two-pages": (pages - 2) * page,
        "mid-data": (first_data_page + (pages - first_data_page) // 2) * page + page // 3,
        "before-data": first_data_page * page,
        "header-only": 60,
    }[cut]


@pytest.mark.parametrize("cut", CUTS)
def test_store_cut_short_keeps_every_complete_record(tmp_path: Path, cut: str) -> None:
    path = tmp_path / "results.sqlite"
    original = {r.id: r for r in fill(path, N)}
    data = path.read_bytes()
    page = _page_size(path)
    assert len(data) % page == 0
    first_data_page = min(_pages_holding(data, b'"m_arch-', page))
    size = _cut_size(cut, len(data), page, first_data_page)
    path.write_bytes(data[:size])  # a copy cut off mid-write
    whole_pages = size // page  # what SQLite can still read; a partial page is unverifiable

    # The oracle, from the bytes alone: a record is complete when its marker (its metric's
    # name) lies on a page that survived whole, and only then can it be recovered.
    def where(record_id: int) -> list[int]:
        return _pages_holding(data, f'"m_{original[record_id].arch_hash}"'.encode(), page)

    complete = {i for i in original if all(p < whole_pages for p in where(i))}
    possible = {i for i in original if any(p < whole_pages for p in where(i))}

    with pytest.warns(StoreRecoveredWarning, match=r"was damaged") as caught:
        store = SQLiteStore(path)
        recovered = store.records()
    message = str(caught[0].message)
    got = {r.id for r in recovered}
    assert _recovered_count(message) == len(recovered)
    assert complete <= got <= possible, (sorted(complete - got), sorted(got - possible))
    assert all(r == original[r.id] for r in recovered)  # exact, field for field
    (aside,) = tmp_path.glob("results.sqlite.corrupt-*")
    assert aside.read_bytes() == data[:size]  # the damaged file is kept as it was
    assert str(aside) in message
    if cut in ("before-data", "header-only"):
        assert got == set()
    else:
        assert got, "the cut left whole pages of records"
    if cut != "header-only":
        assert store.run_config("r") == {"budget": N, "marker": "run-marker"}
        assert store.get_state("random") == '{"marker": "state-marker"}'

    # ... and it accepts new writes, without reusing an id the damaged file had issued.
    new = put(store, "after-the-cut", 1.0)
    assert new.id == (N + 1 if cut != "header-only" else 1)
    store.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # healthy now: no second recovery
        again = SQLiteStore(path)
        assert len(again.records()) == len(recovered) + 1
        again.close()
    print(f"\n[{cut}] cut at {size} of {len(data)} bytes: {len(got)} of {N} records recovered")


# -- the write-ahead log cut mid-frame ---------------------------------------------------------

WAL_HEADER = 32
FRAME_HEADER = 24


def _store_with_a_long_wal(path: Path) -> tuple[SQLiteStore, list[tuple[int, list[Any]]]]:
    """A store whose last 20 evaluations (40 commits) sit only in its WAL.

    Returns the open store and, after every commit, (the WAL's size, the records then).
    """
    store = SQLiteStore(path)
    store.register_run("r", {"budget": 20})
    store.close()  # the schema and the run are checkpointed into the main file
    store = SQLiteStore(path)
    store.records()  # opens the connection
    store._conn.execute("PRAGMA wal_autocheckpoint = 0")  # keep every commit in the WAL
    wal = Path(f"{path}-wal")
    history = [(wal.stat().st_size, [])]
    for i in range(20):
        got = store.claim(key(f"w{i:02d}"), run="r", method="random", arch_json=ARCH)
        history.append((wal.stat().st_size, store.records()))
        store.finish(got.record.id, EvalStatus.COMPLETE, {"value": float(i)})
        history.append((wal.stat().st_size, store.records()))
    sizes = [size for size, _ in history]
    assert sizes == sorted(sizes) and len(set(sizes[1:])) == len(sizes) - 1  # it only grew
    return store, history


@pytest.mark.parametrize("damage", ["truncate", "zero-fill"])
def test_wal_cut_mid_frame_keeps_every_committed_transaction(tmp_path: Path, damage: str) -> None:
    source = tmp_path / "live" / "results.sqlite"
    source.parent.mkdir()
    store, history = _store_with_a_long_wal(source)
    page = _page_size(source)
    frame = FRAME_HEADER + page
    wal = Path(f"{source}-wal").read_bytes()
    # Cuts: inside the WAL header, then part-way into a frame after several commits.
    cuts = [WAL_HEADER // 2, *(history[k][0] + frame // 3 for k in (1, 7, 20, 33, 39))]
    cuts.append(len(wal) - 1)
    counts = []
    for n, cut in enumerate(cuts):
        copy = tmp_path / f"copy{n}" / "results.sqlite"
        copy.parent.mkdir()
        shutil.copyfile(source, copy)  # the main file as the crash left it (no -shm: rebuilt)
        torn = wal[:cut] if damage == "truncate" else wal[:cut] + bytes(len(wal) - cut)
        Path(f"{copy}-wal").write_bytes(torn)
        # What must come back: the state after the last commit that is whole in the WAL.
        expected = [records for size, records in history if size <= cut]
        expected = expected[-1] if expected else []  # a WAL without its header counts for none
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a torn WAL tail is normal, not damage to recover
            reopened = SQLiteStore(copy)
            assert reopened.records() == expected, f"cut at {cut}"
            new = put(reopened, "after-the-crash", 1.0)  # accepts new writes
            assert new.id == max((r.id for r in expected), default=0) + 1
            assert len(reopened.records()) == len(expected) + 1
            reopened.close()
        counts.append(len(expected))
    store.close()
    assert counts == sorted(counts) and counts[0] == 0 and counts[-1] == 20
    print(f"\n[{damage}] WAL of {len(wal)} bytes cut at {cuts}: records kept {counts}")


# -- a checkpoint interrupted mid-write --------------------------------------------------------


class _Interrupted(Exception):
    pass


def _open_that_fails_half_way(real_open: Any, raise_: BaseException, state: dict[str, int]):
    """An ``open`` whose files write half of what they are given, then raise ``raise_``."""

    class HalfWriter:
        def __init__(self, handle: Any) -> None:
            self._handle = handle

        def write(self, data: Any) -> int:
            chunk = bytes(data) if not isinstance(data, str) else data
            self._handle.write(chunk[: len(chunk) // 2])
            self._handle.flush()
            state["interrupted"] += 1
            raise raise_

        def __getattr__(self, name: str) -> Any:
            return getattr(self._handle, name)

        def __enter__(self) -> HalfWriter:
            return self

        def __exit__(self, *exc: object) -> None:
            self._handle.close()

    def fake_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = real_open(file, mode, *args, **kwargs)
        return HalfWriter(handle) if "w" in mode else handle

    return fake_open


@pytest.mark.parametrize(
    "interruption",
    [KeyboardInterrupt(), OSError(errno.ENOSPC, "No space left on device")],
    ids=["ctrl-c", "disk-full"],
)
def test_checkpoint_interrupted_mid_write_keeps_the_previous_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interruption: BaseException
) -> None:
    import builtins

    import dagspace.io
    from surrogate.errors import TrainingError
    from surrogate.training import train_supernet

    checkpoint = tmp_path / "supernet.pt"
    dataset = tiny_dataset()
    config = tiny_config(2)
    state = {"interrupted": 0}
    saved: list[bytes] = []
    first_epoch = []

    def after_epoch(record: Any) -> None:  # runs once the epoch's checkpoint is written
        saved.append(checkpoint.read_bytes())
        first_epoch.append(record)
        fake = _open_that_fails_half_way(builtins.open, interruption, state)
        monkeypatch.setattr(dagspace.io, "open", fake, raising=False)  # epoch 2's save fails

    expected = KeyboardInterrupt if isinstance(interruption, KeyboardInterrupt) else TrainingError
    with pytest.raises(expected) as caught:
        train_supernet(
            config, dataset, checkpoint_path=checkpoint, progress=False, callback=after_epoch
        )
    monkeypatch.undo()
    assert len(saved) == 1 and state["interrupted"] >= 1  # epoch 2's save was cut half way
    if expected is TrainingError:
        assert "No space left on device" in str(caught.value)
        assert "previous checkpoint there, if any, is intact" in str(caught.value)
    assert checkpoint.read_bytes() == saved[0]  # the epoch-1 checkpoint, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["supernet.pt"]  # no partial file

    resumed = train_supernet(config, dataset, checkpoint_path=checkpoint, progress=False)
    assert resumed.resumed_epochs == 1
    assert resumed.history[0].val_loss == first_epoch[0].val_loss  # the same epoch 1
    assert (resumed.history[0].op_probabilities == first_epoch[0].op_probabilities).all()
    assert len(resumed.history) == 3  # 2 epochs and 1 round of the multinomials' fit


def test_atomic_write_killed_mid_write_leaves_the_old_file(tmp_path: Path) -> None:
    """SIGKILL half way through a write: the target keeps the old complete contents."""
    target = tmp_path / "history.csv"
    old = "epoch,val_acc\n" + "".join(f"{i},0.{i}\n" for i in range(10))
    target.write_text(old)
    code = textwrap.dedent(
        f"""
        import os, signal
        from dagspace.io import atomic_write
        with atomic_write({str(target)!r}, newline="") as handle:
            handle.write("epoch,val_acc\\n" + "1,0.5\\n" * 5000)
            handle.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    done = run_python(code)
    assert done.returncode == -signal.SIGKILL
    assert target.read_text() == old
    leftovers = [p.name for p in tmp_path.iterdir() if p != target]
    # Only a process killed outright leaves its hidden temporary file (never at the target).
    assert len(leftovers) == 1 and leftovers[0].startswith(".history.csv.")


def test_atomic_write_raising_inside_the_block_leaves_the_old_file(tmp_path: Path) -> None:
    from dagspace.io import atomic_write

    target = tmp_path / "ranking.csv"
    target.write_text("old\n")
    with pytest.raises(_Interrupted):
        with atomic_write(target, newline="") as handle:
            handle.write("new,half\n" * 1000)
            handle.flush()
            raise _Interrupted
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["ranking.csv"]


# -- a CSV export interrupted mid-write --------------------------------------------------------


def test_csv_export_interrupted_mid_write_keeps_the_previous_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pandas as pd

    store = SQLiteStore(tmp_path / "results.sqlite")
    for i in range(5):
        put(store, f"a{i}", i / 10)
    out = tmp_path / "exports" / "evaluations.csv"
    out.parent.mkdir()
    store.export_csv(out)
    before = out.read_bytes()
    assert len(pd.read_csv(out)) == 5
    for i in range(5, 12):
        put(store, f"a{i}", i / 10)

    real_to_csv = pd.DataFrame.to_csv
    calls = []

    def half_then_fail(self: pd.DataFrame, handle: Any, **kwargs: Any) -> None:
        text = real_to_csv(self, None, **kwargs)
        handle.write(text[: len(text) // 2])
        handle.flush()
        calls.append(len(text))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        store.export_csv(out)
    monkeypatch.undo()
    assert len(calls) == 1
    assert out.read_bytes() == before  # the old export, whole
    assert [p.name for p in out.parent.iterdir()] == ["evaluations.csv"]  # no partial file

    store.export_csv(out)  # and the next export goes through
    assert len(pd.read_csv(out)) == len(store.records()) == 12
    store.close()


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_atomic_write_respects_the_umask(tmp_path: Path, umask: int) -> None:
    import os
    import stat

    from dagspace.io import atomic_write

    old = os.umask(umask)
    try:
        with atomic_write(tmp_path / "new.txt") as handle:
            handle.write("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o666 & ~umask


def test_atomic_write_keeps_an_existing_files_mode(tmp_path: Path) -> None:
    import os
    import stat

    from dagspace.io import atomic_write

    target = tmp_path / "shared.csv"
    target.write_text("old")
    os.chmod(target, 0o664)
    with atomic_write(target) as handle:
        handle.write("new")
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o664


def test_space_enumerate_file_is_readable_by_the_group(tmp_path: Path) -> None:
    import os
    import stat

    from scripts.cli import main

    old = os.umask(0o022)
    try:
        assert (
            main(["space", "enumerate", "--vertices", "4", "--out", str(tmp_path / "x.npz")]) == 0
        )
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x.npz").stat().st_mode) == 0o644
