"""Tests of surrogate.training (and the bench that reuses its epoch): schedule, determinism,
exact resume from checkpoints, errors."""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from surrogate.bench import bench_supernet
from surrogate.config import SupernetConfig
from surrogate.data import Dataset, Split
from surrogate.errors import ConfigError, DatasetError, TrainingError
from surrogate.training import (
    HISTORY_COLUMNS,
    MULTINOMIAL_COLUMNS,
    EpochRecord,
    evaluate_architecture,
    history_rows,
    multinomial_rows,
    temperature,
    train_supernet,
)

TINY = SupernetConfig(
    dataset="random",
    vertices=4,
    cells=2,
    channels=4,
    epochs=3,
    batch_size=16,
    device="cpu",
    seed=1,
    arch_gradient="straight_through",  # the joint (GDAS) training whose remedies are tested here
    arch_schedule="joint",
    shortcut="frozen",
)
AFTER = SupernetConfig(  # the defaults' training: the multinomials fitted after the weights
    dataset="random", vertices=4, cells=2, channels=4, epochs=2, batch_size=16, device="cpu",
    seed=1, arch_steps=60, arch_samples=4, arch_batch=16,
)  # fmt: skip


def random_dataset(n_train: int = 48, n_val: int = 24, seed: int = 0) -> Dataset:
    generator = torch.Generator().manual_seed(seed)

    def split(n: int) -> Split:
        y = torch.randint(0, 3, (n,), generator=generator)
        x = torch.randn((n, 1, 4, 4), generator=generator) + y.float()[:, None, None, None]
        return Split(x, y)

    return Dataset("random", split(n_train), split(n_val), split(8), 3, (1, 4, 4))


def numbers(history: tuple[EpochRecord, ...]) -> list[tuple[object, ...]]:
    """Everything a record holds except its wall time (NaN as "nan": NaN != NaN)."""
    nan = lambda v: "nan" if isinstance(v, float) and math.isnan(v) else v  # noqa: E731
    return [
        (
            *(nan(getattr(r, c)) for c in HISTORY_COLUMNS if c != "seconds"),
            r.op_probabilities.tolist(),
            r.edge_probabilities.tolist(),
        )
        for r in history
    ]


# --------------------------------------------------------------------------- temperature


