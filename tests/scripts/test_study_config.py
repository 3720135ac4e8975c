"""One TOML for a whole study: `config show`, --config/--dataset/--data-root on the jobs, the
resolution order (defaults, preset, file, flags), and errors named by their flag."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from analysis.search import SearchConfigError
from analysis.study import (
    StudyConfigError,
    load_study,
    resolve_study,
    run_study,
    study_preset,
    study_toml,
)
from scripts.cli import main
from surrogate.errors import ConfigError


@pytest.fixture(scope="module")
def own_npz(tmp_path_factory) -> Path:
    """A user's own data: 3 classes of 6 x 6 'images' that differ in their mean."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    x = rng.normal(size=(len(y), 6, 6)).astype(np.float32) + y[:, None, None]
    path = tmp_path_factory.mktemp("data") / "mine.npz"
    np.savez(path, x=x, y=y)
    return path


@pytest.mark.parametrize("preset", ["smoke", "quick", "paper"])
def test_config_show_prints_a_complete_toml_that_loads_back(tmp_path, capsys, preset):
    assert main(["config", "show", "--preset", preset]) == 0
    text = capsys.readouterr().out
    for section in ("[supernet]", "[candidate]", "[validation]", "[search]", "[search.bayes]"):
        assert section in text
    assert "# digits, mnist1d" in text  # commented
    path = tmp_path / "study.toml"
    path.write_text(text)
    assert load_study(path).to_dict() == study_preset(preset).to_dict()
    assert study_toml(load_study(path)) == text


