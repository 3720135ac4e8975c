"""Supernet training: the shared weights, and the multinomials by one of two gradients, on one of
two schedules.

Each step of a ``"joint"`` schedule (GDAS / first-order DARTS): an SGD step of the shared weights
on a training batch (a hard Gumbel-softmax sample, or a cell drawn uniformly), then an Adam step
of the architecture parameters on validation data, by the straight-through gradient of a hard
sample or by the score-function estimate of :mod:`surrogate.score_function` (``arch_samples``
samples scored by their losses, no gradient through the network). The ``"after"`` schedule
trains the weights alone for ``epochs`` epochs, then fits the multinomials on the frozen weights
for ``arch_steps`` steps (their learning rate annealed to 0 by a cosine, :func:`arch_fit_rate`),
in rounds of :data:`ARCH_ROUND_STEPS` (a row of the history and a checkpoint each). The
temperature is annealed exponentially over the epochs (:func:`temperature`), the weight learning
rate by a cosine schedule. Data stay on the device as tensors and batches are seeded
permutations (no DataLoader). After each epoch (and round) the multinomials, losses and
accuracies are recorded and a checkpoint that resumes the run exactly (on the CPU: bit for bit)
is written atomically.
"""

from __future__ import annotations

import io
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from dagspace.cell import CellSpec
from dagspace.io import atomic_write
from surrogate.config import (
    SupernetConfig,
    arch_learning_rate,
    config_differences,
    stored_config,
)
from surrogate.data import Dataset, Split
from surrogate.device import AmpPolicy, amp_policy, derive_seeds, resolve_device, torch_generator
from surrogate.errors import ConfigError, DatasetError, TrainingError
from surrogate.recipe import evaluate_each
from surrogate.score_function import score_function_objective
from surrogate.supernet import ArchitectureSample, Supernet

__all__ = [
    "ARCH_ROUND_STEPS",
    "CHECKPOINT_FORMAT",
    "HISTORY_COLUMNS",
    "MULTINOMIAL_COLUMNS",
    "PHASES",
    "EpochRecord",
    "SupernetResult",
    "arch_fit_rate",
    "build_supernet",
    "evaluate_architecture",
    "extends",
    "history_rows",
    "multinomial_rows",
    "temperature",
    "train_supernet",
]

CHECKPOINT_FORMAT = "dagrank-supernet-checkpoint/1"
# Epochs are numbered from 1 wherever a user reads them: the progress bar ("epoch 3/40") and
# the "epoch" column of history.csv and multinomials.csv (the row of the 3rd epoch says 3).
# EpochRecord.epoch is the 0-based index that temperature() takes.
HISTORY_COLUMNS = (
    "epoch",
    "phase",
    "temperature",
    "weight_lr",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "argmax_val_acc",
    "seconds",
)
MULTINOMIAL_COLUMNS = ("epoch", "cell", "module", "option", "probability")
PHASES = ("joint", "weights", "arch")
"""What a row of the history trained: weights and multinomials (``joint``), the weights alone
(a warm-up epoch, or an epoch of the ``after`` schedule), or the multinomials alone on frozen
weights (``arch``: a round of :data:`ARCH_ROUND_STEPS` steps of the ``after`` schedule)."""
ARCH_ROUND_STEPS = 50
"""Steps of the ``after`` schedule's multinomial fit per history row and checkpoint."""

SPREAD_DECAY = 0.9
"""Decay of the running spread of the sampled losses (the entropy term's unit)."""

ArchTarget = Callable[[Sequence[tuple[CellSpec, ...]]], np.ndarray]
"""A distillation target: architectures (``K`` unpruned cells each) -> ``(S,)`` losses, lower =
better (:func:`train_supernet`'s ``arch_target``)."""


def arch_fit_rate(step: int, steps: int) -> float:
    """The factor of the multinomials' learning rate at ``step`` (0-based) of the ``after``
    schedule's ``steps``: a cosine from 1 to 0, so that the fit settles instead of fluctuating
    with the noise of its last steps' estimates."""
    return 0.5 * (1.0 + math.cos(math.pi * step / steps))


