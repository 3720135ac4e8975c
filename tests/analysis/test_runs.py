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
