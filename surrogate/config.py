"""The supernet training configuration: a frozen, validated dataclass, its presets, TOML/JSON files.

Every value is checked when a :class:`SupernetConfig` is made (directly, with
:meth:`SupernetConfig.replace`, or from a file): a bad value raises :class:`ConfigError` naming
the key, what it expects and what it got. Resolution order for the command line: the defaults,
then a preset, then a config file, then explicit flags. This module does not import torch
(operation names are checked against :func:`dagspace.known_ops`), so building the command-line
parser stays cheap.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from dagspace.cell import NASBENCH101_OPS, CellSpec, known_ops, try_prune
from dagspace.errors import DagspaceError
from surrogate.errors import ConfigError
from surrogate.presets import PRESET_NAMES, get_preset

__all__ = [
    "ARCH_GRADIENTS",
    "ARCH_SCHEDULES",
    "SupernetConfig",
    "arch_learning_rate",
    "config_differences",
    "config_from_dict",
    "load_config",
    "stored_config",
    "supernet_preset",
]

ARCH_GRADIENTS = ("straight_through", "score_function")
ARCH_SCHEDULES = ("joint", "after")
_DEFAULT_ARCH_LR = {"straight_through": 3e-3, "score_function": 0.05}
# The values that reproduce a run whose stored config predates a key (stored_config)
_LEGACY = {"arch_gradient": "straight_through", "arch_schedule": "joint", "arch_target": "loss",
           "arch_entropy": 0.0}  # fmt: skip
_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
_MAX_VERTICES = 12  # the complete DAG then has 66 edges; larger cells are not a DAG *space*


@dataclass(frozen=True)
class SupernetConfig:
    """Everything that defines a supernet training run (and nothing that does not).

    Data: ``dataset`` (a name :func:`surrogate.data.load_dataset` knows), ``data_root`` (its
    files, where needed), ``data_limit`` (a stratified subset), ``val_fraction`` and
    ``test_fraction`` (the validation split trains the architecture parameters).

    Supernet: ``vertices`` (``V``), ``cells`` (``K``), ``ops``, ``channels`` (stem width),
    ``num_stages``, ``learn_topology``, ``topology`` (with ``learn_topology=False``: ``K``
    ``V x V`` 0/1 matrices fixing each cell's edges; ``None`` means the complete DAG), ``mode``
    (``"hard"`` GDAS sampling, or ``"soft"`` every op weighted).

    Optimisation: ``epochs``, ``batch_size``; the shared weights with SGD (``weight_lr``
    annealed to ``weight_lr_min`` by a cosine schedule over the epochs, ``weight_momentum``,
    ``weight_decay``, gradient-norm clipping at ``grad_clip``, 0 disables); the architecture
    parameters with Adam (``arch_lr``, ``arch_weight_decay``); the Gumbel-softmax temperature
    annealed exponentially from ``tau_start`` to ``tau_end`` (with hard straight-through
    samples the gradient to the logits shrinks as the temperature falls: ``tau_start =
    tau_end = 1`` keeps it constant).

    Remedies for a supernet that learns the wrong preferences, each measured with
    ``dagrank supernet study`` on the same trained architectures (README): ``warmup_epochs``
    weight-only epochs before any architecture update; ``weight_sampling`` ``"learned"`` (weight
    steps sample from the multinomials, the original GDAS-style training) or ``"uniform"``
    (the default; single-path one-shot, Guo et al. 2020: every weight step runs a cell drawn
    uniformly from the space's distinct cells, so no cell gets the weights' attention because the
    sampler produces it often; with a fixed topology the weight steps sample as ``"learned"``);
    ``edge_lr`` the edge logits' own Adam learning rate (``None``: ``arch_lr``); ``shortcut``
    ``"learned"`` (the default) or ``"frozen"`` (the input -> output edge keeps probability 1/2:
    under the straight-through gradient shared weights co-adapt to that shortcut, the
    skip-connection collapse of DARTS, Zela et al. 2020; the score-function gradient compares
    losses and has no such bias, and a frozen edge makes cells that differ only in it tie).
    ``weight_sampling="learned", shortcut="learned"`` with the straight-through gradient,
    jointly, is the original training.

    How the multinomials learn (measured with ``dagrank supernet study``; README):
    ``arch_gradient`` ``"straight_through"`` (GDAS: the gradient reaches a logit through the
    straight-through one-hot that scales the sampled op's output, i.e. "would more of this
    output help?") or ``"score_function"`` (REINFORCE, :mod:`surrogate.score_function`:
    ``arch_samples`` Gumbel-max samples of the exact sampling process per step, each scored by
    its loss on the same ``arch_batch`` validation examples without gradients, a leave-one-out
    baseline: unbiased for the expected loss, comparing architectures by their losses);
    ``arch_entropy`` the weight of the multinomials' entropy in the score-function objective, in
    units of the spread of the loss (``E[L] - arch_entropy * sigma * H``, ``sigma`` the running
    standard deviation of the sampled architectures' losses: the factorised fit of the Gibbs
    distribution ``exp(-L / (arch_entropy * sigma))``, which keeps the ranking of the
    architectures off the mode, at a temperature that means the same for any scale of loss);
    ``arch_schedule`` ``"joint"`` (weights and multinomials alternate, every step) or
    ``"after"`` (the weights train first, ``epochs`` epochs with no architecture update, then
    the multinomials are fitted on the frozen weights for ``arch_steps`` steps);
    ``arch_target`` what the multinomials are fitted to: ``"loss"`` (the supernet's
    validation loss) or the name of a registered estimator (``"snip"``, ...: distillation of
    that estimator, score-function only; the job resolves the name); ``arch_lr`` the
    multinomials' Adam learning rate (``None``: 3e-3 with the straight-through gradient, the
    GDAS setting, 0.05 with the score-function one, see :func:`arch_learning_rate`). The
    defaults (score-function gradient, after the weights, entropy 0.5, the input -> output edge
    learned) ranked best among the trainings that learn from the supernet's own loss, on digits
    and MNIST-1D (``dagrank supernet study``, README).

    Run: ``seed`` (data split, weights, batches and samples), ``device`` (``auto``, ``cpu``,
    ``cuda``, ``cuda:N``), ``amp`` (mixed precision, used on CUDA only).
    """

    dataset: str = "digits"
    data_root: str | None = None
    data_limit: int | None = None
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    vertices: int = 5
    cells: int = 3
    ops: tuple[str, ...] = NASBENCH101_OPS
    channels: int = 16
    num_stages: int = 2
    learn_topology: bool = True
    topology: tuple[tuple[tuple[int, ...], ...], ...] | None = None
    mode: str = "hard"
    epochs: int = 40
    batch_size: int = 32
    weight_lr: float = 0.05
    weight_lr_min: float = 0.001
    weight_momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    arch_lr: float | None = None
    arch_weight_decay: float = 1e-3
    tau_start: float = 10.0
    tau_end: float = 0.1
    warmup_epochs: int = 0
    weight_sampling: str = "uniform"
    edge_lr: float | None = None
    shortcut: str = "learned"
    arch_gradient: str = "score_function"
    arch_schedule: str = "after"
    arch_target: str = "loss"
    arch_samples: int = 8
    arch_batch: int = 256
    arch_steps: int = 400
    arch_entropy: float = 0.5
    seed: int = 0
    device: str = "auto"
    amp: bool = False

    def __post_init__(self) -> None:
        for f in fields(self):
            value = _CHECKS[f.name](f.name, getattr(self, f.name))
            object.__setattr__(self, f.name, value)
        if self.num_stages > self.cells:
            _fail("num_stages", f"an int <= cells ({self.cells})", self.num_stages)
        if self.val_fraction + self.test_fraction >= 1.0:
            _fail(
                "test_fraction",
                f"a fraction with val_fraction + test_fraction < 1 (val_fraction is "
                f"{self.val_fraction})",
                self.test_fraction,
            )
        if self.weight_sampling == "uniform" and self.learn_topology and self.vertices > 7:
            _fail("weight_sampling", "'learned' for cells of more than 7 vertices (uniform "
                  f"sampling enumerates the space; vertices is {self.vertices})",
                  self.weight_sampling)  # fmt: skip
        if self.warmup_epochs >= self.epochs:
            _fail("warmup_epochs", f"an int < epochs ({self.epochs})", self.warmup_epochs)
        if self.weight_lr_min > self.weight_lr:
            _fail("weight_lr_min", f"a float <= weight_lr ({self.weight_lr})", self.weight_lr_min)
        if self.arch_target != "loss" and self.arch_gradient != "score_function":
            _fail("arch_target", "'loss' with arch_gradient 'straight_through' (a distilled "
                  "target has no gradient through the network)", self.arch_target)  # fmt: skip
        if self.topology is not None:
            self._check_topology()

    def _check_topology(self) -> None:
        assert self.topology is not None
        if self.learn_topology:
            _fail("topology", "null when learn_topology is true", "a topology", described=True)
        if len(self.topology) != self.cells:
            _fail("topology", f"one matrix per cell ({self.cells})", len(self.topology))
        v = self.vertices
        for k, matrix in enumerate(self.topology):
            if np.shape(matrix) != (v, v):
                got = f"shape {np.shape(matrix)} for cell {k}"
                _fail("topology", f"{v} x {v} matrices (vertices = {v})", got, described=True)
            try:
                spec = CellSpec(np.array(matrix))
            except DagspaceError as err:
                _fail("topology", "valid cell matrices", f"cell {k}: {err}", described=True)
            if try_prune(spec) is None:
                got = f"cell {k}: {[list(row) for row in matrix]}"
                _fail("topology", "cells with an input -> output path", got, described=True)

    def replace(self, **changes: Any) -> SupernetConfig:
        """A copy with ``changes`` applied (and validated)."""
        unknown = sorted(set(changes) - _FIELD_NAMES)
        if unknown:
            raise ConfigError(
                f"Unknown config key(s) {unknown}; expected keys from {sorted(_FIELD_NAMES)}."
            )
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (tuples become lists); :func:`config_from_dict` inverts it."""
        out = dataclasses.asdict(self)
        out["ops"] = list(self.ops)
        if self.topology is not None:
            out["topology"] = [[list(row) for row in matrix] for matrix in self.topology]
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"


