"""The stand-alone training recipe that single and stacked candidate training both follow.

A :class:`Recipe` is a :class:`~surrogate.candidate.CandidateConfig` applied to a dataset. It
owns every choice that sets a candidate's numbers, as steps that
:func:`~surrogate.candidate.train_candidate` (one network) and
:func:`~surrogate.batched.train_candidates` (many, as one channel-stacked network) both take,
so that the two executions agree by construction:

- seeds: a candidate's seed gives three derived seeds (:meth:`Recipe.streams`): the weights'
  initialisation, the batch order and the shifts; nothing touches torch's global RNG;
- optimiser: SGD with Nesterov momentum and L2 weight decay on every parameter
  (:meth:`Recipe.optimizer`), its learning rate set before each epoch from
  :func:`cosine_learning_rates` (``lr`` annealed towards 0, stepped once per epoch);
- batches: each epoch visits the whole training split in the order ``randperm`` of the
  candidate's order generator gives (:meth:`Recipe.order`), cut into the slices of
  :func:`chunks`;
- shifts (``augment``): every training image moves by its own random offset of up to
  :func:`shift_limit`, zero padded (:func:`shift`), drawn batch by batch from the candidate's
  shift generator (:meth:`Recipe.draw_shifts`);
- loss: each candidate's own mean cross-entropy in float32, label smoothed
  (:meth:`Recipe.loss`);
- divergence: an epoch whose training loss, or whose weights after it, are not finite ends
  the candidate as DIVERGED with the network of its last finite epoch
  (:meth:`Recipe.end_epoch`, :class:`Progress`);
- evaluation: after the last epoch, the mean cross-entropy and accuracy on the validation
  and test splits, in evaluation mode, in batches of at most ``max(256, batch_size)``
  (:func:`evaluate_each`);
- the result: a :class:`CandidateResult` (:meth:`Progress.result`).

Mixed precision (``amp``, CUDA only) is the one thing the executions may apply differently:
a stack never uses float16 loss scaling, which would skip a step for every member at once.
"""

from __future__ import annotations

import enum
import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dagspace.checks import check_int
from surrogate.data import Dataset, Split
from surrogate.device import AmpPolicy, derive_seeds, torch_generator
from surrogate.errors import ConfigError

if TYPE_CHECKING:
    from surrogate.candidate import CandidateConfig

__all__ = [
    "CandidateResult",
    "CandidateStatus",
    "Progress",
    "Recipe",
    "all_finite",
    "chunks",
    "cosine_learning_rates",
    "error_text",
    "evaluate",
    "evaluate_each",
    "random_shift",
    "shift",
    "shift_limit",
    "snapshot",
]


# ---------------------------------------------------------------------------------- results


class CandidateStatus(enum.IntEnum):
    """How a candidate's training ended; names and values match ``analysis.EvalStatus``."""

    COMPLETE = 2
    DIVERGED = 3
    FAILED = 4


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


def error_text(err: BaseException) -> str:
    """How a FAILED result names the exception that stopped it: ``"ExceptionType: message"``."""
    return f"{type(err).__name__}: {err}"


# -------------------------------------------------------------------------- pure pieces


