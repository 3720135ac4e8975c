"""Space.load refuses files whose arrays are not distinct valid cells (each check named)."""

from __future__ import annotations

import numpy as np
import pytest

from dagspace import NASBENCH101_OPS, InvalidSpaceError, Space, enumerate_space
from scripts.cli import main


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("space") / "s.npz"
    enumerate_space(4, NASBENCH101_OPS).save(path)
    return path


def _rewrite(saved, tmp_path, **changes):
    with np.load(saved) as data:
        arrays = {name: data[name].copy() for name in data.files}
    for name, fn in changes.items():
        arrays[name] = fn(arrays[name])
    out = tmp_path / "bad.npz"
    np.savez(out, **arrays)
    return out


def _set(index, value):
    def change(array):
        array[index] = value
        return array

    return change


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        (
            {"matrices": _set((3, 2, 1), 1)},
            r"cell 3 has an edge 2 -> 1 on or below the diagonal .*strictly upper-triangular",
        ),
        ({"matrices": _set((3, 1, 1), 1)}, r"cell 3 has an edge 1 -> 1 on or below the diagonal"),
        ({"matrices": _set((5, 0, 1), 2)}, r"cell 5 holds 2 at row 0, column 1; expected 0 or 1"),
        ({"matrices": lambda m: m.astype(np.float32)}, r"must be 0/1 integers; got dtype float32"),
        ({"ops": _set((2, 1), 9)}, r"cell 2 has operation code 9 at vertex 1; expected -1"),
        ({"hashes": _set(7, None)}, r"cells \d+ and \d+ have the same hash"),
        ({"features": _set((4, 1), np.nan)}, r"feature '\w+' of cell 4 is nan; expected finite"),
        ({"features": _set((0, 0), np.inf)}, r"of cell 0 is inf"),
    ],
)
def test_load_refuses_arrays_that_are_not_cells(saved, tmp_path, changes, match):
    if "hashes" in changes:  # make cell 7 repeat cell 1's hash
        with np.load(saved) as data:
            first = data["hashes"][1]
        changes = {"hashes": _set(7, first)}
    bad = _rewrite(saved, tmp_path, **changes)
    with pytest.raises(InvalidSpaceError, match=match):
        Space.load(bad)


def test_a_valid_file_still_loads(saved):
    assert len(Space.load(saved)) == len(enumerate_space(4, NASBENCH101_OPS))


def test_describe_of_nan_features_is_one_line(saved, tmp_path, capsys):
    bad = _rewrite(saved, tmp_path, features=_set((4, 1), np.nan))
    assert main(["space", "describe", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is nan; expected finite values" in err


@pytest.mark.parametrize(
    ("hashes", "expected"),
    [
        (["aaaaaaaa0", "aaaaaaaa1", "b"], None),  # a shared 8-byte prefix is not a repeat
        (["aaaaaaaa0", "c", "aaaaaaaa1", "aaaaaaaa0"], (0, 3)),
        (["x", "y", "x"], (0, 2)),
        (["é", "ü", "é"], (0, 2)),  # not ASCII
        (["a", "b"], None),
    ],
)
def test_repeated_hash_against_a_set(hashes, expected):
    from dagspace.space import _repeated_hash

    assert _repeated_hash(np.asarray(hashes)) == expected
