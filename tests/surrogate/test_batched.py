"""Tests of surrogate.batched: K candidates trained at once as one channel-stacked network.

Every batched result is checked against ``train_candidate`` for the same architecture and seed
(the reference), at the tolerance the module states: after 2 epochs on a 200-example digits
subset, losses within ``LOSS_TOL`` and accuracies within one example; final weights within
``WEIGHT_TOL``. Everything runs on one torch thread (restored afterwards), as both sides of a
comparison must use the same number of threads.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import torch
from torch import nn

from dagspace.cell import CellSpec
from dagspace.errors import InvalidCellError
from surrogate import batched as batched_module
from surrogate import recipe as recipe_module
from surrogate import stacked as stacked_module
from surrogate.batched import BatchedExecutor, train_candidates
from surrogate.bench import bench_train
from surrogate.candidate import (
    CandidateConfig,
    CandidateResult,
    CandidateStatus,
    FaultPlan,
    train_candidate,
)
from surrogate.data import Dataset, Split, load_dataset
from surrogate.device import AmpPolicy
from surrogate.errors import ConfigError, DatasetError
from surrogate.ops import register_operation
from surrogate.stacked import StackedNetwork
from surrogate.tasks import CandidateTask, DatasetSpec, run_task
from tests.surrogate.test_stacked import (
    ARCHS,
    C3,
    FIVE,
    FOUR,
    IN,
    OUT,
    THREE,
    TWO,
    make_layout,
    make_networks,
)

SEEDS = [3, 11, 7]

CONFIG = CandidateConfig(channels=4, epochs=2, batch_size=32, label_smoothing=0.1)
# Both executions share the recipe's pieces, and a member's logits, loss and logit gradients
# are its single network's to the bit; the stacked backward's rounding leaves gaps of at most
# about 3e-7 in the losses and 6e-7 in the weights here (some candidates' losses identical).
LOSS_TOL = 1e-5
WEIGHT_TOL = 1e-5


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data() -> Dataset:
    return load_dataset("digits", limit=200)  # 120 / 40 / 40 examples


def _close(a: float, b: float, tol: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tol


def assert_matches(batched: CandidateResult, single: CandidateResult, data: Dataset) -> None:
    """``batched`` is ``single`` to the stated tolerance."""
    assert batched.status == single.status, (batched.error, single.error)
    assert batched.error == single.error
    for name in ("epochs_run", "diverged_epoch", "params", "macs", "device"):
        assert getattr(batched, name) == getattr(single, name), name
    for name in ("train_loss", "val_loss", "test_loss"):
        assert _close(getattr(batched, name), getattr(single, name), LOSS_TOL), name
    for name, n in (("train", len(data.train)), ("val", len(data.val)), ("test", len(data.test))):
        a, b = getattr(batched, f"{name}_accuracy"), getattr(single, f"{name}_accuracy")
        assert _close(a, b, 1 / n + 1e-12), name


# --------------------------------------------------------------------------- train_candidates


def _capture_weights(
    monkeypatch: pytest.MonkeyPatch, data: Dataset
) -> tuple[list[dict[str, torch.Tensor]], list[dict[str, torch.Tensor]]]:
    """Record the final weights that train_candidate and train_candidates evaluate."""
    single: list[dict[str, torch.Tensor]] = []
    batched: list[dict[str, torch.Tensor]] = []
    evaluate_each = recipe_module.evaluate_each  # the one evaluation loop of both

    def spy(model: nn.Module, split: Any, *args: Any, **kwargs: Any) -> Any:
        if split.x.data_ptr() == data.val.x.data_ptr():  # (the data stay where they are)
            if isinstance(model, StackedNetwork):
                batched.extend({k: v.clone() for k, v in s.items()} for s in model.member_states())
            else:
                single.append({k: v.clone() for k, v in model.state_dict().items()})
        return evaluate_each(model, split, *args, **kwargs)

    monkeypatch.setattr(recipe_module, "evaluate_each", spy)
    return single, batched


@pytest.mark.parametrize(
    ("channels_last", "augment"), [(False, False), (True, True)], ids=["nchw", "cl-shifts"]
)
def test_train_candidates_matches_train_candidate(
    data: Dataset, monkeypatch: pytest.MonkeyPatch, channels_last: bool, augment: bool
) -> None:
    config = CONFIG.replace(augment=augment)
    single_weights, batched_weights = _capture_weights(monkeypatch, data)
    singles = [train_candidate(a, data, config, s) for a, s in zip(ARCHS, SEEDS, strict=True)]
    results = train_candidates(ARCHS, data, config, SEEDS, channels_last=channels_last)
    assert len(results) == len(ARCHS)
    for batched, single in zip(results, singles, strict=True):
        assert batched.status == CandidateStatus.COMPLETE
        assert_matches(batched, single, data)
    assert len(batched_weights) == len(single_weights) == len(ARCHS)
    for mine, theirs in zip(batched_weights, single_weights, strict=True):
        assert mine.keys() == theirs.keys()
        for key, value in theirs.items():
            torch.testing.assert_close(mine[key], value, atol=WEIGHT_TOL, rtol=0)


@pytest.mark.parametrize("augment", [False, True], ids=["plain", "shifts"])
def test_a_one_step_epoch_gives_each_member_its_single_networks_loss_to_the_bit(
    data: Dataset, augment: bool
) -> None:
    # One batch per epoch: the epoch's training loss is its first step's, which both executions
    # compute with the recipe from the same order, shifts and (on the CPU, bit for bit) logits.
    config = CONFIG.replace(epochs=1, batch_size=len(data.train), augment=augment)
    singles = [train_candidate(a, data, config, s) for a, s in zip(ARCHS, SEEDS, strict=True)]
    results = train_candidates(ARCHS, data, config, SEEDS)
    for batched, single in zip(results, singles, strict=True):
        assert (batched.train_loss, batched.train_accuracy) == (
            single.train_loss, single.train_accuracy)  # fmt: skip


def test_architectures_of_different_depths_train_in_separate_stacks(data: Dataset) -> None:
    archs = [(FIVE, THREE), (FIVE, THREE, FOUR), (TWO, FOUR)]
    config = CONFIG.replace(epochs=1)
    results = train_candidates(archs, data, config, [0, 1, 2])
    for arch, seed, result in zip(archs, [0, 1, 2], results, strict=True):
        assert_matches(result, train_candidate(arch, data, config, seed), data)


def test_a_diverging_or_failing_candidate_leaves_the_others_alone(data: Dataset) -> None:
    config = CONFIG.replace(epochs=3)
    faults = [None, FaultPlan(inf_at_epoch=1), FaultPlan(raise_at_epoch=2)]
    results = train_candidates(ARCHS, data, config, SEEDS, faults=faults)
    singles = [
        train_candidate(a, data, config, s, fault=f)
        for a, s, f in zip(ARCHS, SEEDS, faults, strict=True)
    ]
    assert [r.status for r in results] == [
        CandidateStatus.COMPLETE,
        CandidateStatus.DIVERGED,
        CandidateStatus.FAILED,
    ]
    assert results[1].diverged_epoch == 1 and results[1].epochs_run == 1
    assert results[2].error == "RuntimeError: injected fault at epoch 2 (FaultPlan.raise_at_epoch)"
    for batched, single in zip(results, singles, strict=True):
        assert_matches(batched, single, data)
    # the survivor is what it would have been without the others' faults
    clean = train_candidates(ARCHS, data, config, SEEDS)
    assert_matches(results[0], clean[0], data)
    assert math.isfinite(results[0].val_loss)


def test_a_candidate_diverging_in_its_first_epoch_keeps_its_initial_network(
    data: Dataset,
) -> None:
    config = CONFIG.replace(epochs=1)
    faults = [FaultPlan(nan_at_epoch=0), None]
    results = train_candidates(ARCHS[:2], data, config, SEEDS[:2], faults=faults)
    single = train_candidate(ARCHS[0], data, config, SEEDS[0], fault=faults[0])
    assert results[0].status == CandidateStatus.DIVERGED and results[0].epochs_run == 0
    assert math.isnan(results[0].train_loss)
    assert_matches(results[0], single, data)
    assert results[1].status == CandidateStatus.COMPLETE


def test_bad_architectures_and_data_are_rejected_before_anything_trains(data: Dataset) -> None:
    cut = CellSpec([[0, 0, 0], [0, 0, 1], [0, 0, 0]], [IN, C3, OUT])  # input reaches nothing
    with pytest.raises(InvalidCellError, match="Architecture 1 of train_candidates: Cell 0 of the "
                                               "architecture cannot be trained"):  # fmt: skip
        train_candidates([ARCHS[0], (cut, THREE)], data, CONFIG, [0, 1])
    with pytest.raises(InvalidCellError, match="Architecture 0 of train_candidates: .* must be "
                                               "a sequence of CellSpec; got str"):  # fmt: skip
        train_candidates(["not an architecture"], data, CONFIG, [0])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="Architecture 0 of train_candidates: The architecture "
                                          "must have at least one cell per stage"):  # fmt: skip
        train_candidates([(FIVE,)], data, CONFIG, [0])
    tiny = Dataset("tiny", Split(data.train.x[:1], data.train.y[:1]), data.val, data.test,
                   data.num_classes, data.input_shape)  # fmt: skip
    with pytest.raises(DatasetError, match="needs at least 2 training examples.*; got 1"):
        train_candidates(ARCHS[:2], tiny, CONFIG, [0, 1])


def test_a_stack_that_fails_as_a_whole_warns_and_trains_one_at_a_time(
    data: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("out of memory (simulated)")

    monkeypatch.setattr(batched_module, "_train_batch", broken)
    config = CONFIG.replace(epochs=1)
    with pytest.warns(RuntimeWarning, match=r"out of memory \(simulated\)\); training them one"):
        results = train_candidates(ARCHS[:2], data, config, SEEDS[:2])
    for arch, seed, result in zip(ARCHS[:2], SEEDS[:2], results, strict=True):
        single = train_candidate(arch, data, config, seed)
        assert result.metrics() | {"train_seconds": 0} == single.metrics() | {"train_seconds": 0}


def test_mixed_precision_paths_run_on_the_cpu(data: Dataset) -> None:
    config = CONFIG.replace(epochs=1)
    full = train_candidates(ARCHS, data, config, SEEDS)
    # float16 needs loss scaling, which would couple the members: full precision instead
    fp16_policy = AmpPolicy(torch.device("cpu"), torch.float16)
    fp16 = train_candidates(ARCHS, data, config, SEEDS, amp=fp16_policy)
    for a, b in zip(full, fp16, strict=True):
        assert a.metrics() | {"train_seconds": 0} == b.metrics() | {"train_seconds": 0}
    bf16 = train_candidates(
        ARCHS, data, config, SEEDS, amp=AmpPolicy(torch.device("cpu"), torch.bfloat16),
        channels_last=True,
    )  # fmt: skip
    for a, b in zip(full, bf16, strict=True):
        assert b.status == CandidateStatus.COMPLETE
        assert abs(a.val_loss - b.val_loss) < 0.1 and abs(a.train_loss - b.train_loss) < 0.1


@pytest.mark.usefixtures("scratch_registry")
def test_an_operation_that_cannot_be_stacked_runs_per_member(data: Dataset) -> None:
    def biased(channels: int) -> nn.Module:  # a bias: not the stackable conv-bn pattern
        return nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels))

    register_operation("conv3x3-bias-bn", biased)
    custom = CellSpec([[0, 1, 1], [0, 0, 1], [0, 0, 0]], [IN, "conv3x3-bias-bn", OUT])
    archs = [(custom, THREE), (FIVE, custom), ARCHS[1]]
    nets = make_networks(archs)
    stack = StackedNetwork(nets, make_layout(2))
    assert any(isinstance(m, stacked_module._Alone) for m in stack.modules())
    for net, state in zip(nets, stack.member_states(), strict=True):
        assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    config = CONFIG.replace(epochs=1)
    results = train_candidates(archs, data, config, [0, 1, 2])
    for arch, seed, result in zip(archs, [0, 1, 2], results, strict=True):
        assert_matches(result, train_candidate(arch, data, config, seed), data)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"config": {"epochs": 1}}, "'config' parameter of train_candidates must be a "
         "CandidateConfig; got dict"),
        ({"architectures": FIVE}, "'architectures' parameter of train_candidates must be a list "
         "of architectures; got CellSpec"),
        ({"seeds": [0]}, "'seeds' parameter of train_candidates must have one entry per "
         "architecture \\(3\\); got 1"),
        ({"seeds": [0, -1, 2]}, "'seeds\\[1\\]' parameter of train_candidates must be an int "
         ">= 0; got -1"),
        ({"seeds": 5}, "'seeds' parameter of train_candidates must be a list of non-negative "
         "ints; got int"),
        ({"faults": [None, "nan", None]}, "'faults' of train_candidates must be FaultPlan "
         "objects or None; got str"),
        ({"amp": "bf16"}, "'amp' parameter of train_candidates must be an AmpPolicy or None; "
         "got str"),
        ({"device": "tpu"}, "'device' must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got 'tpu'"),
    ],
)  # fmt: skip
def test_train_candidates_rejects_bad_arguments(
    data: Dataset, kwargs: dict[str, Any], message: str
) -> None:
    arguments = {"architectures": ARCHS, "dataset": data, "config": CONFIG, "seeds": SEEDS}
    arguments.update(kwargs)
    with pytest.raises(ConfigError, match=message):
        train_candidates(**arguments)
    with pytest.raises(DatasetError, match="'dataset' parameter of train_candidates must be a "
                                           "Dataset; got str"):  # fmt: skip
        train_candidates(ARCHS, "digits", CONFIG, SEEDS)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------- executor


def _task(task_id: str, arch: Sequence[CellSpec], seed: int, **changes: Any) -> CandidateTask:
    options: dict[str, Any] = {
        "dataset": DatasetSpec(limit=200),
        "config": CONFIG.replace(epochs=1),
    } | changes
    return CandidateTask(task_id, tuple(arch), seed=seed, **options)  # type: ignore[arg-type]


def test_batched_executor_yields_every_task_once_with_its_own_result() -> None:
    other = CONFIG.replace(epochs=1, channels=6)
    tasks = [
        _task("a", ARCHS[0], 0),
        _task("b", ARCHS[1], 1, config=other),
        _task("c", ARCHS[2], 2),
        _task("d", (FIVE, THREE, FOUR), 3),  # three cells: its own stack
        _task("e", ARCHS[1], 4, fault=FaultPlan(nan_at_epoch=0)),
        _task("f", ARCHS[0], 5, dataset=DatasetSpec(name="no-such-data")),
        _task("g", ARCHS[2], 6),
        _task("h", (CellSpec([[0, 0, 0], [0, 0, 1], [0, 0, 0]], [IN, C3, OUT]), THREE), 7),
    ]
    threads = torch.get_num_threads()
    with BatchedExecutor(batch_size=2, threads=1) as executor:
        assert executor.capacity == 2
        pairs = list(executor.map(tasks))
    assert torch.get_num_threads() == threads
    assert sorted(t.task_id for t, _ in pairs) == sorted(t.task_id for t in tasks)
    assert all(any(t is task for task in tasks) for t, _ in pairs)  # the very objects given
    data = DatasetSpec(limit=200).load()
    for task, result in pairs:
        expected = run_task(task)
        if task.task_id in "fh":
            assert result.status == CandidateStatus.FAILED
            assert result.error == expected.error
            assert "no-such-data" in result.error if task.task_id == "f" else "cannot be trained"
            continue
        assert_matches(result, expected, data)
    statuses = {t.task_id: r.status for t, r in pairs}
    assert statuses["e"] == CandidateStatus.DIVERGED and statuses["a"] == CandidateStatus.COMPLETE


def test_batched_executor_rejects_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="'batch_size' parameter of BatchedExecutor must be an "
                                          "int >= 1; got 0"):  # fmt: skip
        BatchedExecutor(batch_size=0)
    with pytest.raises(ConfigError, match="'threads' parameter of BatchedExecutor must be an "
                                          "int >= 1; got 1.5"):  # fmt: skip
        BatchedExecutor(threads=1.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="'device' 'cuda:7' is not available"):
        BatchedExecutor(device="cuda:7")
    executor = BatchedExecutor()
    with pytest.raises(ConfigError, match="task ids given to Executor.map must be unique"):
        list(executor.map([_task("x", ARCHS[0], 0), _task("x", ARCHS[1], 1)]))
    with pytest.raises(ConfigError, match="Executor.map takes CandidateTask objects; got 'x'"):
        list(executor.map(["x"]))  # type: ignore[list-item]
    assert repr(executor) == "BatchedExecutor(batch_size=8, device='cpu', threads=None)"


# -------------------------------------------------------------------------------------- bench


def test_bench_train_reports_rates_ratios_and_flops(data: Dataset) -> None:
    out = bench_train(ARCHS, ks=(2, 3), dataset=data, config=CONFIG.replace(epochs=1), threads=1)
    assert out["candidates"] == 3 and out["threads"] == 1 and out["device"] == "cpu"
    assert out["config"]["epochs"] == 1 and out["train_examples"] == len(data.train)
    for k in (2, 3):
        assert out[f"k{k}_per_min"] == pytest.approx(60 * 3 / out[f"k{k}_s"])
        assert out[f"k{k}_ratio"] == pytest.approx(out["single_s"] / out[f"k{k}_s"])
        assert out[f"k{k}_max_train_loss_rel_diff"] < 1e-4
        assert out[f"k{k}_max_val_accuracy_diff"] <= 1 / len(data.val) + 1e-12
        assert (
            0
            < out[f"k{k}_peak_fraction"]
            == pytest.approx(out[f"k{k}_gflops"] / out["peak_gflops"])
        )
    assert out["peak_gflops"] > 0 and "measured in this run" in out["peak_method"]
    assert torch.get_num_threads() == 1  # restored to this test's setting


@pytest.mark.slow
def test_bench_train_times_the_pool_on_the_same_candidates() -> None:
    spec = DatasetSpec(limit=200)
    out = bench_train(
        ARCHS, ks=(3,), dataset=spec, config=CONFIG.replace(epochs=1), threads=1, pool_workers=2
    )
    assert out["pool_workers"] == 2 and out["pool_s"] > 0
    assert out["pool_per_min"] == pytest.approx(60 * 3 / out["pool_s"])
    assert out["pool_ratio"] == pytest.approx(out["single_s"] / out["pool_s"])
    # single-threaded workers, one candidate each: the one-at-a-time numbers (1 thread here)
    assert out["pool_max_val_accuracy_diff"] == 0.0
    assert out["train_examples"] == len(spec.load().train)


def test_bench_train_rejects_bad_arguments(data: Dataset) -> None:
    with pytest.raises(ConfigError, match="'ks' of bench_train must be ints >= 1; got \\(0,\\)"):
        bench_train(ARCHS, ks=(0,), dataset=data)
    presets = "\\['smoke', 'quick', 'paper'\\]"
    with pytest.raises(ConfigError, match=f"CandidateConfig or one of {presets}; got 'fast'"):
        bench_train(ARCHS, dataset=data, config="fast")
    with pytest.raises(
        ConfigError, match="'pool_workers' parameter of bench_train must be an int >= 0"
    ):
        bench_train(ARCHS, dataset=data, pool_workers=-1)
    with pytest.raises(ConfigError, match="give 'dataset' as a name or a DatasetSpec, not a "):
        bench_train(ARCHS, dataset=data, pool_workers=2)
