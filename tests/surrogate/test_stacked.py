"""Tests of surrogate.stacked: K networks of one macro skeleton as one channel-stacked module."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import torch
import torch.nn.functional as F

from dagspace.cell import CellSpec
from surrogate.errors import ConfigError
from surrogate.network import Network, macro_layout
from surrogate.stacked import StackedNetwork

C3, C1, MP = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"
IN, OUT = "input", "output"

# cells of 5, 3, 4 and 2 vertices; every operation, masked and unmasked edges, projections
FIVE = CellSpec(
    [[0, 1, 1, 0, 1], [0, 0, 1, 0, 1], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]],
    [IN, MP, C3, C1, OUT],
)
THREE = CellSpec([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [IN, C3, OUT])
FOUR = CellSpec([[0, 1, 1, 1], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]], [IN, C1, MP, OUT])
TWO = CellSpec([[0, 1], [0, 0]], [IN, OUT])
ARCHS = [(FIVE, THREE), (THREE, FOUR), (FOUR, TWO)]


def make_networks(archs: Sequence[Sequence[CellSpec]], channels: int = 4) -> list[Network]:
    return [Network(a, (1, 8, 8), 10, channels=channels, seed=i) for i, a in enumerate(archs)]


def make_layout(cells: int, channels: int = 4) -> list[tuple[int, int]]:
    return [(s.channels_in, s.channels) for s in macro_layout((1, 8, 8), cells, channels, 2)]


# ------------------------------------------------------------------------ the stacked network


def test_stacked_network_holds_each_member_exactly() -> None:
    nets = make_networks(ARCHS)
    stack = StackedNetwork(nets, make_layout(2))
    for net, state in zip(nets, stack.member_states(), strict=True):
        expected = net.state_dict()
        assert state.keys() == expected.keys()
        for key, value in expected.items():
            assert torch.equal(state[key], value), key


@pytest.mark.parametrize("channels_last", [False, True])
def test_stacked_forward_and_gradients_match_each_member(channels_last: bool) -> None:
    nets = make_networks(ARCHS)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    stack = StackedNetwork(nets, make_layout(2)).to(memory_format=layout)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(16, len(nets), 1, 8, 8, generator=generator)  # member g's own examples
    y = torch.randint(0, 10, (16, len(nets)), generator=generator)
    logits = stack(x.flatten(1, 2).contiguous(memory_format=layout))  # (B, G, 10)
    singles = [net(x[:, g]) for g, net in enumerate(nets)]
    for g, single in enumerate(singles):
        torch.testing.assert_close(logits[:, g], single, atol=1e-5, rtol=0)
    if channels_last:
        return  # rounding may move a maximum, and with it a gradient: checked end to end
    F.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(0).sum().backward()
    for g, single in enumerate(singles):
        F.cross_entropy(single, y[:, g]).backward()
    grads = stack.member_states({name: p.grad for name, p in stack.named_parameters()})
    for net, grad in zip(nets, grads, strict=True):
        for name, p in net.named_parameters():
            torch.testing.assert_close(grad[name], p.grad, atol=1e-5, rtol=0)
    # the batch-norm running statistics moved exactly as each member's own
    for net, state in zip(nets, stack.member_states(), strict=True):
        for key, value in net.state_dict().items():
            torch.testing.assert_close(state[key], value, atol=1e-6, rtol=0)


def test_stacked_network_errors() -> None:
    with pytest.raises(ConfigError, match="needs a non-empty list of Networks; got \\[\\]"):
        StackedNetwork([], make_layout(2))
    mixed = make_networks(ARCHS[:1]) + make_networks(ARCHS[1:2], channels=8)
    with pytest.raises(ConfigError, match="must share one macro skeleton"):
        StackedNetwork(mixed, make_layout(2))


def test_stacked_is_the_inverse_of_member_states() -> None:
    nets = make_networks(ARCHS)
    stack = StackedNetwork(nets, make_layout(2))
    state = stack.state_dict()
    again = stack.stacked(stack.member_states())
    assert again.keys() == state.keys()
    assert all(torch.equal(again[name], tensor) for name, tensor in state.items())
    assert all(again[name].data_ptr() != tensor.data_ptr() for name, tensor in state.items())
    # a name that some member lacks is left out
    partial = [dict(s) for s in stack.member_states()]
    del partial[1]["classifier.weight"]
    assert "classifier.weight" not in stack.stacked(partial) and "classifier.bias" in again