_FIELD_NAMES = frozenset(f.name for f in fields(SupernetConfig))


def _fail(key: str, expected: str, got: Any, *, described: bool = False) -> NoReturn:
    """Raise the standard message; ``described``: ``got`` is a description, not a value."""
    shown = got if described else repr(got)
    raise ConfigError(f"The config key {key!r} must be {expected}; got {shown}.")


def _int(low: int, high: int | None = None, optional: bool = False) -> Any:
    def check(key: str, value: Any) -> int | None:
        if value is None and optional:
            return None
        ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
        if not ok or value < low or (high is not None and value > high):
            span = f">= {low}" if high is None else f"in [{low}, {high}]"
            _fail(key, f"an int {span}" + (" or null" if optional else ""), value)
        return int(value)

    return check


def _float(
    low: float, high: float | None = None, *, low_open: bool, high_open: bool = False
) -> Any:
    def check(key: str, value: Any) -> float:
        ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
            value, bool
        )
        try:
            x = float(value) if ok else math.nan
        except OverflowError:  # an int beyond float's range
            x = math.inf
        ok = ok and math.isfinite(x)
        ok = ok and (x > low if low_open else x >= low)
        if high is not None:
            ok = ok and (x < high if high_open else x <= high)
        if not ok:
            lo = f"{'>' if low_open else '>='} {low}"
            hi = "" if high is None else f" and {'<' if high_open else '<='} {high}"
            _fail(key, f"a finite number {lo}{hi}", value)
        return x

    return check


