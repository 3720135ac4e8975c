"""Supernet run directories: the per-epoch tables are written with every checkpoint."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.runs import supernet_run
from surrogate.config import SupernetConfig


def _config(epochs: int = 4) -> SupernetConfig:
    return SupernetConfig(dataset="digits", data_limit=200, vertices=4, cells=2, channels=4,
                          epochs=epochs, batch_size=32, device="cpu", seed=3, arch_steps=60,
                          arch_samples=2, arch_batch=16)  # fmt: skip


def test_an_interrupted_run_has_its_history_so_far(tmp_path, monkeypatch):
    from surrogate import training

    run_epoch = training.SupernetTrainer.run_epoch

    def interrupted(self, epoch, **kwargs):
        if epoch == 2:
            raise KeyboardInterrupt
        return run_epoch(self, epoch, **kwargs)

    monkeypatch.setattr(training.SupernetTrainer, "run_epoch", interrupted)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        supernet_run(run, _config(), progress=False)
    history = pd.read_csv(run / "history.csv")
    assert len(history) == 2 and list(history.columns) == list(training.HISTORY_COLUMNS)
    multinomials = pd.read_csv(run / "multinomials.csv")
    assert multinomials["epoch"].nunique() == 2
    monkeypatch.setattr(training.SupernetTrainer, "run_epoch", run_epoch)
    done = supernet_run(run, _config(), progress=False)  # resumes, and rewrites them whole
    assert done.result.resumed_epochs == 2
    history = pd.read_csv(run / "history.csv")  # 4 epochs, then 2 rounds of the fit (50 + 10)
    assert list(history["phase"]) == ["weights"] * 4 + ["arch"] * 2
    assert pd.read_csv(run / "multinomials.csv")["epoch"].nunique() == 6


def test_summary_json_is_strict_json_and_reads_back_its_nan(tmp_path):
    """Issue 20, item 6: no bare NaN (JSON.parse would fail); read back as floats."""
    import json
    import math

    import numpy as np

    from analysis.runs import read_summary, update_summary

    data = {"p_value": float("nan"), "std": np.float64("nan"), "high": float("inf"),
            "low": -np.inf, "n": np.int64(3), "ok": np.bool_(True), "values": np.array([1.5]),
            "name": "x", "none": None}  # fmt: skip
    path = update_summary(tmp_path, "validate", data)

    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")

    strict = json.loads(path.read_text(), parse_constant=refuse)
    assert strict["validate"]["p_value"] == "NaN" and strict["validate"]["high"] == "Infinity"
    back = read_summary(path)["validate"]
    assert math.isnan(back["p_value"]) and math.isnan(back["std"])
    assert back["high"] == math.inf and back["low"] == -math.inf
    assert back["n"] == 3 and back["ok"] is True and back["values"] == [1.5]
    assert back["name"] == "x" and back["none"] is None
    path.write_text('{"old": {"p": NaN}}')  # written before: still read
    assert math.isnan(read_summary(path)["old"]["p"])
    update_summary(tmp_path, "new", {})
    assert set(json.loads(path.read_text(), parse_constant=refuse)) == {"old", "new"}


def test_the_whole_ranking_is_binary_and_the_csv_holds_its_top(tmp_path):
    """Issue 20: ranking.npz keeps every cell's scores; ranking.csv the top rows only."""
    import numpy as np

    from analysis.errors import RunDamagedError
    from analysis.runs import load_ranking
    from dagspace import enumerate_space

    run = tmp_path / "run"
    done = supernet_run(run, _config(epochs=1), progress=False, ranking_rows=5)
    _check_threads_recorded(run)
    top = pd.read_csv(run / "ranking.csv")
    assert top.groupby("cell").size().tolist() == [5, 5]
    full = done.ranking.frame()
    pd.testing.assert_frame_equal(top, full.groupby("cell").head(5).reset_index(drop=True),
                                  check_dtype=False)  # fmt: skip
    loaded = load_ranking(run)
    pd.testing.assert_frame_equal(loaded.frame(), full)
    np.testing.assert_array_equal(
        loaded.architecture_scores(np.array([[0, 1], [2, 3]])),
        done.ranking.architecture_scores(np.array([[0, 1], [2, 3]])),
    )
    supernet_run(run, _config(epochs=1), progress=False, ranking_rows=None)  # asked: all
    assert len(pd.read_csv(run / "ranking.csv")) == len(full)
    enumerate_space(5).save(run / "space.npz")  # another space
    with pytest.raises(RunDamagedError, match="ranks another space"):
        load_ranking(run)


def _check_threads_recorded(run):
    """Issue 20, item 10: the run records the thread count its supernet trained at."""
    from analysis.runs import read_summary
    from surrogate.device import CPU_TRAINING_THREADS

    section = read_summary(run / "summary.json")["supernet"]
    assert section["threads"] == CPU_TRAINING_THREADS
    assert section["epochs"] == 1 and section["arch_rounds"] == 2  # 60 steps: rounds of 50 + 10
    assert section["sessions"] == [{"epochs": [1, 1], "arch_rounds": [1, 2], "device": "cpu",
                                    "threads": 1,
                                    "seconds": section["sessions"][0]["seconds"]}]  # fmt: skip


def test_the_supernet_trains_at_one_thread_whatever_the_process_has(tmp_path, monkeypatch):
    import torch

    from surrogate import training

    seen = []
    run_epoch = training.SupernetTrainer.run_epoch

    def spy(self, epoch, **kwargs):
        seen.append(torch.get_num_threads())
        return run_epoch(self, epoch, **kwargs)

    monkeypatch.setattr(training.SupernetTrainer, "run_epoch", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        supernet_run(tmp_path / "run", _config(epochs=2), progress=False)
        assert seen == [1, 1] and torch.get_num_threads() == 2  # restored
    finally:
        torch.set_num_threads(before)
