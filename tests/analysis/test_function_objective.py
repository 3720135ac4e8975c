"""`--objective module:function`: a user's function of the cells, from the jobs and Python."""

from __future__ import annotations

import json
import sqlite3
import textwrap

import numpy as np
import pytest

from analysis.objectives import (
    FunctionObjective,
    ObjectiveError,
    ObjectiveResult,
    load_objective_function,
)
from analysis.results import EvalStatus, SQLiteStore
from dagspace import enumerate_space
from scripts.cli import main

MODULE = textwrap.dedent(
    """
    from analysis.objectives import ObjectiveResult

    CALLS = []

    def edges(cells):
        CALLS.append(len(cells))
        return float(sum(c.num_edges for c in cells))

    def picky(cells):
        n = sum(c.num_edges for c in cells)
        if n == 1:
            raise RuntimeError("one edge is not a network")
        if n == 2:
            return ObjectiveResult(float("inf"))
        if n == 3:
            return {"value": 0.0, "status": "failed", "error": "out of memory"}
        return ObjectiveResult(-n, metrics={"edges": n})

    def wrong(cells):
        return "fast"

    NOT_A_FUNCTION = 3
    """
)


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "my_objectives.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib
    import sys

    sys.modules.pop("my_objectives", None)
    return importlib.import_module("my_objectives")


@pytest.fixture(scope="module")
def space():
    return enumerate_space(4)


def test_values_statuses_and_the_store_cache(tmp_path, user_module, space):
    store = SQLiteStore(tmp_path / "results.sqlite")
    objective = FunctionObjective("my_objectives:edges", space, store=store, run="r", method="m")
    archs = [(0, 1), (1, 2), (0, 1)]
    values = objective(archs)
    expected = [float(space[a].num_edges + space[b].num_edges) for a, b in archs]
    assert values == expected
    calls = len(user_module.CALLS)
    assert objective([(0, 1), (1, 2)]) == expected[:2] and len(user_module.CALLS) == calls
    assert {r.evaluator for r in store.records()} == {"user"}
    store.close()


def test_failures_and_divergence_are_recorded_not_raised(tmp_path, user_module, space):
    store = SQLiteStore(tmp_path / "results.sqlite")
    objective = FunctionObjective("my_objectives:picky", space, store=store)
    by_edges = {space[i].num_edges: i for i in range(len(space))}
    archs = [(by_edges[1],), (by_edges[2],), (by_edges[3],), (by_edges[4],)]
    values = objective(archs)
    assert np.isnan(values[:3]).all() and values[3] == -4.0
    statuses = [r.status for r in store.records()]
    assert statuses == [EvalStatus.FAILED, EvalStatus.DIVERGED, EvalStatus.FAILED,
                        EvalStatus.COMPLETE]  # fmt: skip
    errors = [r.error for r in store.records()]
    assert "RuntimeError: one edge is not a network" in errors[0] and errors[2] == "out of memory"
    assert store.records()[3].metrics["edges"] == 4.0
    store.close()


def test_a_python_callable_works_without_a_store(space):
    objective = FunctionObjective(lambda cells: ObjectiveResult(len(cells)), space)
    assert objective([(0, 1, 2)]) == [3.0]


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("no_such_module_xyz:f", r"cannot import the module 'no_such_module_xyz'"),
        ("my_objectives:missing", r"has no function 'missing'"),
        ("my_objectives:NOT_A_FUNCTION", r"has no function 'NOT_A_FUNCTION' \(got int\)"),
        ("not a spec", r"must be 'module:function'"),
    ],
)
def test_specs_that_do_not_resolve_raise(user_module, spec, match):
    with pytest.raises(ObjectiveError, match=match):
        load_objective_function(spec)


def test_an_unusable_return_value_raises(user_module, space):
    with pytest.raises(ObjectiveError, match=r"must return a number.*got str 'fast'"):
        FunctionObjective("my_objectives:wrong", space)([(0,)])
    with pytest.raises(ObjectiveError, match=r"status must be 'complete', 'diverged' or"):
        FunctionObjective(lambda c: ObjectiveResult(1.0, "ok"), space)([(0,)])
    with pytest.raises(ObjectiveError, match=r"got also \['extra'\]"):
        FunctionObjective(lambda c: {"value": 1.0, "extra": 2}, space)([(0,)])


def test_trajectory_descends_a_users_objective(tmp_path, capsys, user_module):
    """Planted preference: the objective is the architecture's edge count; the descent finds
    architectures with fewer edges than it started from, and every value is a store row."""
    run = tmp_path / "run"
    assert main(["trajectory", "--preset", "smoke", "--run", str(run), "--no-progress",
                 "--objective", "my_objectives:edges", "--epochs", "3"]) == 0  # fmt: skip
    summary = json.loads((run / "summary.json").read_text())["trajectory"]
    assert summary["objective"] == "my_objectives:edges"
    assert summary["objective_best"] <= summary["objective_first"]
    with sqlite3.connect(run / "results.sqlite") as conn:
        rows = conn.execute(
            "SELECT COUNT(*) FROM evaluations WHERE evaluator = 'user' AND run = 'trajectory'"
        ).fetchone()[0]
    assert rows == summary["evaluations"]
    capsys.readouterr()
    assert main(["trajectory", "--preset", "smoke", "--run", str(tmp_path / "r2"),
                 "--objective", "nope_xyz:f"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot import the module 'nope_xyz'" in err
    assert not (tmp_path / "r2").exists()
