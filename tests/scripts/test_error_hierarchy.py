"""Every error the toolkit raises on purpose derives from one root, so the CLI catches one type."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from dagspace.errors import DagrankError, InvalidSeedError
from dagspace.random import check_random_state
from scripts.cli import USER_ERRORS, main

PACKAGES = ("dagspace", "surrogate", "analysis", "scripts")


def _toolkit_exceptions() -> list[type[BaseException]]:
    found = []
    for package in PACKAGES:
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, f"{package}."):
            module = importlib.import_module(info.name)
            for _, obj in inspect.getmembers(module, inspect.isclass):
                if (
                    issubclass(obj, BaseException)
                    and not issubclass(obj, Warning)
                    and obj.__module__ == module.__name__
                ):
                    found.append(obj)
    return found


def test_every_error_class_of_every_package_derives_from_dagrank_error():
    errors = _toolkit_exceptions()
    assert len(errors) >= 30  # the hierarchy of four packages, not an empty walk
    stray = [f"{e.__module__}.{e.__qualname__}" for e in errors if not issubclass(e, DagrankError)]
    assert stray == []
    assert DagrankError in USER_ERRORS


@pytest.mark.parametrize("seed", [-1, 1.5, "7"])
def test_a_bad_seed_is_a_typed_error_that_is_still_a_value_or_type_error(seed):
    with pytest.raises(InvalidSeedError, match="The 'seed' must be") as info:
        check_random_state(seed)
    assert isinstance(info.value, (ValueError, TypeError))


def test_the_cli_reports_a_toolkit_error_in_one_line_with_exit_2(tmp_path, capsys):
    code = main(["space", "describe", str(tmp_path / "missing.npz")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("dagrank space describe: error: ")