def test_temperature_schedule() -> None:
    assert temperature(0, 10, 10.0, 0.1) == 10.0
    assert temperature(9, 10, 10.0, 0.1) == pytest.approx(0.1)
    assert temperature(0, 1, 10.0, 0.1) == 10.0
    taus = [temperature(e, 5, 10.0, 0.1) for e in range(5)]
    assert all(a > b for a, b in itertools.pairwise(taus))
    ratios = [b / a for a, b in itertools.pairwise(taus)]
    assert np.allclose(ratios, ratios[0])  # exponential: a constant factor per epoch


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, 0), "'epochs' of temperature\\(\\) must be an int >= 1; got 0"),
        ((3, 3), r"'epoch' of temperature\(\) must be an int in \[0, 2\]; got 3"),
        ((-1, 3), r"'epoch' of temperature\(\) must be an int in \[0, 2\]; got -1"),
        ((0, 3, 0.0, 0.1), "must be positive; got 0.0 and 0.1"),
    ],
)
def test_temperature_errors(args: tuple[float, ...], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        temperature(*args)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- training


def test_training_records_every_epoch_and_learns() -> None:
    result = train_supernet(TINY.replace(epochs=4), random_dataset(), progress=False)
    history = result.history
    assert [r.epoch for r in history] == [0, 1, 2, 3] and result.resumed_epochs == 0
    assert history[0].temperature == 10.0 and history[-1].temperature == pytest.approx(0.1)
    assert history[0].weight_lr == TINY.weight_lr and history[-1].weight_lr < TINY.weight_lr
    for record in history:
        assert record.op_probabilities.shape == (2, 2, 3)
        assert record.edge_probabilities.shape == (2, 6)
        np.testing.assert_allclose(record.op_probabilities.sum(-1), 1.0)
        assert 0 <= record.train_acc <= 1 and 0 <= record.argmax_val_acc <= 1
        assert math.isfinite(record.train_loss) and record.seconds > 0
    assert not np.allclose(history[-1].op_probabilities, 1 / 3)  # the multinomials moved
    assert result.final is history[-1] and result.train_seconds > 0
    assert result.device == torch.device("cpu")


def test_same_seed_same_numbers() -> None:
    a = train_supernet(TINY, random_dataset(), progress=False)
    b = train_supernet(TINY, random_dataset(), progress=False)
    c = train_supernet(TINY.replace(seed=2), random_dataset(), progress=False)
    assert numbers(a.history) == numbers(b.history)
    assert numbers(a.history) != numbers(c.history)
    sa, sb = a.supernet.state_dict(), b.supernet.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


class _Interrupt(Exception):
    pass


@pytest.mark.parametrize(
    "config", [TINY, TINY.replace(learn_topology=False, mode="soft"), AFTER], ids=str
)
def test_resume_equals_an_uninterrupted_run(tmp_path: Path, config: SupernetConfig) -> None:
    whole = train_supernet(config, random_dataset(), progress=False)

    def stop_after_first(record: EpochRecord) -> None:
        if record.epoch == 0:
            raise _Interrupt

    path = tmp_path / "ckpt" / "supernet.pt"
    with pytest.raises(_Interrupt):
        train_supernet(
            config,
            random_dataset(),
            checkpoint_path=path,
            progress=False,
            callback=stop_after_first,
        )
    assert path.exists()
    resumed = train_supernet(config, random_dataset(), checkpoint_path=path, progress=False)
    assert resumed.resumed_epochs == 1
    assert numbers(resumed.history) == numbers(whole.history)
    sw, sr = whole.supernet.state_dict(), resumed.supernet.state_dict()
    assert all(torch.equal(sw[k], sr[k]) for k in sw)
    assert sorted(p.name for p in path.parent.iterdir()) == ["supernet.pt"]  # no temp files

    again = train_supernet(config, random_dataset(), checkpoint_path=path, progress=False)
    assert again.resumed_epochs == len(whole.history)  # finished: nothing left to train
    assert numbers(again.history) == numbers(whole.history)


def test_checkpoint_of_another_config_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "supernet.pt"
    train_supernet(TINY.replace(epochs=1), random_dataset(), checkpoint_path=path, progress=False)
    other = TINY.replace(epochs=1, channels=5)  # (a larger epochs extends the run instead)
    with pytest.raises(ConfigError, match=r"belongs to a different config .*channels: 4 != 5"):
        train_supernet(other, random_dataset(), checkpoint_path=path, progress=False)


def test_unreadable_checkpoints(tmp_path: Path) -> None:
    path = tmp_path / "supernet.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(TrainingError, match="Cannot read the supernet checkpoint"):
        train_supernet(TINY, random_dataset(), checkpoint_path=path, progress=False)
    torch.save({"format": "something else"}, path)
    with pytest.raises(TrainingError, match="is not a supernet checkpoint of format"):
        train_supernet(TINY, random_dataset(), checkpoint_path=path, progress=False)


def test_non_finite_loss_is_a_training_error() -> None:
    data = random_dataset()
    bad = Split(torch.full_like(data.train.x, float("nan")), data.train.y)
    with pytest.raises(TrainingError, match="training loss became nan at epoch 0, step 0"):
        train_supernet(TINY, dataclasses.replace(data, train=bad), progress=False)


def test_tiny_splits_and_bad_arguments() -> None:
    data = random_dataset()
    one = Split(data.val.x[:1], data.val.y[:1])
    with pytest.raises(DatasetError, match="at least 2 examples in the 'val' split .*got 1"):
        train_supernet(TINY, dataclasses.replace(data, val=one), progress=False)
    with pytest.raises(ConfigError, match="needs a SupernetConfig; got dict"):
        train_supernet(TINY.to_dict(), data)  # type: ignore[arg-type]


def test_missing_cuda_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="'cuda:1' is not available"):
        train_supernet(TINY.replace(device="cuda:1"), random_dataset(), progress=False)


