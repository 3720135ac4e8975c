from __future__ import annotations

import json

from scripts.cli import main


def test_bench_space_prints_one_json_line_of_side_by_side_timings(capsys):
    assert main(["bench", "space", "--sample", "40"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["bench"] == "space" and result["cells"] == 423_624
    measured = ("enumerate_s", "features_s", "baseline_enumerate_sample_s",
                "baseline_features_sample_s")  # fmt: skip
    for key in (*measured, "baseline_enumerate_extrapolated_s", "baseline_features_extrapolated_s"):
        assert result[key] > 0
    for kind in ("enumerate", "features"):
        ratio = result[f"baseline_{kind}_extrapolated_s"] / result[f"{kind}_s"]
        speedup = result[f"{kind}_speedup_vs_extrapolated"]
        assert abs(speedup - ratio) <= 0.05 * ratio + 0.1
    # every figure computed from the sample, not timed on the whole space, says so in its name
    derived = {k for k in result if "baseline" in k or "speedup" in k} - {
        "baseline_enumerate_sample_s", "baseline_features_sample_s", "baseline_hash",
        "baseline_enumerate_sample_size", "baseline_features_sample_size"}  # fmt: skip
    assert derived and all("extrapolated" in k for k in derived)


def test_bench_nasbench_hash_prints_one_json_line(tmp_path, capsys, space5_labelled):
    path = space5_labelled.save(tmp_path / "s.npz")
    assert main(["bench", "nasbench-hash", "--space", str(path), "--sample", "30"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["bench"] == "nasbench-hash" and result["agree"]
    assert result["cells"] == result["distinct"] == len(space5_labelled)
