"""Tests of :mod:`analysis.results.records`: keys that cannot be keys are refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from analysis.errors import StoreValueError
from analysis.results import EvalKey


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: EvalKey("a", "gpu", "c", 0), r"'evaluator' .*one of .*got 'gpu'"),
        (lambda: EvalKey("", "supernet", "c", 0), r"'arch_hash' must be a non-empty .*got ''"),
        (lambda: EvalKey("a", "supernet", "c", 1.5), r"'seed' .*integer; got float 1.5"),
        (lambda: EvalKey("a", "supernet", "c", 2**64), r"fit in 64 bits; got 1844"),
    ],
)
def test_bad_keys(make: Callable[[], EvalKey], match: str) -> None:
    with pytest.raises(StoreValueError, match=match):
        make()


def test_a_numpy_seed_becomes_a_plain_int() -> None:
    import numpy as np

    k = EvalKey("a", "supernet", "c", np.int64(7))
    assert type(k.seed) is int and k == EvalKey("a", "supernet", "c", 7)
    assert hash(k) == hash(EvalKey("a", "supernet", "c", 7))
