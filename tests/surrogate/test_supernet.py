"""Tests of surrogate.supernet: sampling, straight-through gradients, fixed architectures."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from dagspace.cell import NASBENCH101_OPS, CellSpec, prune, try_prune
from dagspace.errors import InvalidCellError
from surrogate.errors import ConfigError, TrainingError
from surrogate.network import Network, count_macs
from surrogate.supernet import (
    MAX_RESAMPLES,
    Supernet,
    active_vertices,
    embed_cell,
    gumbel_noise,
)

C3, C1, MP = NASBENCH101_OPS
SHAPE = (1, 6, 6)


def tiny(vertices: int = 5, cells: int = 2, **kwargs: object) -> Supernet:
    options = {"input_shape": SHAPE, "num_classes": 4, "channels": 3, "num_stages": 2}
    options.update(kwargs)
    return Supernet(vertices, cells, **options)  # type: ignore[arg-type]


def x_batch(n: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.randn((n, *SHAPE), generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- pure helpers


def test_embed_cell_puts_the_output_last() -> None:
    spec = CellSpec([[0, 1, 1], [0, 0, 1], [0, 0, 0]], ["input", MP, "output"])
    matrix, op_index = embed_cell(spec, 5)
    expected = np.zeros((5, 5), dtype=np.uint8)
    expected[0, 1] = expected[0, 4] = expected[1, 4] = 1
    assert np.array_equal(matrix, expected) and matrix.dtype == np.uint8
    assert op_index.tolist() == [-1, 2, -1, -1, -1]
    same, ops_same = embed_cell(
        CellSpec(np.eye(5, k=1, dtype=int), ["input", C3, C1, MP, "output"]), 5
    )
    assert np.array_equal(same, np.eye(5, k=1)) and ops_same.tolist() == [-1, 0, 1, 2, -1]
    unlabelled = embed_cell(CellSpec(spec.matrix), 4)[1]
    assert unlabelled.tolist() == [-1, -1, -1, -1]


def test_embed_cell_errors() -> None:
    spec = CellSpec(np.eye(5, k=1, dtype=int), ["input", C3, C1, MP, "output"])
    with pytest.raises(InvalidCellError, match="5 vertices does not fit a supernet of 4"):
        embed_cell(spec, 4)
    with pytest.raises(InvalidCellError, match="'maxpool3x3' \\(vertex 3\\) is not one of"):
        embed_cell(spec, 5, ops=(C3, C1))


@pytest.mark.parametrize("seed", range(5))
def test_active_vertices_matches_dagspace_pruning(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(50):
        v = int(rng.integers(2, 8))
        matrix = np.triu(rng.integers(0, 2, (v, v)), 1)
        active = active_vertices(matrix)
        pruned = try_prune(CellSpec(matrix))
        if pruned is None:
            assert not active.any()
        else:
            assert active[0] and active[-1] and active.sum() == pruned.num_vertices
            assert np.array_equal(matrix[np.ix_(active, active)], pruned.matrix)


def test_gumbel_noise_is_seeded() -> None:
    a = gumbel_noise((3, 4), torch.Generator().manual_seed(1))
    b = gumbel_noise((3, 4), torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.dtype == torch.float32


# --------------------------------------------------------------------------- construction


def test_parameter_shapes_and_groups() -> None:
    net = tiny(5, 3, num_stages=3)
    assert net.alpha.shape == (3, 3, 3) and net.beta is not None and net.beta.shape == (3, 10, 2)
    assert net.arch_parameters() == [net.alpha, net.beta]
    weights = net.weight_parameters()
    assert all(p is not net.alpha and p is not net.beta for p in weights)
    assert len(weights) + 2 == len(list(net.parameters()))
    assert np.allclose(net.op_probabilities(), 1 / 3) and np.allclose(net.edge_probabilities(), 0.5)
    assert net.op_probabilities().shape == (3, 3, 3) and net.edge_probabilities().shape == (3, 10)


def test_same_seed_same_supernet_and_samples() -> None:
    a, b, c = tiny(seed=5), tiny(seed=5), tiny(seed=6)
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["stem.0.weight"], c.state_dict()["stem.0.weight"])
    x = x_batch()
    s1 = a.sample(torch.Generator().manual_seed(3), 2.0)
    s2 = b.sample(torch.Generator().manual_seed(3), 2.0)
    assert np.array_equal(s1.op_index, s2.op_index) and np.array_equal(s1.edges, s2.edges)
    assert torch.equal(a(x, sample=s1), b(x, sample=s2))
    assert torch.equal(a(x), b(x))  # the supernet's own generator is seeded too
    assert a.sample_architecture(9) == b.sample_architecture(9)


def test_constructor_errors() -> None:
    with pytest.raises(
        ConfigError, match="'num_vertices' parameter of Supernet must be an int >= 3"
    ):
        tiny(2)
    with pytest.raises(ConfigError, match="distinct names from"):
        tiny(ops=(C3, "conv7x7"))
    with pytest.raises(ConfigError, match="non-empty sequence of names"):
        tiny(ops=C3)
    with pytest.raises(ConfigError, match="'mode' of Supernet must be one of"):
        tiny(mode="mixed")
    with pytest.raises(ConfigError, match="used only with learn_topology=False"):
        tiny(topology=(CellSpec(np.eye(5, k=1, dtype=int)),) * 2)


# --------------------------------------------------------------------------- sampling


def test_sample_is_valid_and_pruned_vertices_do_not_run() -> None:
    net = tiny(6, 3, num_stages=3)
    calls: list[tuple[int, int, int]] = []
    for k, cell in enumerate(net.cells):
        for j, candidates in enumerate(cell.vertex_ops, start=1):
            for o, op in enumerate(candidates):
                op.register_forward_hook(lambda *_, key=(k, j, o): calls.append(key))
    generator = torch.Generator().manual_seed(0)
    for _ in range(10):
        sample = net.sample(generator, 1.0)
        calls.clear()
        net(x_batch(), sample=sample)
        expected = set()
        for k, spec in enumerate(net.architecture_of(sample)):
            active = active_vertices(spec.matrix)
            assert active.any()  # every sampled cell is valid
            expected |= {(k, j, int(sample.op_index[k, j - 1])) for j in range(1, 5) if active[j]}
        assert sorted(calls) == sorted(expected)  # only the sampled op of each active module


def test_straight_through_gradients_reach_alpha_and_beta() -> None:
    net = tiny()
    generator = torch.Generator().manual_seed(1)
    sample = net.sample(generator, 0.5)
    while all(prune(c).num_vertices == 2 for c in net.architecture_of(sample)):
        sample = net.sample(generator, 0.5)  # a draw where some module runs
    net(x_batch(), sample=sample).square().mean().backward()
    assert net.alpha.grad is not None and net.beta is not None and net.beta.grad is not None
    assert net.alpha.grad.abs().sum() > 0 and net.beta.grad.abs().sum() > 0
    assert torch.isfinite(net.alpha.grad).all() and torch.isfinite(net.beta.grad).all()


def test_a_non_differentiable_sample_leaves_the_architecture_out_of_the_graph() -> None:
    net = tiny()
    sample = net.sample(torch.Generator().manual_seed(1), 0.5, differentiable=False)
    assert sample.op_weights is None and sample.edge_weights is None
    net(x_batch(), sample=sample).sum().backward()
    assert net.alpha.grad is None and net.stem[0].weight.grad is not None


def test_hard_sample_runs_the_same_network_as_its_fixed_architecture() -> None:
    # Where pruning keeps every live vertex in place (the live vertices are 0 .. v-2 and the
    # output), a sample and its architecture use the same weights, so they compute the same.
    net = tiny(5, 2)
    x = x_batch()
    compared = 0
    for seed in range(12):
        sample = net.sample(torch.Generator().manual_seed(seed), 0.7)
        arch = net.architecture_of(sample)
        live = [np.flatnonzero(active_vertices(c.matrix)) for c in arch]
        if all(np.array_equal(a, [*range(len(a) - 1), 4]) for a in live):
            torch.testing.assert_close(net(x, sample=sample), net(x, arch))
            compared += 1
    assert compared >= 3


def test_op_choices_follow_the_multinomial() -> None:
    net = tiny(3, 1, num_stages=1)
    with torch.no_grad():
        net.alpha[0, 0] = torch.tensor([0.7, 0.2, 0.1]).log()
    draws = np.array([net.sample_architecture(s)[0].ops[1] for s in range(3000)])
    freq = [(draws == op).mean() for op in NASBENCH101_OPS]
    np.testing.assert_allclose(freq, [0.7, 0.2, 0.1], atol=0.03)


def test_edges_are_independent_conditioned_on_a_valid_cell() -> None:
    # V = 3, every edge present with probability 1/2: valid iff 0->2, or 0->1 and 1->2, so
    # P(0->2 | valid) = 0.5 / (0.5 + 0.5 * 0.25) = 0.8.
    net = tiny(3, 1, num_stages=1)
    draws = np.array([net.sample_architecture(s)[0].matrix[0, 2] for s in range(3000)])
    assert abs(draws.mean() - 0.8) < 0.03


def test_invalid_topologies_are_resampled() -> None:
    net = tiny(4, 1, num_stages=1)
    assert net.beta is not None
    with torch.no_grad():
        net.beta[:] = torch.tensor([6.0, -6.0])  # edges almost never present
        net.beta[0, 2] = torch.tensor([1.0, -1.0])  # edge 0 -> 3, present with p = 0.12
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        edges = net.sample(generator, 1.0).edges[0]
        assert edges[2]  # the only way to a valid cell (the others are ~6e-6 likely)


def test_resampling_gives_up_with_a_training_error() -> None:
    net = tiny(4, 1, num_stages=1)
    assert net.beta is not None
    with torch.no_grad():
        net.beta[:] = torch.tensor([30.0, -30.0])
    with pytest.raises(TrainingError, match=f"in {MAX_RESAMPLES} tries .*no input -> output path"):
        net.sample(torch.Generator().manual_seed(0), 1.0)
    with torch.no_grad():
        net.beta[:] = 0.0
        net.alpha[0, 0, 1] = float("nan")
    with pytest.raises(TrainingError, match="ops of cell 0 .*non-finite perturbed logit"):
        net.sample(torch.Generator().manual_seed(0), 1.0)


def test_sample_needs_a_positive_temperature() -> None:
    with pytest.raises(ConfigError, match="'tau' must be positive; got 0"):
        tiny().sample(torch.Generator(), 0)


# --------------------------------------------------------------------------- argmax


@pytest.mark.parametrize("seed", range(8))
def test_argmax_architecture_is_the_mode_of_the_conditioned_process(seed: int) -> None:
    net = tiny(4, 1, num_stages=1)
    rng = np.random.default_rng(seed)
    assert net.beta is not None
    with torch.no_grad():
        net.beta[:] = torch.from_numpy(rng.normal(0, 2, (1, 6, 2)) - [0, 1.5]).float()
    logp = torch.log_softmax(net.beta.detach().double(), -1)[0].numpy()  # (E, 2)
    best, best_lp = None, -np.inf
    for bits in itertools.product([0, 1], repeat=6):  # brute force over every edge set
        matrix = np.zeros((4, 4), dtype=int)
        matrix[np.triu_indices(4, 1)] = bits
        if not active_vertices(matrix).any():
            continue
        lp = float(logp[np.arange(6), bits].sum())
        if lp > best_lp:
            best, best_lp = matrix, lp
    assert np.array_equal(net.argmax_architecture()[0].matrix, best)


def test_argmax_architecture_ops_and_validity() -> None:
    net = tiny(4, 2)
    with torch.no_grad():
        net.alpha[1, 0] = torch.tensor([0.0, 0.0, 3.0])
    arch = net.argmax_architecture()
    assert arch[1].ops is not None and arch[1].ops[1] == MP
    assert all(try_prune(spec) is not None for spec in arch)  # zero logits: still a valid cell


# --------------------------------------------------------------------------- fixed architectures


def _network_with_supernet_weights(net: Supernet, arch: tuple[CellSpec, ...]) -> Network:
    """A stand-alone Network for ``arch`` carrying the supernet's shared weights."""
    model = Network(arch, SHAPE, 4, channels=3, num_stages=2)
    pairs = [(model.stem, net.stem), (model.classifier, net.classifier)]
    for ncell, scell in zip(model.cells, net.cells, strict=True):
        v = ncell.spec.num_vertices
        position = {j: (j if j < v - 1 else net.num_vertices - 1) for j in range(1, v)}
        for j, proj in ncell.projections.items():
            pairs.append((proj, scell.projections[position[int(j)] - 1]))
        for j, op in ncell.vertex_ops.items():
            index = net.ops.index(ncell.spec.ops[int(j)])
            pairs.append((op, scell.vertex_ops[int(j) - 1][index]))
    for target, source in pairs:
        result = target.load_state_dict(source.state_dict(), strict=False)
        assert not result.unexpected_keys
        assert all(
            k.split(".")[-1].startswith(("running_", "num_batches")) for k in result.missing_keys
        )
    return model