def test_evaluate_architecture_in_uneven_batches() -> None:
    result = train_supernet(TINY.replace(epochs=1), random_dataset(), progress=False)
    arch = result.supernet.argmax_architecture()
    split = random_dataset(n_val=17).val  # chunks of 9 and 8 with batch_size 16
    loss, acc = evaluate_architecture(result.supernet, arch, split, batch_size=16)
    assert math.isfinite(loss) and 0 <= acc <= 1


def test_evaluate_architecture_batches_as_stand_alone_evaluation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = train_supernet(TINY.replace(epochs=1), random_dataset(), progress=False)
    net, arch = result.supernet, result.supernet.argmax_architecture()
    split = random_dataset(n_val=3).val
    sizes: list[int] = []
    forward = net.forward

    def spy(x: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        sizes.append(x.shape[0])
        return forward(x, *args, **kwargs)

    monkeypatch.setattr(net, "forward", spy)
    net.train()
    loss, acc = evaluate_architecture(net, arch, split, batch_size=2)
    assert sizes == [3]  # one batch of 3, not 2 + 1: no batch of a single example
    assert net.training  # left as it was
    with torch.no_grad():
        logits = forward(split.x, arch)
    assert loss == pytest.approx(float(torch.nn.functional.cross_entropy(logits, split.y)))
    assert acc == int((logits.argmax(1) == split.y).sum()) / 3
    empty = Split(split.x[:0], split.y[:0])
    assert all(math.isnan(v) for v in evaluate_architecture(net, arch, empty))


def test_csv_rows() -> None:
    history = train_supernet(TINY.replace(epochs=2), random_dataset(), progress=False).history
    rows = list(history_rows(history))
    assert len(rows) == 2 and all(len(r) == len(HISTORY_COLUMNS) for r in rows)
    multinomials = list(multinomial_rows(history, TINY.ops))
    assert len(MULTINOMIAL_COLUMNS) == 5
    assert len(multinomials) == 2 * 2 * (2 * 3 + 6)  # epochs x cells x (modules x ops + edges)
    # files count epochs from 1 (as the progress bars do)
    assert multinomials[0][:4] == (1, 0, "vertex 1", "conv3x3-bn-relu")
    assert (2, 1, "edge 2-3", "present") == multinomials[-1][:4]
    assert [r[0] for r in rows] == [1, 2]
    for epoch in (1, 2):
        for cell in (0, 1):
            probs = [r[4] for r in multinomials if r[:3] == (epoch, cell, "vertex 2")]
            assert sum(probs) == pytest.approx(1.0)


def test_bench_times_hard_and_soft_alternately() -> None:
    out = bench_supernet(
        random_dataset(), channels=4, vertices=4, cells=2, batch_size=16, epochs=1, warmup=0
    )
    assert out["ops"] == 3 and out["channels"] == 4 and out["epochs_timed"] == 1
    assert out["hard_s"] > 0 and out["soft_s"] > 0
    assert out["ratio"] == pytest.approx(out["soft_s"] / out["hard_s"])
    assert out["device"] == "cpu" and out["steps_per_epoch"] == 3
    assert all(isinstance(v, (int, float, str)) for v in out.values())  # flat
    with pytest.raises(
        ConfigError, match="'epochs' parameter of bench_supernet must be an int >= 1"
    ):
        bench_supernet(random_dataset(), epochs=0)


# --------------------------------------------------------------------------- remedies


def test_warmup_epochs_leave_the_multinomials_at_their_prior() -> None:
    result = train_supernet(
        TINY.replace(epochs=3, warmup_epochs=2), random_dataset(), progress=False
    )
    first, second, third = result.history
    for record in (first, second):
        np.testing.assert_array_equal(record.op_probabilities, np.full((2, 2, 3), 1 / 3))
        np.testing.assert_array_equal(record.edge_probabilities, np.full((2, 6), 0.5))
        assert math.isfinite(record.val_loss)
    assert not np.allclose(third.op_probabilities, 1 / 3)  # updates start after the warm-up


def test_the_defaults_fit_the_multinomials_after_the_weights() -> None:
    default = SupernetConfig()
    assert (default.arch_gradient, default.arch_schedule, default.arch_target) == (
        "score_function", "after", "loss")  # fmt: skip
    assert (default.shortcut, default.weight_sampling, default.arch_entropy) == (
        "learned", "uniform", 0.5)  # fmt: skip
    result = train_supernet(AFTER, random_dataset(), progress=False)
    phases = [r.phase for r in result.history]
    assert phases == ["weights"] * 2 + ["arch"] * 2  # 60 steps: rounds of 50 and 10
    assert all(np.array_equal(r.op_probabilities, np.full((2, 2, 3), 1 / 3))
               for r in result.history[:2])  # fmt: skip
    assert not np.allclose(result.final.op_probabilities, 1 / 3)
    arch = result.history[-1]
    assert math.isnan(arch.train_loss) and math.isfinite(arch.val_loss) and arch.weight_lr == 0


def test_frozen_shortcut_keeps_the_input_output_edge_at_one_half() -> None:
    assert TINY.shortcut == "frozen" and TINY.weight_sampling == "uniform"
    result = train_supernet(TINY.replace(shortcut="frozen"), random_dataset(), progress=False)
    learned = train_supernet(TINY.replace(shortcut="learned"), random_dataset(), progress=False)
    assert learned.final.edge_probabilities[0, 2] != 0.5
    edges = result.final.edge_probabilities  # (K, E); edge (0, V-1) has index V-2 = 2
    np.testing.assert_array_equal(edges[:, 2], 0.5)
    assert not np.allclose(np.delete(edges, 2, axis=1), 0.5)


def test_edge_lr_moves_only_the_edges_faster() -> None:
    base = train_supernet(TINY, random_dataset(), progress=False).final
    fast = train_supernet(TINY.replace(edge_lr=0.3), random_dataset(), progress=False).final
    moved = lambda p, prior: float(np.abs(p - prior).max())  # noqa: E731
    assert moved(fast.edge_probabilities, 0.5) > 2 * moved(base.edge_probabilities, 0.5)


def test_uniform_weight_sampling_trains_deterministically_and_learns() -> None:
    config = TINY.replace(weight_sampling="uniform", epochs=4)
    a = train_supernet(config, random_dataset(), progress=False)
    b = train_supernet(config, random_dataset(), progress=False)
    assert numbers(a.history) == numbers(b.history)
    learned = TINY.replace(epochs=4, weight_sampling="learned")
    assert numbers(a.history) != numbers(train_supernet(learned, random_dataset(),
                                                        progress=False).history)  # fmt: skip
    assert a.history[-1].train_loss < a.history[0].train_loss
    assert not np.allclose(a.final.op_probabilities, 1 / 3)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"warmup_epochs": 3}, "'warmup_epochs' must be an int < epochs \\(3\\); got 3"),
        (
            {"weight_sampling": "fair"},
            "'weight_sampling' must be one of \\['learned', 'uniform'\\]",
        ),
        ({"edge_lr": 0.0}, "'edge_lr' must be a finite number > 0.0 or null; got 0.0"),
        ({"shortcut": "none"}, "'shortcut' must be one of \\['learned', 'frozen'\\]"),
        ({"vertices": 8}, "'weight_sampling' must be 'learned' for cells of more than 7"),
    ],
)
def test_remedy_options_are_checked(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TINY.replace(**changes)
