from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from dagspace import Space
from scripts.cli import main


def test_enumerate_describe_features_plot(tmp_path, capsys):
    out = tmp_path / "s5.npz"
    assert (
        main(["space", "enumerate", "--vertices", "5", "--ops", "nasbench101", "--out", str(out)])
        == 0
    )
    line = capsys.readouterr().out.strip()
    assert line.startswith("2559 unique cells in ") and line.endswith(f"-> {out}")
    assert len(Space.load(out)) == 2559

    assert main(["space", "describe", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["cells"] == 2559 and info["cells_by_vertices"] == {
        "2": 1,
        "3": 6,
        "4": 84,
        "5": 2468,
    }
    assert info["distinct_topologies"] == 111 and info["features"]["num_edges"]["max"] == 10

    csv = tmp_path / "f.csv"
    assert main(["space", "features", str(out), "--out", str(csv)]) == 0
    frame = pd.read_csv(csv)
    assert len(frame) == 2559 and "eccentricity_variance" in frame.columns

    png = tmp_path / "s.png"
    assert main(["space", "plot", str(out), "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rerun_is_a_no_op_and_another_space_is_refused(tmp_path, capsys):
    out = tmp_path / "s.npz"
    assert main(["space", "enumerate", "--vertices", "4", "--out", str(out)]) == 0
    before = out.read_bytes()
    assert main(["space", "enumerate", "--vertices", "4", "--out", str(out)]) == 0
    assert "already in" in capsys.readouterr().out
    assert main(["space", "enumerate", "--vertices", "5", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already holds another space" in err
    assert out.read_bytes() == before


def test_features_never_overwrite(tmp_path, capsys):
    out = tmp_path / "s.npz"
    main(["space", "enumerate", "--vertices", "3", "--out", str(out)])
    csv = tmp_path / "f.csv"
    csv.write_text("keep me")
    assert main(["space", "features", str(out), "--out", str(csv)]) == 2
    assert csv.read_text() == "keep me"
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["space", "enumerate", "--vertices", "9", "--out", "x.npz"], "[2, 7]; got 9"),
        (
            ["space", "enumerate", "--vertices", "4", "--ops", "conv9", "--out", "x.npz"],
            "registered operation names",
        ),
        (["space", "describe", "missing.npz"], "No space file at missing.npz"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_console_script_runs(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "scripts.cli",
            "space",
            "enumerate",
            "--vertices",
            "3",
            "--out",
            str(tmp_path / "s.npz"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("3 unique cells")
