"""Issue 6, item 8: a run directory is never silently overwritten by another config's run.

Two guards, each tried with the config of another run: the results store's ``register_run``
(a run name is bound to one config for good) and the supernet run directory's
:func:`analysis.runs.check_run_config` (its ``config.json``), directly, through
:func:`analysis.runs.supernet_run` and through ``dagrank supernet train``. Each must refuse
with a message that names both configs, and leave every stored byte as it was.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from analysis.errors import RunConflictError
from analysis.results import SQLiteStore, hash_config
from analysis.runs import check_run_config, supernet_run
from tests.reliability.conftest import put, tiny_config

CONFIG = {"budget": 10, "method": "bo", "lr": 0.1, "seed": 0}
OTHER = {**CONFIG, "budget": 20, "lr": 0.05}


def _runs_table(path: Path) -> list[tuple[str, ...]]:
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT * FROM runs ORDER BY name").fetchall()
    finally:
        con.close()


def test_register_run_with_another_config_refuses_and_keeps_every_row(run_dir: Path) -> None:
    path = run_dir / "results.sqlite"
    with SQLiteStore(path) as store:
        store.register_run("exp", CONFIG)
        for i in range(5):
            put(store, f"a{i}", i / 10)
        before = store.records()
    runs_before = _runs_table(path)

    with SQLiteStore(path) as store:  # the next job, started on the same run directory
        with pytest.raises(RunConflictError) as caught:
            store.register_run("exp", OTHER)
        message = str(caught.value)
        assert hash_config(CONFIG) not in message  # the differing keys, not two hashes
        assert "(stored != given: budget: 10 != 20; lr: 0.1 != 0.05)" in message
        assert "the results already stored for 'exp' are intact" in message
        assert store.records() == before  # every row, field for field
        assert store.run_config("exp") == CONFIG
        store.register_run("exp", dict(reversed(list(CONFIG.items()))))  # same config: resumes
        assert len(store.records()) == len(before) == 5
    assert _runs_table(path) == runs_before  # not even the registration time changed


def _snapshot(run: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(run.iterdir())}


@pytest.fixture
def supernet_run_dir(run_dir: Path) -> Path:
    """A supernet run directory as a finished run leaves it (contents beside the config)."""
    (run_dir / "config.json").write_text(tiny_config(2).to_json())
    (run_dir / "supernet.pt").write_bytes(b"the trained supernet")
    (run_dir / "history.csv").write_text("epoch,val_acc\n0,0.5\n1,0.6\n")
    (run_dir / "ranking.csv").write_text("rank,log_probability\n1,-3.5\n")
    return run_dir


def test_check_run_config_refuses_another_config_and_touches_nothing(
    supernet_run_dir: Path,
) -> None:
    run = supernet_run_dir
    before = _snapshot(run)
    other = tiny_config(3).replace(channels=8)

    with pytest.raises(RunConflictError) as caught:
        check_run_config(run, other)
    message = str(caught.value)
    assert str(run / "config.json") in message and "holds a different config" in message
    assert "(in the run != asked: channels: 4 != 8; epochs: 2 != 3)" in message
    with pytest.raises(RunConflictError, match=r"channels: 4 != 8; epochs: 2 != 3"):
        supernet_run(run, other, progress=False)  # the job itself refuses before anything
    assert _snapshot(run) == before
    check_run_config(run, tiny_config(2))  # the run's own config: resuming is allowed

    (run / "config.json").write_text('{"epochs": "many"')  # a damaged config is not replaced
    before = _snapshot(run)
    with pytest.raises(RunConflictError, match=r"is not a readable supernet config"):
        check_run_config(run, tiny_config(2))
    assert _snapshot(run) == before

    with pytest.raises(RunConflictError, match=r"exists and is not a directory"):
        check_run_config(run / "history.csv", tiny_config(2))


def test_cli_refuses_another_config_in_a_run_directory(
    supernet_run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from scripts.cli import main

    run = supernet_run_dir
    other = tmp_path / "other.json"
    other.write_text(json.dumps(tiny_config(2).replace(seed=7).to_dict()))
    before = _snapshot(run)
    code = main(["supernet", "train", "--run", str(run), "--config", str(other), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("dagrank supernet train: error: ") and "seed: 1 != 7" in err
    assert _snapshot(run) == before
