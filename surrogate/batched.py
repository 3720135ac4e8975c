"""Batched stand-alone training: K candidates trained at once in one process, each exactly its own.

Technique: the K networks are *stacked along the channel dimension*. Member ``g`` of a stack owns
channels ``g * C .. (g + 1) * C - 1`` of every activation ``(B, K * C, H, W)``, and row ``b`` of
those channels is the ``b``-th example of that member's own batch, in its own data order. Each
layer of the K networks becomes one layer of the stack:

- conv + batch norm (+ ReLU): one grouped convolution (one group per member) and one batch norm
  over the ``K * C`` channels; a channel's statistics come from its own member's batch only, so
  every member is normalised as on its own;
- parameter-free, channel-wise layers (max-pooling, global average pooling): one call for all;
- a cell vertex: its members are grouped by operation (members whose cell lacks the vertex
  sit out); each group's input is a slice of the vertex's sums and runs through one stacked
  module; an operation that cannot be stacked (a custom one) runs alone for its member;
- the aggregation (the mean of a vertex's predecessors): each group output is added, member by
  member (``index_add_``), into the sums of the vertices that member's own edges reach, in the
  order the single cell adds them, then divided by each member's own in-degree;
- the classifier: one batched matrix product.

Every member starts from the weights ``train_candidate`` gives its seed (its own
:class:`~surrogate.network.Network` is built with that seed, then copied in), sees the batches
of that seed's order generator (and the shifts of its shift generator) and gets the recipe's
SGD step: SGD is elementwise, so one optimiser over the stacked parameters is K independent
ones, and the loss is the sum of the members' mean losses, so a member's gradients are those of
its own loss alone. Why not ``torch.func.vmap``: it needs one architecture for all members.
Why not CUDA streams: per-candidate kernels stay as small (and launch-bound) as one at a time.

How close: on the CPU the stacked forward pass gives the members' logits bit for bit; the
gradients differ from the single network's in the last bits (a grouped convolution's backward
and the batched classifier add in another order). Training amplifies that a little: after 2
epochs on a digits subset the tests see losses within 1e-5 and the same accuracies, and check
losses within 1e-4 and accuracies within one example. Over longer runs the differences grow
to those that changing torch's number of threads gives ``train_candidate`` itself (about 1e-2
relative in the loss after 3 epochs of the ``smoke`` preset on the digits).

A member's own problems stay its own: a non-finite training loss ends it as DIVERGED (with the
metrics of its last finite epoch, as ``train_candidate`` does), an injected fault as FAILED,
and the stack is rebuilt without it (its slices of the momentum buffers go with it), so the
others go on. A NaN in one member's channels never reaches another's: no operation mixes the
channels of different members. An error of the whole stack (say, out of memory) warns and
trains that stack's candidates one at a time instead.

Devices: the data stay on the device (batches are gathered there; one host sync per epoch).
On CUDA, mixed precision follows ``config.amp`` (bfloat16; on a GPU without bfloat16 the stack
trains in full precision, since float16 loss scaling would skip a step for *every* member when
one overflows) and activations are channels-last; both can be asked for on the CPU too
(``amp=``, ``channels_last=``), so that their code paths are tested there. On the CPU,
max-pooling runs channels-last inside (same maxima, several times faster).
"""

from __future__ import annotations

import collections
import functools
import math
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dagspace.cell import CellSpec
from dagspace.checks import check_int
from dagspace.errors import InvalidCellError
from surrogate.candidate import (
    CandidateConfig,
    CandidateResult,
    CandidateStatus,
    FaultPlan,
    build_network,
    check_architecture,
    check_config,
    check_dataset,
    train_candidate,
)
from surrogate.data import Dataset, Split
from surrogate.device import AmpPolicy, amp_policy, derive_seeds, resolve_device, torch_generator
from surrogate.errors import ConfigError
from surrogate.executors import CandidateTask, Executor
from surrogate.network import Cell, Network, count_macs, count_parameters, macro_layout
from surrogate.recipe import chunks

__all__ = ["BatchedExecutor", "StackedNetwork", "train_candidates"]


# ------------------------------------------------------------------------------ stacked layers

# A stacked tensor is the concatenation along dim 0 of its members' tensors (0-dim tensors are
# stacked); ``origin`` names, per chunk, the member (its position in the stack) and the key of
# that tensor in the member network's state_dict.
_Origin = tuple[tuple[int, str], ...]


def _cat(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    tensors = [t.detach() for t in tensors]
    return torch.stack(tensors) if tensors[0].dim() == 0 else torch.cat(tensors)


def _index(values: Sequence[int]) -> torch.Tensor:
    return torch.tensor(list(values), dtype=torch.int64)


def _is_channels_last(x: torch.Tensor) -> bool:
    return not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)


