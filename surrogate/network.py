"""Cells built from a CellSpec, the network that stacks them, and its cost (MACs, parameters).

A cell follows NAS-Bench-101: vertex ``j`` applies its operation to the aggregate of its
predecessors, and the input vertex's tensor reaches a vertex through a 1x1 projection
(convolution + batch norm) when the cell changes the channel count. Unlike NAS-Bench-101 (which
sums into vertices and concatenates into the output), the aggregate here is the **mean** of the
predecessor tensors, the output vertex included: a vertex's scale then does not grow with its
in-degree, so every cell of the space (and every sample of the supernet, whose edges come and
go) feeds its operations tensors of the same scale, which keeps shared weights and mixed
precision numerically stable, and every vertex has the same channel count.

The network (macro skeleton, shared with :class:`surrogate.supernet.Supernet`): a 3x3
conv-bn-relu stem, ``num_stages`` stages of cells (the cells split evenly over the stages, in
order, earlier stages taking the remainder), a 2x2 max-pool before each stage after the first
(on every spatial dimension larger than 1, so ``1 x W`` inputs keep ``H = 1``) with the channel
count doubled by that stage's first cell, global average pooling and a linear classifier.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from dagspace.cell import CellSpec, prune
from dagspace.checks import check_int, is_int
from dagspace.errors import InvalidCellError
from surrogate.device import torch_generator
from surrogate.errors import ConfigError
from surrogate.ops import ConvBnRelu, build_operation

__all__ = [
    "Cell",
    "CellSlot",
    "Network",
    "count_macs",
    "count_parameters",
    "initialise_weights",
    "macro_layout",
    "mean_of",
    "projection",
    "stage_sizes",
]


def check_input_shape(owner: str, input_shape: Any) -> tuple[int, int, int]:
    """``input_shape`` as ``(C, H, W)`` positive ints, or a ConfigError naming ``owner``."""
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = ()
    if len(shape) != 3 or any(not is_int(n) or n < 1 for n in shape):
        raise ConfigError(
            f"The 'input_shape' parameter of {owner} must be (C, H, W) positive ints; "
            f"got {input_shape!r}."
        )
    c, h, w = (int(n) for n in shape)
    return c, h, w


def stage_sizes(num_cells: int, num_stages: int) -> tuple[int, ...]:
    """How many cells each stage holds: ``num_cells`` split evenly, earlier stages first.

    >>> stage_sizes(5, 2)
    (3, 2)
    """
    num_cells = check_int("stage_sizes", "num_cells", num_cells, 1, ConfigError)
    num_stages = check_int("stage_sizes", "num_stages", num_stages, 1, ConfigError)
    if num_stages > num_cells:
        raise ConfigError(
            f"The 'num_stages' ({num_stages}) must be at most the number of cells "
            f"({num_cells}), since every stage needs a cell."
        )
    base, extra = divmod(num_cells, num_stages)
    return tuple(base + (s < extra) for s in range(num_stages))


@dataclass(frozen=True)
class CellSlot:
    """Where a cell sits in the network: its stage, channels, and the pooling before it."""

    stage: int
    channels_in: int
    channels: int
    pool: tuple[int, int] | None  # max-pool kernel (= stride) applied before the cell
    spatial: tuple[int, int]  # (H, W) the cell works at


def macro_layout(
    input_shape: Sequence[int], num_cells: int, channels: int, num_stages: int
) -> tuple[CellSlot, ...]:
    """The ``num_cells`` slots of the macro skeleton for a ``(C, H, W)`` input."""
    _, height, width = check_input_shape("macro_layout", input_shape)
    channels = check_int("macro_layout", "channels", channels, 1, ConfigError)
    slots: list[CellSlot] = []
    channels_in = channels  # the stem's output
    for stage, size in enumerate(stage_sizes(num_cells, num_stages)):
        stage_channels = channels * 2**stage
        for i in range(size):
            pool = None
            if stage > 0 and i == 0:
                kernel = (2 if height > 1 else 1, 2 if width > 1 else 1)
                if kernel != (1, 1):
                    pool = kernel
                    height, width = height // kernel[0], width // kernel[1]
            slots.append(CellSlot(stage, channels_in, stage_channels, pool, (height, width)))
            channels_in = stage_channels
    return tuple(slots)


def projection(channels_in: int, channels: int) -> nn.Module:
    """The input vertex's way into a vertex: 1x1 conv + BN if the channels change, else identity."""
    if channels_in == channels:
        return nn.Identity()
    return nn.Sequential(
        nn.Conv2d(channels_in, channels, 1, bias=False),
        nn.BatchNorm2d(channels),
    )


