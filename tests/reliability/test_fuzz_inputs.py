"""Issue 6, item 9: bad input, fuzzed, gets the toolkit's typed error and nothing else.

Hypothesis feeds garbage to every door that user input comes through: ``CellSpec`` (matrices of
random shapes, dtypes and values, NaN, strings, nested junk; ops lists of junk),
``CellSpec.from_json``, ``load_config`` (random TOML and JSON text, random tables) and
``config_from_dict``, ``load_dataset`` (bad names; ``.npz`` archives with missing keys, wrong
shapes and dtypes, NaN labels, cut short or pure garbage), and the ``dagrank`` command. Each
call must either succeed with a valid result or raise the toolkit's own error (a ``ValueError``
subclass from ``dagspace.errors`` or ``surrogate.errors``) with a message; a ``TypeError``,
``IndexError``, ``KeyError`` or anything else escaping from numpy or torch is a bug.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from dagspace.cell import NASBENCH101_OPS, CellSpec
from dagspace.errors import DagspaceError, InvalidCellError
from surrogate.config import SupernetConfig, config_from_dict, load_config
from surrogate.data import DATASETS, load_dataset
from surrogate.errors import ConfigError, DatasetError, SurrogateError
from tests.reliability.conftest import REPO


def fuzz(examples: int) -> Any:
    """Hypothesis settings of these tests: ``examples`` inputs, no per-example deadline."""
    return settings(
        max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )


# -- strategies ---------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.binary(max_size=6),
    st.sampled_from([0, 1, 0.5, math.nan, "1", "input", "output", *NASBENCH101_OPS]),
)
junk = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=4) | st.integers(), inner, max_size=3)
    ),
    max_leaves=16,
)
dtypes = st.one_of(
    hnp.boolean_dtypes(),
    hnp.integer_dtypes(),
    hnp.unsigned_integer_dtypes(),
    hnp.floating_dtypes(),
    hnp.complex_number_dtypes(),
    hnp.unicode_string_dtypes(max_len=3),
    hnp.datetime64_dtypes(),
)
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6)
random_arrays = hnp.arrays(dtypes, shapes)


@st.composite
def zero_one_matrices(draw: Any) -> Any:
    """Square matrices that are nearly valid: 0/1 in any triangle, with a stray value or not."""
    v = draw(st.integers(0, 8))
    values = st.sampled_from([0, 1]) if draw(st.booleans()) else st.sampled_from([0, 1, 2, -1])
    rows = [[draw(values) for _ in range(v)] for _ in range(v)]
    as_array = draw(st.booleans())
    dtype = draw(st.sampled_from([np.uint8, np.int64, np.float32, np.float64, bool]))
    if as_array and draw(st.booleans()) and v:
        rows = np.triu(np.array(rows), 1).astype(dtype)
        if dtype in (np.float32, np.float64) and draw(st.booleans()):
            rows[0, -1] = np.nan
    return rows


matrices = st.one_of(zero_one_matrices(), random_arrays, junk)
op_names = st.sampled_from(["input", "output", *NASBENCH101_OPS, "conv5x5", "", "INPUT"])
ops_lists = st.one_of(
    st.none(),
    junk,
    st.lists(op_names, max_size=9),
    st.lists(st.one_of(op_names, scalars, st.just(["x"]), st.just(np.array([1, 2]))), max_size=9),
    st.builds(lambda v: ["input", *["maxpool3x3"] * v, "output"], st.integers(0, 6)),
)


def _check_typed(err: BaseException, *types: type[BaseException]) -> None:
    """``err`` must be one of the toolkit's ``types`` (all ValueError), with a message."""
    assert isinstance(err, types) and isinstance(err, ValueError), (
        f"{type(err).__module__}.{type(err).__name__} escaped: {err!r}"
    )
    assert str(err).strip(), f"{type(err).__name__} without a message"


# -- CellSpec -----------------------------------------------------------------------------------


