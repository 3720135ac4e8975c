"""One candidate architecture trained from scratch: its recipe config, the checks of its
inputs, and :func:`train_candidate`, the training loop of a single network.

:class:`CandidateConfig` holds everything that sets a candidate's numbers bar the data (the
recipe is spelled out step by step in :mod:`surrogate.recipe`, which single and stacked
training share). The data stay on the device as tensors (no DataLoader, no global RNG).

A candidate never raises for a training problem: a non-finite training loss (or non-finite
weights after an epoch) ends it as DIVERGED (with the metrics of the last finite epoch), any
other exception as FAILED (with its message). Bad arguments (config, seed, device, dataset,
architecture) raise typed errors before training starts. On the CPU, the same seed gives the
same numbers, bit for bit.

:class:`CandidateResult` and :class:`CandidateStatus` (defined in :mod:`surrogate.recipe`) and
:class:`FaultPlan` (:mod:`surrogate.faults`) are importable from here too, with the rest of a
candidate's interface.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, NoReturn

import numpy as np
import torch

from dagspace.canonical_json import json_sha256
from dagspace.cell import CellSpec, try_prune
from dagspace.checks import check_int
from dagspace.errors import InvalidCellError
from surrogate.data import Dataset
from surrogate.device import amp_policy, resolve_device
from surrogate.errors import ConfigError, DatasetError
from surrogate.faults import NO_HOOK, FaultPlan, TrainingHook
from surrogate.network import Network, count_macs, count_parameters
from surrogate.presets import PRESET_NAMES, get_preset
from surrogate.recipe import (
    CandidateResult,
    CandidateStatus,
    Progress,
    Recipe,
    all_finite,
    error_text,
    shift,
    snapshot,
)

__all__ = [
    "CandidateConfig",
    "CandidateResult",
    "CandidateStatus",
    "FaultPlan",
    "build_network",
    "candidate_preset",
    "check_architecture",
    "check_config",
    "check_dataset",
    "train_candidate",
]


@dataclass(frozen=True)
class CandidateConfig:
    """The stand-alone training recipe (everything that changes the numbers, bar the data).

    Network: ``channels`` (the stem's width; each later stage doubles it), ``num_stages``
    (at most the architecture's number of cells, which the architecture itself sets).

    Optimisation: ``epochs`` over the whole training split, batches of at most ``batch_size``;
    SGD with Nesterov momentum ``momentum``, learning rate ``lr`` annealed to 0 by a cosine
    schedule over the epochs (stepped once per epoch), L2 ``weight_decay`` on every parameter;
    cross-entropy with ``label_smoothing``.

    ``augment``: shift each training image by a random offset of up to an eighth of each side
    (at least 1 pixel; none along a side of length 1), padding with zeros
    (:func:`surrogate.recipe.random_shift`). ``amp``: mixed precision, used on CUDA only.
    """

    channels: int = 16
    num_stages: int = 2
    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 3e-4
    label_smoothing: float = 0.0
    augment: bool = False
    amp: bool = False

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, _CHECKS[f.name](f.name, getattr(self, f.name)))

    def replace(self, **changes: Any) -> CandidateConfig:
        """A copy with ``changes`` applied (and validated)."""
        unknown = sorted(set(changes) - _FIELD_NAMES)
        if unknown:
            raise ConfigError(
                f"Unknown candidate config key(s) {unknown}; expected keys from "
                f"{sorted(_FIELD_NAMES)}."
            )
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping; :meth:`from_dict` inverts it."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CandidateConfig:
        """The defaults with the keys of ``data`` applied; a ``"preset"`` key names the
        preset (:data:`surrogate.presets.PRESETS`) to start from instead."""
        if not isinstance(data, Mapping):
            raise ConfigError(
                f"A candidate config must be a mapping of keys to values; got "
                f"{type(data).__name__}."
            )
        values = dict(data)
        preset = values.pop("preset", None)
        if preset is not None and not (isinstance(preset, str) and preset in PRESET_NAMES):
            _fail("preset", f"one of {sorted(PRESET_NAMES)}", preset)
        unknown = sorted(repr(key) for key in values if key not in _FIELD_NAMES)
        if unknown:  # checked here too: ``**values`` would fail on keys that are not strings
            raise ConfigError(
                f"Unknown candidate config key(s) [{', '.join(unknown)}]; expected keys from "
                f"{sorted(_FIELD_NAMES)}."
            )
        base = cls() if preset is None else candidate_preset(preset)
        return base.replace(**values)

    def config_hash(self) -> str:
        """SHA-256 hex digest of :meth:`to_dict` as canonical JSON (sorted keys, no spaces):
        the same digest ``analysis.hash_config(config.to_dict())`` gives."""
        return json_sha256(self.to_dict())


_FIELD_NAMES = frozenset(f.name for f in fields(CandidateConfig))


def _fail(key: str, expected: str, got: Any) -> NoReturn:
    raise ConfigError(f"The candidate config key {key!r} must be {expected}; got {got!r}.")


def _int(low: int, high: int) -> Any:
    def check(key: str, value: Any) -> int:
        ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
        if not ok or not low <= value <= high:
            _fail(key, f"an int in [{low}, {high}]", value)
        return int(value)

    return check


def _float(low: float, high: float, *, low_open: bool, high_open: bool) -> Any:
    def check(key: str, value: Any) -> float:
        ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
            value, bool
        )
        try:
            x = float(value) if ok else math.nan
        except OverflowError:  # an int too large for a float
            x = math.nan
        ok = ok and (x > low if low_open else x >= low) and (x < high if high_open else x <= high)
        if not ok:
            lo, hi = "(" if low_open else "[", ")" if high_open else "]"
            _fail(key, f"a finite number in {lo}{low}, {high}{hi}", value)
        return x

    return check


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        _fail(key, "true or false", value)
    return bool(value)


_CHECKS: dict[str, Any] = {
    "channels": _int(1, 4096),
    "num_stages": _int(1, 8),
    "epochs": _int(1, 100_000),
    "batch_size": _int(2, 2**20),
    "lr": _float(0.0, 100.0, low_open=True, high_open=False),
    "momentum": _float(0.0, 1.0, low_open=True, high_open=True),  # Nesterov needs momentum > 0
    "weight_decay": _float(0.0, 1.0, low_open=False, high_open=False),
    "label_smoothing": _float(0.0, 1.0, low_open=False, high_open=True),
    "augment": _bool,
    "amp": _bool,
}


def candidate_preset(name: str) -> CandidateConfig:
    """The stand-alone recipe of the preset ``name`` (:data:`surrogate.presets.PRESETS`).

    Raises:
        ConfigError: ``name`` is not a preset.
    """
    return CandidateConfig().replace(**get_preset(name).candidate)


# ----------------------------------------------------------------------------------- checks


def check_config(config: Any, owner: str = "train_candidate") -> CandidateConfig:
    """``config`` if it is a :class:`CandidateConfig`, else a ConfigError naming ``owner``."""
    if not isinstance(config, CandidateConfig):
        raise ConfigError(
            f"The 'config' parameter of {owner} must be a CandidateConfig; got "
            f"{type(config).__name__}."
        )
    return config


def check_architecture(
    architecture: Any, config: CandidateConfig, owner: str = "train_candidate"
) -> tuple[CellSpec, ...]:
    """``architecture`` (a CellSpec, or a sequence of them) as a tuple of labelled cells whose
    input reaches their output, at least one per stage of ``config``.

    Raises:
        dagspace.InvalidCellError: not a sequence of CellSpec, or a cell is unlabelled or
            cannot be trained (the message names the cell's index, and ``owner``).
        ConfigError: fewer cells than ``config.num_stages``.
    """
    if isinstance(architecture, CellSpec):
        architecture = (architecture,)
    if isinstance(architecture, (str, Mapping)) or not isinstance(architecture, Iterable):
        raise InvalidCellError(
            f"The 'architecture' parameter of {owner} must be a sequence of CellSpec; "
            f"got {type(architecture).__name__}: {architecture!r:.200}."
        )
    cells = tuple(architecture)
    for i, cell in enumerate(cells):
        if not isinstance(cell, CellSpec):
            raise InvalidCellError(
                f"Cell {i} of the architecture must be a CellSpec; got "
                f"{type(cell).__name__}: {cell!r:.200}."
            )
        if cell.ops is None:
            raise InvalidCellError(
                f"Cell {i} of the architecture must be labelled (an operation at every "
                f"vertex); got an unlabelled cell with matrix {cell.matrix.tolist()}."
            )
        if try_prune(cell) is None:
            raise InvalidCellError(
                f"Cell {i} of the architecture cannot be trained: its input cannot reach its "
                f"output; got matrix {cell.matrix.tolist()}."
            )
    if len(cells) < config.num_stages:
        raise ConfigError(
            f"The architecture must have at least one cell per stage (config.num_stages = "
            f"{config.num_stages}); got {len(cells)} cell(s)."
        )
    return cells


def check_dataset(dataset: Any, owner: str = "train_candidate") -> Dataset:
    """``dataset`` if it is a :class:`Dataset` with at least 2 training examples (batch norm
    needs two), else a DatasetError naming ``owner``."""
    if not isinstance(dataset, Dataset):
        raise DatasetError(
            f"The 'dataset' parameter of {owner} must be a Dataset; got {type(dataset).__name__}."
        )
    if len(dataset.train) < 2:
        raise DatasetError(
            "Stand-alone training needs at least 2 training examples (batch norm uses batch "
            f"statistics); got {len(dataset.train)}."
        )
    return dataset


# --------------------------------------------------------------------------------- training


def build_network(
    cells: Sequence[CellSpec],
    dataset: Dataset,
    config: CandidateConfig,
    init_seed: int,
    device: torch.device,
) -> Network:
    """A candidate's fresh network, initialised from ``init_seed``, on ``device``.

    torch's layers draw their default initialisation from the global RNG before the seeded
    initialisation replaces it: the global RNG is forked, so building leaves it untouched.
    """
    with torch.random.fork_rng(devices=[]):
        return Network(
            cells, dataset.input_shape, dataset.num_classes, channels=config.channels,
            num_stages=config.num_stages, seed=init_seed,
        ).to(device)  # fmt: skip


def train_candidate(
    architecture: Sequence[CellSpec],
    dataset: Dataset,
    config: CandidateConfig,
    seed: int,
    device: str | torch.device = "cpu",
    *,
    fault: FaultPlan | None = None,
) -> CandidateResult:
    """Train ``architecture`` from scratch on ``dataset`` with the recipe ``config``.

    Args:
        architecture: one labelled :class:`CellSpec` per cell (they set the number of cells).
        dataset: train, validation and test splits (moved to ``device`` if elsewhere).
        config: the training recipe.
        seed: seeds the weights, the batch order and the augmentation (three seeds derived
            from it); nothing touches torch's global RNG.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.
        fault: faults to inject, for tests and reliability drills (see :class:`FaultPlan`).

    Returns:
        A :class:`CandidateResult`: COMPLETE; DIVERGED when a training loss, or a weight after
        an epoch, is not finite (training stops; the metrics are those of the network after
        the last finite epoch); FAILED, with ``"ExceptionType: message"``, when anything else
        goes wrong on the way (an operation with no factory, a failing operation, running out
        of memory).

    Raises:
        ConfigError: ``config``, ``seed``, ``device`` or ``fault`` is invalid, or the
            architecture has fewer cells than ``config.num_stages``.
        dagspace.InvalidCellError: ``architecture`` is not a sequence of labelled CellSpec
            whose input reaches their output.
        DatasetError: ``dataset`` is not a Dataset, or has fewer than 2 training examples.
    """
    started = time.perf_counter()
    config = check_config(config)
    seed = check_int("train_candidate", "seed", seed, 0, ConfigError)
    target = resolve_device(device)
    if fault is not None and not isinstance(fault, FaultPlan):
        raise ConfigError(
            f"The 'fault' parameter of train_candidate must be a FaultPlan or None; got "
            f"{type(fault).__name__}."
        )
    cells = check_architecture(architecture, config)
    dataset = check_dataset(dataset)
    hook = NO_HOOK if fault is None else fault
    try:
        return _train(cells, dataset, config, seed, target, hook, started)
    except Exception as err:  # a failed candidate is recorded, never fatal to a study
        error = error_text(err)
    if target.type == "cuda":
        torch.cuda.empty_cache()  # after an out-of-memory error, give the next candidate room
    return CandidateResult.failure(error, device=str(target), seconds=time.perf_counter() - started)


def _train(
    cells: tuple[CellSpec, ...],
    dataset: Dataset,
    config: CandidateConfig,
    seed: int,
    device: torch.device,
    hook: TrainingHook,
    started: float,
) -> CandidateResult:
    """The recipe (:mod:`surrogate.recipe`) for one network, epoch by epoch."""
    recipe = Recipe.of(config, dataset)
    init_seed, order_generator, shift_generator = recipe.streams(seed)
    data = dataset.to(device)
    train = data.train
    network = build_network(cells, dataset, config, init_seed, device)
    progress = Progress(count_parameters(network), count_macs(network, dataset.input_shape))
    optimizer = recipe.optimizer(network.parameters())
    amp = amp_policy(device, config.amp)
    scaler = amp.grad_scaler()

    last_good = snapshot(network)  # the state that a divergence falls back to
    for epoch in range(config.epochs):
        hook.on_epoch_start(epoch)
        recipe.set_learning_rate(optimizer, epoch)
        network.train()
        order = recipe.order(order_generator).to(device)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        for part in recipe.batches:
            idx = order[part]
            x, y = train.x[idx], train.y[idx]  # (B, C, H, W), (B,)
            offsets = recipe.draw_shifts(shift_generator, len(y))  # None without augment
            if offsets is not None:
                x = shift(x, *offsets, recipe.max_shift)
            with amp.autocast():
                logits = network(x)  # (B, num_classes)
            loss = hook.on_loss(epoch, recipe.loss(logits, y))
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            loss_sum += loss.detach() * len(y)
            correct += (logits.argmax(dim=1) == y).sum()
        finite = all_finite(network)[None]  # (1,): the weights after the epoch
        [going] = recipe.end_epoch([progress], epoch, loss_sum[None], correct[None], finite)
        if not going:  # diverged: back to the network of the last finite epoch
            network.load_state_dict(last_good)
            break
        if epoch + 1 < config.epochs:
            last_good = snapshot(network)

    [(val, test)] = recipe.evaluate_final(network, data, amp)
    return progress.result(val, test, seconds=time.perf_counter() - started, device=str(device))
