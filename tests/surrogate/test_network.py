"""Tests of surrogate.network: cells from CellSpecs, the macro skeleton, MACs and parameters."""

from __future__ import annotations

import pytest
import torch

from dagspace.cell import CellSpec
from dagspace.errors import InvalidCellError
from surrogate.errors import ConfigError
from surrogate.network import (
    Cell,
    Network,
    count_macs,
    count_parameters,
    macro_layout,
    stage_sizes,
)

C3, C1, MP = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"

# 0 -> 1 -> 3 -> 4, 0 -> 2 -> 4, 1 -> 2; vertex 3 also fed by 0
DIAMOND = CellSpec(
    [
        [0, 1, 1, 1, 0],
        [0, 0, 1, 1, 0],
        [0, 0, 0, 0, 1],
        [0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0],
    ],
    ["input", C3, C1, MP, "output"],
)


@pytest.mark.parametrize(
    ("cells", "stages", "sizes"),
    [(1, 1, (1,)), (5, 2, (3, 2)), (9, 3, (3, 3, 3)), (4, 3, (2, 1, 1))],
)
def test_stage_sizes(cells: int, stages: int, sizes: tuple[int, ...]) -> None:
    assert stage_sizes(cells, stages) == sizes


def test_stage_sizes_needs_a_cell_per_stage() -> None:
    with pytest.raises(
        ConfigError, match=r"'num_stages' \(3\) must be at most the number of cells \(2\)"
    ):
        stage_sizes(2, 3)
    with pytest.raises(
        ConfigError, match="'num_cells' parameter of stage_sizes must be an int >= 1"
    ):
        stage_sizes(0, 1)


def test_macro_layout_pools_and_doubles_between_stages() -> None:
    layout = macro_layout((1, 8, 8), 3, 4, 2)
    assert [(s.stage, s.channels_in, s.channels, s.pool, s.spatial) for s in layout] == [
        (0, 4, 4, None, (8, 8)),
        (0, 4, 4, None, (8, 8)),
        (1, 4, 8, (2, 2), (4, 4)),
    ]


def test_macro_layout_keeps_height_one() -> None:
    layout = macro_layout((1, 1, 40), 3, 4, 3)
    assert [s.pool for s in layout] == [None, (1, 2), (1, 2)]
    assert layout[-1].spatial == (1, 10)
    assert macro_layout((1, 1, 1), 2, 4, 2)[1].pool is None  # nothing left to pool


def test_cell_is_the_mean_of_predecessors_through_ops() -> None:
    cell = Cell(DIAMOND, 3, 3).eval()
    x = torch.randn(2, 3, 5, 5)
    ops = cell.vertex_ops
    h1 = ops["1"](x)
    h2 = ops["2"]((x + h1) / 2)
    h3 = ops["3"]((x + h1) / 2)
    torch.testing.assert_close(cell(x), (h2 + h3) / 2)
    assert len(cell.projections) == 3 and all(
        isinstance(p, torch.nn.Identity) for p in cell.projections.values()
    )


def test_cell_projects_the_input_when_channels_change() -> None:
    cell = Cell(DIAMOND, 2, 6)
    assert sorted(cell.projections) == ["1", "2", "3"]
    assert cell(torch.randn(2, 2, 4, 4)).shape == (2, 6, 4, 4)


def test_cell_prunes_its_spec_first() -> None:
    dangling = CellSpec(
        [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]], ["input", C3, C1, "output"]
    )
    cell = Cell(dangling, 3, 3)
    assert cell.spec.num_vertices == 3 and sorted(cell.vertex_ops) == ["1"]


def test_cell_rejects_unlabelled_and_disconnected_cells() -> None:
    with pytest.raises(InvalidCellError, match="needs a labelled cell"):
        Cell(CellSpec(DIAMOND.matrix), 3, 3)
    with pytest.raises(InvalidCellError, match="cannot reach its output"):
        Cell(CellSpec([[0, 1, 0], [0, 0, 0], [0, 0, 0]], ["input", C3, "output"]), 3, 3)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 1, 40), (3, 6, 5)])
def test_network_forward_shapes(shape: tuple[int, int, int]) -> None:
    net = Network((DIAMOND, DIAMOND, DIAMOND), shape, 7, channels=4, num_stages=2)
    assert net(torch.randn(3, *shape)).shape == (3, 7)


def test_network_cells_can_differ_and_init_is_seeded() -> None:
    other = CellSpec([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", MP, "output"])
    a = Network((DIAMOND, other), (1, 8, 8), 10, channels=4, seed=3)
    b = Network((DIAMOND, other), (1, 8, 8), 10, channels=4, seed=3)
    c = Network((DIAMOND, other), (1, 8, 8), 10, channels=4, seed=4)
    assert a.architecture == (DIAMOND, other)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["stem.0.weight"], sc["stem.0.weight"])


def test_network_errors() -> None:
    with pytest.raises(InvalidCellError, match="needs a labelled cell"):
        Network((CellSpec(DIAMOND.matrix),), (1, 8, 8), 10)
    with pytest.raises(ConfigError, match="at least one cell"):
        Network((), (1, 8, 8), 10)
    with pytest.raises(
        ConfigError, match=r"'input_shape' parameter of Network must be \(C, H, W\)"
    ):
        Network((DIAMOND,), (8, 8), 10, num_stages=1)
    with pytest.raises(ConfigError, match="'num_classes' parameter of Network must be an int >= 1"):
        Network((DIAMOND,), (1, 8, 8), 0, num_stages=1)


def test_count_macs_and_parameters_by_hand() -> None:
    direct = CellSpec([[0, 1], [0, 0]], ["input", "output"])  # the cell is the identity
    net = Network((direct,), (1, 4, 4), 10, channels=4, num_stages=1)
    stem = 4 * 4 * 4 * (1 * 9)  # output elements x (in channels x kernel)
    assert count_macs(net, (1, 4, 4)) == stem + 4 * 10
    assert count_parameters(net) == 4 * 9 + 2 * 4 + 4 * 10 + 10  # conv, BN, linear
    assert net.training  # count_macs restores the mode


def test_count_macs_counts_projections_and_ops() -> None:
    net = Network((DIAMOND, DIAMOND), (1, 4, 4), 10, channels=2, num_stages=2)
    stem = 16 * 2 * 9
    cell0 = 16 * 2 * (2 * 9) + 16 * 2 * 2  # conv3x3 + conv1x1 at 4x4, 2 channels
    cell1 = 4 * 4 * (4 * 9) + 4 * 4 * 4 + 3 * (4 * 4 * 2)  # at 2x2, 4 channels, 3 projections
    assert count_macs(net, (1, 4, 4)) == stem + cell0 + cell1 + 4 * 10
