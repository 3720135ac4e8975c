"""Tests of surrogate.recipe: the pieces of the training recipe that single and stacked
training share (batches, schedule, shifts, loss, evaluation, divergence, the result)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from surrogate.candidate import candidate_preset
from surrogate.data import Dataset, Split, load_dataset
from surrogate.errors import ConfigError
from surrogate.network import Network
from surrogate.recipe import (
    CandidateStatus,
    Progress,
    Recipe,
    all_finite,
    chunks,
    cosine_learning_rates,
    evaluate,
    evaluate_each,
    random_shift,
    shift,
    shift_limit,
)
from tests.surrogate.test_stacked import ARCHS

ARCH = ARCHS[0]  # two cells, every operation
SMOKE = candidate_preset("smoke")


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits", seed=0, limit=200)  # 120 / 40 / 40 examples


# ---------------------------------------------------------------------------------- batches


def _sizes(parts: list[slice]) -> list[int]:
    return [p.stop - p.start for p in parts]


@pytest.mark.parametrize("batch_size", [2, 3, 5, 64])
def test_chunks_cover_without_single_examples(batch_size: int) -> None:
    for n in range(2, 40):
        parts = chunks(n, batch_size)
        sizes = _sizes(parts)
        assert parts[0].start == 0 and parts[-1].stop == n
        assert all(a.stop == b.start for a, b in itertools.pairwise(parts))
        assert min(sizes) >= 2 and max(sizes) - min(sizes) <= 1
        # only batch_size 2 with an odd n cannot avoid one batch of 3
        assert max(sizes) <= (3 if batch_size == 2 else batch_size)
        # the fewest batches that the rule allows
        assert len(parts) == max(1, min(math.ceil(n / batch_size), n // 2))


@pytest.mark.parametrize(
    ("n", "batch_size", "sizes"),
    [
        (3, 2, [3]),  # not [2, 1]: a single example would reach batch norm alone
        (5, 2, [2, 3]),
        (4, 2, [2, 2]),
        (7, 3, [2, 3, 2]),
        (6, 4, [3, 3]),  # near-equal, not [4, 2]
        (2, 64, [2]),
        (1, 2, [1]),  # unavoidable
        (0, 2, [0]),  # one empty slice
        (5, 1, [2, 3]),  # batch_size 1: still no batch of one
    ],
)
def test_chunks_edge_cases(n: int, batch_size: int, sizes: list[int]) -> None:
    assert _sizes(chunks(n, batch_size)) == sizes


def test_chunks_reject_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="'n' parameter of chunks must be an int >= 0; got -1"):
        chunks(-1, 2)
    with pytest.raises(ConfigError, match="'batch_size' parameter of chunks must be an int >= 1"):
        chunks(4, 0)


# --------------------------------------------------------------------------------- schedule


@pytest.mark.parametrize(("lr", "epochs"), [(0.05, 1), (0.05, 3), (0.1, 10), (0.1, 108)])
def test_learning_rates_are_torch_cosine_schedule_to_the_last_bit(lr: float, epochs: int) -> None:
    weight = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([weight], lr=lr, momentum=0.9, nesterov=True)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    expected = []
    for _ in range(epochs):
        expected.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    rates = cosine_learning_rates(lr, epochs)
    assert rates == tuple(expected)  # exact: the recipe kept the numbers of that scheduler
    closed = [lr * (1 + math.cos(math.pi * e / epochs)) / 2 for e in range(epochs)]
    assert rates == pytest.approx(closed, rel=1e-12, abs=0)
    assert rates[0] == lr and all(a > b > 0 for a, b in itertools.pairwise(rates))


def test_recipe_sets_each_epochs_rate_and_its_optimiser(digits: Dataset) -> None:
    config = SMOKE.replace(epochs=4, lr=0.2, momentum=0.8, weight_decay=1e-3)
    recipe = Recipe.of(config, digits)
    assert recipe.examples == len(digits.train) and recipe.image_shape == (8, 8)
    assert recipe == Recipe.of(config, digits) and hash(recipe) == hash(Recipe.of(config, digits))
    assert recipe.learning_rates == cosine_learning_rates(0.2, 4)
    assert recipe.batches == tuple(chunks(len(digits.train), config.batch_size))
    assert recipe.eval_batch == 256
    assert Recipe.of(config.replace(batch_size=300), digits).eval_batch == 300
    optimizer = recipe.optimizer([torch.zeros(2, requires_grad=True)])
    group = optimizer.param_groups[0]
    assert (group["momentum"], group["nesterov"], group["weight_decay"]) == (0.8, True, 1e-3)
    for epoch in range(4):
        recipe.set_learning_rate(optimizer, epoch)
        assert group["lr"] == recipe.learning_rates[epoch]


# ----------------------------------------------------------------------------------- shifts


def test_shift_limit_is_an_eighth_of_a_side() -> None:
    assert shift_limit(8, 8) == (1, 1)
    assert shift_limit(32, 17) == (4, 2)
    assert shift_limit(1, 40) == (0, 5)  # a side of length 1 is never shifted
    assert shift_limit(3, 1) == (1, 0)


def test_random_shift_moves_images_with_zero_padding() -> None:
    x = torch.arange(1, 2 * 2 * 8 * 8 + 1, dtype=torch.float32).reshape(2, 2, 8, 8)
    shifted = random_shift(x, torch.Generator().manual_seed(0))
    assert shifted.shape == x.shape
    torch.testing.assert_close(shifted, random_shift(x, torch.Generator().manual_seed(0)))
    for image, out in zip(x, shifted, strict=True):
        # some offset within the default (1 pixel for a side of 8) explains the output
        matches = []
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                padded = torch.nn.functional.pad(image, (1, 1, 1, 1))
                expected = padded[:, 1 + dy : 9 + dy, 1 + dx : 9 + dx]
                matches.append(torch.equal(out, expected))
        assert sum(matches) == 1
    x1 = torch.ones(3, 1, 1, 8)  # a side of length 1 is never shifted
    out = random_shift(x1, torch.Generator().manual_seed(1), max_shift=None)
    assert out.shape == x1.shape and torch.all(out[:, :, 0, 1:-1] == 1)


def test_shift_of_stacked_images_is_each_images_own_shift() -> None:
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(5, 3, 2, 8, 8, generator=generator)  # (B, G, C, H, W)
    top = torch.randint(0, 3, (5, 3), generator=generator)
    left = torch.randint(0, 3, (5, 3), generator=generator)
    out = shift(x, top, left, (1, 1))
    for b, g in itertools.product(range(5), range(3)):
        one = shift(x[b, g][None], top[b, g][None], left[b, g][None], (1, 1))[0]
        assert torch.equal(out[b, g], one)
    centre = torch.ones(5, 3, dtype=torch.int64)  # offset (dy, dx) = (1, 1): not moved
    assert torch.equal(shift(x, centre, centre, (1, 1)), x)


def test_draw_shifts_are_random_shifts_draws(digits: Dataset) -> None:
    recipe = Recipe.of(SMOKE.replace(augment=True), digits)
    x = digits.train.x[:16]
    top, left = recipe.draw_shifts(torch.Generator().manual_seed(5), 16)  # type: ignore[misc]
    assert torch.equal(shift(x, top, left, recipe.max_shift), random_shift(
        x, torch.Generator().manual_seed(5)))  # fmt: skip
    plain = Recipe.of(SMOKE, digits)  # augment off: nothing drawn
    generator = torch.Generator().manual_seed(5)
    state = generator.get_state()
    assert plain.max_shift == (0, 0) and plain.draw_shifts(generator, 16) is None
    assert torch.equal(generator.get_state(), state)


# ------------------------------------------------------------------------------------- loss


def test_loss_is_label_smoothed_float32_cross_entropy(digits: Dataset) -> None:
    recipe = Recipe.of(SMOKE.replace(label_smoothing=0.1), digits)
    logits = torch.randn(6, 10, generator=torch.Generator().manual_seed(0)).bfloat16()
    y = torch.arange(6)
    loss = recipe.loss(logits, y)
    assert loss.dtype == torch.float32 and loss.dim() == 0
    assert torch.equal(loss, F.cross_entropy(logits.float(), y, label_smoothing=0.1))


# ------------------------------------------------------------------------------- evaluation


def test_evaluate_matches_a_direct_computation(digits: Dataset) -> None:
    network = Network(ARCH, digits.input_shape, digits.num_classes, channels=4, seed=0)
    network.train()
    loss, accuracy = evaluate(network, digits.val, batch_size=16)
    assert network.training  # restored
    network.eval()
    with torch.no_grad():
        logits = network(digits.val.x)
    expected = torch.nn.functional.cross_entropy(logits, digits.val.y)
    assert loss == pytest.approx(float(expected), rel=1e-5)
    assert accuracy == int((logits.argmax(1) == digits.val.y).sum()) / len(digits.val)
    empty = Split(digits.val.x[:0], digits.val.y[:0])
    assert all(math.isnan(v) for v in evaluate(network, empty))


def test_evaluate_each_gives_every_member_its_own_numbers(digits: Dataset) -> None:
    nets = [Network(ARCH, digits.input_shape, 10, channels=4, seed=s) for s in range(3)]
    holder = torch.nn.ModuleList(nets)

    def forward(x: torch.Tensor) -> torch.Tensor:
        return torch.stack([net(x) for net in nets], dim=1)  # (B, 3, 10)

    each = evaluate_each(holder, digits.val, 16, members=3, forward=forward)
    assert each == [evaluate(net, digits.val, 16) for net in nets]  # exact: the same sums
    assert holder.training and all(net.training for net in nets)
    empty = Split(digits.val.x[:0], digits.val.y[:0])
    assert len(evaluate_each(holder, empty, members=3, forward=forward)) == 3


def test_evaluate_each_can_leave_the_mode_alone(digits: Dataset) -> None:
    network = Network(ARCH, digits.input_shape, 10, channels=4, seed=0)
    seen = []

    def forward(x: torch.Tensor) -> torch.Tensor:
        seen.append(network.training)
        return network(x)[:, None]

    evaluate_each(network, digits.val, 256, forward=forward, eval_mode=False)
    assert seen == [True] and network.training
    evaluate_each(network, digits.val, 256, forward=forward)
    assert seen == [True, False] and network.training


# ------------------------------------------------------------------------------- divergence


def test_an_epoch_with_a_non_finite_loss_or_weights_diverges(digits: Dataset) -> None:
    recipe = Recipe.of(SMOKE, digits)
    n = recipe.examples
    good, nan_loss, bad_weights = Progress(10, 20), Progress(10, 20), Progress(10, 20)
    every = [good, nan_loss, bad_weights]
    loss_sums = torch.tensor([1.5 * n, 2.0 * n, 1.0 * n])
    going = recipe.end_epoch(every, 0, loss_sums, torch.tensor([30, 40, 50]), torch.ones(3))
    assert going == [True, True, True] and good.train_loss == 1.5 and good.epochs_run == 1
    assert nan_loss.train_accuracy == 40 / n
    loss_sums = torch.tensor([1.0 * n, math.nan, 1.0 * n])
    finite = torch.tensor([1.0, 1.0, 0.0])
    going = recipe.end_epoch(every, 1, loss_sums, torch.tensor([60, 0, 70]), finite)
    assert going == [True, False, False]
    assert (good.epochs_run, good.train_loss, good.diverged_epoch) == (2, 1.0, None)
    for progress in (nan_loss, bad_weights):  # the record of the last finite epoch
        assert (progress.epochs_run, progress.diverged_epoch) == (1, 1)
    assert nan_loss.train_loss == 2.0 and bad_weights.train_accuracy == 50 / n


def test_all_finite_sees_weights_and_batch_norm_statistics() -> None:
    network = Network(ARCH, (1, 8, 8), 10, channels=4, seed=0)
    assert bool(all_finite(network))
    network.stem[1].running_var[0] = math.inf  # a buffer, not a parameter
    assert not bool(all_finite(network))


def test_progress_result_is_complete_or_diverged_with_the_epoch() -> None:
    progress = Progress(params=10, macs=20, train_loss=0.5, train_accuracy=0.8, epochs_run=3)
    done = progress.result((0.4, 0.9), (0.6, 0.7), seconds=1.25, device="cpu")
    assert done.status is CandidateStatus.COMPLETE and done.error is None
    assert (done.val_loss, done.val_accuracy, done.test_loss, done.test_accuracy) == (
        0.4, 0.9, 0.6, 0.7)  # fmt: skip
    assert (done.params, done.macs, done.train_seconds, done.epochs_run) == (10, 20, 1.25, 3)
    progress.diverged_epoch = 3
    diverged = progress.result((0.4, 0.9), (0.6, 0.7), seconds=1.25, device="cpu")
    assert diverged.status is CandidateStatus.DIVERGED and diverged.diverged_epoch == 3
    assert diverged.error == (
        "The training loss (or the network's weights) was not finite in epoch 3; the metrics "
        "are those of the network after 3 epoch(s)."
    )