def _optional(check: Any) -> Any:
    def optional(key: str, value: Any) -> Any:
        if value is None:
            return None
        try:
            return check(key, value)
        except ConfigError as err:
            raise ConfigError(str(err).replace("; got", " or null; got", 1)) from None

    return optional


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        _fail(key, "true or false", value)
    return bool(value)


def _str(choices: tuple[str, ...] | None = None, optional: bool = False) -> Any:
    def check(key: str, value: Any) -> str | None:
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value or (choices and value not in choices):
            expected = f"one of {list(choices)}" if choices else "a non-empty string"
            _fail(key, expected + (" or null" if optional else ""), value)
        return value

    return check


def _device(key: str, value: Any) -> str:
    if not isinstance(value, str) or not _DEVICE_RE.match(value):
        _fail(key, "'auto', 'cpu', 'cuda' or 'cuda:N'", value)
    return value


def _ops(key: str, value: Any) -> tuple[str, ...]:
    # dagspace's registry (no torch import); surrogate.ops.register_operation adds to it too
    known = list(known_ops())
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
        _fail(key, f"a non-empty list of operation names from {known}", value)
    ops = tuple(value)
    bad = [op for op in ops if not isinstance(op, str) or op not in known]
    if bad or len(set(ops)) != len(ops):
        _fail(key, f"distinct operation names from {known}", list(ops))
    return ops


def _topology(key: str, value: Any) -> tuple[tuple[tuple[int, ...], ...], ...] | None:
    if value is None:
        return None
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        array = np.asarray(None)
    if array.ndim != 3 or array.dtype.kind not in "biu" or array.dtype == bool:
        _fail(key, "null or a list of square 0/1 integer matrices (one per cell)", value)
    return tuple(tuple(tuple(int(x) for x in row) for row in matrix) for matrix in array)


