"""NAS-Bench-101 files of the official format, written by the tests from the shared slice."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from analysis.nasbench_bench import build_nasbench_file
from dagspace import NASBENCH101_OPS, enumerate_space

SLICE = Path(__file__).resolve().parents[3] / "shared" / "data" / "nb101_slice_10k.json"
if not SLICE.exists():  # a worktree beside shared/, or the repository inside it
    SLICE = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb101_slice_10k.json"


@pytest.fixture(scope="session")
def slice_table() -> dict:
    if not SLICE.exists():
        pytest.skip(f"the shared NAS-Bench-101 slice is not at {SLICE}")
    return json.loads(SLICE.read_text())


def slice_values(table: dict, n: int) -> dict[str, np.ndarray]:
    """The slice's first ``n`` rows, column by column (its keys left out)."""
    return {k: np.asarray(v[:n]) for k, v in table.items() if k != "key"}


@pytest.fixture(scope="session")
def space4():
    return enumerate_space(4, NASBENCH101_OPS)  # 91 cells


@pytest.fixture(scope="session")
def space5():
    return enumerate_space(5, NASBENCH101_OPS)  # 2,559 cells


@pytest.fixture(scope="session")
def nb101_file(tmp_path_factory, slice_table, space4):
    """Every cell of the labelled 4-vertex space with the values of the slice's first rows, in
    the official format: 4 budgets x 3 repeats, records shuffled, vertices in random order."""
    n = len(space4)
    path = tmp_path_factory.mktemp("nb101") / "nasbench_small.tfrecord"
    return build_nasbench_file(path, space4, np.arange(n), slice_values(slice_table, n), seed=0)


@pytest.fixture(scope="session")
def nb101_file5(tmp_path_factory, slice_table, space5):
    """The same for every cell of the 5-vertex space, and the slice's values as a JSON table
    keyed by NAS-Bench-101 hash (the slice's own form)."""
    n = len(space5)
    values = slice_values(slice_table, n)
    folder = tmp_path_factory.mktemp("nb101-5")
    built = build_nasbench_file(folder / "nasbench5.tfrecord", space5, np.arange(n), values,
                                seed=1)  # fmt: skip
    table = {"key": built.hashes.tolist(), **{k: v.tolist() for k, v in values.items()}}
    (folder / "slice5.json").write_text(json.dumps(table))
    return built, folder / "slice5.json"