@pytest.mark.parametrize("seed", range(3))
def test_fixed_architecture_equals_a_network_with_the_same_weights(seed: int) -> None:
    net = tiny(5, 2, seed=seed)
    arch = tuple(prune(c) for c in net.sample_architecture(seed))
    model = _network_with_supernet_weights(net, arch).train()  # BN on batch statistics
    x = x_batch(seed=seed)
    torch.testing.assert_close(net(x, arch), model(x))
    assert count_macs(net, SHAPE, architecture=arch) == count_macs(model, SHAPE)


def test_fixed_architecture_output_depends_only_on_its_active_modules() -> None:
    net = tiny(5, 1, num_stages=1)
    # vertex 3 dangles (no path to the output): pruned away
    spec = CellSpec(
        [[0, 1, 0, 1, 0], [0, 0, 1, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]],
        ["input", C3, C1, C3, "output"],
    )
    x = x_batch()
    before = net(x, (spec,))
    cell = net.cells[0]
    untouched = [cell.vertex_ops[2][o] for o in range(3)]  # the dangling module
    untouched += [cell.vertex_ops[0][1], cell.vertex_ops[1][0]]  # ops not chosen
    with torch.no_grad():
        for module in untouched:
            for p in module.parameters():
                p.mul_(-3.0).add_(1.0)
    torch.testing.assert_close(net(x, (spec,)), before, rtol=0, atol=0)
    with torch.no_grad():
        cell.vertex_ops[0][0][0].weight.mul_(-3.0)  # the chosen op of vertex 1
    assert not torch.allclose(net(x, (spec,)), before)


