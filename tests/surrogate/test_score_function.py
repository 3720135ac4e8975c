"""Tests of :mod:`surrogate.score_function` and the score-function training of the multinomials:
the estimator against the exact gradient, its null tests (no information -> no preference,
exactly) and a planted preference recovered."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from dagspace.cell import CellSpec, try_prune
from dagspace.hashing import canonical_hash
from surrogate import load_dataset, supernet_preset
from surrogate.errors import ConfigError
from surrogate.relative import rank_space
from surrogate.score_function import (
    active_modules,
    factorised_entropy,
    leave_one_out_advantages,
    sample_log_probability,
    score_function_objective,
)
from surrogate.training import ARCH_ROUND_STEPS, SupernetTrainer, train_supernet

OPS = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")


# -- the pieces ------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_leave_one_out_advantages_are_the_definition_and_sum_to_zero(seed):
    losses = torch.from_numpy(np.random.default_rng(seed).normal(size=7))
    got = leave_one_out_advantages(losses)
    want = torch.stack([losses[s] - torch.cat([losses[:s], losses[s + 1 :]]).mean()
                        for s in range(7)])  # fmt: skip
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    assert abs(float(got.sum())) < 1e-12


@pytest.mark.parametrize("value", [0.1, 2.302585092994046, 1e6, -3.7])
def test_equal_losses_have_advantages_exactly_zero(value):
    assert torch.equal(leave_one_out_advantages(torch.full((8,), value)), torch.zeros(8,
                       dtype=torch.float64))  # fmt: skip


def test_advantages_need_two_losses():
    with pytest.raises(ConfigError, match="at least 2 losses"):
        leave_one_out_advantages(torch.tensor([1.0]))


def test_active_modules_are_the_vertices_on_a_path():
    # V = 4, edges in triu order: 0-1 0-2 0-3 1-2 1-3 2-3
    edges = np.array([[1, 0, 0, 0, 1, 0], [1, 1, 0, 0, 0, 1], [0, 0, 1, 1, 0, 0]], dtype=bool)
    np.testing.assert_array_equal(
        active_modules(edges, 4), [[True, False], [False, True], [False, False]]
    )


def _exact_expectation(alpha, beta, loss_of_cell, frozen=None):
    """E[L] under the sampling process of one cell on V = 3 (conditioned on a path), exactly,
    differentiable: the sum over every raw draw."""
    rows, cols = np.triu_indices(3, 1)
    log_ops = torch.log_softmax(alpha[0, 0], -1)
    log_edges = torch.log_softmax(beta[0], -1)  # (3, 2)
    total = weight = 0
    for bits in itertools.product((0, 1), repeat=3):
        matrix = np.zeros((3, 3), dtype=np.uint8)
        matrix[rows, cols] = bits
        for op in range(3):
            cell = try_prune(CellSpec(matrix, ["input", OPS[op], "output"]))
            if cell is None:
                continue
            lp = log_ops[op] + sum(log_edges[e, b] for e, b in enumerate(bits))
            total = total + torch.exp(lp) * loss_of_cell[canonical_hash(cell)]
            weight = weight + torch.exp(lp)
    return total / weight


def _draw(alpha, beta, n, rng):
    """``n`` raw draws of the process (rejection of draws without a path), numpy."""
    p_ops = torch.softmax(alpha[0, 0], -1).detach().numpy()
    q = torch.softmax(beta[0], -1)[:, 1].detach().numpy()
    ops = rng.choice(3, size=4 * n, p=p_ops)
    edges = rng.random((4 * n, 3)) < q
    valid = edges[:, 1] | (edges[:, 0] & edges[:, 2])
    return ops[valid][:n, None, None], edges[valid][:n, None, :]


def test_score_function_estimate_is_the_exact_gradient_of_the_expected_loss():
    """Against the gradient of E[L] by autograd over every draw: the unconditioned log-probability
    (the validity normaliser drops out with the leave-one-out baseline) and the pruned modules
    left out still give the exact gradient, in expectation."""
    rng = np.random.default_rng(0)
    alpha = torch.tensor([[[0.3, -0.5, 0.1]]], dtype=torch.float64, requires_grad=True)
    beta = torch.tensor([[[0.2, -0.4], [-0.3, 0.6], [0.5, 0.0]]], dtype=torch.float64,
                        requires_grad=True)  # fmt: skip
    cells = {}
    for bits in itertools.product((0, 1), repeat=3):
        for op in OPS:
            matrix = np.zeros((3, 3), dtype=np.uint8)
            matrix[np.triu_indices(3, 1)] = bits
            cell = try_prune(CellSpec(matrix, ["input", op, "output"]))
            if cell is not None:
                cells.setdefault(canonical_hash(cell), rng.normal())
    exact = torch.autograd.grad(_exact_expectation(alpha, beta, cells), (alpha, beta))
    ops, edges = _draw(alpha, beta, 400_000, rng)

    def loss(o, e):
        matrix = np.zeros((3, 3), dtype=np.uint8)
        matrix[np.triu_indices(3, 1)] = e
        return cells[canonical_hash(try_prune(CellSpec(matrix, ["input", OPS[o], "output"])))]

    table = {(o, tuple(e)): loss(o, e) for o in range(3)
             for e in itertools.product((0, 1), repeat=3) if e[1] or (e[0] and e[2])}  # fmt: skip
    losses = np.array([table[(int(o), tuple(int(b) for b in e))]
                       for o, e in zip(ops[:, 0, 0], edges[:, 0], strict=True)])  # fmt: skip
    objective = score_function_objective(alpha, beta, ops, edges, losses)
    estimate = torch.autograd.grad(objective, (alpha, beta))
    for got, want in zip(estimate, exact, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0.01)
    assert float(exact[1].abs().max()) > 0.05  # the check is not trivial


def test_a_frozen_edge_and_an_unused_module_get_no_gradient():
    alpha = torch.zeros(1, 2, 3, dtype=torch.float64, requires_grad=True)
    beta = torch.zeros(1, 6, 2, dtype=torch.float64, requires_grad=True)
    ops = np.array([[[0, 2]], [[1, 2]]])
    # both samples: 0-1, 1-3 present (module 1 on the path), module 2 off every path
    edges = np.array([[[1, 0, 1, 0, 1, 0]], [[1, 0, 0, 0, 1, 0]]], dtype=bool)
    learned = np.ones(6, dtype=bool)
    learned[2] = False  # the input -> output edge of V = 4
    objective = score_function_objective(alpha, beta, ops, edges, [1.0, 2.0], entropy_weight=0.5,
                                         learned_edges=learned)  # fmt: skip
    g_alpha, g_beta = torch.autograd.grad(objective, (alpha, beta))
    assert torch.equal(g_alpha[0, 1], torch.zeros(3, dtype=torch.float64))  # pruned module
    assert torch.equal(g_beta[0, 2], torch.zeros(2, dtype=torch.float64))  # frozen edge
    assert float(g_alpha[0, 0].abs().sum()) > 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_entropy_term_is_exactly_zero_at_uniform_and_its_gradient_is_minus_the_entropys(dtype):
    alpha = torch.zeros(2, 3, 3, dtype=dtype, requires_grad=True)
    beta = torch.zeros(2, 10, 2, dtype=dtype, requires_grad=True)
    ops = np.random.default_rng(0).integers(3, size=(4, 2, 3))
    edges = np.random.default_rng(1).random((4, 2, 10)) < 0.5
    objective = score_function_objective(alpha, beta, ops, edges, [0.3] * 4, entropy_weight=0.7)
    grads = torch.autograd.grad(objective, (alpha, beta))
    assert all(torch.equal(g, torch.zeros_like(g)) for g in grads)
    # away from uniform: the term's gradient is -0.7 dH/dlogits (autograd of the entropy)
    logits = torch.randn(2, 3, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    alpha = logits.clone().requires_grad_(True)
    objective = score_function_objective(alpha, None, ops, edges, [0.3] * 4, entropy_weight=0.7)
    (got,) = torch.autograd.grad(objective, (alpha,))
    alpha = logits.clone().requires_grad_(True)
    (want,) = torch.autograd.grad(-0.7 * factorised_entropy(alpha, None), (alpha,))
    torch.testing.assert_close(got, want)


def test_sample_log_probability_is_the_sum_of_the_counted_options():
    alpha = torch.log(torch.tensor([[[0.5, 0.25, 0.25]]], dtype=torch.float64))
    beta = torch.log(torch.tensor([[[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]]], dtype=torch.float64))
    ops = torch.tensor([[[1]], [[1]]])
    edges = torch.tensor([[[True, True, False]], [[False, True, True]]])
    active = torch.tensor([[[True]], [[False]]])
    got = sample_log_probability(alpha, beta, ops, edges, active)
    want = torch.log(torch.tensor([0.25 * 0.1 * 0.8 * 0.5, 0.9 * 0.8 * 0.5], dtype=torch.float64))
    torch.testing.assert_close(got, want)


# -- training: null and planted ---------------------------------------------------------------
@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


@pytest.fixture(scope="module")
def after_config():
    return supernet_preset("smoke").replace(
        device="cpu", epochs=3, channels=4, arch_gradient="score_function",
        arch_schedule="after", arch_steps=60, arch_samples=4, arch_batch=64,
    )  # fmt: skip


@pytest.mark.parametrize("entropy", [0.0, 0.1])
def test_a_constant_target_leaves_the_multinomials_exactly_at_zero(digits, after_config, entropy):
    config = after_config.replace(arch_target="params", arch_entropy=entropy)
    result = train_supernet(config, digits, progress=False, arch_target=lambda archs: np.full(
        len(archs), 0.7))  # fmt: skip
    net = result.supernet
    assert torch.equal(net.alpha, torch.zeros_like(net.alpha))
    assert torch.equal(net.beta, torch.zeros_like(net.beta))
    assert [r.phase for r in result.history] == ["weights"] * 3 + ["arch"] * 2
    space_scores = rank_space(_space(config), net.op_probabilities(), net.edge_probabilities(),
                              op_names=config.ops).cell_scores()  # fmt: skip
    assert all(np.array_equal(s, np.zeros_like(s)) for s in space_scores)


def _space(config):
    from dagspace import enumerate_space

    return enumerate_space(config.vertices, config.ops)


def test_the_weights_phase_leaves_the_multinomials_untrained(digits, after_config):
    trainer = SupernetTrainer(after_config, digits, torch.device("cpu"))
    record = trainer.run_epoch(0, progress=False, evaluate=False)
    assert record.phase == "weights"
    assert np.array_equal(record.op_probabilities, np.full_like(record.op_probabilities, 1 / 3))
    assert np.array_equal(record.edge_probabilities, np.full_like(record.edge_probabilities, 0.5))


def test_a_planted_target_is_learned_and_ranks_the_space(digits, after_config):
    """Distillation of a known score (the number of maxpool modules that run is bad): the
    multinomials learn to avoid maxpool, and the ranking puts cells without it first."""
    config = after_config.replace(arch_target="params", arch_steps=150)

    def target(archs):
        return np.array([sum(try_prune(c).ops.count("maxpool3x3") for c in arch) for arch in archs],
                        dtype=np.float64)  # fmt: skip

    net = train_supernet(config, digits, progress=False, arch_target=target).supernet
    probs = net.op_probabilities()  # (K, V-2, 3)
    assert (probs[..., 2] < 0.2).all(), probs
    ranking = rank_space(_space(config), probs, net.edge_probabilities(), op_names=config.ops)
    space = ranking.space
    pools = np.array([0 if c.ops is None else c.ops.count("maxpool3x3") for c in space])
    scores = ranking.cell_scores()[0]
    assert scores[pools == 0].mean() > scores[pools > 0].mean() + 1.0


class _Noise(nn.Module):
    """An operation made worse: its output is replaced by loud noise."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = torch.Generator().manual_seed(int(x.shape[0]))
        return 30 * torch.randn(x.shape, generator=g)


