"""Shared helpers of the reliability tests: small stores, a tiny supernet, subprocess runners."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from analysis.results import EvalKey, EvalRecord, EvalStatus, ResultsStore, SQLiteStore

REPO = Path(__file__).resolve().parents[2]
V1_FIXTURE = REPO / "tests" / "analysis" / "fixtures" / "results_v1.sqlite"

CELL = {
    "matrix": [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]],
    "ops": ["input", "conv3x3-bn-relu", "maxpool3x3", "output"],
}
ARCH = [CELL, CELL]


def key(name: str, *, seed: int = 0) -> EvalKey:
    return EvalKey(name, "standalone", "cfg", seed)


def put(store: ResultsStore, name: str, value: float, *, failed: bool = False) -> EvalRecord:
    """Claim ``name`` and finish it (two transactions, as a real worker does)."""
    got = store.claim(key(name), run="r", method="random", arch_json=ARCH)
    assert got.must_evaluate, got
    status = EvalStatus.FAILED if failed else EvalStatus.COMPLETE
    return store.finish(got.record.id, status, {f"m_{name}": value})


def fill(path: Path, n: int) -> list[EvalRecord]:
    """A closed store of ``n`` finished records (every tenth FAILED), a run and a state entry.

    Each record's metric is named after it (``m_arch-007``), a marker that appears nowhere else
    in the file: tests find a record's bytes with it.
    """
    store = SQLiteStore(path)
    store.register_run("r", {"budget": n, "marker": "run-marker"})
    store.set_state("random", '{"marker": "state-marker"}')
    for i in range(n):
        put(store, f"arch-{i:03d}", i / 100, failed=i % 10 == 9)
    records = store.records()
    store.close()
    assert not Path(f"{path}-wal").exists()  # checkpointed: the main file holds everything
    assert len(records) == n
    return records


def count_rows(path: Path) -> int:
    """Rows of ``evaluations``, read with the plain sqlite3 module (not through the store)."""
    import sqlite3

    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return con.execute("SELECT count(*) FROM evaluations").fetchone()[0]
    finally:
        con.close()


def run_python(code: str, *, env: dict[str, str] | None = None, timeout: float = 120) -> Any:
    """Run ``code`` in a fresh interpreter at the repository root; return the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# -- a supernet small enough to train in well under a second ----------------------------------


def tiny_config(epochs: int = 2) -> Any:
    from surrogate.config import SupernetConfig

    return SupernetConfig(
        dataset="random",
        vertices=4,
        cells=2,
        channels=4,
        epochs=epochs,
        batch_size=16,
        device="cpu",
        seed=1,
        arch_steps=20,  # one round of the multinomials' fit after the weights
        arch_samples=2,
        arch_batch=16,
    )


def tiny_dataset() -> Any:
    import torch

    from surrogate.data import Dataset, Split

    generator = torch.Generator().manual_seed(0)

    def split(n: int) -> Split:
        y = torch.randint(0, 3, (n,), generator=generator)
        x = torch.randn((n, 1, 4, 4), generator=generator) + y.float()[:, None, None, None]
        return Split(x, y)

    return Dataset("random", split(48), split(24), split(8), 3, (1, 4, 4))


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    path = tmp_path / "run"
    path.mkdir()
    return path