def test_fixed_architecture_accepts_smaller_cells() -> None:
    net = tiny(5, 2)
    small = CellSpec([[0, 1, 1], [0, 0, 1], [0, 0, 0]], ["input", C1, "output"])
    assert net(x_batch(), (small, small)).shape == (6, 4)


def test_fixed_architecture_errors() -> None:
    net = tiny(4, 2)
    spec = CellSpec(np.eye(4, k=1, dtype=int), ["input", C3, C1, "output"])
    with pytest.raises(InvalidCellError, match="has 2 cells; got 1"):
        net(x_batch(), (spec,))
    with pytest.raises(InvalidCellError, match="must be a labelled CellSpec"):
        net(x_batch(), (spec, CellSpec(spec.matrix)))
    big = CellSpec(np.eye(5, k=1, dtype=int), ["input", C3, C1, MP, "output"])
    with pytest.raises(InvalidCellError, match="5 vertices does not fit a supernet of 4"):
        net(x_batch(), (spec, big))
    sample = net.sample(torch.Generator(), 1.0)
    with pytest.raises(ConfigError, match="not both"):
        net(x_batch(), (spec, spec), sample=sample)


# ------------------------------------------------------------------ fixed topology, soft mode


def test_fixed_topology() -> None:
    chain = CellSpec(np.eye(4, k=1, dtype=int))
    net = tiny(4, 2, learn_topology=False, topology=(chain, chain))
    assert net.beta is None and net.arch_parameters() == [net.alpha]
    assert net.edge_probabilities().tolist() == [[1, 0, 0, 1, 0, 1]] * 2
    sample = net.sample(torch.Generator().manual_seed(0), 1.0)
    assert sample.edge_weights is None
    assert all(np.array_equal(s.matrix, chain.matrix) for s in net.architecture_of(sample))
    net(x_batch(), sample=sample).sum().backward()
    assert net.alpha.grad is not None and net.alpha.grad.abs().sum() > 0
    full = tiny(4, 2, learn_topology=False)  # no topology: the complete DAG
    assert np.all(full.edge_probabilities() == 1.0)


def test_fixed_topology_errors() -> None:
    with pytest.raises(ConfigError, match="must be 2 CellSpecs"):
        tiny(4, 2, learn_topology=False, topology=(CellSpec(np.eye(4, k=1, dtype=int)),))
    broken = CellSpec([[0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]])
    with pytest.raises(InvalidCellError, match="topology of cell 1 has no input -> output path"):
        tiny(4, 2, learn_topology=False, topology=(CellSpec(np.eye(4, k=1, dtype=int)), broken))


def test_soft_mode_runs_every_op_and_passes_gradients() -> None:
    net = tiny(4, 2, mode="soft")
    calls: list[object] = []
    for cell in net.cells:
        for candidates in cell.vertex_ops:
            for op in candidates:
                op.register_forward_hook(lambda *_: calls.append(1))
    sample = net.sample(torch.Generator().manual_seed(0), 1.0)
    net(x_batch(), sample=sample).square().mean().backward()
    assert len(calls) == 2 * 2 * 3  # cells x modules x ops
    assert net.alpha.grad is not None and net.alpha.grad.abs().sum() > 0
    assert net.beta is not None and net.beta.grad is not None and net.beta.grad.abs().sum() > 0