def chunks(n: int, batch_size: int) -> list[slice]:
    """Near-equal consecutive slices that cover ``range(n)``: the batches of an epoch (in its
    shuffled order) and of an evaluation (in split order).

    The rule: ``count = max(1, min(ceil(n / batch_size), n // 2))`` slices, whose sizes differ
    by at most one. That is the fewest slices of at most ``batch_size`` examples, unless those
    would leave a slice with a single example (batch norm needs two): then one fewer slice,
    which happens only for ``batch_size`` 2 and an odd ``n`` (one slice holds 3, so ``n = 3``
    is one slice of 3) or for ``batch_size`` 1. ``n = 1`` gives one slice of 1 and ``n = 0``
    one empty slice.

    >>> chunks(7, 3)
    [slice(0, 2, None), slice(2, 5, None), slice(5, 7, None)]
    >>> chunks(3, 2)
    [slice(0, 3, None)]

    Raises:
        ConfigError: ``n`` is not an int >= 0 or ``batch_size`` not an int >= 1.
    """
    n = check_int("chunks", "n", n, 0, ConfigError)
    batch_size = check_int("chunks", "batch_size", batch_size, 1, ConfigError)
    count = max(1, min(math.ceil(n / batch_size), n // 2))
    bounds = np.linspace(0, n, count + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds)]


def cosine_learning_rates(lr: float, epochs: int) -> tuple[float, ...]:
    """The learning rate of each of ``epochs`` epochs: ``lr`` annealed to 0 by a cosine,
    ``lr_e = lr * (1 + cos(pi * e / epochs)) / 2`` for ``e = 0 .. epochs - 1`` (so the last
    epoch's rate is small but not 0).

    Computed as torch's ``CosineAnnealingLR`` computes it when stepped once per epoch, each
    rate from the one before, ``lr_e = lr_{e-1} (1 + cos(pi e / T)) / (1 + cos(pi (e-1) / T))``:
    so the rates equal that scheduler's to the last bit (the closed form differs from them in
    the last bits), and training keeps the numbers it had when it stepped that scheduler.
    """
    rates = [float(lr)]
    for e in range(1, epochs):
        ratio = (1 + math.cos(math.pi * e / epochs)) / (1 + math.cos(math.pi * (e - 1) / epochs))
        rates.append(ratio * rates[-1])
    return tuple(rates)


def shift_limit(height: int, width: int) -> tuple[int, int]:
    """The largest random shift ``(dy, dx)`` of an image of ``height x width``: an eighth of
    each side, at least 1, and 0 along a side of length 1."""
    dy, dx = (0 if n == 1 else max(1, n // 8) for n in (height, width))
    return dy, dx


def shift(
    x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, limit: tuple[int, int]
) -> torch.Tensor:
    """Every image of ``x`` ``(..., C, H, W)`` moved by its own offset, padding with zeros.

    The image is padded by ``limit = (dy, dx)`` on each side and cut back to ``H x W`` from row
    ``top`` and column ``left`` (ints in ``[0, 2 dy]`` and ``[0, 2 dx]``, shaped like ``x``'s
    leading dimensions, on any device): ``top = dy, left = dx`` leaves it in place. Returns a
    new tensor shaped like ``x``.
    """
    *_, channels, height, width = x.shape
    dy, dx = limit
    images = x.reshape(-1, channels, height, width)  # (N, C, H, W)
    top, left = top.reshape(-1).to(x.device), left.reshape(-1).to(x.device)  # (N,)
    padded = F.pad(images, (dx, dx, dy, dy))  # (N, C, H + 2 dy, W + 2 dx)
    rows = top[:, None] + torch.arange(height, device=x.device)  # (N, H)
    cols = left[:, None] + torch.arange(width, device=x.device)  # (N, W)
    n = torch.arange(images.shape[0], device=x.device)[:, None, None, None]
    c = torch.arange(channels, device=x.device)[None, :, None, None]
    moved = padded[n, c, rows[:, None, :, None], cols[:, None, None, :]]  # (N, C, H, W)
    return moved.reshape(x.shape)


def _draw_offsets(
    generator: torch.Generator, count: int, limit: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``count`` images' offsets for :func:`shift` (``top``, then ``left``, each ``(count,)``,
    on the CPU), or None (nothing drawn) when ``limit`` is ``(0, 0)``."""
    dy, dx = limit
    if dy == 0 and dx == 0:
        return None
    top = torch.randint(0, 2 * dy + 1, (count,), generator=generator)
    left = torch.randint(0, 2 * dx + 1, (count,), generator=generator)
    return top, left


def random_shift(
    x: torch.Tensor, generator: torch.Generator, max_shift: tuple[int, int] | None = None
) -> torch.Tensor:
    """Shift every image of ``x`` ``(B, C, H, W)`` by its own random offset, padding with 0.

    Offsets are drawn uniformly from ``[-max_shift, max_shift]`` per spatial dimension with
    ``generator`` (a CPU generator: the same draws on any device). ``max_shift`` defaults to
    :func:`shift_limit` of the images. Returns a new ``(B, C, H, W)`` tensor.
    """
    limit = shift_limit(*x.shape[-2:]) if max_shift is None else max_shift
    offsets = _draw_offsets(generator, x.shape[0], limit)
    return x.clone() if offsets is None else shift(x, *offsets, limit)


# ------------------------------------------------------------------------------ evaluation


@torch.no_grad()
def evaluate_each(
    model: nn.Module,
    split: Split,
    batch_size: int = 256,
    *,
    amp: AmpPolicy | None = None,
    members: int = 1,
    forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
    eval_mode: bool = True,
) -> list[tuple[float, float]]:
    """Mean cross-entropy and accuracy over ``split`` of each of the ``members`` networks that
    ``model`` runs at once.

    ``forward(x)`` maps a batch ``x`` ``(B, C, H, W)`` to logits ``(B, members, N)``, member
    ``g``'s in ``[:, g]`` (default: ``model(x)[:, None]``, one member). Batches are the
    :func:`chunks` of at most ``batch_size`` in split order; a member's loss is its own
    ``F.cross_entropy(..., reduction="sum")`` per batch, summed in float64. With ``eval_mode``
    the model runs in evaluation mode and its mode is restored afterwards (the supernet's
    pseudo environment passes False: its batch norms always use batch statistics). An empty
    split gives ``(nan, nan)`` per member.
    """
    if len(split) == 0:
        return [(math.nan, math.nan)] * members
    policy = amp or AmpPolicy(split.x.device, None)
    run = forward or (lambda x: model(x)[:, None])
    was_training = model.training
    if eval_mode:
        model.eval()
    try:
        loss_sum = torch.zeros(members, dtype=torch.float64, device=split.x.device)
        correct = torch.zeros(members, dtype=torch.int64, device=split.x.device)
        for part in chunks(len(split), batch_size):
            x, y = split.x[part], split.y[part]  # (B, C, H, W), (B,)
            with policy.autocast():
                logits = run(x)  # (B, members, N)
            losses = [F.cross_entropy(own.float(), y, reduction="sum") for own in logits.unbind(1)]
            loss_sum += torch.stack(losses).double()
            correct += (logits.argmax(dim=2) == y[:, None]).sum(0)
    finally:
        if eval_mode:
            model.train(was_training)
    n = len(split)
    return [(s / n, c / n) for s, c in zip(loss_sum.tolist(), correct.tolist(), strict=True)]


def evaluate(
    network: nn.Module, split: Split, batch_size: int = 256, *, amp: AmpPolicy | None = None
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``network`` (in evaluation mode) over ``split``
    (:func:`evaluate_each` of one network); ``(nan, nan)`` for an empty split."""
    return evaluate_each(network, split, batch_size, amp=amp)[0]


# ------------------------------------------------------------------------------ divergence


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of ``module``'s state (parameters and batch-norm statistics), on its device."""
    return {name: value.detach().clone() for name, value in module.state_dict().items()}


def all_finite(module: nn.Module) -> torch.Tensor:
    """Whether every floating-point parameter and buffer of ``module`` is finite: a 0-dim bool
    tensor on its device (no sync)."""
    values = [v for v in module.state_dict().values() if v.is_floating_point()]
    return torch.stack([torch.isfinite(v).all() for v in values]).all()


@dataclass
class Progress:
    """One candidate's training so far (mutable): what its result will report.

    ``train_loss`` and ``train_accuracy``: of the last epoch that ended finite (NaN before the
    first); ``epochs_run``: how many did; ``diverged_epoch``: the epoch that did not.
    """

    params: int
    macs: int
    train_loss: float = math.nan
    train_accuracy: float = math.nan
    epochs_run: int = 0
    diverged_epoch: int | None = None

    def end_epoch(
        self, epoch: int, loss_sum: float, correct: float, examples: int, finite: bool
    ) -> bool:
        """Record ``epoch`` from its summed training loss and correct count over ``examples``
        and whether the weights after it are ``finite``. Returns False (and sets
        ``diverged_epoch``) when it diverged: the mean loss or the weights not finite. A finite
        loss is not enough: the epoch's last steps may have made the weights (or the batch-norm
        statistics) non-finite, and such a state must not be kept or reported.
        """
        loss = loss_sum / examples
        if not (math.isfinite(loss) and finite):
            self.diverged_epoch = epoch
            return False
        self.train_loss, self.train_accuracy = loss, int(correct) / examples
        self.epochs_run = epoch + 1
        return True

    def result(
        self,
        val: tuple[float, float],
        test: tuple[float, float],
        *,
        seconds: float,
        device: str,
    ) -> CandidateResult:
        """The candidate's result, given the ``(loss, accuracy)`` of its final network on the
        validation and test splits: COMPLETE, or DIVERGED (with the epoch in its message)."""
        status, error = CandidateStatus.COMPLETE, None
        if self.diverged_epoch is not None:
            status = CandidateStatus.DIVERGED
            error = (
                f"The training loss (or the network's weights) was not finite in epoch "
                f"{self.diverged_epoch}; the metrics are those of the network after "
                f"{self.epochs_run} epoch(s)."
            )
        (val_loss, val_accuracy), (test_loss, test_accuracy) = val, test
        return CandidateResult(
            status, val_accuracy, val_loss, test_accuracy, test_loss, self.train_loss,
            self.train_accuracy, self.params, self.macs, seconds, self.epochs_run, device,
            error=error, diverged_epoch=self.diverged_epoch,
        )  # fmt: skip


# ---------------------------------------------------------------------------------- recipe


@dataclass(frozen=True)
class Recipe:
    """``config`` applied to a training split of ``examples`` images of ``image_shape``
    ``(H, W)``: the steps of the module docstring, for one candidate or for a stack of them.

    ``learning_rates``: per epoch (:func:`cosine_learning_rates`); ``batches``: the slices of
    an epoch's order (:func:`chunks`); ``max_shift``: ``(dy, dx)`` of the shifts, ``(0, 0)``
    without ``augment``; ``eval_batch``: the evaluation's batch size.
    """

    config: CandidateConfig
    examples: int
    image_shape: tuple[int, int]
    learning_rates: tuple[float, ...] = field(init=False, repr=False, compare=False)
    batches: tuple[slice, ...] = field(init=False, repr=False, compare=False)
    max_shift: tuple[int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        c = self.config
        lrs = cosine_learning_rates(c.lr, c.epochs)
        limit = shift_limit(*self.image_shape) if c.augment else (0, 0)
        object.__setattr__(self, "learning_rates", lrs)
        object.__setattr__(self, "batches", tuple(chunks(self.examples, c.batch_size)))
        object.__setattr__(self, "max_shift", limit)

    @classmethod
    def of(cls, config: CandidateConfig, dataset: Dataset) -> Recipe:
        """The recipe of ``config`` on ``dataset``'s training split."""
        _, height, width = dataset.input_shape
        return cls(config, len(dataset.train), (height, width))

    @property
    def eval_batch(self) -> int:
        return max(256, self.config.batch_size)

    def streams(self, seed: int) -> tuple[int, torch.Generator, torch.Generator]:
        """Candidate ``seed``'s initialisation seed, batch-order generator and shift generator
        (three seeds derived from ``seed``)."""
        init_seed, order_seed, shift_seed = derive_seeds(seed, 3)
        return init_seed, torch_generator(order_seed), torch_generator(shift_seed)

    def optimizer(self, parameters: Iterable[nn.Parameter]) -> torch.optim.SGD:
        """SGD with Nesterov momentum and weight decay over ``parameters`` (elementwise: one
        optimiser over a stack's parameters is one per member)."""
        c = self.config
        return torch.optim.SGD(
            parameters, lr=c.lr, momentum=c.momentum, nesterov=True, weight_decay=c.weight_decay
        )

    def set_learning_rate(self, optimizer: torch.optim.Optimizer, epoch: int) -> None:
        """Give ``optimizer`` the learning rate of ``epoch``."""
        for group in optimizer.param_groups:
            group["lr"] = self.learning_rates[epoch]

    def order(self, generator: torch.Generator) -> torch.Tensor:
        """An epoch's order of the training examples: ``(examples,)`` indices, on the CPU."""
        return torch.randperm(self.examples, generator=generator)

    def draw_shifts(
        self, generator: torch.Generator, count: int
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """A batch of ``count`` images' offsets for :func:`shift` with :attr:`max_shift`
        (``top``, then ``left``, on the CPU), or None without shifts (nothing is drawn)."""
        return _draw_offsets(generator, count, self.max_shift)

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One candidate's training loss: mean cross-entropy of ``logits`` ``(B, N)`` (in
        float32) against ``y`` ``(B,)``, label smoothed; a 0-dim tensor."""
        return F.cross_entropy(logits.float(), y, label_smoothing=self.config.label_smoothing)

    def end_epoch(
        self,
        progress: Sequence[Progress],
        epoch: int,
        loss_sums: torch.Tensor,
        corrects: torch.Tensor,
        finite: torch.Tensor,
    ) -> list[bool]:
        """End ``epoch`` for ``G`` candidates with one device sync: each one's summed training
        loss, correct count and whether its weights are finite (``(G,)`` tensors) go to its
        :meth:`Progress.end_epoch`. Returns, per candidate, whether it goes on (False: it
        diverged)."""
        summary = torch.stack([loss_sums.double(), corrects.double(), finite.double()])  # (3, G)
        rows = zip(progress, *summary.tolist(), strict=True)
        n = self.examples
        return [p.end_epoch(epoch, loss, correct, n, ok == 1.0) for p, loss, correct, ok in rows]

    def evaluate_final(
        self,
        model: nn.Module,
        data: Dataset,
        amp: AmpPolicy,
        *,
        members: int = 1,
        forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> list[tuple[tuple[float, float], tuple[float, float]]]:
        """Each member's ``(loss, accuracy)`` on the validation and on the test split
        (:func:`evaluate_each`, at :attr:`eval_batch`)."""
        val, test = (
            evaluate_each(model, split, self.eval_batch, amp=amp, members=members, forward=forward)
            for split in (data.val, data.test)
        )
        return list(zip(val, test, strict=True))