def test_a_supernet_whose_op_is_noise_learns_to_avoid_it(digits):
    """The loss target on trained shared weights: with the maxpool modules of the last cell
    replaced by noise (the first cell's output is normalised by the next cell's batch norms, so
    noise there costs little: measured), the fit on the frozen weights drives that cell's maxpool
    probability down in every module."""
    config = supernet_preset("smoke").replace(device="cpu", arch_gradient="score_function",
                                              arch_schedule="after", arch_steps=1,
                                              arch_samples=6, arch_batch=128)  # fmt: skip
    trainer = SupernetTrainer(config, digits, torch.device("cpu"))
    for epoch in range(config.epochs):
        trainer.run_epoch(epoch, progress=False, evaluate=False)
    for module in trainer.supernet.cells[-1].vertex_ops:
        module[2] = _Noise()
    fitted = trainer.config.replace(arch_steps=2 * ARCH_ROUND_STEPS)
    trainer.config = fitted
    for index in range(trainer.arch_rounds):
        trainer.run_arch_round(index, progress=False, evaluate=False)
    probs = trainer.supernet.op_probabilities()  # (cells, modules, ops)
    assert (probs[-1, :, 2] < 1 / 3 - 0.15).all(), probs  # at the default entropy weight
    assert (probs[-1].argmin(axis=-1) == 2).all()


def test_score_function_training_resumes_exactly(tmp_path, digits, after_config):
    config = after_config.replace(arch_steps=ARCH_ROUND_STEPS + 10)
    whole = train_supernet(config, digits, progress=False)
    path = tmp_path / "supernet.pt"

    class Stop(Exception):
        pass

    def stop_after_first_round(record):
        if record.phase == "arch":
            raise Stop

    with pytest.raises(Stop):
        train_supernet(config, digits, checkpoint_path=path, progress=False,
                       callback=stop_after_first_round)  # fmt: skip
    resumed = train_supernet(config, digits, checkpoint_path=path, progress=False)
    assert resumed.resumed_epochs == config.epochs + 1
    assert torch.equal(resumed.supernet.alpha, whole.supernet.alpha)
    assert torch.equal(resumed.supernet.beta, whole.supernet.beta)


def test_a_distilled_target_needs_the_score_function_and_a_target(digits, after_config):
    with pytest.raises(ConfigError, match="arch_target"):
        after_config.replace(arch_gradient="straight_through", arch_target="snip")
    with pytest.raises(ConfigError, match="pass its losses"):
        train_supernet(after_config.replace(arch_target="snip"), digits, progress=False)
