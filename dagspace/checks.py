"""Argument checks that every package shares, with one message for a bad parameter.

The message is scikit-learn's: ``The 'q' parameter of BayesianSearch must be an int >= 1; got 0.``
Each check takes the error class to raise, so that every package raises its own type
(:class:`~dagspace.strategies.StrategyError`, :class:`~surrogate.errors.ConfigError`, ...).
"""

from __future__ import annotations

import math
import numbers
from typing import NoReturn

import numpy as np

__all__ = ["check_float", "check_int", "fail", "is_int"]


def fail(error: type[Exception], owner: str, name: str, expected: str, got: object) -> NoReturn:
    """Raise ``error`` with the standard message for parameter ``name`` of ``owner``."""
    raise error(f"The {name!r} parameter of {owner} must be {expected}; got {got!r}.")


def is_int(value: object) -> bool:
    """Whether ``value`` is a Python or numpy integer (a bool is not)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_int(owner: str, name: str, value: object, low: int, error: type[Exception]) -> int:
    """``value`` as an ``int`` if it is an integer >= ``low``; otherwise raise ``error``."""
    if not is_int(value) or value < low:  # type: ignore[operator]
        fail(error, owner, name, f"an int >= {low}", value)
    return int(value)  # type: ignore[call-overload]


def check_float(
    owner: str,
    name: str,
    value: object,
    low: float,
    high: float,
    error: type[Exception],
    *,
    open_low: bool = True,
) -> float:
    """``value`` as a finite ``float`` in ``(low, high)`` (``[low, high)`` when not
    ``open_low``); otherwise raise ``error``."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    if ok:
        value = float(value)  # type: ignore[arg-type]
        ok = math.isfinite(value) and (value > low if open_low else value >= low) and value < high
    if not ok:
        left = "(" if open_low else "["
        fail(error, owner, name, f"a float in {left}{low}, {high})", value)
    return value  # type: ignore[return-value]
