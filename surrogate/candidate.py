"""Stand-alone training of one candidate architecture from scratch, with a fixed recipe.

The recipe (:class:`CandidateConfig`): a fresh :class:`~surrogate.network.Network` for the
architecture, its weights initialised from the seed; SGD with Nesterov momentum, the learning
rate annealed to 0 by a cosine schedule over the epochs; cross-entropy (optionally label
smoothed); optional augmentation by random shifts (zero padding and a random crop back to size);
mixed precision on CUDA only. The data stay on the device as tensors; every epoch visits the
whole training split in a seeded random order, in near-equal batches of at most ``batch_size``
(no DataLoader, no global RNG). After the last epoch the network is evaluated on the validation
and test splits.

A candidate never raises for a training problem: a non-finite training loss (or non-finite
weights after an epoch) ends it as DIVERGED (with the metrics of the last finite epoch), any
other exception as FAILED (with its message). Bad arguments (config, seed, device, dataset,
architecture) raise typed errors before training starts. On the CPU, the same seed gives the
same numbers, bit for bit.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import itertools
import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, NoReturn

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dagspace.cell import CellSpec, try_prune
from dagspace.checks import check_int
from dagspace.errors import InvalidCellError
from surrogate.data import Dataset, Split
from surrogate.device import AmpPolicy, amp_policy, derive_seeds, resolve_device, torch_generator
from surrogate.errors import ConfigError, DatasetError
from surrogate.network import Network, count_macs, count_parameters

__all__ = [
    "CANDIDATE_PRESETS",
    "CandidateConfig",
    "CandidateResult",
    "CandidateStatus",
    "FaultPlan",
    "build_network",
    "check_architecture",
    "check_config",
    "check_dataset",
    "evaluate",
    "random_shift",
    "train_candidate",
]


class CandidateStatus(enum.IntEnum):
    """How a candidate's training ended; names and values match ``analysis.EvalStatus``."""

    COMPLETE = 2
    DIVERGED = 3
    FAILED = 4


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
    (:func:`random_shift`). ``amp``: mixed precision, used on CUDA only.
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
        :data:`CANDIDATE_PRESETS` entry to start from instead."""
        if not isinstance(data, Mapping):
            raise ConfigError(
                f"A candidate config must be a mapping of keys to values; got "
                f"{type(data).__name__}."
            )
        values = dict(data)
        preset = values.pop("preset", None)
        if preset is not None and not (isinstance(preset, str) and preset in CANDIDATE_PRESETS):
            _fail("preset", f"one of {sorted(CANDIDATE_PRESETS)}", preset)
        unknown = sorted(repr(key) for key in values if key not in _FIELD_NAMES)
        if unknown:  # checked here too: ``**values`` would fail on keys that are not strings
            raise ConfigError(
                f"Unknown candidate config key(s) [{', '.join(unknown)}]; expected keys from "
                f"{sorted(_FIELD_NAMES)}."
            )
        base = cls() if preset is None else CANDIDATE_PRESETS[preset]
        return base.replace(**values)

    def config_hash(self) -> str:
        """SHA-256 hex digest of :meth:`to_dict` as canonical JSON (sorted keys, no spaces):
        the same digest ``analysis.hash_config(config.to_dict())`` gives."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(text.encode()).hexdigest()


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

CANDIDATE_PRESETS: dict[str, CandidateConfig] = {
    # About a second per candidate on the digits (8 x 8) on a 2-core laptop CPU: for tests
    # and for checking that a pipeline runs end to end.
    "smoke": CandidateConfig(channels=8, epochs=3, batch_size=64),
    # A few seconds per candidate on the digits on a laptop CPU; enough to rank candidates.
    "quick": CandidateConfig(),
    # NAS-Bench-101's longest budget and network width (108 epochs, 128-channel stem,
    # 3 stages, batch 256, weight decay 1e-4), with SGD and shifts; meant for a GPU.
    "paper": CandidateConfig(
        channels=128,
        num_stages=3,
        epochs=108,
        batch_size=256,
        lr=0.1,
        weight_decay=1e-4,
        augment=True,
        amp=True,
    ),
}


@dataclass(frozen=True)
class FaultPlan:
    """Faults to inject into a candidate's training: for tests and reliability drills only.

    ``nan_at_epoch`` (``inf_at_epoch``): the training loss of every step of that epoch
    (0-based) is made NaN (infinite), so the candidate diverges there. ``raise_at_epoch``: a
    ``RuntimeError`` is raised at the start of that epoch, so the candidate fails.
    ``kill_worker``: the worker process that runs the candidate exits at once
    (``os._exit(1)``), as if it crashed; honoured by the executors of
    :mod:`surrogate.executors` inside a worker process only, never in the caller's process.

    Raises:
        ConfigError: an epoch is not a non-negative int (or None), or ``kill_worker`` is not a
            bool.
    """

    nan_at_epoch: int | None = None
    inf_at_epoch: int | None = None
    raise_at_epoch: int | None = None
    kill_worker: bool = False

    def __post_init__(self) -> None:
        for name in ("nan_at_epoch", "inf_at_epoch", "raise_at_epoch"):
            value = getattr(self, name)
            bad = isinstance(value, bool) or not isinstance(value, (int, np.integer))
            if value is not None and (bad or value < 0):
                raise ConfigError(
                    f"The {name!r} of a FaultPlan must be None or an int >= 0; got {value!r}."
                )
            if value is not None:
                object.__setattr__(self, name, int(value))
        if not isinstance(self.kill_worker, bool):
            raise ConfigError(
                f"The 'kill_worker' of a FaultPlan must be a bool; got {self.kill_worker!r}."
            )

    def poison(self, epoch: int) -> float | None:
        """The value every training loss of ``epoch`` is multiplied by (NaN or inf), or None."""
        if self.nan_at_epoch == epoch:
            return math.nan
        if self.inf_at_epoch == epoch:
            return math.inf
        return None