@fuzz(300)
@given(matrix=matrices, ops=ops_lists)
@example(matrix=[[0, 1, 1], [0, 0, 1], [0, 0, 0]], ops=["input", ["x"], "output"])
@example(matrix=[[0, 1], [0, 0]], ops=[np.array([1, 2]), "output"])
@example(matrix=[[0, 1], [1, 0]], ops=None)
@example(matrix=[[0, 2**80], [0, 0]], ops=None)
@example(matrix=[[0, math.nan], [0, 0]], ops=None)
@example(matrix=[[0, 1], [0]], ops=None)
@example(matrix="[[0, 1], [0, 0]]", ops=None)
def test_cellspec_accepts_a_valid_cell_or_raises_invalid_cell_error(matrix: Any, ops: Any) -> None:
    try:
        spec = CellSpec(matrix, ops)
    except Exception as err:
        _check_typed(err, InvalidCellError)
        return
    v = spec.num_vertices
    assert spec.matrix.dtype == np.uint8 and spec.matrix.shape == (v, v) and v >= 2
    assert not spec.matrix.flags.writeable
    assert not np.tril(spec.matrix).any() and set(np.unique(spec.matrix)) <= {0, 1}
    if spec.ops is not None:
        assert len(spec.ops) == v and all(isinstance(op, str) for op in spec.ops)
    assert CellSpec.from_json(spec.to_json()) == spec  # what it accepts round-trips


json_texts = st.one_of(
    st.text(max_size=60),
    st.binary(max_size=60),
    junk.map(lambda value: json.dumps(value, default=repr)),
    st.fixed_dictionaries({"matrix": matrices.filter(lambda m: not isinstance(m, np.ndarray))}).map(
        lambda d: json.dumps(d, default=repr)
    ),
    st.fixed_dictionaries({"matrix": junk, "ops": junk}).map(lambda d: json.dumps(d, default=repr)),
)


@fuzz(300)
@given(text=json_texts)
@example(text="[" * 100_000 + "]" * 100_000)  # nesting deeper than the parser's recursion
@example(text=b"\xff\xfe\x00")
@example(text='{"matrix": [[0, 1], [0, 0]], "ops": ["input", "output"], "7": 1}')
@example(text='{"matrix": [[0, 1], [0, 0]], "ops": [["input"], "output"]}')
@example(text='{"matrix": [[0, NaN], [0, 0]]}')
@example(text="null")
def test_cellspec_from_json_of_random_text(text: str | bytes) -> None:
    try:
        spec = CellSpec.from_json(text)
    except Exception as err:
        _check_typed(err, InvalidCellError)
        return
    assert CellSpec.from_json(spec.to_json()) == spec


@fuzz(60)
@given(data=junk)
@example(data={"matrix": [[0, 1], [0, 0]], 1: 2, "x": 3})
def test_cellspec_from_dict_of_junk(data: Any) -> None:
    try:
        CellSpec.from_dict(data)
    except Exception as err:
        _check_typed(err, InvalidCellError)


# -- configs ------------------------------------------------------------------------------------

FIELDS = sorted(SupernetConfig.__dataclass_fields__)
config_keys = st.one_of(st.sampled_from([*FIELDS, "preset"]), st.text(max_size=8))
config_values = st.one_of(
    junk,
    st.integers(min_value=-3, max_value=70),
    st.sampled_from(["hard", "soft", "cpu", "cuda:1", "auto", "smoke", "digits", 10**400]),
    st.lists(op_names, max_size=4),
)
config_tables = st.dictionaries(config_keys, config_values, max_size=6)


