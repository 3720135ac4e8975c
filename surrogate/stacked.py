"""The channel-stacked network: K stand-alone networks of one macro skeleton as one module.

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

No operation mixes the channels of different members, so a NaN in one member's channels never
reaches another's. On the CPU the stacked forward pass gives the members' logits bit for bit;
the gradients differ from the single networks' in the last bits (a grouped convolution's
backward and the batched classifier add in another order). Why not ``torch.func.vmap``: it
needs one architecture for all members. On the CPU, max-pooling runs channels-last inside (same
maxima, several times faster). :mod:`surrogate.batched` trains such stacks.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from surrogate.errors import ConfigError
from surrogate.network import Cell, Network

__all__ = ["StackedNetwork"]


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

    def stacked(self, members: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """The inverse of :meth:`member_states`: from one mapping per member (keyed like that
        member's ``state_dict``, e.g. its optimiser state), the tensors of this stack's names
        (those of its ``state_dict``), new and shaped as the stack holds them; a name for which
        some member gives no tensor is left out."""
        shapes = {name: tensor.shape for name, tensor in self.state_dict().items()}
        out: dict[str, torch.Tensor] = {}
        for name, entries in self.origin.items():
            parts = [members[g].get(key) for g, key in entries]
            if all(part is not None for part in parts):
                out[name] = _cat(parts).reshape(shapes[name])  # type: ignore[arg-type]
        return out

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
