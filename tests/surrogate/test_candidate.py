"""Tests of surrogate.candidate: the recipe config, stand-alone training, its determinism,
divergence and failure, and the typed errors for bad arguments."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math

import numpy as np
import pytest
import torch

from analysis.results import hash_config
from dagspace.cell import CellSpec
from dagspace.errors import InvalidCellError
from surrogate.candidate import (
    _FIELD_NAMES,
    CandidateConfig,
    CandidateResult,
    CandidateStatus,
    FaultPlan,
    candidate_preset,
    train_candidate,
)
from surrogate.data import Dataset, Split, load_dataset
from surrogate.errors import ConfigError, DatasetError
from surrogate.network import Network, count_macs, count_parameters
from surrogate.presets import PRESET_NAMES

C3, C1, MP = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"

# 0 -> 1 -> 3, 0 -> 2 -> 3
FORK = CellSpec(
    [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]], ["input", C3, MP, "output"]
)
# 0 -> 1 -> 2
CHAIN = CellSpec([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", C1, "output"])
ARCH = (FORK, CHAIN)
SMOKE = candidate_preset("smoke").replace(epochs=2)


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits", seed=0, limit=200)  # 120 / 40 / 40 examples


def numbers(result: CandidateResult) -> dict[str, object]:
    """Everything a result holds except its wall time (NaN as a string, so == works)."""
    out = dataclasses.asdict(result)
    del out["train_seconds"]
    return {k: "nan" if isinstance(v, float) and math.isnan(v) else v for k, v in out.items()}


# --------------------------------------------------------------------------- config


def test_presets_exist_and_are_configs() -> None:
    assert all(isinstance(candidate_preset(n), CandidateConfig) for n in PRESET_NAMES)
    assert candidate_preset("quick") == CandidateConfig()  # quick: the defaults
    smoke, paper = candidate_preset("smoke"), candidate_preset("paper")
    assert smoke.epochs < candidate_preset("quick").epochs < paper.epochs
    assert (paper.epochs, paper.channels, paper.num_stages) == (108, 128, 3)


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_config_dict_round_trip(name: str) -> None:
    config = candidate_preset(name)
    data = config.to_dict()
    assert set(data) == _FIELD_NAMES
    assert CandidateConfig.from_dict(data) == config
    assert CandidateConfig.from_dict(json.loads(json.dumps(data))) == config
    assert CandidateConfig.from_dict({"preset": name}) == config


def test_from_dict_starts_from_defaults_or_a_preset() -> None:
    assert CandidateConfig.from_dict({}) == CandidateConfig()
    assert CandidateConfig.from_dict({"epochs": 4}) == CandidateConfig(epochs=4)
    smoke = candidate_preset("smoke")
    assert CandidateConfig.from_dict({"preset": "smoke", "lr": 0.1}) == smoke.replace(lr=0.1)


def test_config_hash_is_canonical_json_sha256() -> None:
    config = CandidateConfig()
    text = json.dumps(config.to_dict(), sort_keys=True, separators=(",", ":"))
    assert config.config_hash() == hashlib.sha256(text.encode()).hexdigest()
    assert config.config_hash() == hash_config(config.to_dict())  # the store's hash
    assert CandidateConfig().config_hash() == config.config_hash()
    assert CandidateConfig(lr=0.05, epochs=10).config_hash() == config.config_hash()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("channels", 17),
        ("num_stages", 3),
        ("epochs", 11),
        ("batch_size", 65),
        ("lr", 0.051),
        ("momentum", 0.8),
        ("weight_decay", 0.0),
        ("label_smoothing", 0.1),
        ("augment", True),
        ("amp", True),
    ],
)
def test_config_hash_changes_with_every_field(field: str, value: object) -> None:
    base = CandidateConfig()
    changed = base.replace(**{field: value})
    assert getattr(changed, field) == value and changed != base
    assert changed.config_hash() != base.config_hash()


def test_config_normalises_numpy_numbers() -> None:
    config = CandidateConfig(channels=np.int64(8), lr=np.float32(0.5), augment=np.bool_(True))
    assert type(config.channels) is int and type(config.lr) is float
    assert type(config.augment) is bool
    assert config.config_hash() == CandidateConfig(channels=8, lr=0.5, augment=True).config_hash()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"channels": 0}, r"'channels' must be an int in \[1, 4096\]; got 0"),
        ({"channels": 8.0}, r"'channels' must be an int in \[1, 4096\]; got 8.0"),
        ({"num_stages": 9}, r"'num_stages' must be an int in \[1, 8\]; got 9"),
        ({"epochs": True}, r"'epochs' must be an int in \[1, 100000\]; got True"),
        ({"batch_size": 1}, r"'batch_size' must be an int in \[2, 1048576\]; got 1"),
        ({"lr": 0}, r"'lr' must be a finite number in \(0.0, 100.0\]; got 0"),
        ({"lr": math.inf}, r"'lr' must be a finite number in \(0.0, 100.0\]; got inf"),
        ({"lr": 10**400}, r"'lr' must be a finite number in \(0.0, 100.0\]; got 1000"),
        ({"lr": "0.1"}, r"'lr' must be a finite number in \(0.0, 100.0\]; got '0.1'"),
        ({"momentum": 1.0}, r"'momentum' must be a finite number in \(0.0, 1.0\); got 1.0"),
        ({"momentum": math.nan}, r"'momentum' must be a finite number in \(0.0, 1.0\); got nan"),
        ({"weight_decay": -1e-4}, r"'weight_decay' must be a finite number in \[0.0, 1.0\]"),
        ({"label_smoothing": 1}, r"'label_smoothing' must be a finite number in \[0.0, 1.0\)"),
        ({"augment": "yes"}, r"'augment' must be true or false; got 'yes'"),
        ({"amp": 1}, r"'amp' must be true or false; got 1"),
        ({"epoch": 3}, r"Unknown candidate config key\(s\) \['epoch'\]; expected keys from"),
    ],
)
def test_replace_validates(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        CandidateConfig().replace(**changes)
    if "epoch" not in changes:
        with pytest.raises(ConfigError, match=message):
            CandidateConfig(**changes)  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match=message):
            CandidateConfig.from_dict(changes)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([("epochs", 3)], "must be a mapping of keys to values; got list"),
        ({"preset": "tiny"}, r"'preset' must be one of \['paper', 'quick', 'smoke'\]; got 'tiny'"),
        ({"preset": ["smoke"]}, r"'preset' must be one of .*; got \['smoke'\]"),
        ({"epochs": 3, 7: 1}, r"Unknown candidate config key\(s\) \[7\]"),
        ({"lr": 0.1, "lrate": 0.1}, r"Unknown candidate config key\(s\) \['lrate'\]"),
    ],
)
def test_from_dict_errors(data: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        CandidateConfig.from_dict(data)  # type: ignore[arg-type]


def test_config_errors_are_value_errors() -> None:
    assert issubclass(ConfigError, ValueError) and issubclass(DatasetError, ValueError)
    assert issubclass(InvalidCellError, ValueError)


# --------------------------------------------------------------------------- training


def test_train_candidate_reports_every_number(digits: Dataset) -> None:
    config = SMOKE.replace(epochs=3, batch_size=16)
    result = train_candidate(ARCH, digits, config, seed=0)
    assert result.status is CandidateStatus.COMPLETE
    assert result.error is None and result.diverged_epoch is None
    assert result.epochs_run == 3 and result.device == "cpu" and result.train_seconds > 0
    for name in ("val", "test", "train"):
        assert 0 <= getattr(result, f"{name}_accuracy") <= 1
        assert 0 < getattr(result, f"{name}_loss") < 10
    assert result.val_accuracy > 0.25  # it learns: chance is 0.1 on the ten digits
    network = Network(ARCH, digits.input_shape, 10, channels=config.channels, num_stages=2)
    assert result.params == count_parameters(network)
    assert result.macs == count_macs(network, digits.input_shape)
    assert result.params > 0 and result.macs > result.params

    metrics = result.metrics()
    assert set(metrics) == {
        "val_accuracy", "val_loss", "test_accuracy", "test_loss", "train_loss",
        "train_accuracy", "train_seconds", "epochs_run", "params", "macs",
    }  # fmt: skip
    assert all(type(v) is float for v in metrics.values())
    assert metrics["test_accuracy"] == result.test_accuracy and metrics["epochs_run"] == 3.0
    assert metrics["params"] == float(result.params)


def test_failure_result_metrics_are_nan() -> None:
    result = CandidateResult.failure("boom", device="cpu", seconds=1.5)
    assert result.status is CandidateStatus.FAILED and result.error == "boom"
    metrics = result.metrics()
    assert "params" not in metrics and "macs" not in metrics and "diverged_epoch" not in metrics
    assert math.isnan(metrics["val_accuracy"]) and metrics["train_seconds"] == 1.5


def test_status_values_match_the_store() -> None:
    from analysis.results import EvalStatus

    for status in CandidateStatus:
        assert EvalStatus[status.name] == status


def test_same_seed_same_numbers(digits: Dataset) -> None:
    config = SMOKE.replace(augment=True, label_smoothing=0.1)
    a = train_candidate(ARCH, digits, config, seed=3)
    b = train_candidate(ARCH, digits, config, seed=np.int64(3))  # type: ignore[arg-type]
    c = train_candidate(ARCH, digits, config, seed=4)
    assert a.status is b.status is c.status is CandidateStatus.COMPLETE
    assert numbers(a) == numbers(b)  # exact, every accuracy and loss
    assert a.val_loss != c.val_loss and a.train_loss != c.train_loss
    d = train_candidate(ARCH, digits, config.replace(augment=False), seed=3)
    assert a.train_loss != d.train_loss  # the shifts change training


def test_training_leaves_global_rng_alone(digits: Dataset) -> None:
    before = torch.random.get_rng_state()
    train_candidate(ARCH, digits, SMOKE.replace(augment=True), seed=0)
    assert torch.equal(torch.random.get_rng_state(), before)


@pytest.mark.parametrize("kind", ["nan", "inf"])
def test_non_finite_loss_diverges_with_the_last_finite_metrics(digits: Dataset, kind: str) -> None:
    config = SMOKE.replace(epochs=3)
    fault = FaultPlan(**{f"{kind}_at_epoch": 1})
    result = train_candidate(ARCH, digits, config, seed=0, fault=fault)
    assert result.status is CandidateStatus.DIVERGED
    assert result.diverged_epoch == 1 and result.epochs_run == 1
    assert "not finite in epoch 1" in result.error and "after 1 epoch(s)" in result.error
    assert result.metrics()["diverged_epoch"] == 1.0
    # epoch 0 runs at the full learning rate whatever the epochs, so the network after it is
    # the one a one-epoch run ends with: the metrics are exactly that network's
    one = train_candidate(ARCH, digits, config.replace(epochs=1), seed=0)
    for name in ("val_accuracy", "val_loss", "test_accuracy", "test_loss", "train_loss"):
        assert getattr(result, name) == getattr(one, name), name
    assert (result.params, result.macs) == (one.params, one.macs)


def test_divergence_in_the_first_epoch_reports_the_initial_network(digits: Dataset) -> None:
    fault = FaultPlan(nan_at_epoch=0)
    a = train_candidate(ARCH, digits, SMOKE, seed=0, fault=fault)
    b = train_candidate(ARCH, digits, SMOKE.replace(lr=0.001), seed=0, fault=fault)
    assert a.status is CandidateStatus.DIVERGED and a.diverged_epoch == 0 and a.epochs_run == 0
    assert math.isnan(a.train_loss) and math.isnan(a.train_accuracy)
    assert math.isfinite(a.val_loss) and a.val_loss == b.val_loss  # untrained: lr plays no part


@pytest.mark.parametrize(("lr", "weight_decay"), [(50.0, 0.0), (100.0, 0.1)])
def test_a_real_divergence_keeps_finite_metrics(
    digits: Dataset, lr: float, weight_decay: float
) -> None:
    # A huge learning rate: an epoch's last steps make the weights NaN while its loss (taken
    # before those steps) is finite; that state must not be what the result reports.
    config = SMOKE.replace(epochs=5, lr=lr, weight_decay=weight_decay, batch_size=16)
    result = train_candidate(ARCH, digits, config, seed=0)
    assert result.status is CandidateStatus.DIVERGED
    assert result.epochs_run == result.diverged_epoch
    for name in ("val_accuracy", "val_loss", "test_accuracy", "test_loss"):
        assert math.isfinite(getattr(result, name)), name


def test_an_exception_in_training_is_a_failed_result(digits: Dataset) -> None:
    result = train_candidate(ARCH, digits, SMOKE, seed=0, fault=FaultPlan(raise_at_epoch=1))
    assert result.status is CandidateStatus.FAILED
    assert result.error == "RuntimeError: injected fault at epoch 1 (FaultPlan.raise_at_epoch)"
    assert math.isnan(result.val_accuracy) and result.epochs_run == 0 and result.device == "cpu"


def test_no_training_batch_holds_a_single_example() -> None:
    # 1 x 1 images: batch norm fails on a single example, so no batch may hold just one
    generator = torch.Generator().manual_seed(0)
    split = Split(torch.randn(3, 1, 1, 1, generator=generator), torch.tensor([0, 1, 0]))
    dataset = Dataset("tiny", split, split, split, 2, (1, 1, 1))
    result = train_candidate(ARCH, dataset, SMOKE.replace(batch_size=2), seed=0)
    assert result.status is CandidateStatus.COMPLETE, result.error


# --------------------------------------------------------------------------- bad arguments

UNLABELLED = CellSpec([[0, 1], [0, 0]])
DISCONNECTED = CellSpec([[0, 1, 0], [0, 0, 0], [0, 0, 0]], ["input", C3, "output"])


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"seed": -1}, ConfigError, "'seed' parameter of train_candidate must be an int >= 0;"
         " got -1"),
        ({"seed": 1.0}, ConfigError, "must be an int >= 0; got 1.0"),
        ({"seed": True}, ConfigError, "must be an int >= 0; got True"),
        ({"config": {"epochs": 1}}, ConfigError,
         "'config' parameter of train_candidate must be a CandidateConfig; got dict"),
        ({"device": "gpu"}, ConfigError, "'device' must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got"
         " 'gpu'"),
        ({"fault": "nan"}, ConfigError, "'fault' parameter of train_candidate must be a FaultPlan"
         " or None; got str"),
        ({"architecture": FORK.to_dict()}, InvalidCellError,
         "'architecture' parameter of train_candidate must be a sequence of CellSpec; got dict"),
        ({"architecture": [FORK, CHAIN.to_dict()]}, InvalidCellError,
         "Cell 1 of the architecture must be a CellSpec; got dict"),
        ({"architecture": [FORK, UNLABELLED]}, InvalidCellError,
         r"Cell 1 of the architecture must be labelled .*; got an unlabelled cell with matrix"
         r" \[\[0, 1\], \[0, 0\]\]"),
        ({"architecture": [DISCONNECTED, FORK]}, InvalidCellError,
         "Cell 0 of the architecture cannot be trained: its input cannot reach its output"),
        ({"architecture": [FORK]}, ConfigError,
         r"at least one cell per stage \(config.num_stages = 2\); got 1 cell\(s\)"),
        ({"architecture": []}, ConfigError, r"config.num_stages = 2\); got 0 cell\(s\)"),
        ({"dataset": "digits"}, DatasetError,
         "'dataset' parameter of train_candidate must be a Dataset; got str"),
    ],
)  # fmt: skip
def test_bad_arguments_raise_typed_errors(
    digits: Dataset, kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    args: dict[str, object] = {"architecture": ARCH, "dataset": digits, "config": SMOKE,
                               "seed": 0, **kwargs}  # fmt: skip
    with pytest.raises(error, match=message) as info:
        train_candidate(**args)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)


def test_one_cell_architecture_trains_with_one_stage(digits: Dataset) -> None:
    result = train_candidate([FORK], digits, SMOKE.replace(num_stages=1, epochs=1), seed=0)
    assert result.status is CandidateStatus.COMPLETE


def test_too_small_a_training_split_raises(digits: Dataset) -> None:
    one = Split(digits.train.x[:1], digits.train.y[:1])
    dataset = dataclasses.replace(digits, train=one)
    with pytest.raises(DatasetError, match="needs at least 2 training examples .*; got 1"):
        train_candidate(ARCH, dataset, SMOKE, seed=0)