def _by_member(x: torch.Tensor, count: int, channels_last: bool) -> torch.Tensor:
    """A view of ``x`` ``(B, count * C, H, W)`` with a member axis: ``(B, count, C * H * W)``
    (member axis 1), or for a channels-last ``x``, ``(B, H, W, count, C)`` (member axis 3)."""
    batch, channels, height, width = x.shape
    if channels_last:
        nhwc = x.permute(0, 2, 3, 1)
        return nhwc.reshape(batch, height, width, count, channels // count)
    return x.reshape(batch, count, -1)


def _from_members(view: torch.Tensor, shape: Sequence[int], channels_last: bool) -> torch.Tensor:
    """The inverse of :func:`_by_member`: ``view`` as ``shape`` ``(B, count * C, H, W)``."""
    batch, channels, height, width = shape
    if channels_last:
        return view.reshape(batch, height, width, channels).permute(0, 3, 1, 2)
    return view.reshape(batch, channels, height, width)


def _select(x: torch.Tensor, members: torch.Tensor, count: int) -> torch.Tensor:
    """The channels of ``members`` of ``x`` ``(B, count * C, H, W)``, in the order given:
    ``(B, len(members) * C, H, W)``, in ``x``'s memory layout."""
    last = _is_channels_last(x)
    picked = _by_member(x, count, last).index_select(3 if last else 1, members)
    batch, _, height, width = x.shape
    shape = (batch, len(members) * (x.shape[1] // count), height, width)
    return _from_members(picked, shape, last)


def _conv_bn_kind(module: nn.Module) -> tuple[Any, ...] | None:
    """What identifies a stackable ``Sequential(Conv2d, BatchNorm2d[, ReLU])``, else None."""
    if not isinstance(module, nn.Sequential) or len(module) not in (2, 3):
        return None
    conv, bn = module[0], module[1]
    relu = len(module) == 3
    if relu and type(module[2]) is not nn.ReLU:
        return None
    if type(conv) is not nn.Conv2d or type(bn) is not nn.BatchNorm2d:
        return None
    if conv.groups != 1 or conv.bias is not None or conv.padding_mode != "zeros":
        return None
    if isinstance(conv.padding, str) or not bn.affine or not bn.track_running_stats:
        return None
    if bn.momentum is None or bn.num_features != conv.out_channels:
        return None
    return ("conv-bn", conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
            conv.padding, conv.dilation, bn.eps, bn.momentum, relu)  # fmt: skip


def _kind(module: nn.Module) -> tuple[Any, ...] | None:
    """How a member's module is stacked with others of the same kind; None: it runs alone."""
    if type(module) is nn.Identity:
        return ("identity",)
    if type(module) is nn.MaxPool2d and not module.return_indices:
        return ("maxpool", module.kernel_size, module.stride, module.padding, module.dilation,
                module.ceil_mode)  # fmt: skip
    return _conv_bn_kind(module)


class _StackedConvBn(nn.Module):
    """``G`` members' ``Conv2d`` + ``BatchNorm2d`` (+ ReLU) as one grouped conv and one norm:
    ``(B, G * C_in, H, W)`` to ``(B, G * C_out, H, W)``."""

    def __init__(self, modules: Sequence[nn.Sequential], keys: Sequence[tuple[int, str]]) -> None:
        super().__init__()
        kind = _conv_bn_kind(modules[0])
        conv, bn = modules[0][0], modules[0][1]
        self.groups = len(modules)
        self.stride, self.padding, self.dilation = conv.stride, conv.padding, conv.dilation
        self.eps, self.momentum, self.relu = bn.eps, bn.momentum, bool(kind and kind[-1])
        self.weight = nn.Parameter(_cat([m[0].weight for m in modules]))  # (G*Co, Ci, kh, kw)
        self.bn_weight = nn.Parameter(_cat([m[1].weight for m in modules]))  # (G*Co,)
        self.bn_bias = nn.Parameter(_cat([m[1].bias for m in modules]))
        self.register_buffer("running_mean", _cat([m[1].running_mean for m in modules]))
        self.register_buffer("running_var", _cat([m[1].running_var for m in modules]))
        counts = _cat([m[1].num_batches_tracked for m in modules])  # (G,)
        self.register_buffer("num_batches_tracked", counts)
        self.origin = {
            name: tuple((member, f"{prefix}{sub}") for member, prefix in keys)
            for name, sub in (
                ("weight", "0.weight"),
                ("bn_weight", "1.weight"),
                ("bn_bias", "1.bias"),
                ("running_mean", "1.running_mean"),
                ("running_var", "1.running_var"),
                ("num_batches_tracked", "1.num_batches_tracked"),
            )
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv2d(x, self.weight, None, self.stride, self.padding, self.dilation, self.groups)
        if self.training:
            self.num_batches_tracked.add_(1)
        y = F.batch_norm(
            y, self.running_mean, self.running_var, self.bn_weight, self.bn_bias,
            self.training, self.momentum, self.eps,
        )  # fmt: skip
        return F.relu(y) if self.relu else y


class _Shared(nn.Module):
    """A parameter-free, channel-wise module (max-pool, identity): one call for all members."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module
        self.origin: dict[str, _Origin] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(self.module, nn.MaxPool2d) and x.device.type == "cpu":
            # torch's channels-last CPU max-pool is several times faster than its NCHW one and
            # picks the same maxima (it scans the window in the same order): same numbers
            layout = torch.channels_last
            out = self.module(x.contiguous(memory_format=layout))
            return out if x.is_contiguous(memory_format=layout) else out.contiguous()
        return self.module(x)


class _Alone(nn.Module):
    """A member's module that cannot be stacked with others: it runs on its own channels."""

    def __init__(self, module: nn.Module, member: int, prefix: str) -> None:
        super().__init__()
        self.module = module
        self.origin = {
            f"module.{name}": ((member, f"{prefix}{name}"),) for name in module.state_dict()
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)


def _groups(
    modules: Mapping[int, nn.Module], prefixes: Mapping[int, str]
) -> list[tuple[list[int], nn.Module]]:
    """The members of ``modules`` grouped by kind, each group with its stacked module."""
    by_kind: dict[Any, list[int]] = {}
    for member, module in modules.items():
        kind = _kind(module)
        by_kind.setdefault(("alone", member) if kind is None else kind, []).append(member)
    out: list[tuple[list[int], nn.Module]] = []
    for kind, group in by_kind.items():
        if kind[0] == "alone":
            stacked: nn.Module = _Alone(modules[group[0]], group[0], prefixes[group[0]])
        elif kind[0] == "conv-bn":
            keys = [(g, prefixes[g]) for g in group]
            stacked = _StackedConvBn([modules[g] for g in group], keys)  # type: ignore[misc]
        else:
            stacked = _Shared(modules[group[0]])
        out.append((group, stacked))
    return out


@dataclass(frozen=True)
class _Term:
    """One piece of a source added into a target's sum: piece ``piece`` of vertex ``source``
    (0: the input), its member rows ``rows`` (a buffer name, or None for all of them), added
    at the target's member slots ``slots`` (a buffer name)."""

    source: int
    piece: int
    rows: str | None
    slots: str


@dataclass(frozen=True)
class _Target:
    """How a stacked cell computes one vertex: the sum of ``terms`` (in the single cell's
    order) over ``size`` member slots, divided by ``divisor`` (a number or a buffer name), then
    its operation groups (``widths``: members per group, in slot order)."""

    index: int
    size: int
    terms: tuple[_Term, ...]
    divisor: float | str
    widths: tuple[int, ...]
    projected: bool  # the input is seen through the projection groups of this vertex


class _StackedCell(nn.Module):
    """``G`` members' cells at one slot: ``(B, G * C_in, H, W)`` to ``(B, G * C, H, W)``.

    Interior vertex ``j`` of the stack is vertex ``j`` of every member that has it, the stack's
    output vertex every member's own output vertex. Each vertex holds its members in its own
    order (its operation groups one after the other), so that every group's input is a slice;
    the groups' outputs ("pieces") are added into the sums of later vertices member by member
    (``index_add_``), skipping the members without that edge. A member's sum thus adds its
    own predecessors in the single cell's order, starting from zero: the same numbers.
    """

    def __init__(
        self,
        cells: Sequence[Cell],
        prefixes: Sequence[str],
        channels_in: int,
        channels: int,
    ) -> None:
        super().__init__()
        size = len(cells)
        self.size, self.channels = size, channels
        last = [cell.spec.num_vertices - 1 for cell in cells]  # each member's output vertex
        self.out = max(last)  # the stack's vertices: input 0, interior 1 .. out - 1, output
        self.ops = nn.ModuleDict()
        self.projections = nn.ModuleDict()
        self.gathers: dict[int, list[str | None]] = {}  # projection group -> input rows
        pieces: dict[int, list[list[int]]] = {}  # vertex -> members of each of its pieces
        targets: list[_Target] = []
        buffers = 0

        def buffer(values: Sequence[int]) -> str:
            nonlocal buffers
            name = f"index_{buffers}"
            buffers += 1
            self.register_buffer(name, _index(values), persistent=False)
            return name

        for t in range(1, self.out + 1):
            own = [(t if t < n else None) if t < self.out else n for n in last]
            has = [g for g in range(size) if own[g] is not None]
            if t < self.out:
                modules = {g: cells[g].vertex_ops[str(own[g])] for g in has}
                names = {g: f"{prefixes[g]}vertex_ops.{own[g]}." for g in has}
                groups = _groups(modules, names)
                order = [g for members, _ in groups for g in members]
            else:
                groups, order = [], list(range(size))  # the output keeps the stack's order
            slot = {g: i for i, g in enumerate(order)}
            preds = {g: set(cells[g].predecessors[own[g]]) for g in has}  # type: ignore[index]
            users = [g for g in has if 0 in preds[g]]
            projected = bool(users) and channels_in != channels
            if projected:
                modules = {g: cells[g].projections[str(own[g])] for g in users}
                names = {g: f"{prefixes[g]}projections.{own[g]}." for g in users}
                proj = _groups(modules, names)
                self.projections[str(t)] = nn.ModuleList(m for _, m in proj)
                self.gathers[t] = [
                    None if members == list(range(size)) else buffer(members) for members, _ in proj
                ]
                pieces[0] = [members for members, _ in proj]
            else:
                pieces[0] = [list(range(size))]
            terms = []
            for source in range(t):
                for p, members in enumerate(pieces.get(source, [])):
                    rows = [r for r, g in enumerate(members) if g in slot and source in preds[g]]
                    if rows:
                        picked = None if len(rows) == len(members) else buffer(rows)
                        slots = buffer([slot[members[r]] for r in rows])
                        terms.append(_Term(source, p, picked, slots))
            counts = [max(1, len(preds[g])) for g in order]
            divisor: float | str = float(counts[0])
            if len(set(counts)) > 1:
                divisor = f"count_{t}"
                per_channel = torch.tensor(counts, dtype=torch.float32).repeat_interleave(channels)
                self.register_buffer(divisor, per_channel[None, :, None, None], persistent=False)
            widths = tuple(len(members) for members, _ in groups)
            targets.append(_Target(t, len(order), tuple(terms), divisor, widths, projected))
            if t < self.out:
                self.ops[str(t)] = nn.ModuleList(m for _, m in groups)
                pieces[t] = [members for members, _ in groups]
        self.targets = tuple(targets)

    def _input_pieces(self, x: torch.Tensor, target: _Target) -> list[torch.Tensor]:
        if not target.projected:
            return [x]
        return [
            module(x if rows is None else _select(x, getattr(self, rows), self.size))
            for module, rows in zip(
                self.projections[str(target.index)], self.gathers[target.index], strict=True
            )
        ]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = _is_channels_last(x)
        layout = torch.channels_last if last else torch.contiguous_format
        axis, channels = (3 if last else 1), self.channels
        pieces: dict[int, list[torch.Tensor]] = {}
        for target in self.targets:
            pieces[0] = self._input_pieces(x, target)
            terms = [pieces[term.source][term.piece] for term in target.terms]
            dtype = functools.reduce(torch.promote_types, (t.dtype for t in terms))
            batch, _, height, width = terms[0].shape
            shape = (batch, target.size * channels, height, width)
            # each member's sum of its own predecessors, added member by member into a base
            # tensor (an in-place update of a view would copy the whole gradient each time)
            sums = x.new_zeros(
                (batch, height, width, target.size, channels)
                if last
                else (batch, target.size, channels * height * width),
                dtype=dtype,
            )
            for term, piece in zip(target.terms, terms, strict=True):
                piece = piece.to(dtype).contiguous(memory_format=layout)
                rows = _by_member(piece, piece.shape[1] // channels, last)
                if term.rows is not None:
                    rows = rows.index_select(axis, getattr(self, term.rows))
                sums.index_add_(axis, getattr(self, term.slots), rows)
            total = _from_members(sums, shape, last)
            if isinstance(target.divisor, str):
                total = total / getattr(self, target.divisor).to(total.dtype)
            elif target.divisor != 1.0:
                total = total / target.divisor
            if target.index == self.out:
                return total
            ops = self.ops[str(target.index)]
            widths = [w * channels for w in target.widths]
            parts = [total] if len(ops) == 1 else total.split(widths, dim=1)
            pieces[target.index] = [op(part) for op, part in zip(ops, parts, strict=True)]
        raise AssertionError("a stacked cell always ends at its output vertex")


class _StackedLinear(nn.Module):
    """``G`` members' classifiers as one batched product: ``(B, G * C)`` to ``(B, G, N)``."""

    def __init__(self, linears: Sequence[nn.Linear], keys: Sequence[tuple[int, str]]) -> None:
        super().__init__()
        self.groups, self.out_features = len(linears), linears[0].out_features
        self.weight = nn.Parameter(_cat([m.weight for m in linears]))  # (G*N, C)
        self.bias = nn.Parameter(_cat([m.bias for m in linears]))  # (G*N,)
        self.origin = {
            name: tuple((member, f"{prefix}{name}") for member, prefix in keys)
            for name in ("weight", "bias")
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g, n = self.groups, self.out_features
        xs = x.view(x.shape[0], g, -1).transpose(0, 1)  # (G, B, C)
        weight = self.weight.view(g, n, -1).transpose(1, 2)  # (G, C, N)
        return torch.baddbmm(self.bias.view(g, 1, n), xs, weight).transpose(0, 1)  # (B, G, N)


def _layout_key(network: Network) -> tuple[Any, ...]:
    return (
        tuple(network.stem[0].weight.shape),
        tuple(repr(pool) for pool in network.pools),
        tuple(network.classifier.weight.shape),
    )


class StackedNetwork(nn.Module):
    """``G`` stand-alone :class:`~surrogate.network.Network` s of one macro skeleton (the same
    cell count, widths and classes; the cells may differ) as one module, channels stacked.

    ``forward`` maps ``(B, G * C, H, W)`` (member ``g``'s examples in channels ``g * C`` ..
    ``(g + 1) * C - 1``) to ``(B, G, num_classes)``: member ``g``'s logits for its own examples,
    computed by exactly its own network (to rounding). The stack copies the members' weights
    when it is built (except for operations that cannot be stacked, which it shares);
    :meth:`member_states` gives them back in each member's ``state_dict`` form.

    Args:
        networks: the members, on one device.
        channels: ``(channels_in, channels)`` of each cell slot
            (:func:`surrogate.network.macro_layout` gives them).

    Raises:
        ConfigError: no network, or networks of different macro skeletons.
    """

    def __init__(self, networks: Sequence[Network], channels: Sequence[tuple[int, int]]) -> None:
        super().__init__()
        nets = list(networks)
        if not nets or not all(isinstance(n, Network) for n in nets):
            raise ConfigError(
                f"A StackedNetwork needs a non-empty list of Networks; got {networks!r:.200}."
            )
        keys = {_layout_key(n) for n in nets}
        if len(keys) > 1 or len(channels) != len(nets[0].cells):
            raise ConfigError(
                "The networks of a StackedNetwork must share one macro skeleton (stem, pooling, "
                f"classifier) with {len(channels)} cell slot(s); got {sorted(keys)} and "
                f"{len(nets[0].cells)} cell(s)."
            )
        self.size = len(nets)
        every = range(self.size)
        self.stem = _StackedConvBn([n.stem for n in nets], [(g, "stem.") for g in every])
        self.pools = nets[0].pools  # parameter-free and channel-wise
        self.cells = nn.ModuleList(
            _StackedCell([n.cells[s] for n in nets], [f"cells.{s}."] * self.size, *widths)
            for s, widths in enumerate(channels)
        )
        self.classifier = _StackedLinear(
            [n.classifier for n in nets], [(g, "classifier.") for g in every]
        )
        self.to(nets[0].classifier.weight.device)  # the index buffers, made on the CPU
        self.origin: dict[str, _Origin] = {}
        for name, module in self.named_modules():
            for local, entries in getattr(module, "origin", {}).items():
                self.origin[f"{name}.{local}" if name else local] = entries
        member_states = [n.state_dict() for n in nets]
        self.shapes = {
            name: member_states[entries[0][0]][entries[0][1]].shape
            for name, entries in self.origin.items()
        }
        covered = sorted((g, key) for entries in self.origin.values() for g, key in entries)
        expected = sorted((g, key) for g, state in enumerate(member_states) for key in state)
        if covered != expected or set(self.origin) != set(self.state_dict()):
            raise ConfigError(  # a module the stack does not know how to hold
                "A StackedNetwork must hold every tensor of every member exactly once; got "
                f"{len(covered)} of {len(expected)} (missing "
                f"{sorted(set(expected) - set(covered))[:5]})."
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (B, G * channels, H, W)
        for pool, cell in zip(self.pools, self.cells, strict=True):
            x = cell(pool(x))
        return self.classifier(x.mean(dim=(2, 3)))  # (B, G, num_classes)

    def finite(self) -> torch.Tensor:
        """``(G,)`` 1.0 where every floating-point weight and buffer of a member is finite,
        else 0.0 (on the stack's device, no sync)."""
        state = self.state_dict()
        bad = torch.zeros(self.size, device=next(iter(state.values())).device)
        for name, tensor in state.items():
            if tensor.is_floating_point():
                entries = self.origin[name]
                chunks = tensor.reshape(len(entries), -1).isfinite().all(dim=1)  # (chunks,)
                members = torch.tensor([g for g, _ in entries], device=bad.device)
                bad.index_add_(0, members, (~chunks).to(bad.dtype))
        return (bad == 0).to(bad.dtype)

    def member_states(
        self, tensors: Mapping[str, torch.Tensor] | None = None
    ) -> list[dict[str, torch.Tensor]]:
        """Each member's part of ``tensors`` (keyed like this stack's ``state_dict``; default:
        the state itself), keyed like that member's ``state_dict``; views, not copies."""
        tensors = self.state_dict() if tensors is None else tensors
        out: list[dict[str, torch.Tensor]] = [{} for _ in range(self.size)]
        for name, tensor in tensors.items():
            entries = self.origin[name]
            chunks = [tensor] if tensor.dim() == 0 else tensor.unflatten(0, (len(entries), -1))
            for (member, key), chunk in zip(entries, chunks, strict=True):
                out[member][key] = chunk.reshape(self.shapes[name])
        return out


# ---------------------------------------------------------------------------------- training


@dataclass
class _Member:
    """One candidate of a batch while it trains (mutable bookkeeping)."""

    index: int  # its position in the caller's lists
    network: Network
    params: int
    macs: int
    order: torch.Generator
    shift: torch.Generator
    fault: FaultPlan | None
    train_loss: float = math.nan
    train_accuracy: float = math.nan
    epochs_run: int = 0
    diverged_epoch: int | None = None


def _cosine_lrs(config: CandidateConfig) -> list[float]:
    """The learning rate of every epoch, as ``train_candidate``'s scheduler gives it."""
    dummy = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([dummy], lr=config.lr, momentum=config.momentum, nesterov=True)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    lrs = []
    for _ in range(config.epochs):
        lrs.append(float(optimizer.param_groups[0]["lr"]))
        optimizer.step()  # no gradient: changes nothing, keeps the scheduler from warning
        scheduler.step()
    return lrs


def _shift_draws(
    generator: torch.Generator, sizes: Sequence[int], shape: tuple[int, int]
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The offsets :func:`~surrogate.candidate.random_shift` draws for batches of ``sizes``."""
    height, width = shape
    dy = 0 if height == 1 else max(1, height // 8)
    dx = 0 if width == 1 else max(1, width // 8)
    if dy == 0 and dx == 0:
        return []
    return [
        (
            torch.randint(0, 2 * dy + 1, (n,), generator=generator),
            torch.randint(0, 2 * dx + 1, (n,), generator=generator),
        )
        for n in sizes
    ]


def _shift_stacked(x: torch.Tensor, top: torch.Tensor, left: torch.Tensor) -> torch.Tensor:
    """Shift example ``b`` of member ``g`` of ``x`` ``(B, G, C, H, W)`` by ``top[b, g] - dy``
    rows and ``left[b, g] - dx`` columns, zero padded, as ``random_shift`` does per member."""
    batch, size, channels, height, width = x.shape
    dy = 0 if height == 1 else max(1, height // 8)
    dx = 0 if width == 1 else max(1, width // 8)
    padded = F.pad(x, (dx, dx, dy, dy))  # (B, G, C, H + 2 dy, W + 2 dx)
    rows = top[..., None] + torch.arange(height, device=x.device)  # (B, G, H)
    cols = left[..., None] + torch.arange(width, device=x.device)  # (B, G, W)
    b = torch.arange(batch, device=x.device)[:, None, None, None, None]
    g = torch.arange(size, device=x.device)[None, :, None, None, None]
    c = torch.arange(channels, device=x.device)[None, None, :, None, None]
    return padded[b, g, c, rows[:, :, None, :, None], cols[:, :, None, None, :]]


class _Batch:
    """The stack of the members still training, its optimiser, and the state to fall back to."""

    def __init__(
        self,
        members: list[_Member],
        config: CandidateConfig,
        channels: Sequence[tuple[int, int]],
        channels_last: bool,
    ) -> None:
        self.members, self.config, self.channels = members, config, channels
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.stack = self._stack(members)
        self.optimizer = self._optimizer(self.stack)
        self.last_good = self.snapshot()

    def _stack(self, members: list[_Member]) -> StackedNetwork:
        stack = StackedNetwork([m.network for m in members], self.channels)
        return stack.to(memory_format=self.memory_format)

    def _optimizer(self, stack: StackedNetwork) -> torch.optim.SGD:
        c = self.config
        return torch.optim.SGD(
            stack.parameters(), lr=c.lr, momentum=c.momentum, nesterov=True,
            weight_decay=c.weight_decay,
        )  # fmt: skip

    def snapshot(self) -> dict[str, torch.Tensor]:
        return {name: t.detach().clone() for name, t in self.stack.state_dict().items()}

    def restore(self, positions: Sequence[int]) -> None:
        """Load the fall-back state of the members at ``positions`` into their networks."""
        states = self.stack.member_states(self.last_good)
        for pos in positions:
            self.members[pos].network.load_state_dict(states[pos])

    def keep(self, positions: Sequence[int]) -> None:
        """Go on with the members at ``positions`` only: their weights and momentum move to a
        new stack; the new fall-back state is their current state."""
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
        self.stack = self._stack(self.members)
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer = self._optimizer(self.stack)
        self.optimizer.param_groups[0]["lr"] = lr
        for name, p in self.stack.named_parameters():
            chunks = [momentum[positions[g]].get(key) for g, key in self.stack.origin[name]]
            if all(chunk is not None for chunk in chunks):
                buffer = torch.empty_like(p)
                buffer.copy_(_cat(chunks).view(p.shape))  # type: ignore[arg-type]
                self.optimizer.state[p]["momentum_buffer"] = buffer
        self.last_good = self.snapshot()


@torch.no_grad()
def _evaluate_stack(
    stack: StackedNetwork, split: Split, batch_size: int, amp: AmpPolicy, memory_format: Any
) -> list[tuple[float, float]]:
    """Each member's mean cross-entropy and accuracy over ``split`` (as :func:`evaluate`)."""
    if len(split) == 0:
        return [(math.nan, math.nan)] * stack.size
    stack.eval()
    try:
        loss_sum = torch.zeros(stack.size, dtype=torch.float64, device=split.x.device)
        correct = torch.zeros(stack.size, dtype=torch.int64, device=split.x.device)
        for part in chunks(len(split), batch_size):
            x, y = split.x[part], split.y[part]  # (B, C, H, W), (B,)
            x = x.repeat(1, stack.size, 1, 1).contiguous(memory_format=memory_format)
            with amp.autocast():
                logits = stack(x)  # (B, G, N)
            targets = y[:, None].expand(-1, stack.size)  # (B, G)
            losses = F.cross_entropy(logits.float().transpose(1, 2), targets, reduction="none")
            loss_sum += losses.sum(0).double()
            correct += (logits.argmax(dim=2) == targets).sum(0)
    finally:
        stack.train()
    n = len(split)
    return [(s / n, c / n) for s, c in zip(loss_sum.tolist(), correct.tolist(), strict=True)]


def _train_batch(
    members: list[_Member],
    data: Dataset,
    config: CandidateConfig,
    device: torch.device,
    amp: AmpPolicy,
    channels_last: bool,
    finish: Any,
) -> None:
    """Train ``members`` (one macro skeleton) as one stack; ``finish(member, status, metrics,
    error)`` records each member's result as soon as it is known."""
    train = data.train
    n = len(train)
    slots = macro_layout(
        data.input_shape, len(members[0].network.cells), config.channels, config.num_stages
    )
    layout = [(slot.channels_in, slot.channels) for slot in slots]
    batch = _Batch(members, config, layout, channels_last)
    lrs = _cosine_lrs(config)
    parts = chunks(n, config.batch_size)
    sizes = [p.stop - p.start for p in parts]
    eval_batch = max(256, config.batch_size)

    def evaluate_members(stack: StackedNetwork) -> list[tuple[float, float, float, float]]:
        val = _evaluate_stack(stack, data.val, eval_batch, amp, batch.memory_format)
        test = _evaluate_stack(stack, data.test, eval_batch, amp, batch.memory_format)
        return [(*v, *t) for v, t in zip(val, test, strict=True)]

    for epoch in range(config.epochs):
        failing = [
            pos for pos, m in enumerate(batch.members)
            if m.fault is not None and m.fault.raise_at_epoch == epoch
        ]  # fmt: skip
        for pos in failing:
            error = f"RuntimeError: injected fault at epoch {epoch} (FaultPlan.raise_at_epoch)"
            finish(batch.members[pos], CandidateStatus.FAILED, None, error)
        if failing:
            survivors = [pos for pos in range(len(batch.members)) if pos not in failing]
            if not survivors:
                return
            batch.keep(survivors)
        active, stack, optimizer = batch.members, batch.stack, batch.optimizer
        size = len(active)
        optimizer.param_groups[0]["lr"] = lrs[epoch]
        poisons = [None if m.fault is None else m.fault.poison(epoch) for m in active]
        poison = None
        if any(p is not None for p in poisons):
            poison = torch.tensor([1.0 if p is None else p for p in poisons], device=device)
        orders = torch.stack([torch.randperm(n, generator=m.order) for m in active]).to(
            device
        )  # (G, N)
        shifts: list[tuple[torch.Tensor, torch.Tensor]] = []
        if config.augment:
            draws = [_shift_draws(m.shift, sizes, data.input_shape[1:]) for m in active]
            if draws[0]:
                flat = torch.stack(
                    [torch.cat([t for step in d for t in step]) for d in draws], dim=1
                ).to(device)  # (2 * N, G): per step, the tops then the lefts
                pieces = flat.split([s for s in sizes for _ in range(2)])
                shifts = list(zip(pieces[0::2], pieces[1::2], strict=True))
        loss_sum = torch.zeros(size, device=device)
        correct = torch.zeros(size, dtype=torch.int64, device=device)
        for step, part in enumerate(parts):
            idx = orders[:, part].T  # (B, G)
            x, y = train.x[idx], train.y[idx]  # (B, G, C, H, W), (B, G)
            if shifts:
                x = _shift_stacked(x, *shifts[step])
            x = x.flatten(1, 2).contiguous(memory_format=batch.memory_format)  # (B, G*C, H, W)
            with amp.autocast():
                logits = stack(x)  # (B, G, num_classes)
            losses = F.cross_entropy(
                logits.float().transpose(1, 2), y, reduction="none",
                label_smoothing=config.label_smoothing,
            ).mean(0)  # (G,): each member's mean loss  # fmt: skip
            if poison is not None:
                losses = losses * poison
            optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()
            optimizer.step()
            loss_sum += losses.detach() * y.shape[0]
            correct += (logits.argmax(dim=2) == y).sum(0)
        # one device sync per epoch; a finite loss is not enough (the last steps may have
        # made a member's weights or batch-norm statistics non-finite), as in train_candidate
        summary = torch.stack([loss_sum / n, correct.to(loss_sum.dtype), stack.finite()])
        epoch_losses, corrects, finite = summary.tolist()
        diverged = []
        for pos, (m, loss) in enumerate(zip(active, epoch_losses, strict=True)):
            if math.isfinite(loss) and finite[pos]:
                m.train_loss, m.train_accuracy = loss, int(corrects[pos]) / n
                m.epochs_run = epoch + 1
            else:
                m.diverged_epoch = epoch
                diverged.append(pos)
        if diverged:
            batch.restore(diverged)
            gone = [active[pos] for pos in diverged]
            alone = batch._stack(gone)
            for m, metrics in zip(gone, evaluate_members(alone), strict=True):
                error = (  # train_candidate's words
                    f"The training loss (or the network's weights) was not finite in epoch "
                    f"{m.diverged_epoch}; the metrics are those of the network after "
                    f"{m.epochs_run} epoch(s)."
                )
                finish(m, CandidateStatus.DIVERGED, metrics, error)
            survivors = [pos for pos in range(size) if pos not in diverged]
            if not survivors:
                return
            batch.keep(survivors)
        elif epoch + 1 < config.epochs:
            batch.last_good = batch.snapshot()
    for m, metrics in zip(batch.members, evaluate_members(batch.stack), strict=True):
        finish(m, CandidateStatus.COMPLETE, metrics, None)


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
    policy = amp_policy(target, config.amp) if amp is None else amp
    if policy.needs_scaler:  # float16 loss scaling would skip every member's step at once
        policy = AmpPolicy(policy.device, None)
    last = target.type == "cuda" if channels_last is None else bool(channels_last)
    results: list[CandidateResult | None] = [None] * count

    def finish(m: _Member, status: CandidateStatus, metrics: Any, error: str | None) -> None:
        seconds = (time.perf_counter() - started) / count
        if metrics is None:
            results[m.index] = CandidateResult.failure(error or "", device=str(target),
                                                       seconds=seconds)  # fmt: skip
            return
        val_loss, val_accuracy, test_loss, test_accuracy = metrics
        results[m.index] = CandidateResult(
            status=status,
            val_accuracy=val_accuracy,
            val_loss=val_loss,
            test_accuracy=test_accuracy,
            test_loss=test_loss,
            train_loss=m.train_loss,
            train_accuracy=m.train_accuracy,
            params=m.params,
            macs=m.macs,
            train_seconds=seconds,
            epochs_run=m.epochs_run,
            device=str(target),
            error=error,
            diverged_epoch=m.diverged_epoch,
        )

    def fail(index: int, err: Exception) -> None:
        seconds = (time.perf_counter() - started) / count
        results[index] = CandidateResult.failure(
            f"{type(err).__name__}: {err}", device=str(target), seconds=seconds
        )

    data = dataset.to(target)
    groups: dict[int, list[_Member]] = collections.defaultdict(list)
    for k, (arch, seed, plan) in enumerate(zip(archs, seeds, plans, strict=True)):
        try:
            member = _build_member(k, arch, data, config, int(seed), plan, target)
        except Exception as err:  # this candidate fails, as train_candidate records it
            fail(k, err)
            continue
        groups[len(member.network.cells)].append(member)
    for members in groups.values():
        try:
            _train_batch(members, data, config, target, policy, last, finish)
        except Exception as err:  # not any one candidate's fault: train the rest one at a time
            if target.type == "cuda":
                torch.cuda.empty_cache()
            warnings.warn(
                f"Training {len(members)} candidates as one stack failed "
                f"({type(err).__name__}: {err}); training them one at a time instead.",
                RuntimeWarning,
                stacklevel=2,
            )
            for m in members:
                if results[m.index] is None:
                    results[m.index] = train_candidate(
                        archs[m.index], dataset, config, int(seeds[m.index]), target,
                        fault=plans[m.index],
                    )  # fmt: skip
    return [r for r in results if r is not None]


def _build_member(
    index: int,
    architecture: tuple[CellSpec, ...],
    data: Dataset,
    config: CandidateConfig,
    seed: int,
    fault: FaultPlan | None,
    device: torch.device,
) -> _Member:
    """Candidate ``index``'s network, seeded exactly as ``train_candidate`` seeds it."""
    init_seed, order_seed, shift_seed = derive_seeds(seed, 3)
    network = build_network(architecture, data, config, init_seed, device)
    return _Member(
        index=index,
        network=network,
        params=count_parameters(network),
        macs=count_macs(network, data.input_shape),
        order=torch_generator(order_seed),
        shift=torch_generator(shift_seed),
        fault=fault,
    )


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
                results[i] = CandidateResult.failure(
                    f"{type(err).__name__}: {err}", device=self.device
                )
        if good:
            chosen = [tasks[i] for i, _ in good]
            try:
                dataset = chosen[0].dataset.load(self.device)
                trained = train_candidates(
                    [cells for _, cells in good],
                    dataset,
                    chosen[0].config,
                    [task.seed for task in chosen],
                    self.device,
                    faults=[task.fault for task in chosen],
                )
            except Exception as err:  # the data cannot be loaded: these tasks fail, not all
                seconds = (time.perf_counter() - started) / len(tasks)
                error = f"{type(err).__name__}: {err}"
                trained = [
                    CandidateResult.failure(error, device=self.device, seconds=seconds)
                    for _ in chosen
                ]
            for (i, _), result in zip(good, trained, strict=True):
                results[i] = result
        return [r for r in results if r is not None]
