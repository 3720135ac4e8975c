"""Batched stand-alone training: K candidates trained at once in one process, each exactly its own.

The K candidates' networks become one :class:`~surrogate.stacked.StackedNetwork` (channels
stacked, one group per member), and the stack is trained by the recipe
(:mod:`surrogate.recipe`) that :func:`~surrogate.candidate.train_candidate` follows for one
network, step for step: every member starts from the weights its seed gives (its own
:class:`~surrogate.network.Network` is built with that seed, then copied in), sees the batches
of its seed's order generator and the shifts of its shift generator, and its loss is the
recipe's loss of its own logits, passed through its own hook. SGD is elementwise, so one
optimiser over the stacked parameters is K independent ones, and the stack's loss is the sum
of the members' losses, so a member's gradients are those of its own loss alone. Why not CUDA
streams: per-candidate kernels stay as small (and launch-bound) as one at a time.

How close: the stacked forward pass gives each member's logits bit for bit on the CPU, so its
loss and the gradient of its logits are the single network's to the bit; the stack's backward
(a grouped convolution, the batched classifier) adds in another order, which moves the weights
in the last bits, and training amplifies that a little. After 2 epochs on a digits subset the
tests see losses within 3e-7 (some candidates' identical), weights within 6e-7 and the same
accuracies, and check losses and weights within 1e-5 and accuracies within one example. Over
longer runs the differences grow to those that changing torch's number of
threads gives ``train_candidate`` itself (about 1e-2 relative in the loss after 3 epochs of
the ``smoke`` preset on the digits).

A member's own problems stay its own: a non-finite training loss ends it as DIVERGED (with the
metrics of its last finite epoch, as ``train_candidate`` does), an exception of its hook at the
start of an epoch as FAILED, and the stack is rebuilt without it (its slices of the momentum
buffers go with it), so the others go on. An error of the whole stack (say, out of memory)
warns and trains that stack's candidates one at a time instead.

Devices: the data stay on the device (batches are gathered there; one host sync per epoch).
On CUDA, mixed precision follows ``config.amp`` (bfloat16; on a GPU without bfloat16 the stack
trains in full precision, since float16 loss scaling would skip a step for *every* member when
one overflows) and activations are channels-last; both can be asked for on the CPU too
(``amp=``, ``channels_last=``), so that their code paths are tested there.
"""

from __future__ import annotations

import collections
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from dagspace.cell import CellSpec
from dagspace.checks import check_int
from dagspace.errors import InvalidCellError
from surrogate.candidate import (
    CandidateConfig,
    build_network,
    check_architecture,
    check_config,
    check_dataset,
    train_candidate,
)
from surrogate.data import Dataset, Split
from surrogate.device import AmpPolicy, amp_policy, resolve_device
from surrogate.errors import ConfigError
from surrogate.faults import NO_HOOK, FaultPlan, TrainingHook
from surrogate.network import Network, count_macs, count_parameters, macro_layout
from surrogate.recipe import (
    CandidateResult,
    Progress,
    Recipe,
    error_text,
    shift,
    snapshot,
)
from surrogate.stacked import StackedNetwork
from surrogate.tasks import CandidateTask, Executor

__all__ = ["BatchedExecutor", "train_candidates"]

Metrics = tuple[tuple[float, float], tuple[float, float]]  # (val, test) (loss, accuracy)


@dataclass
class _Member:
    """One candidate of a batch while it trains."""

    index: int  # its position in the caller's lists
    network: Network
    progress: Progress
    order: torch.Generator
    shift: torch.Generator
    hook: TrainingHook


Finish = Callable[[_Member, Metrics | None, str | None], None]
"""``finish(member, metrics, error)``: record a member's result (``metrics`` None: FAILED)."""


