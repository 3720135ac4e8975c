"""Lazy re-exports for a package's ``__init__`` (PEP 562): a name is imported on first use.

Every package of the toolkit re-exports its public names this way, so that ``import
dagspace.errors`` or the command line's ``--help`` loads neither numpy, torch nor matplotlib.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, Sequence[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package`` that import a name's module (``exports``:
    module -> the names it exports) the first time the name is asked for, and keep the name in
    the package's namespace.

    Usage, in a package's ``__init__.py``::

        _EXPORTS = {"dagspace.cell": ("CellSpec", "prune"), "dagspace.space": ("Space",)}
        __all__ = sorted(name for names in _EXPORTS.values() for name in names)
        __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
    """
    home = {name: module for module, names in exports.items() for name in names}
    names = sorted(home)

    def __getattr__(name: str) -> Any:
        if name not in home:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(names))

    return __getattr__, __dir__
