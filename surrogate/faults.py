"""Fault injection for tests and reliability drills: a hook that candidate training calls.

The training loops of :func:`~surrogate.candidate.train_candidate` (one network) and
:func:`~surrogate.batched.train_candidates` (a stack of them) call each candidate's
:class:`TrainingHook` at the same named points, so a fault strikes both executions alike and
no loop holds a branch for it. The default hook, :data:`NO_HOOK`, does nothing;
:class:`FaultPlan` is the one the drills use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from surrogate.errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = ["NO_HOOK", "FaultPlan", "TrainingHook"]


class TrainingHook:
    """The named points of a candidate's training loop; this base does nothing at any of them.

    - :meth:`on_epoch_start` ``(epoch)``: before the first step of each (0-based) epoch. An
      exception raised here fails the candidate (a FAILED result with
      ``"ExceptionType: message"``); in a stack, that candidate alone, the others go on.
    - :meth:`on_loss` ``(epoch, loss)``: each step's training loss (the candidate's own mean
      loss, a 0-dim tensor), before the backward pass; the loss it returns is the one used.
    """

    def on_epoch_start(self, epoch: int) -> None:
        """Called before the first step of ``epoch``."""

    def on_loss(self, epoch: int, loss: torch.Tensor) -> torch.Tensor:
        """The training loss to use for a step of ``epoch`` (here: ``loss`` itself)."""
        return loss


NO_HOOK = TrainingHook()
"""The hook of a candidate trained without faults."""


@dataclass(frozen=True)
class FaultPlan(TrainingHook):
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

    def on_epoch_start(self, epoch: int) -> None:
        """Raise the injected ``RuntimeError`` at the start of ``raise_at_epoch``."""
        if self.raise_at_epoch == epoch:
            raise RuntimeError(f"injected fault at epoch {epoch} (FaultPlan.raise_at_epoch)")

    def on_loss(self, epoch: int, loss: torch.Tensor) -> torch.Tensor:
        """``loss`` times :meth:`poison` in the poisoned epoch, else ``loss``."""
        poison = self.poison(epoch)
        return loss if poison is None else loss * poison