class _Batch:
    """The stack of the members still training, its optimiser, and the state to fall back to."""

    def __init__(
        self,
        members: list[_Member],
        recipe: Recipe,
        input_shape: Sequence[int],
        channels_last: bool,
    ) -> None:
        config = recipe.config
        cells = len(members[0].network.cells)
        slots = macro_layout(input_shape, cells, config.channels, config.num_stages)
        self.channels = [(slot.channels_in, slot.channels) for slot in slots]
        self.members, self.recipe = members, recipe
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.stack = self.stack_of(members)
        self.optimizer = recipe.optimizer(self.stack.parameters())
        self.last_good = snapshot(self.stack)

    def stack_of(self, members: list[_Member]) -> StackedNetwork:
        stack = StackedNetwork([m.network for m in members], self.channels)
        return stack.to(memory_format=self.memory_format)

    def restore(self, positions: Sequence[int]) -> None:
        """Load the fall-back state of the members at ``positions`` into their networks."""
        states = self.stack.member_states(self.last_good)
        for pos in positions:
            self.members[pos].network.load_state_dict(states[pos])

    def keep(self, positions: Sequence[int]) -> bool:
        """Go on with the members at ``positions`` only: their weights and momentum move to a
        new stack, whose fall-back state is their current state. False when there is none."""
        if not positions:
            self.members = []
            return False
        states = self.stack.member_states()
        buffers = {
            name: self.optimizer.state[p]["momentum_buffer"]
            for name, p in self.stack.named_parameters()
            if self.optimizer.state.get(p, {}).get("momentum_buffer") is not None
        }
        momentum = self.stack.member_states(buffers)
        for pos in positions:
            self.members[pos].network.load_state_dict(states[pos])
        self.members = [self.members[pos] for pos in positions]
        self.stack = self.stack_of(self.members)
        self.optimizer = self.recipe.optimizer(self.stack.parameters())
        stacked = self.stack.stacked([momentum[pos] for pos in positions])
        for name, p in self.stack.named_parameters():
            if name in stacked:
                buffer = torch.empty_like(p)  # in p's memory layout
                buffer.copy_(stacked[name])
                self.optimizer.state[p]["momentum_buffer"] = buffer
        self.last_good = snapshot(self.stack)
        return True


# ------------------------------------------------------------------------- a stack's steps


def _train_batch(
    members: list[_Member],
    data: Dataset,
    recipe: Recipe,
    amp: AmpPolicy,
    channels_last: bool,
    finish: Finish,
) -> None:
    """Train ``members`` (one macro skeleton) as one stack, epoch by epoch as
    ``train_candidate`` trains one; ``finish`` records each member's result as soon as it is
    known."""
    batch = _Batch(members, recipe, data.input_shape, channels_last)
    for epoch in range(recipe.config.epochs):
        if not _start_epoch(batch, epoch, finish):
            return  # every member failed
        shifts = _draw_shifts(batch.members, recipe, data.train.x.device)
        loss_sums, corrects = _one_epoch(batch, data.train, epoch, amp, shifts)
        diverged = _detect_divergence(batch, epoch, loss_sums, corrects)
        if diverged:
            _finish_diverged(batch, diverged, data, amp, finish)
            survivors = [pos for pos in range(len(batch.members)) if pos not in diverged]
            if not batch.keep(survivors):
                return
        elif epoch + 1 < recipe.config.epochs:
            batch.last_good = snapshot(batch.stack)
    for m, metrics in zip(batch.members, _evaluate(batch, batch.stack, data, amp), strict=True):
        finish(m, metrics, None)


def _start_epoch(batch: _Batch, epoch: int, finish: Finish) -> bool:
    """Call each member's hook at the start of ``epoch``: a member whose hook raises fails
    there (as ``train_candidate`` fails it), and the others go on in a new stack. False when
    none is left."""
    failed = []
    for pos, m in enumerate(batch.members):
        try:
            m.hook.on_epoch_start(epoch)
        except Exception as err:
            finish(m, None, error_text(err))
            failed.append(pos)
    return not failed or batch.keep([p for p in range(len(batch.members)) if p not in failed])


def _draw_shifts(
    members: Sequence[_Member], recipe: Recipe, device: torch.device
) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
    """Each step's shift offsets ``(top, left)``, ``(B, G)`` each, for the whole epoch: every
    member's drawn from its own generator batch by batch, as ``train_candidate`` draws them,
    and moved to ``device`` at once. None without shifts."""
    if recipe.max_shift == (0, 0):
        return None
    sizes = [part.stop - part.start for part in recipe.batches]
    draws = [[recipe.draw_shifts(m.shift, size) for size in sizes] for m in members]
    offsets = torch.stack(
        [torch.stack([torch.cat([d[i] for d in own]) for own in draws], dim=1) for i in (0, 1)]
    ).to(device)  # (2, N, G): the tops, then the lefts, of every step
    return list(zip(offsets[0].split(sizes), offsets[1].split(sizes), strict=True))


