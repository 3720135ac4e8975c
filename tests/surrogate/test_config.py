"""Tests of surrogate.config: validation, presets, TOML / JSON files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from surrogate.config import (
    SupernetConfig,
    config_differences,
    config_from_dict,
    load_config,
    supernet_preset,
)
from surrogate.errors import ConfigError
from surrogate.presets import PRESET_NAMES

CHAIN4 = [[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]]


def test_defaults_and_presets_are_valid() -> None:
    assert SupernetConfig().mode == "hard"
    assert PRESET_NAMES == ("smoke", "quick", "paper")
    assert supernet_preset("smoke").channels <= 8 and supernet_preset("paper").channels >= 64
    assert supernet_preset("quick") == SupernetConfig()  # quick: the defaults
    for name in PRESET_NAMES:
        preset = supernet_preset(name)
        assert config_from_dict(preset.to_dict()) == preset
        assert config_from_dict({"preset": name}) == preset
    with pytest.raises(ConfigError, match=r"Unknown preset 'fast'; expected one of \['smoke'"):
        supernet_preset("fast")


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("epochs", 0, "an int >= 1"),
        ("epochs", 1.5, "an int >= 1"),
        ("batch_size", True, "an int >= 2"),
        ("vertices", 13, r"an int in \[3, 12\]"),
        ("data_limit", 0, "an int >= 1 or null"),
        ("seed", -1, r"an int in \[0, 4294967295\]"),
        ("weight_lr", 0.0, "a finite number > 0.0"),
        ("weight_lr", float("nan"), "a finite number > 0.0"),
        ("weight_momentum", 1.0, "a finite number >= 0.0 and < 1.0"),
        ("val_fraction", "0.2", "a finite number > 0.0 and < 1.0"),
        ("learn_topology", "yes", "true or false"),
        ("amp", 1, "true or false"),
        ("mode", "mixed", r"one of \['hard', 'soft'\]"),
        ("dataset", "", "a non-empty string"),
        ("device", "gpu", "'auto', 'cpu', 'cuda' or 'cuda:N'"),
        ("ops", ["conv5x5"], "distinct operation names from"),
        ("ops", ["maxpool3x3", "maxpool3x3"], "distinct operation names from"),
        ("ops", "maxpool3x3", "a non-empty list of operation names"),
        ("topology", [[1, 2]], "null or a list of square 0/1 integer matrices"),
    ],
)
def test_bad_values_name_key_expectation_and_value(key: str, value: object, expected: str) -> None:
    with pytest.raises(ConfigError, match=rf"The config key '{key}' must be {expected}.*; got "):
        SupernetConfig().replace(**{key: value})


def test_values_are_normalised() -> None:
    config = SupernetConfig().replace(weight_lr=1, ops=["maxpool3x3"])
    assert config.weight_lr == 1.0 and isinstance(config.weight_lr, float)
    assert config.ops == ("maxpool3x3",)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cells": 2, "num_stages": 3}, r"'num_stages' must be an int <= cells \(2\); got 3"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "val_fraction \\+ test_fraction < 1"),
        (
            {"weight_lr": 0.01, "weight_lr_min": 0.1},
            r"'weight_lr_min' must be a float <= weight_lr",
        ),
        ({"topology": [CHAIN4] * 3}, "'topology' must be null when learn_topology is true"),
        (
            {"learn_topology": False, "vertices": 4, "topology": [CHAIN4] * 2},
            r"'topology' must be one matrix per cell \(3\); got 2",
        ),
        (
            {"learn_topology": False, "topology": [CHAIN4] * 3},
            r"'topology' must be 5 x 5 matrices \(vertices = 5\); got shape \(4, 4\) for cell 0",
        ),
        (
            {"learn_topology": False, "vertices": 4, "topology": [CHAIN4, CHAIN4, [[0] * 4] * 4]},
            "'topology' must be cells with an input -> output path; got cell 2",
        ),
        (
            {"learn_topology": False, "vertices": 4, "topology": [CHAIN4, CHAIN4, [[1] * 4] * 4]},
            "'topology' must be valid cell matrices; got cell 2: .*strictly upper-triangular",
        ),
    ],
)
def test_cross_field_checks(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SupernetConfig().replace(**changes)


def test_fixed_topology_round_trips() -> None:
    config = SupernetConfig(learn_topology=False, vertices=4, cells=2, topology=[CHAIN4] * 2)
    assert config.topology == (tuple(map(tuple, CHAIN4)),) * 2
    data = json.loads(config.to_json())
    assert data["topology"] == [CHAIN4] * 2
    assert config_from_dict(data) == config


def test_unknown_keys_are_rejected() -> None:
    with pytest.raises(
        ConfigError, match=r"Unknown config key\(s\) \['epoch'\]; expected keys from"
    ):
        SupernetConfig().replace(epoch=3)
    with pytest.raises(ConfigError, match="'preset' must be one of"):
        config_from_dict({"preset": "huge"})
    with pytest.raises(ConfigError, match="must be a mapping"):
        config_from_dict([1, 2])  # type: ignore[arg-type]


def test_load_toml_and_json(tmp_path: Path) -> None:
    toml = tmp_path / "run.toml"
    toml.write_text('preset = "smoke"\nepochs = 2\nops = ["maxpool3x3", "conv1x1-bn-relu"]\n')
    config = load_config(toml)
    assert config == supernet_preset("smoke").replace(
        epochs=2, ops=("maxpool3x3", "conv1x1-bn-relu")
    )
    as_json = tmp_path / "run.json"
    as_json.write_text(config.to_json())
    assert load_config(as_json) == config
    partial = tmp_path / "partial.json"
    partial.write_text('{"epochs": 4}')
    assert load_config(partial, base=supernet_preset("smoke")) == supernet_preset("smoke").replace(
        epochs=4
    )


def test_load_config_errors(tmp_path: Path) -> None:
    bad_key = tmp_path / "a.toml"
    bad_key.write_text("epochs = 2\nlearning_rate = 0.1\n")
    with pytest.raises(ConfigError, match=r"a.toml: Unknown config key\(s\) \['learning_rate'\]"):
        load_config(bad_key)
    bad_type = tmp_path / "b.json"
    bad_type.write_text('{"cells": "three"}')
    with pytest.raises(ConfigError, match="b.json: The config key 'cells' must be an int"):
        load_config(bad_type)
    broken = tmp_path / "c.toml"
    broken.write_text("epochs = = 2\n")
    with pytest.raises(ConfigError, match="Cannot parse the config file"):
        load_config(broken)
    with pytest.raises(ConfigError, match="must end in .toml or .json; got"):
        load_config(tmp_path / "config.yaml")
    with pytest.raises(ConfigError, match="Cannot read the config file"):
        load_config(tmp_path / "missing.toml")


def test_config_differences() -> None:
    a = SupernetConfig()
    assert config_differences(a, a) == []
    assert config_differences(a, a.replace(epochs=3, seed=1)) == ["epochs: 40 != 3", "seed: 0 != 1"]
