"""Cell operations: a registry of factories keyed by their NAS-Bench-101 names.

Inside a cell every operation keeps its channel count (``channels`` in == out) and its spatial
size (stride 1, "same" padding), so any operation can sit at any vertex. They also work on
``1 x W`` inputs (MNIST-1D is ``1 x 1 x 40``): a 3x3 convolution with padding 1 and a 3x3 max-pool
with stride 1 and padding 1 both keep ``H = 1``.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from dagspace.cell import register_op
from surrogate.errors import ConfigError

__all__ = [
    "OPERATIONS",
    "ConvBnRelu",
    "OpFactory",
    "build_operation",
    "conv1x1_bn_relu",
    "conv3x3_bn_relu",
    "maxpool3x3",
    "register_operation",
]

OpFactory = Callable[[int], nn.Module]
"""``factory(channels) -> nn.Module`` mapping ``(B, channels, H, W)`` to the same shape."""


class ConvBnRelu(nn.Sequential):
    """Convolution (stride 1, same padding, no bias), batch normalisation, ReLU."""

    def __init__(self, channels_in: int, channels_out: int, kernel_size: int) -> None:
        super().__init__(
            nn.Conv2d(channels_in, channels_out, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(channels_out),
            nn.ReLU(inplace=False),
        )


def conv3x3_bn_relu(channels: int) -> nn.Module:
    return ConvBnRelu(channels, channels, 3)


def conv1x1_bn_relu(channels: int) -> nn.Module:
    return ConvBnRelu(channels, channels, 1)


def maxpool3x3(channels: int) -> nn.Module:
    """3x3 max-pool, stride 1, padding 1: keeps channels and spatial size (``H = 1`` too)."""
    del channels  # parameter-free; the signature is the factory contract
    return nn.MaxPool2d(kernel_size=3, stride=1, padding=1)


OPERATIONS: dict[str, OpFactory] = {
    "conv3x3-bn-relu": conv3x3_bn_relu,
    "conv1x1-bn-relu": conv1x1_bn_relu,
    "maxpool3x3": maxpool3x3,
}


def register_operation(name: str, factory: OpFactory, *, replace: bool = False) -> None:
    """Add an operation ``name`` built by ``factory(channels)``; CellSpec then accepts ``name``.

    Raises:
        dagspace.InvalidCellError: ``name`` is not a valid operation name.
        ConfigError: ``factory`` is not callable, or ``name`` is taken and ``replace`` is false.
    """
    if not callable(factory):
        raise ConfigError(
            f"The 'factory' of operation {name!r} must be callable as factory(channels) -> "
            f"nn.Module; got {type(factory).__name__}."
        )
    if name in OPERATIONS and OPERATIONS[name] is not factory and not replace:
        raise ConfigError(
            f"The operation {name!r} is already registered (to {OPERATIONS[name]!r}); "
            "pass replace=True to change its factory."
        )
    register_op(name)  # validates the name and makes CellSpec accept it
    OPERATIONS[name] = factory


def build_operation(name: str, channels: int) -> nn.Module:
    """A fresh module for operation ``name`` with ``channels`` channels in and out.

    Raises:
        ConfigError: ``name`` has no registered factory.
    """
    factory = OPERATIONS.get(name)
    if factory is None:
        raise ConfigError(
            f"No operation factory for {name!r}; expected one of {sorted(OPERATIONS)} "
            "(add one with surrogate.ops.register_operation)."
        )
    module = factory(channels)
    if not isinstance(module, nn.Module):
        raise ConfigError(
            f"The factory of operation {name!r} must return an nn.Module; "
            f"got {type(module).__name__}."
        )
    return module