def temperature(epoch: int, epochs: int, start: float = 10.0, end: float = 0.1) -> float:
    """The Gumbel-softmax temperature of ``epoch`` (0-based) of ``epochs``: exponential decay.

    ``start * (end / start) ** (epoch / (epochs - 1))``: ``start`` at the first epoch, ``end``
    at the last (``start`` when there is one epoch).
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(f"The 'epochs' of temperature() must be an int >= 1; got {epochs!r}.")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch < epochs:
        raise ConfigError(
            f"The 'epoch' of temperature() must be an int in [0, {epochs - 1}]; got {epoch!r}."
        )
    if not (start > 0 and end > 0 and math.isfinite(start) and math.isfinite(end)):
        raise ConfigError(
            f"The temperatures 'start' and 'end' must be positive; got {start!r} and {end!r}."
        )
    if epochs == 1:
        return float(start)
    return float(start * (end / start) ** (epoch / (epochs - 1)))


@dataclass(frozen=True, eq=False)
class EpochRecord:
    """What one epoch (or one round of the multinomials' fit, ``phase="arch"``) did. Losses and
    accuracies of ``train`` and ``val`` are averages over the epoch's steps (sampled
    architectures; NaN where the phase has none: no training batch in an ``arch`` round, no
    accuracy for a distilled target); ``argmax_val_acc`` is the accuracy of the argmax
    architecture on the whole validation split after the epoch (NaN when not evaluated).
    ``op_probabilities`` ``(K, V-2, n_ops)`` and ``edge_probabilities`` ``(K, E)`` are the
    multinomials after the epoch (float64, read-only)."""

    epoch: int
    phase: str
    temperature: float
    weight_lr: float
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    argmax_val_acc: float
    seconds: float
    op_probabilities: np.ndarray
    edge_probabilities: np.ndarray

    def __post_init__(self) -> None:
        for name in ("op_probabilities", "edge_probabilities"):
            array = np.array(getattr(self, name), dtype=np.float64)
            array.setflags(write=False)
            object.__setattr__(self, name, array)

    def to_state(self) -> dict[str, Any]:
        """A mapping that ``torch.load(weights_only=True)`` can read back."""
        state: dict[str, Any] = {c: getattr(self, c) for c in HISTORY_COLUMNS}
        state["op_probabilities"] = torch.from_numpy(self.op_probabilities.copy())
        state["edge_probabilities"] = torch.from_numpy(self.edge_probabilities.copy())
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> EpochRecord:
        values = {c: state.get(c, "joint") if c == "phase" else state[c] for c in HISTORY_COLUMNS}
        return cls(
            **values,
            op_probabilities=state["op_probabilities"].numpy(),
            edge_probabilities=state["edge_probabilities"].numpy(),
        )


@dataclass(frozen=True, eq=False)
class SupernetResult:
    """A trained supernet with its config, per-epoch history and timing.

    ``seconds``: wall time of this call; ``resumed_epochs``: epochs already done (from a
    checkpoint) when it began; ``train_seconds``: all epochs' time, resumed ones included.
    """

    supernet: Supernet
    config: SupernetConfig
    history: tuple[EpochRecord, ...]
    device: torch.device
    seconds: float
    resumed_epochs: int

    @property
    def final(self) -> EpochRecord:
        return self.history[-1]

    @property
    def train_seconds(self) -> float:
        return float(sum(r.seconds for r in self.history))


def build_supernet(
    config: SupernetConfig, input_shape: Sequence[int], num_classes: int
) -> Supernet:
    """The (CPU, untrained) supernet that ``config`` describes for a dataset's shape."""
    topology = None
    if config.topology is not None:
        topology = tuple(CellSpec(np.array(m)) for m in config.topology)
    return Supernet(
        config.vertices,
        config.cells,
        config.ops,
        input_shape=input_shape,
        num_classes=num_classes,
        channels=config.channels,
        num_stages=config.num_stages,
        learn_topology=config.learn_topology,
        topology=topology,
        mode=config.mode,
        seed=derive_seeds(config.seed, 3)[0],
    )


