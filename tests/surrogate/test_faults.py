"""Tests of surrogate.faults: the training hook's named points, called alike by single and
stacked training, and the FaultPlan of the reliability drills."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch

from surrogate.batched import train_candidates
from surrogate.candidate import CandidateStatus, candidate_preset, train_candidate
from surrogate.data import Dataset, load_dataset
from surrogate.errors import ConfigError
from surrogate.faults import NO_HOOK, FaultPlan
from surrogate.recipe import Recipe
from tests.surrogate.test_batched import ARCHS, SEEDS

CONFIG = candidate_preset("smoke").replace(channels=4, epochs=2, batch_size=32)


@pytest.fixture(scope="module")
def data() -> Dataset:
    return load_dataset("digits", limit=200)  # 120 / 40 / 40 examples


def test_the_default_hook_does_nothing() -> None:
    NO_HOOK.on_epoch_start(0)
    loss = torch.tensor(1.5)
    assert NO_HOOK.on_loss(3, loss) is loss


def test_a_fault_plan_acts_at_its_epochs_only() -> None:
    plan = FaultPlan(nan_at_epoch=1, inf_at_epoch=2, raise_at_epoch=3)
    loss = torch.tensor(2.0)
    assert plan.on_loss(0, loss) is loss
    assert math.isnan(plan.on_loss(1, loss)) and math.isinf(plan.on_loss(2, loss))
    plan.on_epoch_start(2)
    with pytest.raises(RuntimeError, match=r"^injected fault at epoch 3 \(FaultPlan.raise_at_"):
        plan.on_epoch_start(3)


@dataclass(frozen=True)
class Recording(FaultPlan):
    """A fault plan that records every call of the training loop's hook points."""

    calls: list[tuple[Any, ...]] = field(default_factory=list, compare=False)

    def on_epoch_start(self, epoch: int) -> None:
        self.calls.append(("epoch", epoch))
        super().on_epoch_start(epoch)

    def on_loss(self, epoch: int, loss: torch.Tensor) -> torch.Tensor:
        self.calls.append(("loss", epoch, loss.dim()))
        return super().on_loss(epoch, loss)


def test_single_and_stacked_training_call_the_hook_at_the_same_points(data: Dataset) -> None:
    def plans() -> list[Recording]:
        return [Recording(), Recording(raise_at_epoch=1), Recording()]

    singles = plans()
    for arch, seed, hook in zip(ARCHS, SEEDS, singles, strict=True):
        train_candidate(arch, data, CONFIG, seed, fault=hook)
    stacked = plans()
    results = train_candidates(ARCHS, data, CONFIG, SEEDS, faults=stacked)
    steps = len(Recipe.of(CONFIG, data).batches)  # 120 examples in batches of 32: 4
    full = [("epoch", 0)] + [("loss", 0, 0)] * steps + [("epoch", 1)] + [("loss", 1, 0)] * steps
    failed = full[: steps + 2]  # raised at the start of epoch 1, before any of its steps
    assert [h.calls for h in singles] == [h.calls for h in stacked] == [full, failed, full]
    assert [r.status for r in results] == [
        CandidateStatus.COMPLETE,
        CandidateStatus.FAILED,
        CandidateStatus.COMPLETE,
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"nan_at_epoch": -1}, "'nan_at_epoch' of a FaultPlan must be None or an int >= 0; got -1"),
        ({"inf_at_epoch": 1.0}, "'inf_at_epoch' of a FaultPlan must be None or an int >= 0"),
        ({"raise_at_epoch": True}, "'raise_at_epoch' of a FaultPlan .*; got True"),
        ({"kill_worker": 1}, "'kill_worker' of a FaultPlan must be a bool; got 1"),
    ],
)
def test_fault_plan_validates(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        FaultPlan(**kwargs)  # type: ignore[arg-type]