@dataclass(frozen=True)
class CandidateResult:
    """What training a candidate gave.

    ``val_*`` and ``test_*``: mean cross-entropy and accuracy of the final network (for a
    DIVERGED candidate: of the network after the last epoch whose training loss was finite,
    or the initial one); ``train_loss`` and ``train_accuracy``: averages over the steps of that
    epoch (NaN when no epoch finished). ``params`` and ``macs`` (per example): the network's
    cost, ``None`` when it could not be built. ``train_seconds``: wall time of the whole call.
    ``epochs_run``: epochs finished with a finite loss and finite weights. ``diverged_epoch``:
    the (0-based) epoch whose loss (or the weights after it) was not finite. ``error``: why a
    FAILED (or DIVERGED) candidate stopped.
    """

    status: CandidateStatus
    val_accuracy: float
    val_loss: float
    test_accuracy: float
    test_loss: float
    train_loss: float
    train_accuracy: float
    params: int | None
    macs: int | None
    train_seconds: float
    epochs_run: int
    device: str
    error: str | None = None
    diverged_epoch: int | None = None

    def metrics(self) -> dict[str, float]:
        """The numbers as a flat ``{name: float}`` mapping for the results store (``params``,
        ``macs`` and ``diverged_epoch`` only when known; NaN where there is no value)."""
        out = {
            "val_accuracy": self.val_accuracy,
            "val_loss": self.val_loss,
            "test_accuracy": self.test_accuracy,
            "test_loss": self.test_loss,
            "train_loss": self.train_loss,
            "train_accuracy": self.train_accuracy,
            "train_seconds": self.train_seconds,
            "epochs_run": self.epochs_run,
        }
        for name in ("params", "macs", "diverged_epoch"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return {name: float(value) for name, value in out.items()}

    @classmethod
    def failure(cls, error: str, *, device: str, seconds: float = 0.0) -> CandidateResult:
        """A FAILED result that holds only ``error`` (every metric NaN)."""
        nan = math.nan
        return cls(
            CandidateStatus.FAILED, nan, nan, nan, nan, nan, nan, None, None, seconds, 0, device,
            error=error,
        )  # fmt: skip


# ---------------------------------------------------------------------------------- helpers


def _chunks(n: int, batch_size: int) -> list[slice]:
    """Near-equal slices covering ``range(n)``, none larger than ``batch_size`` and, when
    ``n >= 2``, none with a single example (batch norm needs two): so with ``batch_size`` 2
    and an odd ``n``, one slice holds 3."""
    count = max(1, min(math.ceil(n / batch_size), n // 2))
    bounds = np.linspace(0, n, count + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds)]


def random_shift(
    x: torch.Tensor, generator: torch.Generator, max_shift: tuple[int, int] | None = None
) -> torch.Tensor:
    """Shift every image of ``x`` ``(B, C, H, W)`` by its own random offset, padding with 0.

    Offsets are drawn uniformly from ``[-max_shift, max_shift]`` per spatial dimension with
    ``generator`` (a CPU generator: the same draws on any device). ``max_shift`` defaults to an
    eighth of each side, at least 1, and 0 for a side of length 1. Returns a new
    ``(B, C, H, W)`` tensor.
    """
    batch, channels, height, width = x.shape
    if max_shift is None:
        max_shift = tuple(0 if n == 1 else max(1, n // 8) for n in (height, width))  # type: ignore[assignment]
    dy, dx = max_shift  # type: ignore[misc]
    if dy == 0 and dx == 0:
        return x.clone()
    padded = F.pad(x, (dx, dx, dy, dy))  # (B, C, H + 2 dy, W + 2 dx)
    top = torch.randint(0, 2 * dy + 1, (batch,), generator=generator).to(x.device)
    left = torch.randint(0, 2 * dx + 1, (batch,), generator=generator).to(x.device)
    rows = top[:, None] + torch.arange(height, device=x.device)  # (B, H)
    cols = left[:, None] + torch.arange(width, device=x.device)  # (B, W)
    b = torch.arange(batch, device=x.device)[:, None, None, None]
    c = torch.arange(channels, device=x.device)[None, :, None, None]
    return padded[b, c, rows[:, None, :, None], cols[:, None, None, :]]  # (B, C, H, W)


@torch.no_grad()
def evaluate(
    network: nn.Module, split: Split, batch_size: int = 256, *, amp: AmpPolicy | None = None
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``network`` (in evaluation mode) over ``split``.

    Batches are near-equal chunks of at most ``batch_size`` in split order; the network's
    training mode is restored afterwards. An empty split gives ``(nan, nan)``.
    """
    if len(split) == 0:
        return math.nan, math.nan
    policy = amp or AmpPolicy(split.x.device, None)
    was_training = network.training
    network.eval()
    try:
        loss_sum, correct = 0.0, 0
        for part in _chunks(len(split), batch_size):
            x, y = split.x[part], split.y[part]
            with policy.autocast():
                logits = network(x)  # (B, num_classes)
            loss_sum += float(F.cross_entropy(logits.float(), y, reduction="sum"))
            correct += int((logits.argmax(dim=1) == y).sum())
    finally:
        network.train(was_training)
    return loss_sum / len(split), correct / len(split)


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
    try:
        return _train(cells, dataset, config, seed, target, fault, started)
    except Exception as err:  # a failed candidate is recorded, never fatal to a study
        error = f"{type(err).__name__}: {err}"
    if target.type == "cuda":
        torch.cuda.empty_cache()  # after an out-of-memory error, give the next candidate room
    return CandidateResult.failure(error, device=str(target), seconds=time.perf_counter() - started)


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


def _train(
    cells: tuple[CellSpec, ...],
    dataset: Dataset,
    config: CandidateConfig,
    seed: int,
    device: torch.device,
    fault: FaultPlan | None,
    started: float,
) -> CandidateResult:
    init_seed, order_seed, shift_seed = derive_seeds(seed, 3)
    data = dataset.to(device)
    network = build_network(cells, dataset, config, init_seed, device)
    params, macs = count_parameters(network), count_macs(network, dataset.input_shape)
    optimizer = torch.optim.SGD(
        network.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        nesterov=True,
        weight_decay=config.weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    amp = amp_policy(device, config.amp)
    scaler = amp.grad_scaler()
    order_generator, shift_generator = torch_generator(order_seed), torch_generator(shift_seed)
    train = data.train
    batches = _chunks(len(train), config.batch_size)

    last_good = _snapshot(network)  # the state that a divergence falls back to
    train_loss = train_accuracy = math.nan
    epochs_run, diverged_epoch = 0, None
    for epoch in range(config.epochs):
        if fault is not None and fault.raise_at_epoch == epoch:
            raise RuntimeError(f"injected fault at epoch {epoch} (FaultPlan.raise_at_epoch)")
        poison = None if fault is None else fault.poison(epoch)
        network.train()
        order = torch.randperm(len(train), generator=order_generator).to(device)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        for part in batches:
            idx = order[part]
            x, y = train.x[idx], train.y[idx]  # (B, C, H, W), (B,)
            if config.augment:
                x = random_shift(x, shift_generator)
            with amp.autocast():
                logits = network(x)  # (B, num_classes)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=config.label_smoothing)
            if poison is not None:
                loss = loss * poison
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            loss_sum += loss.detach() * len(y)
            correct += (logits.argmax(dim=1) == y).sum()
        scheduler.step()
        epoch_loss = float(loss_sum) / len(train)  # one device sync per epoch
        # A finite loss is not enough: the epoch's last steps may have made the weights (or
        # the batch-norm statistics) non-finite, and such a state must not be kept or reported.
        if not (math.isfinite(epoch_loss) and _is_finite(network)):
            diverged_epoch = epoch
            network.load_state_dict(last_good)
            break
        train_loss, train_accuracy = epoch_loss, int(correct) / len(train)
        epochs_run = epoch + 1
        if epoch + 1 < config.epochs:
            last_good = _snapshot(network)

    eval_batch = max(256, config.batch_size)
    val_loss, val_accuracy = evaluate(network, data.val, eval_batch, amp=amp)
    test_loss, test_accuracy = evaluate(network, data.test, eval_batch, amp=amp)
    status, error = CandidateStatus.COMPLETE, None
    if diverged_epoch is not None:
        status = CandidateStatus.DIVERGED
        error = (
            f"The training loss (or the network's weights) was not finite in epoch "
            f"{diverged_epoch}; the metrics are those of the network after {epochs_run} "
            f"epoch(s)."
        )
    return CandidateResult(
        status=status,
        val_accuracy=val_accuracy,
        val_loss=val_loss,
        test_accuracy=test_accuracy,
        test_loss=test_loss,
        train_loss=train_loss,
        train_accuracy=train_accuracy,
        params=params,
        macs=macs,
        train_seconds=time.perf_counter() - started,
        epochs_run=epochs_run,
        device=str(device),
        error=error,
        diverged_epoch=diverged_epoch,
    )


def _is_finite(network: nn.Module) -> bool:
    """Whether every floating-point parameter and buffer of ``network`` is finite (one sync)."""
    values = [v for v in network.state_dict().values() if v.is_floating_point()]
    return bool(torch.stack([torch.isfinite(v).all() for v in values]).all())


def _snapshot(network: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of ``network``'s state (parameters and batch-norm statistics), on its device."""
    return {name: value.detach().clone() for name, value in network.state_dict().items()}
