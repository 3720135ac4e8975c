"""``dagrank nasbench convert`` and jobs on a NAS-Bench-101 .tfrecord, from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from analysis.nasbench_bench import build_nasbench_file
from dagspace import NASBENCH101_OPS, enumerate_space
from scripts.cli import main


@pytest.fixture(scope="module")
def tfrecord(tmp_path_factory) -> Path:
    """Every cell of the 4-vertex space, 108 epochs x 3 repeats, in the official format."""
    space = enumerate_space(4, NASBENCH101_OPS)
    n = len(space)
    table = {
        "108_final_validation_accuracy": np.linspace(0.5, 0.9, n).astype(np.float32),
        "final_training_time": np.full(n, 100.0),
        "trainable_parameters": np.arange(n),
    }
    path = tmp_path_factory.mktemp("nb") / "nasbench_only108.tfrecord"
    return build_nasbench_file(path, space, np.arange(n), table, budgets=(108,)).path


def test_convert_writes_the_cache_and_says_what_it_holds(tfrecord, tmp_path, capsys):
    argv = ["nasbench", "convert", str(tfrecord), "--cache-dir", str(tmp_path), "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "273 records (0 skipped), 91 cells (91 of NAS-Bench-101's space), budgets [108]" in out
    assert (tmp_path / "nasbench_only108.tfrecord.dagrank.npz").is_file()


def test_a_damaged_file_is_one_line_exit_2(tfrecord, tmp_path, capsys):
    raw = bytearray(tfrecord.read_bytes())
    raw[-3] ^= 0x20  # the last record's data CRC
    bad = tmp_path / "bad.tfrecord"
    bad.write_bytes(bytes(raw))
    assert main(["nasbench", "convert", str(bad), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"dagrank nasbench convert: error: The TFRecord file {bad} is "
                          "damaged at byte ")  # fmt: skip
    assert main(["nasbench", "convert", str(bad), "--skip-damaged", "--no-progress"]) == 0
    assert "272 records (1 skipped)" in capsys.readouterr().out
    assert main(["nasbench", "convert", str(tmp_path / "x.csv")]) == 2
    assert "reads a .tfrecord file" in capsys.readouterr().err


def test_compare_on_the_tfrecord_and_its_cache(tfrecord, tmp_path, capsys):
    column = "108_final_test_accuracy@sample"
    for name, table in (("file", tfrecord), ("cache", f"{tfrecord}.dagrank.npz")):
        run = tmp_path / name
        assert main(["compare", "--objective", f"tabular:{table}:{column}", "--run", str(run),
                     "--vertices", "4", "--repeats", "2", "--budget", "6",
                     "--methods", "random,local", "--no-progress"]) == 0  # fmt: skip
        summary = json.loads((run / "summary.json").read_text())["tabular_compare"]
        assert summary["column"] == column and summary["cells"] == 91
    out = capsys.readouterr().out
    assert "2 repeats x 6 queries on 91 cells (best 108_final_test_accuracy" in out