def _one_epoch(
    batch: _Batch,
    train: Split,
    epoch: int,
    amp: AmpPolicy,
    shifts: list[tuple[torch.Tensor, torch.Tensor]] | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One epoch of the recipe for every member at once: its own order, batches, shifts and
    loss, one SGD step at the epoch's learning rate. Returns each member's summed training
    loss and correct count, ``(G,)`` tensors on the device."""
    members, stack, optimizer, recipe = batch.members, batch.stack, batch.optimizer, batch.recipe
    recipe.set_learning_rate(optimizer, epoch)
    device = train.x.device
    orders = torch.stack([recipe.order(m.order) for m in members]).to(device)  # (G, N)
    loss_sum = torch.zeros(len(members), device=device)
    correct = torch.zeros(len(members), dtype=torch.int64, device=device)
    for step, part in enumerate(recipe.batches):
        idx = orders[:, part].T  # (B, G): row b holds every member's b-th example
        x, y = train.x[idx], train.y[idx]  # (B, G, C, H, W), (B, G)
        if shifts is not None:
            x = shift(x, *shifts[step], recipe.max_shift)
        x = x.flatten(1, 2).contiguous(memory_format=batch.memory_format)  # (B, G * C, H, W)
        with amp.autocast():
            logits = stack(x)  # (B, G, num_classes)
        own = zip(members, logits.unbind(1), y.unbind(1), strict=True)
        losses = torch.stack([m.hook.on_loss(epoch, recipe.loss(z, t)) for m, z, t in own])  # (G,)
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        optimizer.step()
        loss_sum += losses.detach() * y.shape[0]
        correct += (logits.argmax(dim=2) == y).sum(0)
    return loss_sum, correct


def _detect_divergence(
    batch: _Batch, epoch: int, loss_sums: torch.Tensor, corrects: torch.Tensor
) -> list[int]:
    """End ``epoch`` for every member (:meth:`Recipe.end_epoch`, one host sync); the
    positions of the members that diverged."""
    progress = [m.progress for m in batch.members]
    going = batch.recipe.end_epoch(progress, epoch, loss_sums, corrects, batch.stack.finite())
    return [pos for pos, ok in enumerate(going) if not ok]


def _finish_diverged(
    batch: _Batch, positions: Sequence[int], data: Dataset, amp: AmpPolicy, finish: Finish
) -> None:
    """Put the members at ``positions`` back to their last finite epoch, evaluate them (in a
    stack of their own) and finish them: DIVERGED."""
    batch.restore(positions)
    gone = [batch.members[pos] for pos in positions]
    for m, metrics in zip(gone, _evaluate(batch, batch.stack_of(gone), data, amp), strict=True):
        finish(m, metrics, None)


def _evaluate(batch: _Batch, stack: StackedNetwork, data: Dataset, amp: AmpPolicy) -> list[Metrics]:
    """Each member's final ``(loss, accuracy)`` on the validation and test splits (every member
    sees every example: the batch is repeated along the channels)."""

    def forward(x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, G, num_classes)
        return stack(x.repeat(1, stack.size, 1, 1).contiguous(memory_format=batch.memory_format))

    return batch.recipe.evaluate_final(stack, data, amp, members=stack.size, forward=forward)


# ---------------------------------------------------------------------------------- training


def _check_list(name: str, values: Any, length: int | None, what: str) -> list[Any]:
    if isinstance(values, (str, bytes, Mapping, CellSpec)) or not isinstance(values, Iterable):
        raise ConfigError(
            f"The {name!r} parameter of train_candidates must be a list of {what}; got "
            f"{type(values).__name__}: {values!r:.200}."
        )
    out = list(values)
    if length is not None and len(out) != length:
        raise ConfigError(
            f"The {name!r} parameter of train_candidates must have one entry per architecture "
            f"({length}); got {len(out)}."
        )
    return out


def train_candidates(
    architectures: Sequence[Sequence[CellSpec]],
    dataset: Dataset,
    config: CandidateConfig,
    seeds: Sequence[int],
    device: str | torch.device = "cpu",
    *,
    faults: Sequence[FaultPlan | None] | None = None,
    amp: AmpPolicy | None = None,
    channels_last: bool | None = None,
) -> list[CandidateResult]:
    """Train ``K = len(architectures)`` candidates at once; candidate ``k`` gets what
    ``train_candidate(architectures[k], dataset, config, seeds[k], device)`` gives it.

    Candidate ``k``'s weights start from its seed's initialisation, its batches come in its
    seed's order (with its seed's shifts), and it gets the recipe's optimiser, schedule and
    loss; the candidates are trained as one channel-stacked network (see the module docstring),
    so the numbers match the one-at-a-time ones to rounding, not bit for bit. Architectures
    with different numbers of cells are trained as separate stacks.

    Args:
        architectures: ``K`` architectures, each a sequence of labelled :class:`CellSpec`.
        dataset: the splits (moved to ``device`` if elsewhere); shared by all candidates.
        config: the training recipe, shared by all candidates.
        seeds: ``K`` non-negative ints, one per candidate.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.
        faults: ``K`` :class:`FaultPlan` or ``None``, per candidate (``kill_worker`` is not
            honoured: this is the caller's process).
        amp: the mixed-precision policy; default :func:`surrogate.device.amp_policy` for
            ``config.amp`` (bfloat16 on CUDA, off on the CPU). Under a float16 policy the
            stack trains in full precision: loss scaling would couple the candidates.
        channels_last: channels-last activations; default on CUDA only.

    Returns:
        One :class:`CandidateResult` per architecture, in order: COMPLETE, DIVERGED or FAILED
        exactly as :func:`train_candidate` decides them, per candidate. ``train_seconds`` is the
        candidate's share of the call: the wall time from the call's start to the candidate's
        end, divided by ``K``.

    Raises:
        (Before anything trains, for the inputs ``train_candidate`` raises for.)
        ConfigError: ``config``, ``seeds``, ``faults``, ``amp`` or ``device`` is invalid, the
            lists' lengths differ, or an architecture has fewer cells than
            ``config.num_stages``.
        dagspace.InvalidCellError: an architecture is not a sequence of labelled CellSpec whose
            input reaches their output (the message names the architecture's index).
        DatasetError: ``dataset`` is not a Dataset, or has fewer than 2 training examples.
    """
    started = time.perf_counter()
    config = check_config(config, "train_candidates")
    check_dataset(dataset, "train_candidates")
    archs = _check_list("architectures", architectures, None, "architectures")
    count = len(archs)
    for k, arch in enumerate(archs):
        try:
            archs[k] = check_architecture(arch, config)
        except (InvalidCellError, ConfigError) as err:
            raise type(err)(f"Architecture {k} of train_candidates: {err}") from None
    seeds = _check_list("seeds", seeds, count, "non-negative ints")
    seeds = [
        check_int("train_candidates", f"seeds[{k}]", s, 0, ConfigError) for k, s in enumerate(seeds)
    ]
    plans = [None] * count if faults is None else _check_list("faults", faults, count, "faults")
    for plan in plans:
        if plan is not None and not isinstance(plan, FaultPlan):
            raise ConfigError(
                "The 'faults' of train_candidates must be FaultPlan objects or None; got "
                f"{type(plan).__name__}."
            )
    if amp is not None and not isinstance(amp, AmpPolicy):
        raise ConfigError(
            f"The 'amp' parameter of train_candidates must be an AmpPolicy or None; got "
            f"{type(amp).__name__}."
        )
    target = resolve_device(device)
    return _train_checked(archs, dataset, config, seeds, plans, target, amp, channels_last, started)


def _train_checked(
    archs: Sequence[tuple[CellSpec, ...]],
    dataset: Dataset,
    config: CandidateConfig,
    seeds: Sequence[int],
    faults: Sequence[FaultPlan | None],
    target: torch.device,
    amp: AmpPolicy | None,
    channels_last: bool | None,
    started: float,
) -> list[CandidateResult]:
    """:func:`train_candidates` once its arguments are checked (the executor checks each task
    itself, so that a bad one fails alone)."""
    count = len(archs)
    policy = amp_policy(target, config.amp) if amp is None else amp
    if policy.needs_scaler:  # float16 loss scaling would skip every member's step at once
        policy = AmpPolicy(policy.device, None)
    last = target.type == "cuda" if channels_last is None else bool(channels_last)
    recipe = Recipe.of(config, dataset)
    results: list[CandidateResult | None] = [None] * count

    def failed(index: int, error: str) -> None:
        seconds = (time.perf_counter() - started) / count
        results[index] = CandidateResult.failure(error, device=str(target), seconds=seconds)

    def finish(m: _Member, metrics: Metrics | None, error: str | None) -> None:
        if metrics is None:
            failed(m.index, error or "")
            return
        seconds = (time.perf_counter() - started) / count
        results[m.index] = m.progress.result(*metrics, seconds=seconds, device=str(target))

    data = dataset.to(target)
    stacks: dict[int, list[_Member]] = collections.defaultdict(list)
    for k, (arch, seed, fault) in enumerate(zip(archs, seeds, faults, strict=True)):
        try:
            member = _build_member(k, arch, data, recipe, seed, fault, target)
        except Exception as err:  # this candidate fails, as train_candidate records it
            failed(k, error_text(err))
            continue
        stacks[len(member.network.cells)].append(member)
    for members in stacks.values():
        try:
            _train_batch(members, data, recipe, policy, last, finish)
        except Exception as err:  # not any one candidate's fault: train the rest one at a time
            if target.type == "cuda":
                torch.cuda.empty_cache()
            warnings.warn(
                f"Training {len(members)} candidates as one stack failed "
                f"({error_text(err)}); training them one at a time instead.",
                RuntimeWarning,
                stacklevel=3,
            )
            for m in members:
                if results[m.index] is None:
                    results[m.index] = train_candidate(
                        archs[m.index], dataset, config, seeds[m.index], target,
                        fault=faults[m.index],
                    )  # fmt: skip
    return [r for r in results if r is not None]


def _build_member(
    index: int,
    architecture: tuple[CellSpec, ...],
    data: Dataset,
    recipe: Recipe,
    seed: int,
    fault: FaultPlan | None,
    device: torch.device,
) -> _Member:
    """Candidate ``index``'s network, seeded exactly as ``train_candidate`` seeds it."""
    init_seed, order, shift_generator = recipe.streams(seed)
    network = build_network(architecture, data, recipe.config, init_seed, device)
    progress = Progress(count_parameters(network), count_macs(network, data.input_shape))
    hook = NO_HOOK if fault is None else fault
    return _Member(index, network, progress, order, shift_generator, hook)


# ---------------------------------------------------------------------------------- executor


class BatchedExecutor(Executor):
    """Trains tasks in this process, up to ``batch_size`` at once with :func:`train_candidates`.

    Tasks with the same dataset, recipe and number of cells are trained together, in batches
    of at most ``batch_size`` in the order given; each batch's results are yielded when it
    ends. A task's own problems are its own FAILED or DIVERGED result; a dataset that cannot be
    loaded fails the tasks that need it. ``fault.kill_worker`` is not honoured (there is no
    worker process to kill). ``capacity``, how many candidates it trains at once (what a driver
    hands it at a time), is ``batch_size``.

    Args:
        batch_size: the most candidates trained at once.
        device: where they train.
        threads: torch's intra-op threads while :meth:`map` runs (restored afterwards);
            default: leave this process's setting alone.
    """

    def __init__(
        self, batch_size: int = 8, device: str = "cpu", *, threads: int | None = None
    ) -> None:
        self.batch_size = self.capacity = check_int(
            "BatchedExecutor", "batch_size", batch_size, 1, ConfigError
        )
        self.device = str(resolve_device(device))
        if threads is not None:
            threads = check_int("BatchedExecutor", "threads", threads, 1, ConfigError)
        self.threads = threads

    def __repr__(self) -> str:
        return (
            f"BatchedExecutor(batch_size={self.batch_size}, device={self.device!r}, "
            f"threads={self.threads})"
        )

    def _map(self, tasks: list[CandidateTask]) -> Iterator[tuple[CandidateTask, CandidateResult]]:
        groups: dict[Any, list[CandidateTask]] = {}
        for task in tasks:
            key = (task.dataset, task.config, len(task.architecture))
            groups.setdefault(key, []).append(task)
        before = torch.get_num_threads()
        try:
            if self.threads is not None:
                torch.set_num_threads(self.threads)
            for group in groups.values():
                for start in range(0, len(group), self.batch_size):
                    chunk = group[start : start + self.batch_size]
                    yield from zip(chunk, self._run(chunk), strict=True)
        finally:
            torch.set_num_threads(before)

    def _run(self, tasks: list[CandidateTask]) -> list[CandidateResult]:
        """The tasks' results; one that run_task would fail fails alone, with its message."""
        started = time.perf_counter()
        results: list[CandidateResult | None] = [None] * len(tasks)
        good: list[tuple[int, tuple[CellSpec, ...]]] = []
        for i, task in enumerate(tasks):
            try:
                good.append((i, check_architecture(task.cells(), task.config)))
            except Exception as err:  # say, a cell whose input cannot reach its output
                results[i] = CandidateResult.failure(error_text(err), device=self.device)
        if good:
            chosen = [tasks[i] for i, _ in good]
            config, target = chosen[0].config, resolve_device(self.device)
            try:
                dataset = check_dataset(chosen[0].dataset.load(target), "BatchedExecutor")
                trained = _train_checked(
                    [cells for _, cells in good], dataset, config, [t.seed for t in chosen],
                    [t.fault for t in chosen], target, None, None, started,
                )  # fmt: skip
            except Exception as err:  # the data cannot be loaded: these tasks fail, not all
                seconds = (time.perf_counter() - started) / len(tasks)
                trained = [
                    CandidateResult.failure(error_text(err), device=self.device, seconds=seconds)
                    for _ in chosen
                ]
            for (i, _), result in zip(good, trained, strict=True):
                results[i] = result
        return [r for r in results if r is not None]
