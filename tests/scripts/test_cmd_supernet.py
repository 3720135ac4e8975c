"""End-to-end tests of `dagrank supernet train` on the smoke preset."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from scripts import cmd_supernet
from scripts.cli import build_parser, main
from surrogate.config import SupernetConfig, supernet_preset
from surrogate.training import HISTORY_COLUMNS, MULTINOMIAL_COLUMNS

OUTPUTS = (
    "config.json",
    "supernet.pt",
    "history.csv",
    "multinomials.csv",
    "multinomials.png",
    "multinomial_history.png",
    "space.npz",
    "ranking.csv",
    "joint_topk.csv",
)


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="") as f:
        header, *rows = list(csv.reader(f))
    return header, rows


def _snapshot(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run.iterdir())}


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    run = tmp_path_factory.mktemp("cli") / "smoke"
    argv = ["supernet", "train", "--preset", "smoke", "--device", "cpu", "--run", str(run)]
    assert main([*argv, "--no-progress"]) == 0
    return run, " ".join(argv)


def test_smoke_preset_writes_the_run_directory(
    smoke_run: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    run, _ = smoke_run
    assert all((run / name).is_file() for name in OUTPUTS)
    config = supernet_preset("smoke").replace(device="cpu")
    assert json.loads((run / "config.json").read_text()) == config.to_dict()
    header, rows = _read_csv(run / "history.csv")
    assert tuple(header) == HISTORY_COLUMNS and len(rows) == config.epochs + 1  # + 1 round
    assert [int(r[0]) for r in rows] == list(range(1, config.epochs + 2))  # counted from 1
    header, rows = _read_csv(run / "multinomials.csv")
    assert tuple(header) == MULTINOMIAL_COLUMNS
    modules, edges = config.vertices - 2, config.vertices * (config.vertices - 1) // 2
    assert len(rows) == (config.epochs + 1) * config.cells * (modules * len(config.ops) + edges)
    assert {r[2] for r in rows} >= {"vertex 1", "vertex 2", "edge 0-1", "edge 2-3"}
    assert {r[3] for r in rows} == {*config.ops, "present"}
    assert all(0.0 <= float(r[4]) <= 1.0 for r in rows)
    for name in ("multinomials.png", "multinomial_history.png"):
        assert (run / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_smoke_run_ranks_the_space_and_lists_the_joint_top_k(smoke_run: tuple[Path, str]) -> None:
    import pandas as pd

    from dagspace import CellSpec, Space, canonical_hash

    run, _ = smoke_run
    space = Space.load(run / "space.npz")
    ranking = pd.read_csv(run / "ranking.csv")
    config = supernet_preset("smoke")
    assert len(ranking) == config.cells * len(space) == 2 * 91
    for _, part in ranking.groupby("cell"):
        assert part["probability"].sum() == pytest.approx(1.0)
        # ranked by the score (the likelihood ratio against the untrained prior)
        assert part["rank"].min() == 1 and part["score"].is_monotonic_decreasing
        assert (part["score_name"] == "likelihood_ratio").all()
        np.testing.assert_allclose(part["score"], part["log_probability"] - part["log_prior"])
        assert set(part["hash"]) == set(space.hashes)
    top = pd.read_csv(run / "joint_topk.csv")
    assert len(top) == 10 and top["score"].is_monotonic_decreasing
    best = ranking[ranking["rank"] == 1].groupby("cell")["score"].first().sum()
    assert top["score"].iloc[0] == pytest.approx(best)
    cells = [CellSpec.from_dict(c) for c in json.loads(top["architecture"].iloc[0])]
    assert canonical_hash(cells) == top["arch_hash"].iloc[0]


def test_rerun_with_the_same_config_resumes(
    smoke_run: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    run, _ = smoke_run
    history = (run / "history.csv").read_bytes()
    argv = ["supernet", "train", "--preset", "smoke", "--device", "cpu", "--run", str(run)]
    assert main([*argv, "--no-progress"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.count("\n") == 0 and str(run) in out
    assert "resumed after round 1 of the fit" in out and "val acc" in out  # it was finished
    assert (run / "history.csv").read_bytes() == history


def test_a_different_config_is_refused_and_nothing_changes(
    smoke_run: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    run, _ = smoke_run
    before = _snapshot(run)
    channels = supernet_preset("smoke").channels  # (a larger --epochs extends a run instead)
    argv = ["supernet", "train", "--preset", "smoke", "--device", "cpu", "--channels", "99"]
    assert main([*argv, "--run", str(run), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "config.json holds a different config" in err and f"channels: {channels} != 99" in err
    assert _snapshot(run) == before


def test_flags_override_config_file_override_preset(tmp_path: Path) -> None:
    config_file = tmp_path / "c.toml"
    config_file.write_text("epochs = 5\nchannels = 6\nseed = 3\n")
    flags = ["--config", str(config_file), "--seed", "4", "--vertices", "5", "--cells", "3"]
    args = build_parser().parse_args(
        ["supernet", "train", "--run", str(tmp_path / "r"), "--preset", "smoke", *flags]
    )
    config = cmd_supernet._resolve_config(args)
    assert config == supernet_preset("smoke").replace(
        epochs=5, channels=6, seed=4, vertices=5, cells=3
    )
    plain = build_parser().parse_args(["supernet", "train", "--run", str(tmp_path / "r")])
    assert cmd_supernet._resolve_config(plain) == SupernetConfig()


def test_bad_values_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "r"
    assert main(["supernet", "train", "--run", str(run), "--epochs", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "dagrank supernet train: error: --epochs must be an int >= 1; got 0."
    assert not run.exists()
    (tmp_path / "file").write_text("x")
    assert main(["supernet", "train", "--run", str(tmp_path / "file"), "--preset", "smoke"]) == 2
    assert "exists and is not a directory" in capsys.readouterr().err