def test_resolution_order_defaults_preset_file_flags(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('preset = "smoke"\n[supernet]\nepochs = 3\n[validation]\nn = 4\n'
                    '[search]\nbudget = 10\n[search.bayes]\nq = 2\n')  # fmt: skip
    study = resolve_study(config=path)
    assert study.preset == "smoke" and study.supernet.epochs == 3  # the file over its preset
    assert study.supernet.channels == 8  # the smoke preset's, not the default 16
    assert study.validation_config().n == 4 and study.search_config().budget == 10
    assert study.search_config().bayes == {"q": 2, "n_init": 6}  # merged into the preset's
    quick = resolve_study(preset="quick", config=path)  # an explicit --preset wins
    assert quick.preset == "quick" and quick.supernet.channels == 16 and quick.supernet.epochs == 3
    flagged = resolve_study(config=path, overrides={"supernet": {"epochs": 5, "seed": None}})
    assert flagged.supernet.epochs == 5 and flagged.supernet.seed == 0  # flags last
    assert resolve_study().to_dict() == study_preset("quick").to_dict()  # the defaults


@pytest.mark.parametrize(
    ("text", "error", "match"),
    [
        ("[surrogate]\nx = 1\n", StudyConfigError, r"unknown top-level key\(s\) \['surrogate'\]"),
        ("supernet = 3\n", StudyConfigError, r"'supernet' must be a \[supernet\] section"),
        (
            "[search]\nbudgett = 3\n",
            StudyConfigError,
            r"Unknown key\(s\) \['budgett'\] in the \[search\] section",
        ),
        (
            "[supernet]\nvertices = 1\n",
            ConfigError,
            r"s\.toml: \[supernet\] The config key 'vertices' must be an int in \[3, 12\]; got 1",
        ),
        ("[candidate]\nepochs = 0\n", ConfigError, r"\[candidate\] .*'epochs'.*got 0"),
        ("[validation]\nseeds = []\n", StudyConfigError, r"'seeds' must be a non-empty list"),
        ("[validation]\nn = 1\n", StudyConfigError, r"'n' must be an integer >= 2; got 1"),
        ("preset = 3\n", StudyConfigError, r"'preset' must be a string; got 3"),
        ('preset = "huge"\n', StudyConfigError, r"Unknown preset 'huge'; expected one of"),
        ("x = [\n", StudyConfigError, r"Cannot parse the study config"),
        (  # issue 20, item 13: an unknown strategy option passed `config show`
            "[search.fd]\nbogus = 1\n",
            SearchConfigError,
            r"s\.toml: \[search\.fd\] Unknown option\(s\) \['bogus'\] for the 'fd' strategy",
        ),
    ],
)
def test_bad_study_files_raise_typed_errors(tmp_path, text, error, match):
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(error, match=match):
        resolve_study(config=path)


def test_config_show_names_every_method_and_refuses_a_bogus_option(tmp_path, capsys):
    from dagspace.strategies.registry import STRATEGIES

    assert main(["config", "show"]) == 0
    assert f"# subset of {', '.join(STRATEGIES)}\nmethods = " in capsys.readouterr().out
    (tmp_path / "s.toml").write_text("[search.bayes]\nbogus = 1\n")
    assert main(["config", "show", "--config", str(tmp_path / "s.toml")]) == 2
    assert "[search.bayes] Unknown option(s) ['bogus']" in capsys.readouterr().err


def test_study_file_must_be_toml(tmp_path):
    with pytest.raises(StudyConfigError, match=r"must end in \.toml; got '.*s\.yaml'"):
        load_study(tmp_path / "s.yaml")
    with pytest.raises(StudyConfigError, match=r"Cannot read the study config"):
        load_study(tmp_path / "missing.toml")


def test_validate_on_own_npz_from_one_toml(tmp_path, capsys, own_npz):
    """The new user's path: `config show`, edit [supernet] dataset, `validate --config`."""
    assert main(["config", "show", "--preset", "smoke"]) == 0
    text = capsys.readouterr().out.replace('dataset = "digits"', f'dataset = "npz:{own_npz}"')
    study = tmp_path / "study.toml"
    study.write_text(text.replace("n = 6", "n = 4"))
    run = tmp_path / "run"
    args = ["validate", "--config", str(study), "--run", str(run), "--no-progress"]
    assert main(args) == 0
    assert "validated " in capsys.readouterr().out  # 4 uniform + every estimator's top-1
    summary = json.loads((run / "summary.json").read_text())["validate"]
    assert summary["dataset"] == f"npz:{own_npz}" and summary["n_requested"] == 4
    assert json.loads((run / "config.json").read_text())["dataset"] == f"npz:{own_npz}"
    # the same study resumes; a flag that changes it is refused, nothing touched
    assert main(args) == 0
    capsys.readouterr()
    before = (run / "config.json").read_bytes()
    assert main([*args, "--dataset", "digits"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds a different config" in err and "dataset" in err
    assert (run / "config.json").read_bytes() == before


def test_dataset_and_data_root_flags_reach_the_supernet(tmp_path, own_npz):
    flags = {"supernet": {"dataset": "cifar10", "data_root": str(tmp_path)}}
    study = resolve_study(preset="smoke", overrides=flags)
    assert study.supernet.dataset == "cifar10" and study.supernet.data_root == str(tmp_path)
    assert study.validation_config().supernet == study.search_config().supernet == study.supernet


@pytest.mark.parametrize(
    ("argv", "prefix", "match"),
    [
        (
            ["space", "enumerate", "--vertices", "9", "--out", "X"],
            "dagrank space enumerate",
            r"--vertices must be an int in \[2, 7\]; got 9",
        ),
        (
            ["space", "enumerate", "--vertices", "4", "--max-edges", "0", "--out", "X"],
            "dagrank space enumerate",
            r"--max-edges must be a positive int",
        ),
        (
            ["supernet", "train", "--run", "R", "--vertices", "2"],
            "dagrank supernet train",
            r"--vertices must be an int in \[3, 12\]; got 2",
        ),
        (
            ["supernet", "train", "--run", "R", "--batch-size", "1"],
            "dagrank supernet train",
            r"--batch-size must be an int >= 2; got 1",
        ),
        (["validate", "--run", "R", "--n", "0"], "dagrank validate", r"--n must be an integer"),
        (
            ["validate", "--run", "R", "--dataset", "foo"],
            "dagrank validate",
            r"--dataset must be one of digits, .*npz:PATH.*got 'foo'",
        ),
        (
            ["compare", "--run", "R", "--repeats", "0"],
            "dagrank compare",
            r"--repeats must be an integer >= 1; got 0",
        ),
        (["compare", "--run", "R", "--top-k", "0"], "dagrank compare", r"--top-k must be"),
        (
            ["trajectory", "--run", "R", "--vertices", "99"],
            "dagrank trajectory",
            r"--vertices must be an int",
        ),
        (["demo", "--run", "R", "--dataset", "x"], "dagrank demo", r"--dataset must be one of"),
        (
            ["config", "show", "--config", "R.toml"],
            "dagrank config show",
            r"Cannot read the study config",
        ),
    ],
)
def test_errors_name_the_flag_and_the_full_subcommand(tmp_path, capsys, argv, prefix, match):
    argv = [str(tmp_path / a) if a in ("X", "R", "R.toml") else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"{prefix}: error: "), err
    assert re.search(match, err), err
    assert not [p for p in tmp_path.iterdir()]  # refused before anything was written


def test_run_study_from_python_like_the_cli(tmp_path, own_npz):
    study = study_preset("smoke")
    study = study.replace(supernet=study.supernet.replace(dataset=f"npz:{own_npz}", epochs=2),
                          validation={**study.validation, "n": 3},
                          search={**study.search, "budget": 6, "epochs": 2, "top_k": 2,
                                  "methods": ("fd", "random")})  # fmt: skip
    result = run_study(tmp_path / "run", study, jobs=("validate", "trajectory", "compare"),
                       progress=False)  # fmt: skip
    assert result.report.exists() and result.validation.summary.n >= 1
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert set(summary) == {"supernet", "validate", "trajectory", "compare"}
    with pytest.raises(StudyConfigError, match=r"jobs of a study must be some of"):
        run_study(tmp_path / "run", study, jobs=("train",))
