from __future__ import annotations

import json

from scripts.cli import main


def test_bench_space_prints_one_json_line_of_side_by_side_timings(capsys):
    assert main(["bench", "space", "--sample", "40"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["bench"] == "space" and result["cells"] == 423_624
    for key in ("enumerate_s", "features_s", "baseline_enumerate_s", "baseline_features_s"):
        assert result[key] > 0
    for kind in ("enumerate", "features"):
        ratio = result[f"baseline_{kind}_s"] / result[f"{kind}_s"]
        assert abs(result[f"{kind}_speedup"] - ratio) <= 0.05 * ratio + 0.1


def test_bench_nasbench_hash_prints_one_json_line(tmp_path, capsys, space5_labelled):
    path = space5_labelled.save(tmp_path / "s.npz")
    assert main(["bench", "nasbench-hash", "--space", str(path), "--sample", "30"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["bench"] == "nasbench-hash" and result["agree"]
    assert result["cells"] == result["distinct"] == len(space5_labelled)
