"""The tabular objective and the comparison on a table (small synthetic tables)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis.tables import TableError
from analysis.tabular import (
    TabularConfig,
    TabularConfigError,
    open_table,
    parse_tabular,
    run_tabular_compare,
    run_tabular_trajectory,
)
from dagspace import NASBENCH101_OPS, enumerate_space


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """Every cell of the labelled 5-vertex space; accuracy grows with edges and conv3x3s."""
    space = enumerate_space(5, NASBENCH101_OPS)
    conv = (space.ops == 2).sum(axis=1)
    acc = 0.5 + 0.04 * space.feature("num_edges") + 0.05 * conv
    path = tmp_path_factory.mktemp("table") / "t.json"
    path.write_text(json.dumps({"key": space.nasbench101_hashes().tolist(),
                                "108_final_validation_accuracy": acc.tolist(),
                                "final_training_time": (100 + 10 * conv).tolist()}))  # fmt: skip
    return path, space, acc


def test_objective_is_one_minus_accuracy_and_lookup_is_exact(table, tmp_path):
    path, space, acc = table
    _, objective = open_table(tmp_path, TabularConfig(str(path), vertices=5, max_edges=None))
    assert objective.column == "108_final_validation_accuracy" and objective.maximise
    cells = [(0,), (len(space) - 1,)]
    np.testing.assert_allclose(objective(cells), 1 - acc[[0, len(space) - 1]])
    assert objective.best_value == pytest.approx(acc.max())
    assert objective([]) == []


def test_a_named_column_and_a_loss_column(table, tmp_path):
    path, _space, _ = table
    config = TabularConfig(str(path), column="final_training_time", vertices=5, max_edges=None)
    _, objective = open_table(tmp_path, config)
    assert not objective.maximise and objective([(0,)])[0] == objective.accuracy_[0]
    with pytest.raises(TableError, match="no metric 'nope'"):
        open_table(tmp_path, TabularConfig(str(path), column="nope", vertices=5, max_edges=None))


def test_parse_tabular_and_bad_configs(table):
    path, _, _ = table
    assert parse_tabular(f"tabular:{path}") == (path, None)
    assert parse_tabular(f"tabular:{path}:acc") == (path, "acc")
    with pytest.raises(TabularConfigError, match="is written 'tabular:FILE"):
        parse_tabular("surrogate")
    with pytest.raises(TabularConfigError, match="names a table file"):
        parse_tabular("tabular:")
    with pytest.raises(TabularConfigError, match="'methods' must be distinct names from"):
        TabularConfig("t.json", methods=("sgd",))
    with pytest.raises(TabularConfigError, match="'budget' must be an integer >= 1; got 0"):
        TabularConfig("t.json", budget=0)


def test_compare_writes_curves_regret_and_tests_and_resumes(table, tmp_path):
    path, _space, acc = table
    config = TabularConfig(str(path), vertices=5, max_edges=None, budget=30, repeats=3,
                           checkpoints=(10, 20), bayes={"q": 5, "n_init": 6})  # fmt: skip
    result = run_tabular_compare(tmp_path, config, progress=False)
    curves, regret, report = result.curves, result.regret, result.report
    assert set(curves["method"]) == set(config.methods)
    assert (curves["regret"] >= -1e-12).all()
    best = curves.groupby(["method", "repeat"])["best_accuracy"]
    assert (best.diff().fillna(0) >= 0).all()  # best so far never falls
    assert sorted(set(regret["queries"])) == [10, 20, 30]
    n = len(config.methods)  # every registered strategy
    assert len(report["mann_whitney"]) == n * (n - 1) // 2 and report["optimum"] == pytest.approx(
        acc.max()
    )
    for name in ("tabular_curves.csv", "tabular_regret.csv", "tabular_compare.png",
                 "evaluations.csv"):  # fmt: skip
        assert (tmp_path / name).exists()
    summary = json.loads((tmp_path / "summary.json").read_text())["tabular_compare"]
    assert summary["methods"]["random"]["median_regret"]["30"] >= 0
    # each distinct architecture is one store row (lookups of one cell are shared)
    evaluations = pd.read_csv(tmp_path / "evaluations.csv")
    assert evaluations["arch_hash"].is_unique and set(evaluations["evaluator"]) == {"tabular"}
    assert len(evaluations) == curves["cell"].nunique()
    again = run_tabular_compare(tmp_path, config, progress=False)  # resumed: the same runs
    pd.testing.assert_frame_equal(again.curves, curves)


def test_planted_preference_every_guided_method_beats_a_late_random_start(table, tmp_path):
    """On a smooth table the guided methods reach a lower regret than random search."""
    path, _, _ = table
    config = TabularConfig(str(path), vertices=5, max_edges=None, budget=40, repeats=4,
                           methods=("random", "local", "evolution"))  # fmt: skip
    regret = run_tabular_compare(tmp_path, config, progress=False).regret
    final = regret[regret["queries"] == 40].set_index("method")["mean_regret"]
    assert final["local"] <= final["random"]


def test_trajectory_descends_the_table(table, tmp_path):
    path, _, _ = table
    config = TabularConfig(str(path), vertices=5, max_edges=None, epochs=5)
    result = run_tabular_trajectory(tmp_path, config, progress=False)
    report = result.report
    assert 1 <= report["epochs"] <= 5 and report["objective_best"] <= report["objective_first"]
    assert (tmp_path / "trajectory.png").exists() and len(result.frame) == report["epochs"] * 3


def test_variants_run_beside_the_methods_paired_with_their_strategy(table, tmp_path):
    """A variant is a labelled strategy with options: its own line, row and tests; the seeds
    of its strategy (the same options give the same runs, repeat by repeat)."""
    path, _, _ = table
    variants = {"fd-copy": {"strategy": "fd"}, "fd-points": {"strategy": "fd", "probes": "points"}}
    config = TabularConfig(str(path), vertices=5, max_edges=None, budget=20, repeats=3,
                           methods=("random", "fd"), fd={"patience": 3},
                           variants=variants)  # fmt: skip
    assert config.labels == ("random", "fd", "fd-copy", "fd-points")
    assert config.strategy_of("fd-points") == ("fd", {"patience": 3, "probes": "points"})
    result = run_tabular_compare(tmp_path, config, progress=False)
    curves, report = result.curves, result.report
    assert list(dict.fromkeys(curves["method"])) == list(config.labels)
    same = [curves[curves["method"] == m].drop(columns="method").reset_index(drop=True)
            for m in ("fd", "fd-copy")]  # fmt: skip
    pd.testing.assert_frame_equal(*same)
    assert set(report["methods"]) == set(config.labels)
    assert report["mann_whitney"]["fd vs fd-copy"]["p_value"] == pytest.approx(1.0)
    assert "fd vs fd-points" in report["mann_whitney"]
    assert set(result.regret["method"]) == set(config.labels)


def test_bad_variants_are_refused_before_anything_is_stored(table, tmp_path):
    from scripts.cmd_tabular import parse_variant

    path, _, _ = table
    for variants, match in [
        ({"fd": {"strategy": "fd"}}, "needs a label of its own"),
        ({"a,b": {"strategy": "fd"}}, "needs a label of its own"),
        ({"x": {"probes": "cells"}}, r"must be \{'strategy': one of"),
        ({"x": {"strategy": "sgd"}}, r"must be \{'strategy': one of"),
        ({"x": {"strategy": "fd", "zzz": 1}}, r"Unknown option\(s\) \['zzz'\] for the 'fd'"),
    ]:
        with pytest.raises(TabularConfigError, match=match):
            TabularConfig(str(path), variants=variants)
    config = TabularConfig(str(path), vertices=5, max_edges=None, budget=20, repeats=2,
                           methods=("random",),
                           variants={"x": {"strategy": "fd", "probes": "nope"}})  # fmt: skip
    run = tmp_path / "run"
    with pytest.raises(TabularConfigError, match="The variant 'x': The 'probes' parameter"):
        run_tabular_compare(run, config, progress=False)
    assert not (run / "results.sqlite").exists() and not (run / "summary.json").exists()
    assert parse_variant("fd-p=fd:probes=points,h=0.5,walkers=2,init=random") == (
        "fd-p",
        {"strategy": "fd", "probes": "points", "h": 0.5, "walkers": 2, "init": "random"},
    )
    assert parse_variant(" b = bayes ") == ("b", {"strategy": "bayes"})
    for text in ("fd", "=fd", "x=", "x=fd:probes"):
        with pytest.raises(TabularConfigError, match="--variant is LABEL=STRATEGY"):
            parse_variant(text)
