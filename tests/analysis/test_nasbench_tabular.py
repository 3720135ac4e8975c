"""NAS-Bench-101's files as tables: the column syntax (budget, metric, repeats), the search jobs
on them, and the same figures from the .tfrecord as from the JSON slice."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis.nasbench_bench import build_nasbench_file
from analysis.nasbench_cache import nasbench_results, open_nasbench
from analysis.premise import run_premise
from analysis.tables import (
    TableCoverageError,
    TableError,
    TabularResults,
    load_table,
    split_column,
)
from analysis.tabular import (
    TabularConfig,
    TabularConfigError,
    TabularObjective,
    open_table,
    run_tabular_compare,
)
from tests.analysis.conftest import slice_values

VAL108 = "108_final_validation_accuracy"


@pytest.fixture(scope="module")
def results(nb101_file, space4) -> TabularResults:
    return load_table(nb101_file.path, space4)


def test_a_complete_file_is_the_whole_space_and_means_are_the_slice(
    results, nb101_file, space4, slice_table
):
    assert results.space is space4 and results.key_kind == "cell"
    assert results.metrics[:4] == ("4_final_validation_accuracy", "4_final_test_accuracy",
                                   "4_final_train_accuracy", "4_final_training_time")  # fmt: skip
    assert results.metrics[-1] == "trainable_parameters"
    expected = slice_values(slice_table, len(space4))  # cells 0..90 got the slice's rows 0..90
    for budget in (4, 12, 36, 108):  # the mean of three repeats is the slice's value, exactly
        name = f"{budget}_final_validation_accuracy"
        np.testing.assert_array_equal(results.column(name), expected[name])
    np.testing.assert_array_equal(results.column("108_final_training_time"),
                                  expected["final_training_time"])  # fmt: skip
    np.testing.assert_array_equal(results.column("trainable_parameters"),
                                  expected["trainable_parameters"])  # fmt: skip
    test = nb101_file.values["test_accuracy"][:, 3]
    np.testing.assert_allclose(results.column("108_final_test_accuracy@mean"), test.mean(axis=1))
    np.testing.assert_array_equal(results.repeat_values(VAL108),
                                  nb101_file.values["validation_accuracy"][:, 3])  # fmt: skip


def test_column_syntax(results):
    assert split_column(VAL108) == (VAL108, "mean")
    assert split_column(f"{VAL108}@sample") == (VAL108, "sample")
    with pytest.raises(TableError, match=r"COLUMN@MODE with MODE one of \['mean', 'sample'\]"):
        split_column(f"{VAL108}@median")
    with pytest.raises(TableError, match="draws a repeat per query: it is not one value"):
        results.column(f"{VAL108}@sample")
    with pytest.raises(TableError, match="has no metric '99_final_validation_accuracy'"):
        results.repeat_values("99_final_validation_accuracy")
    values = results.repeat_values(VAL108)
    first = results.repeat_column(VAL108, np.zeros(len(values)))
    last = results.repeat_column(VAL108, np.full(len(values), 0.999))
    np.testing.assert_array_equal(first, values[:, 0])
    np.testing.assert_array_equal(last, values[:, 2])


def test_a_table_without_repeats_cannot_sample(tmp_path, space4, results):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"key": space4.nasbench101_hashes().tolist(),
                                VAL108: results.column(VAL108).tolist()}))  # fmt: skip
    table = load_table(path, space4)
    with pytest.raises(TableError, match=f"one value per cell for '{VAL108}'; '{VAL108}@sample'"):
        table.repeat_values(f"{VAL108}@sample")
    with pytest.raises(TableError, match="one value per cell"):
        TabularObjective(table, f"{VAL108}@sample")


def test_a_partial_file_subsets_and_hashes_are_checked(tmp_path, slice_table, space4):
    cells = np.asarray([3, 10, 50, 70])
    values = slice_values(slice_table, len(cells))
    built = build_nasbench_file(tmp_path / "part.tfrecord", space4, cells, values,
                                budgets=(108,), seed=2)  # fmt: skip
    part = load_table(built.path, space4, missing="subset")
    assert len(part.space) == 4 and part.rows == 4
    assert [part.space[i] for i in range(4)] == [space4[int(c)] for c in cells]
    np.testing.assert_array_equal(part.column(VAL108), values[VAL108])
    with pytest.raises(TableCoverageError, match=f"has 4 of the {len(space4)} cells"):
        load_table(built.path, space4)
    with pytest.raises(TableError, match="'missing' of a table must be 'error' or 'subset'"):
        load_table(built.path, space4, missing="drop")
    with pytest.raises(TableError, match="has the columns .* asked for \\['nope'\\]"):
        load_table(built.path, space4, missing="subset", metrics=("nope",))
    wrong = build_nasbench_file(tmp_path / "wrong.tfrecord", space4, cells, values,
                                budgets=(108,), hashes=built.hashes[::-1])  # fmt: skip
    space4.nasbench101_hashes()  # known: every module hash is checked against its cell
    with pytest.raises(TableError, match=f"gives the cell .* the module hash {built.hashes[-1]}"):
        nasbench_results(open_nasbench(wrong.path), space4, missing="subset")
    other = build_nasbench_file(tmp_path / "far.tfrecord", space4.subset([0]), [0],
                                slice_values(slice_table, 1), budgets=(108,))  # fmt: skip
    with pytest.raises(TableError, match="No cell of the NAS-Bench-101 table"):
        load_table(other.path, space4.subset([5, 6]), missing="subset")


def test_the_objective_follows_the_budget_and_draws_repeats(results, nb101_file):
    mean = TabularObjective(results)
    assert mean.column == f"{VAL108}@mean" and mean.cost_column == "108_final_training_time"
    assert mean.for_repeat(3) is mean
    twelve = TabularObjective(results, "12_final_test_accuracy")
    assert twelve.cost_column == "12_final_training_time" and twelve.maximise
    sample = TabularObjective(results, f"{VAL108}@sample", seed=7)
    repeats = nb101_file.values["validation_accuracy"][:, 3]
    times = nb101_file.values["training_time"][:, 3]
    runs = [sample.for_repeat(r) for r in range(2)]
    for r, run in enumerate(runs):  # each lookup is one of the cell's repeats, and its time
        pick = (results.draw(7, r) * 3).astype(int)  # the same repeat's
        np.testing.assert_array_equal(run.accuracy_, repeats[np.arange(len(pick)), pick])
        np.testing.assert_array_equal(run.cost_, times[np.arange(len(pick)), pick])
        np.testing.assert_array_equal(run.values_, 1 - run.accuracy_)
    assert not np.array_equal(runs[0].accuracy_, runs[1].accuracy_)
    again = TabularObjective(results, f"{VAL108}@sample", seed=7).for_repeat(1)
    np.testing.assert_array_equal(again.accuracy_, runs[1].accuracy_)  # seeded
    assert sample.best_value == repeats.max() >= mean.best_value == results.column(VAL108).max()


def test_null_the_draw_prefers_no_repeat(results):
    """Given no information, every repeat is drawn equally often (uniform draws, 3 repeats)."""
    counts = np.zeros(3)
    values = results.repeat_values(VAL108)
    for repeat in range(200):
        drawn = results.repeat_column(VAL108, results.draw(0, repeat))
        counts += (values == drawn[:, None]).sum(axis=0)
    share = counts / counts.sum()
    assert np.abs(share - 1 / 3).max() < 0.01  # 18,200 draws: sd 0.0035 per share


def _config(table, **changes) -> TabularConfig:
    base = {
        "vertices": 5,
        "max_edges": None,
        "repeats": 2,
        "budget": 40,
        "seed": 3,
        "methods": ("random", "evolution", "local", "fd"),
        "checkpoints": (20, 40),
    }
    return TabularConfig(str(table), **{**base, **changes})  # fmt: skip


def test_compare_from_the_tfrecord_equals_compare_from_the_json_slice(nb101_file5, tmp_path):
    built, json_table = nb101_file5
    from_json = run_tabular_compare(tmp_path / "json", _config(json_table), progress=False)
    from_file = run_tabular_compare(tmp_path / "tfrecord", _config(built.path), progress=False)
    assert from_file.report["cells"] == from_json.report["cells"] == 2559  # the whole space
    pd.testing.assert_frame_equal(from_file.curves, from_json.curves)
    pd.testing.assert_frame_equal(from_file.regret, from_json.regret)
    assert from_file.report["methods"].keys() == from_json.report["methods"].keys()
    for method, figures in from_file.report["methods"].items():
        assert figures["median_regret"] == from_json.report["methods"][method]["median_regret"]
    assert from_file.report["optimum"] == from_json.report["optimum"]
    # the run found the cells by their form: no NAS-Bench-101 hash of the space was computed
    space_file = next((tmp_path / "tfrecord").glob("space-*.npz"))
    assert "nasbench101_hashes" not in np.load(space_file).files


def test_compare_drawing_repeats_says_so(nb101_file5, tmp_path):
    built, _ = nb101_file5
    column = "36_final_test_accuracy@sample"
    result = run_tabular_compare(tmp_path / "s", _config(built.path, column=column,
                                 methods=("random",), budget=20), progress=False)  # fmt: skip
    assert result.report["column"] == column
    curves = result.curves
    test = built.values["test_accuracy"][:, 2]  # budget 36
    found = curves["accuracy"].to_numpy()
    assert np.isin(found, test[curves["cell"].to_numpy()]).all()
    assert not np.array_equal(found, test.mean(axis=1)[curves["cell"].to_numpy()])
    assert result.report["optimum"] == test.max()


def test_a_complete_file_is_searched_and_measured_on_the_whole_space(nb101_file5, space5,
                                                                     tmp_path):  # fmt: skip
    built, _ = nb101_file5
    config = _config(built.path)
    premise = run_premise(tmp_path / "run", config, train=40, test=80, encodings=("seed",))
    assert premise.report["cells"] == len(space5)
    space, objective = open_table(tmp_path / "run", config)  # (the job made the run directory)
    assert objective.results.space is space and len(space) == len(space5)  # no subset: the
    assert objective.column == f"{VAL108}@mean"  # strategies' neighbours are the whole space's


def test_a_part_of_a_file_keeps_its_repeats_and_equals_that_part_of_the_json(nb101_file5, tmp_path):
    """``part=(K, N, SEED)``: the parts split the cells; a part of the file keeps each cell's
    repeats; the comparison on a part of the file and of the JSON table is the same."""
    built, json_table = nb101_file5
    _, objective = open_table(tmp_path / "whole", _config(built.path))
    whole = objective.results
    parts = [whole.part(k, 3, 7) for k in (1, 2, 3)]
    hashes = [set(p.space.hashes.tolist()) for p in parts]
    assert sum(len(h) for h in hashes) == len(whole.space) and len(set.union(*hashes)) == len(
        whole.space
    )
    index = {h: i for i, h in enumerate(whole.space.hashes.tolist())}
    rows = np.asarray([index[h] for h in parts[1].space.hashes.tolist()])
    assert np.all(np.diff(rows) > 0)  # the space's order
    np.testing.assert_array_equal(parts[1].repeat_values(VAL108), whole.repeat_values(VAL108)[rows])
    config = {"part": (2, 3, 7), "methods": ("random", "fd")}
    from_file = run_tabular_compare(tmp_path / "f", _config(built.path, **config), progress=False)
    from_json = run_tabular_compare(tmp_path / "j", _config(json_table, **config), progress=False)
    assert from_file.report["cells"] == len(parts[1].space) < len(whole.space)
    pd.testing.assert_frame_equal(from_file.curves, from_json.curves)
    assert from_file.report["optimum"] == parts[1].column(VAL108).max()
    assert set(from_file.curves["cell"]) <= set(range(len(parts[1].space)))
    with pytest.raises(TabularConfigError, match=r"'part' must be \(K, N, SEED\)"):
        _config(built.path, part=(1, 1, 0))
