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


@pytest.mark.parametrize(
    ("suffix", "magic"), [(".png", b"\x89PNG"), (".svg", b"<?xml"), (".pdf", b"%PDF")]
)
def test_space_plot_writes_the_format_its_suffix_names(tmp_path, capsys, suffix, magic):
    space = tmp_path / "s.npz"
    assert main(["space", "enumerate", "--vertices", "4", "--out", str(space)]) == 0
    out = tmp_path / f"s{suffix}"
    assert main(["space", "plot", str(space), "--out", str(out), "--dpi", "60"]) == 0
    assert out.read_bytes().startswith(magic)


def test_space_plot_dpi_changes_the_png_size(tmp_path):
    space = tmp_path / "s.npz"
    assert main(["space", "enumerate", "--vertices", "3", "--out", str(space)]) == 0
    sizes = []
    for dpi in (40, 80):
        out = tmp_path / f"s{dpi}.png"
        assert main(["space", "plot", str(space), "--out", str(out), "--dpi", str(dpi)]) == 0
        header = out.read_bytes()[16:24]  # the IHDR chunk: width, height
        sizes.append(int.from_bytes(header[:4], "big"))
    assert sizes[1] == pytest.approx(2 * sizes[0], abs=2)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--out", "s.jpg"], r"must end in one of \.png, \.svg, \.pdf; got '.*s\.jpg'"),
        (["--out", "s.png", "--dpi", "0"], r"dpi\) must be a number in \(0, 2400\]; got 0\.0"),
    ],
)
def test_space_plot_refuses_unknown_suffix_and_bad_dpi(tmp_path, capsys, args, match):
    import re

    space = tmp_path / "s.npz"
    assert main(["space", "enumerate", "--vertices", "3", "--out", str(space)]) == 0
    args = [str(tmp_path / a) if a.startswith("s.") else a for a in args]
    assert main(["space", "plot", str(space), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(match, err)
    assert not list(tmp_path.glob("s.jpg"))


def test_check_plot_path_raises_typed_errors():
    from analysis.errors import PlotFormatError
    from analysis.plots import check_plot_path

    assert check_plot_path("a.SVG") == "svg"
    with pytest.raises(PlotFormatError, match=r"must end in one of .*got 'a\.gif'"):
        check_plot_path("a.gif")
    with pytest.raises(PlotFormatError, match=r"must be a number in \(0, 2400\]; got -1"):
        check_plot_path("a.png", -1)
