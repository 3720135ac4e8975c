"""Tests of surrogate.ops: the operation registry and its factories."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dagspace.cell import NASBENCH101_OPS, CellSpec
from dagspace.errors import InvalidCellError
from surrogate.errors import ConfigError
from surrogate.ops import OPERATIONS, build_operation, register_operation


def test_registry_holds_the_nasbench101_ops() -> None:
    assert set(NASBENCH101_OPS) <= set(OPERATIONS)


@pytest.mark.parametrize("name", NASBENCH101_OPS)
@pytest.mark.parametrize("shape", [(2, 4, 8, 8), (2, 4, 1, 40), (2, 4, 1, 1)])
def test_ops_keep_channels_and_spatial_size(name: str, shape: tuple[int, ...]) -> None:
    op = build_operation(name, shape[1])
    assert op(torch.randn(shape)).shape == shape


def test_maxpool_keeps_height_one() -> None:
    x = torch.arange(40.0).reshape(1, 1, 1, 40)
    out = build_operation("maxpool3x3", 1)(x)
    assert out.shape == x.shape
    assert torch.equal(out[0, 0, 0, :-1], x[0, 0, 0, 1:])  # max of a rising window


def test_build_operation_rejects_unknown_names() -> None:
    with pytest.raises(ConfigError, match="No operation factory for 'conv5x5'"):
        build_operation("conv5x5", 4)


@pytest.mark.usefixtures("scratch_registry")
def test_register_operation_makes_cells_and_networks_accept_it() -> None:
    def identity(channels: int) -> nn.Module:
        return nn.Identity()

    register_operation("identity", identity)
    register_operation("identity", identity)  # idempotent for the same factory
    spec = CellSpec([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "identity", "output"])
    assert spec.ops == ("input", "identity", "output")
    assert isinstance(build_operation("identity", 3), nn.Identity)


@pytest.mark.usefixtures("scratch_registry")
def test_register_operation_errors() -> None:
    with pytest.raises(ConfigError, match="must be callable"):
        register_operation("thing", "not a factory")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="already registered"):
        register_operation("maxpool3x3", lambda c: nn.Identity())
    with pytest.raises(InvalidCellError, match="operation name"):
        register_operation("input", lambda c: nn.Identity())
    register_operation("maxpool3x3", lambda c: nn.Identity(), replace=True)
    assert isinstance(build_operation("maxpool3x3", 2), nn.Identity)
    register_operation("broken", lambda c: 42)  # type: ignore[arg-type, return-value]
    with pytest.raises(ConfigError, match="must return an nn.Module; got int"):
        build_operation("broken", 2)
