"""The command line's run handling: --fresh, extending a trajectory, the device outside a
run's identity, --version, -v/-q, progress bars only on a terminal, a light --help."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.results import SQLiteStore
from analysis.runs import check_run_config, register_job, run_identity, set_aside
from scripts.cli import main
from surrogate.config import supernet_preset

ROOT = Path(__file__).resolve().parents[2]


def test_version_prints_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("dagrank ") and out.count("\n") == 1


def test_help_imports_no_numpy_scipy_or_torch():
    code = ("import sys, scripts.cli; scripts.cli.build_parser(); "
            "print(sorted(m for m in ('numpy', 'scipy', 'torch', 'pandas', 'matplotlib') "
            "if m in sys.modules))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          timeout=60, check=True)  # fmt: skip
    assert done.stdout.strip() == "[]"


def test_the_device_is_not_part_of_a_runs_identity(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(supernet_preset("smoke").replace(device="cpu").to_json())
    check_run_config(run, supernet_preset("smoke").replace(device="cuda"))  # resumes on a GPU
    with pytest.raises(Exception, match=r"holds a different config .*seed: 0 != 1"):
        check_run_config(run, supernet_preset("smoke").replace(device="cuda", seed=1))
    config = {"supernet": supernet_preset("smoke").replace(device="cpu").to_dict(), "n": 3}
    assert "device" not in run_identity(config)["supernet"]
    with SQLiteStore(run / "results.sqlite") as store:
        store.register_run("old", config)  # as runs were registered before: with the device
        register_job(store, "old", {**config, "supernet": {**config["supernet"],
                                                           "device": "cuda"}})  # fmt: skip
        register_job(store, "new", config)
        register_job(store, "new", {**config, "supernet": {**config["supernet"],
                                                           "device": "auto"}})  # fmt: skip
        with pytest.raises(Exception, match=r"already registered"):
            register_job(store, "new", {**config, "n": 4})


def test_a_checkpoint_resumes_on_another_device(tmp_path):
    from surrogate.data import load_dataset
    from surrogate.training import train_supernet

    config = supernet_preset("smoke").replace(epochs=2, data_limit=100, channels=4, device="cpu")
    data = load_dataset("digits", seed=0, limit=100)
    path = tmp_path / "supernet.pt"
    first = train_supernet(config.replace(epochs=2), data, checkpoint_path=path, progress=False)
    again = train_supernet(config.replace(device="auto"), data, checkpoint_path=path,
                           progress=False)  # fmt: skip
    assert again.resumed_epochs == len(first.history) == 3  # 2 epochs, 1 round of the fit


def test_set_aside_never_deletes(tmp_path):
    from analysis.rundir import hold

    run = tmp_path / "run"
    with hold(run, "dagrank compare"):
        (run / "summary.json").write_text("{}")
    first = set_aside(run)
    with hold(run, "dagrank compare"):
        (run / "summary.json").write_text("{}")
    second = set_aside(run)
    assert first != second and (first / "summary.json").read_text() == "{}" and second.is_dir()
    assert set_aside(tmp_path / "absent") is None
    (tmp_path / "file").write_text("x")
    with pytest.raises(Exception, match=r"exists and is not a directory"):
        set_aside(tmp_path / "file")


def test_trajectory_extends_with_more_epochs_and_fresh_starts_over(tmp_path, capsys):
    run = tmp_path / "run"
    base = ["trajectory", "--preset", "smoke", "--run", str(run)]
    assert main([*base, "--epochs", "2"]) == 0
    first = json.loads((run / "summary.json").read_text())["trajectory"]
    err = capsys.readouterr().err
    assert "%|" not in err and "it/s" not in err  # no progress bars: stderr is not a terminal
    assert main([*base, "--epochs", "4", "-q"]) == 0  # a larger --epochs extends the descent
    second = json.loads((run / "summary.json").read_text())["trajectory"]
    assert second["evaluations"] >= first["evaluations"] and second["epochs"] >= first["epochs"]
    assert second["config"]["epochs"] == 4
    capsys.readouterr()
    assert main([*base, "--epochs", "2", "--fresh", "-q"]) == 0
    err = capsys.readouterr().err
    assert f"dagrank trajectory: warning: --fresh: {run} moved aside to " in err
    (old,) = [p for p in tmp_path.iterdir() if p.name.startswith("run.old-")]
    assert json.loads((old / "summary.json").read_text())["trajectory"] == second
    assert json.loads((run / "summary.json").read_text())["trajectory"]["config"]["epochs"] == 2


def test_every_preset_flag_offers_the_preset_table():
    import argparse

    from scripts.cli import build_parser
    from surrogate.presets import PRESET_NAMES

    def preset_choices(parser):
        for action in parser._actions:
            if "--preset" in action.option_strings:
                yield parser.prog, tuple(action.choices)
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    yield from preset_choices(sub)

    found = dict(preset_choices(build_parser()))
    assert len(found) >= 8  # supernet train/study, validate, trajectory, compare, demo, ...
    assert all(choices == PRESET_NAMES for choices in found.values()), found


def test_a_larger_epochs_extends_a_finished_supernet_run(tmp_path, capsys):
    """A joint training (weights and multinomials alternate) is extended by more epochs."""
    import pandas as pd

    run = tmp_path / "run"
    joint = tmp_path / "joint.toml"
    joint.write_text('arch_gradient = "straight_through"\narch_schedule = "joint"\n')
    base = ["supernet", "train", "--preset", "smoke", "--channels", "4", "--run", str(run),
            "--config", str(joint)]  # fmt: skip
    assert main([*base, "--epochs", "2"]) == 0
    assert main([*base, "--epochs", "3"]) == 0
    assert "resumed at epoch 2" in capsys.readouterr().out
    history = pd.read_csv(run / "history.csv")
    assert list(history["epoch"]) == [1, 2, 3]
    config = supernet_preset("smoke")
    last = history.iloc[-1]  # past the first run's schedules: their final values
    assert last["temperature"] == pytest.approx(config.tau_end)
    assert last["weight_lr"] == pytest.approx(config.weight_lr_min)
    assert json.loads((run / "config.json").read_text())["epochs"] == 3
    assert json.loads((run / "config.json.epochs-2").read_text())["epochs"] == 2
    assert main([*base, "--epochs", "3", "--seed", "5"]) == 2  # not an extension: refused
    assert "holds a different config" in capsys.readouterr().err


def test_a_run_fitted_after_its_weights_is_not_extended(tmp_path, capsys):
    """The default schedule fits the multinomials on the last epoch's weights: a larger
    --epochs is refused in one line, and the run is left as it was."""
    run = tmp_path / "run"
    base = ["supernet", "train", "--preset", "smoke", "--channels", "4", "--epochs", "2",
            "--run", str(run), "--no-progress"]  # fmt: skip
    assert main(base) == 0
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    capsys.readouterr()
    assert main([*base, "--epochs", "3"]) == 2
    err = capsys.readouterr().err
    assert "fitted after its 2 epochs of weights" in err and "--fresh" in err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
