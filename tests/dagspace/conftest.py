"""Shared fixtures: the enumerated spaces are built once per test session."""

from __future__ import annotations

import numpy as np
import pytest

from dagspace import NASBENCH101_OPS, CellSpec, enumerate_space


@pytest.fixture(scope="session")
def space6():
    return enumerate_space(6)


@pytest.fixture(scope="session")
def space5_labelled():
    return enumerate_space(5, NASBENCH101_OPS)


def random_cell(rng: np.random.Generator, v: int, labelled: bool = True, p: float = 0.5):
    """A random upper-triangular cell (not necessarily pruned or valid)."""
    matrix = np.triu(rng.random((v, v)) < p, 1).astype(np.uint8)
    ops = None
    if labelled:
        ops = ["input", *rng.choice(NASBENCH101_OPS, v - 2).tolist(), "output"]
    return CellSpec(matrix, ops)