def _space_cells(config: SupernetConfig) -> Any:
    """The distinct labelled cells of the config's space (for uniform weight sampling)."""
    from dagspace import enumerate_space
    from dagspace.enumeration import MAX_ENUMERATION_VERTICES

    if config.vertices > MAX_ENUMERATION_VERTICES:
        raise ConfigError(
            f"The config key 'weight_sampling' can be 'uniform' only for spaces of at most "
            f"{MAX_ENUMERATION_VERTICES} vertices (they are enumerated); got vertices = "
            f"{config.vertices}."
        )
    return enumerate_space(config.vertices, config.ops)


def evaluate_architecture(
    supernet: Supernet,
    architecture: Sequence[CellSpec],
    split: Split,
    *,
    batch_size: int = 256,
    amp: AmpPolicy | None = None,
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``architecture`` run on the supernet's shared weights
    over ``split`` (the pseudo environment), by the evaluation loop of stand-alone training
    (:func:`surrogate.recipe.evaluate_each`: batches of at most ``batch_size`` in split order,
    none of a single example). The supernet's mode is left as it is: its batch norms always
    normalise with the batch's statistics. An empty split gives ``(nan, nan)``."""

    def forward(x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, 1, num_classes)
        return supernet(x, architecture)[:, None]

    return evaluate_each(supernet, split, batch_size, amp=amp, forward=forward, eval_mode=False)[0]


class SupernetTrainer:
    """The mutable state of a run (supernet, optimisers, generators, history) and its epoch."""

    def __init__(
        self,
        config: SupernetConfig,
        dataset: Dataset,
        device: torch.device,
        arch_target: ArchTarget | None = None,
    ) -> None:
        for name in ("train", "val"):
            if len(getattr(dataset, name)) < 2:
                raise DatasetError(
                    f"Supernet training needs at least 2 examples in the {name!r} split (batch "
                    f"norm uses batch statistics); got {len(getattr(dataset, name))}."
                )
        self.config = config
        self.device = device
        self.data = dataset.to(device)
        self.supernet = build_supernet(config, dataset.input_shape, dataset.num_classes).to(device)
        self.weights = self.supernet.weight_parameters()
        self.arch = self.supernet.arch_parameters()
        self.weight_optimizer = torch.optim.SGD(
            self.weights,
            lr=config.weight_lr,
            momentum=config.weight_momentum,
            weight_decay=config.weight_decay,
        )
        arch_lr = arch_learning_rate(config)
        lrs = [arch_lr, arch_lr if config.edge_lr is None else config.edge_lr]
        self.arch_lrs = lrs[: len(self.arch)]  # each group's rate before the fit's annealing
        self.arch_optimizer = torch.optim.Adam(
            [{"params": [p], "lr": lr} for p, lr in zip(self.arch, lrs, strict=False)],
            lr=arch_lr,
            betas=(0.5, 0.999),
            weight_decay=config.arch_weight_decay,
        )
        uniform = config.weight_sampling == "uniform" and config.learn_topology
        self.uniform_cells = _space_cells(config) if uniform else None
        self.shortcut = config.vertices - 2  # the input -> output edge, triu order
        num_edges = config.vertices * (config.vertices - 1) // 2
        self.learned_edges = np.ones(num_edges, dtype=bool)  # the edges whose logits learn
        if config.shortcut == "frozen":
            self.learned_edges[self.shortcut] = False
        if config.arch_target != "loss" and arch_target is None:
            raise ConfigError(
                f"The config's arch_target is {config.arch_target!r}: pass its losses as "
                "train_supernet(arch_target=...) (a job resolves a registered estimator's name)."
            )
        self.arch_target = arch_target
        # the running standard deviation of the sampled architectures' losses: the unit of the
        # entropy weight, so that arch_entropy means the same for any loss scale
        self.loss_spread = math.nan
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.weight_optimizer, T_max=config.epochs, eta_min=config.weight_lr_min
        )
        self.amp = amp_policy(device, config.amp)
        self.scaler = self.amp.grad_scaler()
        _, data_seed, sample_seed = derive_seeds(config.seed, 3)
        self.data_generator = torch_generator(data_seed)
        self.sample_generator = torch_generator(sample_seed)
        self.history: list[EpochRecord] = []
        # the epochs the temperature and learning-rate schedules span: config.epochs, or the
        # first run's epochs when a finished run is extended with a larger --epochs (the extra
        # epochs then train at the schedules' final values: tau_end and weight_lr_min)
        self.schedule_epochs = config.epochs

    # -- one epoch ----------------------------------------------------------------------------
    def run_epoch(self, epoch: int, *, progress: bool, evaluate: bool = True) -> EpochRecord:
        config, net = self.config, self.supernet
        started = time.perf_counter()
        span = self.schedule_epochs
        tau = temperature(min(epoch, span - 1), span, config.tau_start, config.tau_end)
        if epoch >= span:  # an extension: past the cosine schedule's end, its final rate
            for group in self.weight_optimizer.param_groups:
                group["lr"] = config.weight_lr_min
        lr = float(self.weight_optimizer.param_groups[0]["lr"])
        train, val = self.data.train, self.data.val
        batch, val_batch = min(config.batch_size, len(train)), min(config.batch_size, len(val))
        steps = len(train) // batch
        order = torch.randperm(len(train), generator=self.data_generator)[: steps * batch]
        repeats = math.ceil(steps * val_batch / len(val))
        val_order = torch.cat(
            [torch.randperm(len(val), generator=self.data_generator) for _ in range(repeats)]
        )[: steps * val_batch]
        order, val_order = order.to(self.device), val_order.to(self.device)

        net.train()
        sums = np.zeros(4)  # train loss, train correct, val loss, val correct (example sums)
        bar = tqdm(
            range(steps),
            desc=f"epoch {epoch + 1}/{config.epochs}",
            disable=not progress,
            file=sys.stderr,
            dynamic_ncols=True,
        )
        phase = self.epoch_phase(epoch)
        for step in bar:
            idx = order[step * batch : (step + 1) * batch]
            loss, correct = self._weight_step(train.x[idx], train.y[idx], tau, epoch, step)
            vidx = val_order[step * val_batch : (step + 1) * val_batch]
            if phase == "weights":  # a validation loss, no architecture update
                val_loss, val_correct = self._val_step(val.x[vidx], val.y[vidx], tau, epoch, step)
            elif config.arch_gradient == "score_function":
                val_loss, val_acc = self._score_function_step(epoch, step)
                val_correct = val_acc * val_batch
            else:
                val_loss, val_correct = self._arch_step(val.x[vidx], val.y[vidx], tau, epoch, step)
            sums += (loss * batch, correct, val_loss * val_batch, val_correct)
            done_train, done_val = (step + 1) * batch, (step + 1) * val_batch
            bar.set_postfix(
                loss=f"{sums[0] / done_train:.3f}",
                acc=f"{sums[1] / done_train:.3f}",
                val_loss=f"{sums[2] / done_val:.3f}",
                val_acc=f"{sums[3] / done_val:.3f}",
                temp=f"{tau:.2f}",  # the Gumbel-softmax temperature ("tau" is Kendall's)
                refresh=False,
            )
        bar.close()
        if epoch < span:
            self.scheduler.step()

        record = EpochRecord(
            epoch=epoch,
            phase=phase,
            temperature=tau,
            weight_lr=lr,
            train_loss=float(sums[0] / (steps * batch)),
            train_acc=float(sums[1] / (steps * batch)),
            val_loss=float(sums[2] / (steps * val_batch)),
            val_acc=float(sums[3] / (steps * val_batch)),
            argmax_val_acc=self._argmax_accuracy(evaluate),
            seconds=time.perf_counter() - started,
            op_probabilities=net.op_probabilities(),
            edge_probabilities=net.edge_probabilities(),
        )
        self.history.append(record)
        return record

    def epoch_phase(self, epoch: int) -> str:
        """``"weights"`` for an epoch without architecture updates (a warm-up epoch, every epoch
        of the ``after`` schedule), else ``"joint"``."""
        after = self.config.arch_schedule == "after"
        return "weights" if after or epoch < self.config.warmup_epochs else "joint"

    @property
    def arch_rounds(self) -> int:
        """Rows of the multinomials' fit on frozen weights (0 on the ``joint`` schedule)."""
        if self.config.arch_schedule != "after":
            return 0
        return math.ceil(self.config.arch_steps / ARCH_ROUND_STEPS)

    def run_arch_round(self, index: int, *, progress: bool, evaluate: bool = True) -> EpochRecord:
        """Round ``index`` (0-based) of the ``after`` schedule: up to :data:`ARCH_ROUND_STEPS`
        steps of the multinomials on the frozen weights; one history row (``phase="arch"``)."""
        config = self.config
        started = time.perf_counter()
        first = index * ARCH_ROUND_STEPS
        steps = min(ARCH_ROUND_STEPS, config.arch_steps - first)
        epoch = config.epochs + index
        bar = tqdm(range(steps), desc=f"multinomials {index + 1}/{self.arch_rounds}",
                   disable=not progress, file=sys.stderr, dynamic_ncols=True)  # fmt: skip
        sums = np.zeros(2)
        for step in bar:
            factor = arch_fit_rate(first + step, config.arch_steps)
            for group, lr in zip(self.arch_optimizer.param_groups, self.arch_lrs, strict=True):
                group["lr"] = lr * factor
            if config.arch_gradient == "score_function":
                loss, acc = self._score_function_step(epoch, first + step)
            else:  # the straight-through gradient at the final temperature
                x, y = self._arch_batch()
                loss, correct = self._arch_step(x, y, config.tau_end, epoch, first + step)
                acc = correct / len(y)
            sums += (loss, acc)
            bar.set_postfix(loss=f"{sums[0] / (step + 1):.3f}", refresh=False)
        bar.close()
        record = EpochRecord(
            epoch=epoch,
            phase="arch",
            temperature=math.nan if config.arch_gradient == "score_function" else config.tau_end,
            weight_lr=0.0,
            train_loss=math.nan,
            train_acc=math.nan,
            val_loss=float(sums[0] / steps),
            val_acc=float(sums[1] / steps),
            argmax_val_acc=self._argmax_accuracy(evaluate),
            seconds=time.perf_counter() - started,
            op_probabilities=self.supernet.op_probabilities(),
            edge_probabilities=self.supernet.edge_probabilities(),
        )
        self.history.append(record)
        return record

    def _argmax_accuracy(self, evaluate: bool) -> float:
        """The argmax architecture's accuracy on the whole validation split (NaN: not asked)."""
        if not evaluate:
            return math.nan
        argmax = self.supernet.argmax_architecture()
        batch_size = max(256, self.config.batch_size)
        return float(evaluate_architecture(self.supernet, argmax, self.data.val,
                                           batch_size=batch_size, amp=self.amp)[1])  # fmt: skip

    def _arch_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``arch_batch`` validation examples drawn without replacement (all when fewer)."""
        val = self.data.val
        n = min(self.config.arch_batch, len(val))
        idx = torch.randperm(len(val), generator=self.data_generator)[:n].to(self.device)
        return val.x[idx], val.y[idx]

    def _score_function_step(self, epoch: int, step: int) -> tuple[float, float]:
        """One Adam step of the multinomials by the score-function estimate
        (:func:`surrogate.score_function.score_function_objective`): ``arch_samples`` draws of
        the sampling process, each scored on the same validation batch (or by the distillation
        target) without gradients. Returns the samples' mean loss and accuracy (NaN for a
        distilled target)."""
        config, net = self.config, self.supernet
        samples = [net.sample(self.sample_generator, 1.0, differentiable=False)
                   for _ in range(config.arch_samples)]  # fmt: skip
        losses, acc = self._sample_losses(samples)
        if not np.isfinite(losses).all():
            raise TrainingError(
                f"A sampled architecture's loss became {losses.tolist()} at epoch {epoch}, step "
                f"{step}; the shared weights may have diverged."
            )
        spread = float(np.std(losses, ddof=1))
        old = self.loss_spread
        self.loss_spread = (
            spread if math.isnan(old) else SPREAD_DECAY * old + (1 - SPREAD_DECAY) * spread
        )
        objective = score_function_objective(
            net.alpha,
            net.beta,
            np.stack([s.op_index for s in samples]),  # (S, K, V-2)
            np.stack([s.edges for s in samples]),  # (S, K, E)
            losses,
            entropy_weight=config.arch_entropy * self.loss_spread,
            learned_edges=self.learned_edges,
        )
        grads = torch.autograd.grad(objective, self.arch, allow_unused=True)
        self.arch_optimizer.zero_grad(set_to_none=True)
        for param, grad in zip(self.arch, grads, strict=True):
            param.grad = grad
        self.arch_optimizer.step()
        return float(np.mean(losses)), acc

    def _sample_losses(self, samples: Sequence[ArchitectureSample]) -> tuple[np.ndarray, float]:
        """``(S,)`` the losses of the sampled architectures, and their mean accuracy: the
        cross-entropy of each on one validation batch (``arch_target="loss"``), or the
        distillation target's values."""
        if self.arch_target is not None:
            archs = [self.supernet.architecture_of(s) for s in samples]
            losses = np.asarray(self.arch_target(archs), dtype=np.float64)
            if losses.shape != (len(samples),):
                raise TrainingError(
                    f"The arch_target must return one loss per architecture ({len(samples)},); "
                    f"got shape {losses.shape}."
                )
            return losses, math.nan
        x, y = self._arch_batch()
        losses, correct = np.empty(len(samples)), 0
        for i, sample in enumerate(samples):
            with torch.no_grad(), self.amp.autocast():
                logits = self.supernet(x, sample=sample)  # (B, num_classes)
            losses[i] = float(F.cross_entropy(logits.float(), y))
            correct += int((logits.argmax(dim=1) == y).sum())
        return losses, correct / (len(samples) * len(y))

    def _loss(
        self, x: torch.Tensor, y: torch.Tensor, tau: float, differentiable: bool
    ) -> tuple[torch.Tensor, int]:
        sample = self.supernet.sample(self.sample_generator, tau, differentiable=differentiable)
        with self.amp.autocast():
            logits = self.supernet(x, sample=sample)  # (B, num_classes)
        loss = F.cross_entropy(logits.float(), y)
        correct = int((logits.argmax(dim=1) == y).sum())
        return loss, correct

    @staticmethod
    def _check_finite(loss: torch.Tensor, what: str, epoch: int, step: int) -> float:
        value = float(loss.detach())
        if not math.isfinite(value):
            raise TrainingError(
                f"The {what} loss became {value} at epoch {epoch}, step {step}; lower the "
                "learning rates, or enable grad_clip."
            )
        return value

    def _uniform_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, int]:
        """The loss of one architecture drawn uniformly from the space's distinct cells."""
        assert self.uniform_cells is not None
        picks = torch.randint(
            len(self.uniform_cells), (self.supernet.num_cells,), generator=self.sample_generator
        )
        architecture = [self.uniform_cells[int(i)] for i in picks]  # Space indexing
        with self.amp.autocast():
            logits = self.supernet(x, architecture)  # (B, num_classes)
        loss = F.cross_entropy(logits.float(), y)
        return loss, int((logits.argmax(dim=1) == y).sum())

    def _weight_step(
        self, x: torch.Tensor, y: torch.Tensor, tau: float, epoch: int, step: int
    ) -> tuple[float, int]:
        """One SGD step of the shared weights on a training batch (a non-differentiable hard
        sample, or a uniformly drawn cell with ``weight_sampling="uniform"``: the architecture
        parameters are not in the graph)."""
        if self.uniform_cells is None:
            loss, correct = self._loss(x, y, tau, differentiable=False)
        else:
            loss, correct = self._uniform_loss(x, y)
        value = self._check_finite(loss, "training", epoch, step)
        self.weight_optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.config.grad_clip > 0:
            self.scaler.unscale_(self.weight_optimizer)
            torch.nn.utils.clip_grad_norm_(self.weights, self.config.grad_clip)
        self.scaler.step(self.weight_optimizer)
        return value, correct

    def _arch_step(
        self, x: torch.Tensor, y: torch.Tensor, tau: float, epoch: int, step: int
    ) -> tuple[float, int]:
        """One Adam step of ``alpha`` (and ``beta``) on a validation batch; gradients reach them
        through the straight-through sample only (``autograd.grad``: no weight gradients are
        accumulated)."""
        loss, correct = self._loss(x, y, tau, differentiable=True)
        value = self._check_finite(loss, "validation", epoch, step)
        grads = torch.autograd.grad(self.scaler.scale(loss), self.arch, allow_unused=True)
        if self.config.shortcut == "frozen" and len(grads) > 1 and grads[1] is not None:
            grads = (grads[0], grads[1].clone())
            grads[1][:, self.shortcut] = 0.0  # the input -> output edge keeps its prior
        self.arch_optimizer.zero_grad(set_to_none=True)
        for param, grad in zip(self.arch, grads, strict=True):
            param.grad = grad  # None (skipped by Adam) when no module of it ran
        self.scaler.step(self.arch_optimizer)
        self.scaler.update()
        return value, correct

    @torch.no_grad()
    def _val_step(
        self, x: torch.Tensor, y: torch.Tensor, tau: float, epoch: int, step: int
    ) -> tuple[float, int]:
        """A warm-up epoch's validation batch: the loss of a sample, no update."""
        loss, correct = self._loss(x, y, tau, differentiable=False)
        return self._check_finite(loss, "validation", epoch, step), correct

    # -- checkpoints --------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "config": self.config.to_dict(),
            "epochs_done": len(self.history),
            "supernet": self.supernet.state_dict(),
            "weight_optimizer": self.weight_optimizer.state_dict(),
            "arch_optimizer": self.arch_optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "generators": {
                "data": self.data_generator.get_state(),
                "sample": self.sample_generator.get_state(),
                "supernet": self.supernet.generator.get_state(),
            },
            "history": [record.to_state() for record in self.history],
            "schedule_epochs": self.schedule_epochs,
            "loss_spread": self.loss_spread,
            "torch_version": str(torch.__version__),
        }

    def save(self, path: Path) -> None:
        _atomic_torch_save(self.state(), path)

    def load(self, path: Path) -> None:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # a truncated, foreign or corrupt file
            first_line = (str(err).strip().splitlines() or [""])[0][:200]
            raise TrainingError(
                f"Cannot read the supernet checkpoint {str(path)!r} ({type(err).__name__}: "
                f"{first_line}); move it away to start over."
            ) from None
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise TrainingError(
                f"The file {str(path)!r} is not a supernet checkpoint of format "
                f"{CHECKPOINT_FORMAT!r}."
            )
        saved = stored_config(state["config"]).replace(device=self.config.device)
        done = len(state["history"])
        if extends(saved, self.config, done):  # a finished run, asked for more epochs
            saved = saved.replace(epochs=self.config.epochs)
        if saved != self.config:  # the device is not part of a run's identity
            diffs = "; ".join(config_differences(saved, self.config))
            raise ConfigError(
                f"The checkpoint {str(path)!r} belongs to a different config (checkpoint != "
                f"asked: {diffs})."
            )
        self.supernet.load_state_dict(state["supernet"])
        self.weight_optimizer.load_state_dict(state["weight_optimizer"])
        self.arch_optimizer.load_state_dict(state["arch_optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.data_generator.set_state(state["generators"]["data"])
        self.sample_generator.set_state(state["generators"]["sample"])
        self.supernet.generator.set_state(state["generators"]["supernet"])
        self.history = [EpochRecord.from_state(r) for r in state["history"]]
        self.loss_spread = float(state.get("loss_spread", math.nan))
        self.schedule_epochs = int(state.get("schedule_epochs", stored_config(
            state["config"]).epochs))  # fmt: skip


def extends(saved: SupernetConfig, asked: SupernetConfig, epochs_done: int) -> bool:
    """Whether ``asked`` extends the finished run of ``saved``: the same config but for a
    larger ``epochs``, and every epoch of ``saved`` done. A run of the ``after`` schedule is never
    extended (its multinomials were fitted on the weights of its last epoch)."""
    return (
        saved.arch_schedule == "joint"
        and asked.epochs > saved.epochs == epochs_done
        and saved.replace(epochs=asked.epochs, device=asked.device) == asked
    )


def _atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` to memory, then write the bytes atomically (temporary file, fsync, rename).

    Serialising first makes a failed write (a full disk, a file-size limit) the ``OSError`` of
    the write itself, not torch's internal error, and it becomes a :class:`TrainingError` that
    names the cause; the previous checkpoint at ``path`` is left as it was.
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    try:
        with atomic_write(path, "wb") as handle:
            handle.write(buffer.getbuffer())
    except OSError as err:
        raise TrainingError(
            f"Cannot write the supernet checkpoint {str(path)!r} ({err.strerror or err}); the "
            f"previous checkpoint there, if any, is intact. Free some space and run again to "
            f"resume from it."
        ) from err


def train_supernet(
    config: SupernetConfig,
    dataset: Dataset,
    *,
    checkpoint_path: str | os.PathLike[str] | None = None,
    progress: bool = True,
    callback: Callable[[EpochRecord], None] | None = None,
    on_checkpoint: Callable[[Sequence[EpochRecord]], None] | None = None,
    arch_target: ArchTarget | None = None,
) -> SupernetResult:
    """Train the supernet that ``config`` describes on ``dataset`` (its train and val splits).

    Args:
        config: the run's configuration (``config.dataset`` is informative here: the data are
            ``dataset``).
        dataset: the splits, moved to the config's device if they are elsewhere.
        checkpoint_path: written after every epoch; if it exists, the run resumes from it
            (which gives, on the CPU, exactly the numbers of an uninterrupted run).
        progress: show a tqdm bar per epoch on stderr.
        callback: called with each epoch's record after its checkpoint is written.
        on_checkpoint: called with the whole history (resumed epochs included) after each
            checkpoint is written: to write the per-epoch tables with it.
        arch_target: with ``config.arch_target`` other than ``"loss"``, the distillation
            target: architectures -> ``(S,)`` losses (lower = better).

    Raises:
        ConfigError: the checkpoint belongs to another config, or the device is unavailable.
        TrainingError: the checkpoint is unreadable or cannot be written (a full disk), a loss
            or a Gumbel sample is not finite.
        DatasetError: a split has fewer than 2 examples.
    """
    if not isinstance(config, SupernetConfig):
        raise ConfigError(f"train_supernet needs a SupernetConfig; got {type(config).__name__}.")
    started = time.perf_counter()
    device = resolve_device(config.device)
    trainer = SupernetTrainer(config, dataset, device, arch_target)
    path = None if checkpoint_path is None else Path(checkpoint_path)
    if path is not None and path.exists():
        trainer.load(path)
    resumed = len(trainer.history)
    for row in range(resumed, config.epochs + trainer.arch_rounds):
        if row < config.epochs:
            record = trainer.run_epoch(row, progress=progress)
        else:
            record = trainer.run_arch_round(row - config.epochs, progress=progress)
        if path is not None:
            trainer.save(path)
            if on_checkpoint is not None:
                on_checkpoint(tuple(trainer.history))
        if callback is not None:
            callback(record)
    return SupernetResult(
        supernet=trainer.supernet,
        config=config,
        history=tuple(trainer.history),
        device=device,
        seconds=time.perf_counter() - started,
        resumed_epochs=resumed,
    )


def history_rows(history: Sequence[EpochRecord]) -> Iterator[tuple[Any, ...]]:
    """One row per epoch, in :data:`HISTORY_COLUMNS` order (``epoch`` from 1)."""
    for record in history:
        row = {c: getattr(record, c) for c in HISTORY_COLUMNS}
        row["epoch"] = record.epoch + 1
        yield tuple(row.values())


def multinomial_rows(
    history: Sequence[EpochRecord], ops: Sequence[str]
) -> Iterator[tuple[Any, ...]]:
    """Rows ``(epoch, cell, module, option, probability)`` (:data:`MULTINOMIAL_COLUMNS`;
    ``epoch`` from 1).

    Ops: module ``"vertex j"`` (``j = 1 .. V-2``), one row per op. Edges: module
    ``"edge i-j"``, option ``"present"``, the probability that the edge is present.
    """
    for record in history:
        op_probs, edge_probs = record.op_probabilities, record.edge_probabilities
        num_vertices = op_probs.shape[1] + 2
        rows, cols = np.triu_indices(num_vertices, 1)
        for k in range(op_probs.shape[0]):
            for m in range(op_probs.shape[1]):
                for o, op in enumerate(ops):
                    yield record.epoch + 1, k, f"vertex {m + 1}", op, float(op_probs[k, m, o])
            for e, (i, j) in enumerate(zip(rows, cols, strict=True)):
                yield record.epoch + 1, k, f"edge {i}-{j}", "present", float(edge_probs[k, e])
