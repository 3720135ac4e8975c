"""Tests of surrogate.device: device resolution, the mixed-precision policy, generators."""

from __future__ import annotations

import contextlib

import pytest
import torch

from surrogate.device import (
    AmpPolicy,
    amp_policy,
    available_devices,
    derive_seeds,
    resolve_device,
    torch_generator,
)
from surrogate.errors import ConfigError


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


def test_cpu_and_auto(no_cuda: None) -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")
    assert available_devices() == ("cpu",)


@pytest.mark.parametrize("asked", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_cuda_names_what_was_asked_and_what_exists(no_cuda: None, asked: str) -> None:
    with pytest.raises(ConfigError, match=rf"'{asked}' is not available: this machine has cpu"):
        resolve_device(asked)


@pytest.mark.parametrize("asked", ["gpu", "cpu:0", "cuda:x", "", "mps"])
def test_unknown_device_strings(asked: str) -> None:
    with pytest.raises(ConfigError, match="must be 'auto', 'cpu', 'cuda' or 'cuda:N'"):
        resolve_device(asked)


def test_amp_is_a_no_op_on_cpu() -> None:
    for enabled in (True, False):
        policy = amp_policy(torch.device("cpu"), enabled)
        assert not policy.enabled and not policy.needs_scaler
        assert isinstance(policy.autocast(), contextlib.nullcontext)
        scaler = policy.grad_scaler()
        assert not scaler.is_enabled()
        loss = torch.tensor(2.0)
        assert scaler.scale(loss) is loss
        with policy.autocast():
            assert torch.ones(2, 2).matmul(torch.ones(2, 2)).dtype == torch.float32


def test_float16_policy_needs_a_scaler_and_bfloat16_does_not() -> None:
    assert AmpPolicy(torch.device("cuda"), torch.float16).needs_scaler
    assert not AmpPolicy(torch.device("cuda"), torch.bfloat16).needs_scaler
    assert AmpPolicy(torch.device("cuda"), torch.bfloat16).enabled


def test_torch_generator_is_seeded_and_reproducible() -> None:
    a = torch.rand(5, generator=torch_generator(7))
    b = torch.rand(5, generator=torch_generator(7))
    c = torch.rand(5, generator=torch_generator(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    generator = torch.Generator()
    assert torch_generator(generator) is generator


@pytest.mark.parametrize("seed", [-1, 1.5, True, "3", None])
def test_bad_seeds(seed: object) -> None:
    with pytest.raises(ConfigError, match="'seed' must be a non-negative int"):
        torch_generator(seed)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="'seed' must be a non-negative int"):
        derive_seeds(seed, 2)  # type: ignore[arg-type]


def test_derive_seeds() -> None:
    assert derive_seeds(3, 4) == derive_seeds(3, 4)
    assert len(set(derive_seeds(3, 4))) == 4
    assert derive_seeds(3, 2) != derive_seeds(4, 2)
