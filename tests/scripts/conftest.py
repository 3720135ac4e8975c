"""A smoke search run shared by the command-line tests (made once per session)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scripts.cli import main


@pytest.fixture(scope="session")
def search_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trajectory (6 epochs) and a compare run of the smoke preset in one run directory."""
    run = tmp_path_factory.mktemp("search") / "run"
    assert main(["trajectory", "--preset", "smoke", "--run", str(run), "--no-progress",
                 "--epochs", "6"]) == 0  # fmt: skip
    assert main(["compare", "--preset", "smoke", "--run", str(run), "--no-progress"]) == 0
    return run


@pytest.fixture
def run_copy(search_run: Path, tmp_path: Path) -> Path:
    """A private copy of :func:`search_run`, to damage."""
    return Path(shutil.copytree(search_run, tmp_path / "run"))
