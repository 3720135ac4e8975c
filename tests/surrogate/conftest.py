"""Fixtures shared by the surrogate tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import dagspace.cell as cell_module
from surrogate.ops import OPERATIONS


@pytest.fixture
def scratch_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Undo registrations: dagspace's set is copied, OPERATIONS restored after the test."""
    monkeypatch.setattr(cell_module, "_KNOWN_OPS", set(cell_module._KNOWN_OPS))
    before = dict(OPERATIONS)
    yield
    OPERATIONS.clear()
    OPERATIONS.update(before)