def pooling(kernel: tuple[int, int] | None) -> nn.Module:
    return nn.Identity() if kernel is None else nn.MaxPool2d(kernel)


def mean_of(tensors: Sequence[torch.Tensor], count: int) -> torch.Tensor:
    """``sum(tensors) / count`` (the cell's aggregation; ``count`` may exceed the terms given
    when some terms are known to be zero)."""
    total = tensors[0]
    for tensor in tensors[1:]:
        total = total + tensor
    return total if count == 1 else total / count


def _labelled_pruned(spec: Any, owner: str) -> CellSpec:
    if not isinstance(spec, CellSpec):
        raise InvalidCellError(f"{owner} needs a CellSpec; got {type(spec).__name__}.")
    if spec.ops is None:
        raise InvalidCellError(
            f"{owner} needs a labelled cell (a network needs an operation at every vertex); "
            f"got an unlabelled cell with matrix {spec.matrix.tolist()}."
        )
    return prune(spec)


class Cell(nn.Module):
    """One NAS-Bench-101 cell for ``spec`` (pruned first): ``(B, channels_in, H, W)`` to
    ``(B, channels, H, W)``.

    Vertex ``j`` computes ``op_j(mean of its predecessors)``; the output vertex is the mean of
    its predecessors; a predecessor that is the input vertex is seen through ``projections[j]``.

    Raises:
        dagspace.InvalidCellError: ``spec`` is unlabelled or its input cannot reach its output.
        ConfigError: an operation has no registered factory (see :mod:`surrogate.ops`).
    """

    def __init__(self, spec: CellSpec, channels_in: int, channels: int) -> None:
        super().__init__()
        self.spec = _labelled_pruned(spec, "Cell")
        matrix = self.spec.matrix
        num_vertices = self.spec.num_vertices
        self.predecessors = tuple(
            tuple(int(i) for i in np.flatnonzero(matrix[:, j])) for j in range(num_vertices)
        )
        self.projections = nn.ModuleDict(
            {str(j): projection(channels_in, channels) for j in np.flatnonzero(matrix[0])}
        )
        self.vertex_ops = nn.ModuleDict(
            {
                str(j): build_operation(self.spec.ops[j], channels)  # type: ignore[index]
                for j in range(1, num_vertices - 1)
            }
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states: list[torch.Tensor] = [x]
        last = self.spec.num_vertices - 1
        for j in range(1, last + 1):
            inputs = [
                self.projections[str(j)](x) if i == 0 else states[i] for i in self.predecessors[j]
            ]
            aggregate = mean_of(inputs, len(inputs))  # (B, channels, H, W)
            states.append(aggregate if j == last else self.vertex_ops[str(j)](aggregate))
        return states[last]


class Network(nn.Module):
    """A stand-alone network: stem, ``architecture``'s cells in stages, pooling, classifier.

    Args:
        architecture: one labelled :class:`CellSpec` per cell (each may differ).
        input_shape: ``(C, H, W)`` of one example.
        num_classes: the classifier's outputs.
        channels: the stem's (and first stage's) channels; each later stage doubles them.
        num_stages: how many stages the cells are split into (at most the number of cells).
        seed: seeds the weight initialisation (a ``torch.Generator``; no global RNG).

    ``forward`` maps ``(B, C, H, W)`` to ``(B, num_classes)`` logits.
    """

    def __init__(
        self,
        architecture: Sequence[CellSpec],
        input_shape: Sequence[int],
        num_classes: int,
        channels: int = 16,
        num_stages: int = 2,
        *,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if isinstance(architecture, CellSpec):
            architecture = (architecture,)
        cells = tuple(architecture)
        if not cells:
            raise ConfigError("The 'architecture' of a Network must have at least one cell.")
        self.architecture = tuple(_labelled_pruned(spec, "Network") for spec in cells)
        in_channels = check_input_shape("Network", input_shape)[0]
        num_classes = check_int("Network", "num_classes", num_classes, 1, ConfigError)
        layout = macro_layout(input_shape, len(cells), channels, num_stages)
        self.stem = ConvBnRelu(in_channels, channels, 3)
        self.pools = nn.ModuleList(pooling(slot.pool) for slot in layout)
        self.cells = nn.ModuleList(
            Cell(spec, slot.channels_in, slot.channels)
            for spec, slot in zip(self.architecture, layout, strict=True)
        )
        self.classifier = nn.Linear(layout[-1].channels, num_classes)
        initialise_weights(self, seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (B, channels, H, W)
        for pool, cell in zip(self.pools, self.cells, strict=True):
            x = cell(pool(x))
        return self.classifier(x.mean(dim=(2, 3)))  # (B, num_classes)


def initialise_weights(module: nn.Module, seed: int | torch.Generator) -> None:
    """Initialise every conv, linear and norm layer of ``module`` from a seeded generator.

    Convolutions: He normal (fan-out, ReLU); linear layers: uniform in ``±1/sqrt(fan_in)``,
    biases zero; norms: weight 1, bias 0. Parameters of other module types keep their own
    initialisation (which uses torch's global RNG): custom operations with such parameters
    should initialise them deterministically themselves.
    """
    generator = torch_generator(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
                nn.init.kaiming_normal_(
                    m.weight, mode="fan_out", nonlinearity="relu", generator=generator
                )
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.Linear):
                bound = 1.0 / float(np.sqrt(m.in_features))
                nn.init.uniform_(m.weight, -bound, bound, generator=generator)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)):
                if getattr(m, "weight", None) is not None:
                    m.weight.fill_(1.0)
                if getattr(m, "bias", None) is not None:
                    m.bias.zero_()


def count_parameters(module: nn.Module) -> int:
    """The number of trainable parameters (elements) of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def count_macs(module: nn.Module, input_shape: Sequence[int], **forward_kwargs: Any) -> int:
    """Multiply-accumulates of the convolutions and linear layers for one ``(C, H, W)`` input.

    Counted with forward hooks during one evaluation-mode pass (so only the modules that run
    count: for a supernet, pass ``architecture=...`` to count that architecture). Norms,
    pooling, activations and the aggregation are not counted.
    """
    shape = check_input_shape("count_macs", input_shape)
    total = 0

    def conv_hook(m: nn.Module, inputs: Any, out: torch.Tensor) -> None:
        nonlocal total
        kernel = int(np.prod(m.kernel_size))
        total += out[0].numel() * (m.in_channels // m.groups) * kernel

    def linear_hook(m: nn.Module, inputs: Any, out: torch.Tensor) -> None:
        nonlocal total
        total += out[0].numel() * m.in_features

    hooks: list[RemovableHandle] = []
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    first = next(module.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    was_training = module.training
    try:
        module.eval()
        with torch.no_grad():
            module(torch.zeros((2, *shape), device=device), **forward_kwargs)  # batch 2: BN-safe
    finally:
        module.train(was_training)
        for handle in hooks:
            handle.remove()
    return int(total)