_CHECKS: dict[str, Any] = {
    "dataset": _str(),
    "data_root": _str(optional=True),
    "data_limit": _int(1, optional=True),
    "val_fraction": _float(0.0, 1.0, low_open=True, high_open=True),
    "test_fraction": _float(0.0, 1.0, low_open=False, high_open=True),
    "vertices": _int(3, _MAX_VERTICES),
    "cells": _int(1, 64),
    "ops": _ops,
    "channels": _int(1, 4096),
    "num_stages": _int(1, 8),
    "learn_topology": _bool,
    "topology": _topology,
    "mode": _str(("hard", "soft")),
    "epochs": _int(1),
    "batch_size": _int(2),
    "weight_lr": _float(0.0, low_open=True),
    "weight_lr_min": _float(0.0, low_open=False),
    "weight_momentum": _float(0.0, 1.0, low_open=False, high_open=True),
    "weight_decay": _float(0.0, low_open=False),
    "grad_clip": _float(0.0, low_open=False),
    "arch_lr": _optional(_float(0.0, low_open=True)),
    "arch_weight_decay": _float(0.0, low_open=False),
    "tau_start": _float(0.0, low_open=True),
    "tau_end": _float(0.0, low_open=True),
    "warmup_epochs": _int(0),
    "weight_sampling": _str(("learned", "uniform")),
    "edge_lr": _optional(_float(0.0, low_open=True)),
    "shortcut": _str(("learned", "frozen")),
    "arch_gradient": _str(ARCH_GRADIENTS),
    "arch_schedule": _str(ARCH_SCHEDULES),
    "arch_target": _str(),
    "arch_samples": _int(2, 4096),
    "arch_batch": _int(2),
    "arch_steps": _int(1),
    "arch_entropy": _float(0.0, low_open=False),
    "seed": _int(0, 2**32 - 1),
    "device": _device,
    "amp": _bool,
}


def config_from_dict(data: Mapping[str, Any], base: SupernetConfig | None = None) -> SupernetConfig:
    """``base`` (default: the defaults) with the keys of ``data`` applied and validated.

    A ``"preset"`` key names a preset (:data:`surrogate.presets.PRESETS`) to start from
    instead of ``base``.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"A config must be a mapping of keys to values; got {type(data).__name__}."
        )
    values = dict(data)
    bad = [name for name in values if not isinstance(name, str)]
    if bad:
        raise ConfigError(
            f"The keys of a config must be strings; got {type(bad[0]).__name__} {bad[0]!r:.100}."
        )
    preset = values.pop("preset", None)
    if preset is not None:
        if not isinstance(preset, str) or preset not in PRESET_NAMES:
            _fail("preset", f"one of {sorted(PRESET_NAMES)}", preset)
        base = supernet_preset(preset)
    return (base or SupernetConfig()).replace(**values)


def stored_config(data: Mapping[str, Any]) -> SupernetConfig:
    """The config of a run as stored by :meth:`SupernetConfig.to_dict` (``config.json``, a
    checkpoint): a key added since it was written takes the value that reproduces what that run
    did (it trained its multinomials jointly, by the straight-through gradient, on the loss),
    not today's default."""
    if not isinstance(data, Mapping):
        return config_from_dict(data)  # the standard error
    return config_from_dict({**_LEGACY, **data})


def arch_learning_rate(config: SupernetConfig) -> float:
    """The multinomials' Adam learning rate: ``arch_lr``, or the gradient's own default (3e-3
    for the straight-through gradient, GDAS's; 0.05 for the score-function one, whose steps
    follow a normalised estimate of differences between losses)."""
    if config.arch_lr is not None:
        return config.arch_lr
    return _DEFAULT_ARCH_LR[config.arch_gradient]


def load_config(path: str | Path, base: SupernetConfig | None = None) -> SupernetConfig:
    """Read a flat TOML (``.toml``) or JSON (``.json``) table of config keys over ``base``.

    Raises:
        ConfigError: the file cannot be read or parsed, or has an unknown key or a bad value.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise ConfigError(f"A config file must end in .toml or .json; got {str(path)!r}.")
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"Cannot read the config file {str(path)!r}: {err.strerror}.") from None
    try:
        data = tomllib.loads(raw.decode()) if suffix == ".toml" else json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:  # TOMLDecodeError, JSONDecodeError
        raise ConfigError(f"Cannot parse the config file {str(path)!r}: {err}.") from None
    except RecursionError:
        raise ConfigError(
            f"Cannot parse the config file {str(path)!r}: it nests too deeply for a flat table "
            f"of config keys."
        ) from None
    try:
        return config_from_dict(data, base)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def config_differences(a: SupernetConfig, b: SupernetConfig) -> list[str]:
    """``"key: A != B"`` for every key whose values differ."""
    da, db = a.to_dict(), b.to_dict()
    return [f"{key}: {da[key]!r} != {db[key]!r}" for key in da if da[key] != db[key]]


def supernet_preset(name: str) -> SupernetConfig:
    """The supernet config of the preset ``name`` (:data:`surrogate.presets.PRESETS`).

    Raises:
        ConfigError: ``name`` is not a preset.
    """
    return SupernetConfig().replace(**get_preset(name).supernet)