def _toml_value(value: Any) -> str:
    """A TOML literal for the JSON-like ``value`` (the stdlib reads TOML but cannot write it)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else ("inf" if value > 0 else "-inf")
            if math.isinf(value)
            else repr(value)
        )
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        items = (f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    return json.dumps(repr(value))


def _toml(table: dict[str, Any]) -> str:
    return "".join(
        f"{json.dumps(str(k))} = {_toml_value(v)}\n" for k, v in table.items() if v is not None
    )


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@fuzz(200)
@given(data=config_tables)
@example(data={1: 2})
@example(data={"preset": []})
@example(data={"weight_lr": 10**400})
@example(data={"learn_topology": False, "cells": 1, "vertices": 3, "topology": [[[0, 1], [0]]]})
@example(data={"learn_topology": False, "cells": 1, "vertices": 3, "topology": [[[0, 1, 1]] * 3]})
def test_config_from_random_tables(data: dict[Any, Any]) -> None:
    try:
        config = config_from_dict(data)
    except Exception as err:
        _check_typed(err, ConfigError)
        return
    assert config_from_dict(config.to_dict()) == config


config_texts = st.one_of(
    st.text(max_size=80),
    st.binary(max_size=80),
    config_tables.map(lambda d: json.dumps(d, default=repr)),
    config_tables.map(lambda d: _toml({str(k): v for k, v in d.items()})),
)


@fuzz(200)
@given(text=config_texts, suffix=st.sampled_from([".toml", ".json"]))
@example(text="[" * 100_000 + "]" * 100_000, suffix=".json")
@example(text="a = " + "[" * 100_000 + "]" * 100_000, suffix=".toml")
@example(text='{"weight_lr": 1' + "0" * 500 + "}", suffix=".json")
@example(text='{"seed": 1e999}', suffix=".json")
@example(text="epochs = 1979-05-27T07:32:00Z", suffix=".toml")
@example(text=b"\xff\xfe\xfd", suffix=".json")
def test_load_config_of_random_text(scratch: Path, text: str | bytes, suffix: str) -> None:
    path = scratch / f"config{suffix}"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    try:
        config = load_config(path)
    except Exception as err:
        _check_typed(err, ConfigError)
        return
    assert isinstance(config, SupernetConfig)


def test_load_config_of_bad_paths(scratch: Path) -> None:
    for path, match in [
        (scratch / "missing.toml", r"Cannot read the config file"),
        (scratch / "config.yaml", r"must end in \.toml or \.json"),
        (scratch, r"must end in \.toml or \.json"),
    ]:
        with pytest.raises(ConfigError, match=match):
            load_config(path)
    folder = scratch / "folder.toml"
    folder.mkdir(exist_ok=True)
    with pytest.raises(ConfigError, match=r"Cannot read the config file .*folder\.toml"):
        load_config(folder)


# -- datasets -----------------------------------------------------------------------------------


@fuzz(100)
@given(name=st.one_of(st.text(max_size=20), st.text(max_size=20).map("npz:".__add__), junk))
@example(name="npz:~nosuchuser_dagrank/x.npz")
@example(name="~nosuchuser_dagrank/x.npz")
@example(name="npz:a\x00b")
@example(name="npz:")
@example(name="mnist")  # needs root
@example(name="cifar10")
def test_load_dataset_with_bad_names(name: Any) -> None:
    assume(name not in DATASETS or name in ("mnist", "fashion-mnist", "cifar10"))
    with pytest.raises(Exception) as caught:
        load_dataset(name)
    _check_typed(caught.value, DatasetError)


def _npz_bytes(arrays: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _labels(n: int) -> Any:
    return hnp.arrays(dtypes, st.just((n,)))


NPZ_KINDS = ("random", "almost", "keys", "cut", "garbage", "npy", "object")


@st.composite
def npz_files(draw: Any, kinds: tuple[str, ...] = NPZ_KINDS) -> bytes:
    """Archives that are wrong in one or more ways, or not archives at all."""
    kind = draw(st.sampled_from(kinds))
    if kind == "garbage":
        return draw(st.binary(max_size=300))
    if kind == "npy":
        buffer = io.BytesIO()
        np.save(buffer, draw(random_arrays))
        return buffer.getvalue()
    if kind == "object":
        return _npz_bytes({"x": np.array([None, 1], dtype=object), "y": np.array([0, 1])})
    if kind == "almost":  # right shapes and dtypes, with a twist in the values
        n = draw(st.integers(0, 30))
        x = draw(hnp.arrays(np.float32, (n, 1, 2, 2), elements=st.floats(-1e3, 1e3, width=32)))
        y = draw(hnp.arrays(np.float64, (n,), elements=st.sampled_from([0.0, 1.0, 2.0, 0.5])))
        if n and draw(st.booleans()):
            y[draw(st.integers(0, n - 1))] = np.nan
        if n and draw(st.booleans()):
            x[0, 0, 0, 0] = np.inf
        return _npz_bytes({"x": x, "y": y})
    arrays = {"x": draw(random_arrays), "y": draw(random_arrays)}
    if kind == "keys":
        arrays = {draw(st.sampled_from(["x", "X", "images", "y", "labels"])): arrays["x"]}
    data = _npz_bytes(arrays)
    if kind == "cut":
        data = data[: draw(st.integers(0, len(data) - 1))]
    return data


@fuzz(120)
@given(data=npz_files())
@example(data=_npz_bytes({"x": np.zeros((10, 2, 2)), "y": np.full(10, np.nan)}))
@example(data=_npz_bytes({"x": np.zeros((10, 2, 2)), "y": np.zeros(10, np.float16) + 6e4}))
@example(data=_npz_bytes({"x": np.zeros((10, 2, 2)), "y": np.array(["a"] * 10)}))
@example(data=_npz_bytes({"x": np.zeros((10, 2, 2, 0)), "y": np.arange(10) % 2}))
@example(data=_npz_bytes({"x": np.full((10, 2, 2), 1e300), "y": np.arange(10) % 2}))
@example(data=_npz_bytes({"x": np.zeros((0, 2, 2)), "y": np.zeros(0, int)}))
@example(data=_npz_bytes({"x": np.zeros((10, 2, 2)), "y": np.zeros((10, 1))}))
@example(data=b"PK\x03\x04" + b"\x00" * 100)
def test_load_dataset_of_bad_npz_files(scratch: Path, data: bytes) -> None:
    path = scratch / "data.npz"
    path.write_bytes(data)
    try:
        dataset = load_dataset(f"npz:{path}", val_fraction=0.25, test_fraction=0.25)
    except Exception as err:
        _check_typed(err, DatasetError)
        assert len(str(err).split("\n")) == 1, str(err)  # the CLI prints it as one line
        return
    sizes = [len(dataset.train), len(dataset.val), len(dataset.test)]
    assert min(sizes) >= 1 and dataset.num_classes >= 2
    for split in (dataset.train, dataset.val, dataset.test):
        assert split.x.dtype.is_floating_point and split.x.ndim == 4
        assert bool(split.x.isfinite().all()) and split.y.max() < dataset.num_classes


def test_load_dataset_of_a_directory_and_an_unreadable_file(scratch: Path) -> None:
    folder = scratch / "folder.npz"
    folder.mkdir(exist_ok=True)
    with pytest.raises(DatasetError, match=r"No \.npz file at"):
        load_dataset(f"npz:{folder}")
    locked = scratch / "locked.npz"
    with zipfile.ZipFile(locked, "w") as archive:
        archive.writestr("x.npy", b"\x93NUMPY garbage")
        archive.writestr("y.npy", b"")
    with pytest.raises(DatasetError, match=r"cannot read the \.npz archive"):
        load_dataset(f"npz:{locked}")


# -- the command line ---------------------------------------------------------------------------


def _one_line(err: str) -> str:
    lines = err.strip().split("\n")
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def bad_files(tmp_path: Path) -> dict[str, Path]:
    files = {
        "garbage.toml": b"epochs = = 3\n[[[",
        "wrong.json": b'{"epochs": "many", "vertices": 99}',
        "unknown.json": b'{"learning_rate": 0.1}',
        "garbage.npz": bytes(range(256)) * 4,
        "not_a_space.npz": _npz_bytes({"x": np.zeros(3)}),
    }
    out = {}
    for name, data in files.items():
        out[name] = tmp_path / name
        out[name].write_bytes(data)
    return out


TOOLKIT_ERRORS = [
    (["supernet", "train", "--run", "{run}", "--config", "{garbage.toml}"], r"Cannot parse"),
    (["supernet", "train", "--run", "{run}", "--config", "{wrong.json}"], r"key .* must be"),
    (["supernet", "train", "--run", "{run}", "--config", "{unknown.json}"], r"Unknown config"),
    (["supernet", "train", "--run", "{run}", "--config", "{run}/nope.json"], r"Cannot read"),
    (["supernet", "train", "--run", "{run}", "--vertices", "99"], r"--vertices must be an int"),
    (["supernet", "train", "--run", "{run}", "--epochs", "0"], r"--epochs must be an int >= 1"),
    (
        ["supernet", "train", "--run", "{run}", "--dataset", "nope"],
        r"--dataset must be one of .*'nope'",
    ),
    (["supernet", "train", "--run", "{run}", "--dataset", "npz:{garbage.npz}"], r"cannot read"),
    (["supernet", "train", "--run", "{garbage.npz}"], r"exists and is not a directory"),
    (["space", "describe", "{garbage.npz}"], r"not a space file: a \.npz archive starts with"),
    (["space", "describe", "{not_a_space.npz}"], r"not a dagrank space file"),
    (["space", "describe", "{run}/missing.npz"], r"No space file"),
    (["space", "enumerate", "--vertices", "99", "--out", "{run}/s.npz"], r"vertices"),
]


def _argv(template: list[str], run: Path, files: dict[str, Path]) -> list[str]:
    names = {"run": str(run), **{name: str(path) for name, path in files.items()}}
    return [re.sub(r"\{([^}]+)\}", lambda m: names[m.group(1)], arg) for arg in template]


@pytest.mark.parametrize(("template", "match"), TOOLKIT_ERRORS, ids=lambda v: str(v)[:40])
def test_cli_bad_files_and_values_exit_2_with_one_line(
    tmp_path: Path,
    bad_files: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    template: list[str],
    match: str,
) -> None:
    from scripts.cli import main

    run = tmp_path / "run"
    argv = [*_argv(template, run, bad_files), *(["--no-progress"] if "train" in template else [])]
    code = main(argv)
    captured = capsys.readouterr()
    line = _one_line(captured.err)
    assert code == 2, (code, captured)
    command = " ".join(argv[:2])  # the full subcommand: "supernet train", "space describe"
    assert line.startswith(f"dagrank {command}: error: ") and re.search(match, line), line
    assert not run.exists() or not any(run.iterdir())  # a refused job wrote nothing


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["nope"],
        ["supernet"],
        ["supernet", "train"],
        ["supernet", "train", "--run", "r", "--epochs", "three"],
        ["supernet", "train", "--run", "r", "--preset", "huge"],
        ["space", "enumerate", "--vertices", "abc", "--out", "s.npz"],
    ],
    ids=lambda argv: " ".join(argv) or "(nothing)",
)
def test_cli_bad_arguments_exit_2_with_usage_and_one_error_line(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    from scripts.cli import main

    with pytest.raises(SystemExit) as caught:
        main(argv)
    err = capsys.readouterr().err
    assert caught.value.code == 2
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1 and errors[0].startswith("dagrank"), err
    assert err.splitlines()[0].startswith("usage: dagrank")


NPY_MAGIC = b"\x93NUMPY"
# Random bytes, broken archives and lone .npy files (with headers cut or garbled).
not_npy = st.one_of(
    st.binary(max_size=400),
    npz_files(NPZ_KINDS),
    st.binary(max_size=120).map(lambda tail: NPY_MAGIC + tail),
)


@fuzz(40)
@given(data=not_npy)
def test_cli_space_describe_of_random_files(scratch: Path, data: bytes) -> None:
    from scripts.cli import main

    path = scratch / "space.npz"
    path.write_bytes(data)
    out, err = io.StringIO(), io.StringIO()
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        code = main(["space", "describe", str(path)])
    finally:
        sys.stdout, sys.stderr = stdout, stderr
    assert code == 2, out.getvalue()
    assert _one_line(err.getvalue()).startswith("dagrank space describe: error: ")


def _npy(array: Any) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        _npy(np.zeros(3)),
        NPY_MAGIC + b"\x01\x00\x01\x00{",
        NPY_MAGIC
        + b"\x01\x00v\x00{'descr' :'1| ',b'fortran_order': False ,'shape':\n"
        + b" " * 64
        + b"(),}\x00",
    ],
    ids=["npy-file", "npy-header-cut", "npy-header-bytes-key"],
)
def test_cli_space_describe_of_a_lone_npy_file(
    scratch: Path, capsys: pytest.CaptureFixture[str], data: bytes
) -> None:
    from scripts.cli import main

    path = scratch / "lone.npz"
    path.write_bytes(data)
    assert main(["space", "describe", str(path)]) == 2
    assert _one_line(capsys.readouterr().err).startswith("dagrank space describe: error: ")


def test_the_installed_command_fails_in_one_line(tmp_path: Path, bad_files: dict[str, Path]):
    """Two real runs of ``.venv/bin/dagrank``: a bad config file, and a garbage space file."""
    dagrank = Path(sys.executable).parent / "dagrank"
    if not dagrank.exists():
        pytest.skip(f"no dagrank console script beside {sys.executable}")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for argv, match in [
        (["supernet", "train", "--run", str(tmp_path / "run"), "--config",
          str(bad_files["garbage.toml"]), "--no-progress"], "Cannot parse the config file"),
        (["space", "describe", str(bad_files["garbage.npz"])], "not a space file: a .npz archive"),
    ]:  # fmt: skip
        done = subprocess.run(
            [str(dagrank), *argv], capture_output=True, text=True, env=env, timeout=120
        )
        assert done.returncode == 2, done
        line = _one_line(done.stderr)
        assert line.startswith("dagrank ") and match in line, line
    assert not (tmp_path / "run").exists()


def test_every_toolkit_error_is_a_value_error_subclass_where_input_is_bad() -> None:
    """The types the fuzz tests accept are the toolkit's, and ValueErrors."""
    for error in (InvalidCellError, ConfigError, DatasetError):
        assert issubclass(error, ValueError)
        assert issubclass(error, (DagspaceError, SurrogateError))
