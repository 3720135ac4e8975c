"""Fixtures shared by the packages' tests: built once per test session."""

from __future__ import annotations

import pytest

from dagspace import NASBENCH101_OPS, enumerate_space


@pytest.fixture(scope="session")
def nb101_space():
    """The labelled NAS-Bench-101 space (423,624 cells), enumerated once per session (its
    NAS-Bench-101 hashes, once computed by a test, are kept with it for the others)."""
    return enumerate_space(7, NASBENCH101_OPS, max_edges=9)
