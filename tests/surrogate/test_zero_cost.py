"""Tests of surrogate.zero_cost: every proxy against a hand computation on a tiny network, the
network left unchanged, null and planted-preference cases, determinism, the registry, and the
typed errors for bad arguments."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch import nn

from dagspace.cell import CellSpec
from dagspace.errors import InvalidCellError
from surrogate.candidate import build_network, candidate_preset
from surrogate.data import Dataset, load_dataset
from surrogate.device import derive_seeds
from surrogate.errors import ConfigError, DatasetError
from surrogate.network import Network
from surrogate.zero_cost import (
    JACOB_COV_K,
    ZERO_COST_PROXIES,
    grad_norm,
    jacob_cov,
    naswot,
    register_proxy,
    snip,
    synflow,
    zero_cost_scores,
)

C3, MP = "conv3x3-bn-relu", "maxpool3x3"
# 0 -> 1 -> 3, 0 -> 2 -> 3
FORK = CellSpec(
    [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]], ["input", C3, MP, "output"]
)
SMOKE = candidate_preset("smoke").replace(channels=4)  # two stages, a 4-channel stem
PROXIES = ("synflow", "snip", "grad_norm", "naswot", "jacob_cov")

W1 = np.array([[1.0, -2.0, 0.5], [-1.0, 0.5, 2.0]])  # (2, 3)
W2 = np.array([[0.5, -1.0], [1.5, 0.25]])  # (2, 2)
WB = np.array([[1.0, -1.0], [-0.5, 1.0]])  # (2, 2), the middle layer of the naswot network
# three examples whose hidden units gate as [1, 0], [1, 1] and [0, 1] (no pre-activation is 0)
X = np.array([[1.0, 0.2, -0.3], [0.1, -0.4, 1.0], [-0.2, 1.0, 0.3]])  # (B, 3)
Y = np.array([0, 1, 1])


def linear(weight: np.ndarray) -> nn.Linear:
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(weight))
    return layer


def tiny(relu: bool = True) -> nn.Sequential:
    """``x -> W2 relu(W1 x)`` (or ``W2 W1 x``), no biases."""
    return nn.Sequential(linear(W1), nn.ReLU() if relu else nn.Identity(), linear(W2))


def tiny_xy() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.tensor(X, dtype=torch.float32), torch.tensor(Y)


def relu(a: np.ndarray) -> np.ndarray:
    return np.maximum(a, 0.0)


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits", seed=0, limit=200)  # 120 / 40 / 40 examples


@pytest.fixture
def registry() -> Iterator[dict]:
    """The registry, restored to its contents after the test."""
    saved = dict(ZERO_COST_PROXIES)
    yield ZERO_COST_PROXIES
    ZERO_COST_PROXIES.clear()
    ZERO_COST_PROXIES.update(saved)


# ------------------------------------------------------------------- hand computations


def test_synflow_matches_hand_computation() -> None:
    a1, a2 = np.abs(W1), np.abs(W2)
    hidden = a1 @ np.ones(3)  # (2,): all positive, so the ReLU passes it
    flow = np.ones(2) @ a2 @ hidden  # R
    # dR/dW2[i, j] = hidden[j]; dR/dW1[j, k] = sum_i |W2[i, j]| (the input is all ones)
    expected = (a2 * hidden[None, :]).sum() + (a1 * a2.sum(axis=0)[:, None]).sum()
    x, y = tiny_xy()
    assert synflow(tiny(), x, y) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(2 * flow)  # synaptic flow is conserved layer by layer


def _loss_gradients() -> tuple[np.ndarray, np.ndarray]:
    """dL/dW1, dL/dW2 of the mean cross-entropy of the tiny network, by explicit backprop."""
    pre = X @ W1.T  # (B, 2)
    gate = (pre > 0).astype(float)
    hidden = pre * gate
    logits = hidden @ W2.T  # (B, 2)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    d_logits = (p - np.eye(2)[Y]) / len(Y)  # (B, 2)
    d_w2 = d_logits.T @ hidden
    d_w1 = ((d_logits @ W2) * gate).T @ X
    return d_w1, d_w2


def test_snip_matches_hand_computation() -> None:
    d_w1, d_w2 = _loss_gradients()
    expected = np.abs(W1 * d_w1).sum() + np.abs(W2 * d_w2).sum()
    assert snip(tiny(), *tiny_xy()) == pytest.approx(expected, rel=1e-5)


def test_grad_norm_is_the_sum_of_per_tensor_norms() -> None:
    d_w1, d_w2 = _loss_gradients()
    expected = np.sqrt((d_w1**2).sum()) + np.sqrt((d_w2**2).sum())
    assert grad_norm(tiny(), *tiny_xy()) == pytest.approx(expected, rel=1e-5)


def test_naswot_matches_hand_computation() -> None:
    network = nn.Sequential(linear(W1), nn.ReLU(), linear(WB), nn.ReLU(), linear(W2))
    first = X @ W1.T  # (B, 2)
    second = relu(first) @ WB.T  # (B, 2)
    codes = np.concatenate([first > 0, second > 0], axis=1).astype(int)  # (B, N_A = 4)
    hamming = np.abs(codes[:, None, :] - codes[None, :, :]).sum(axis=2)  # (B, B)
    kernel = codes.shape[1] - hamming
    np.testing.assert_array_equal(kernel, [[4, 1, 0], [1, 4, 3], [0, 3, 4]])
    expected = math.log(abs(np.linalg.det(kernel)))  # log 24
    assert naswot(network, *tiny_xy()) == pytest.approx(expected, rel=1e-12)


def test_jacob_cov_matches_hand_computation() -> None:
    gate = (X @ W1.T > 0).astype(float)  # (B, 2)
    # d(sum of outputs)/dx for x -> W2 relu(W1 x): W1^T diag(gate) W2^T 1
    jacobian = (gate * (np.ones(2) @ W2)[None, :]) @ W1  # (B, 3)
    v = np.linalg.eigvalsh(np.corrcoef(jacobian))
    expected = -np.sum(np.log(v + 1e-5) + 1.0 / (v + 1e-5))
    assert JACOB_COV_K == 1e-5
    assert jacob_cov(tiny(), *tiny_xy()) == pytest.approx(expected, rel=1e-5)


# ---------------------------------------------------------------- the network is unchanged


def _state(network: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in network.state_dict().items()}


@pytest.mark.parametrize("name", PROXIES)
def test_proxy_leaves_network_and_grads_unchanged(name: str, digits: Dataset) -> None:
    # in evaluation mode: the proxies run a copy in training mode, which must not leak back
    network = Network((FORK, FORK), digits.input_shape, digits.num_classes, channels=4, seed=3)
    network.eval()
    generator = torch.Generator().manual_seed(0)
    params = list(network.parameters())
    for p in params[::2]:  # some grads set, the others None
        p.grad = torch.randn(p.shape, generator=generator)
    before, grads = _state(network), [None if p.grad is None else p.grad.clone() for p in params]
    ZERO_COST_PROXIES[name](network, digits.train.x[:16], digits.train.y[:16])
    after = network.state_dict()
    assert before.keys() == after.keys()
    for key, value in before.items():
        assert torch.equal(value, after[key]), key  # parameters and batch-norm statistics
    for p, grad in zip(params, grads, strict=True):
        assert (p.grad is None) if grad is None else torch.equal(p.grad, grad)
    assert not any(m.training for m in network.modules())
    assert all(p.dtype == torch.float32 and p.requires_grad for p in params)


# ------------------------------------------------------------- null and planted preference


def test_null_all_zero_weights() -> None:
    network = tiny()
    for p in network.parameters():
        p.data.zero_()
    x, y = tiny_xy()
    assert synflow(network, x, y) == 0.0
    assert snip(network, x, y) == 0.0
    assert grad_norm(network, x, y) == 0.0  # no activation reaches the last layer
    assert naswot(network, x, y) == -math.inf  # every code is all zeros: K is singular
    assert math.isnan(jacob_cov(network, x, y))  # J = 0: no correlation is defined


@pytest.mark.parametrize("name", PROXIES)
def test_null_batch_order_does_not_matter(name: str) -> None:
    x, y = tiny_xy()
    order = torch.tensor([2, 0, 1])
    proxy = ZERO_COST_PROXIES[name]
    assert proxy(tiny(), x[order], y[order]) == pytest.approx(proxy(tiny(), x, y), rel=1e-5)


@pytest.mark.parametrize("name", ["synflow", "naswot", "jacob_cov"])
def test_null_label_free_proxies_ignore_labels(name: str) -> None:
    x, y = tiny_xy()
    proxy = ZERO_COST_PROXIES[name]
    assert proxy(tiny(), x, 1 - y) == proxy(tiny(), x, y)


def test_null_synflow_ignores_input_values() -> None:
    x, y = tiny_xy()
    assert synflow(tiny(), torch.zeros_like(x), y) == synflow(tiny(), x, y)


def test_planted_synflow_prefers_more_parameters_in_the_chain() -> None:
    def chain(width: int) -> nn.Sequential:
        network = nn.Sequential(nn.Linear(3, width), nn.ReLU(), nn.Linear(width, 2))
        for p in network.parameters():
            p.data.fill_(0.5)
        return network

    x, y = tiny_xy()
    narrow, wide = synflow(chain(2), x, y), synflow(chain(8), x, y)
    assert wide > narrow > 0


@pytest.mark.parametrize("name", ["snip", "grad_norm"])
def test_planted_loss_proxies_prefer_a_sensitive_network(name: str) -> None:
    # x -> s I x on one-hot inputs: s = 10 already classifies the batch with near-zero loss,
    # so its loss barely reacts to its weights; s = 0.5 is uncertain.
    x, y = torch.eye(2), torch.tensor([0, 1])
    proxy = ZERO_COST_PROXIES[name]
    saturated = proxy(linear(10.0 * np.eye(2)), x, y)
    uncertain = proxy(linear(0.5 * np.eye(2)), x, y)
    assert uncertain > 10 * saturated > 0


def test_planted_naswot_prefers_distinct_codes() -> None:
    x, y = tiny_xy()
    repeated = x[torch.tensor([0, 1, 0])]  # two examples with the same code
    assert naswot(tiny(), x, y) > naswot(tiny(), repeated, y) == -math.inf


def test_planted_jacob_cov_prefers_decorrelated_jacobians() -> None:
    # Without the ReLU every example has the same Jacobian W1^T W2^T 1: all correlations 1.
    x, y = tiny_xy()
    assert jacob_cov(tiny(), x, y) > jacob_cov(tiny(relu=False), x, y) + 1e4


# ------------------------------------------------------------------------ zero_cost_scores


def test_zero_cost_scores_on_a_real_architecture(digits: Dataset) -> None:
    scores = zero_cost_scores((FORK, FORK), digits, SMOKE, seed=0, batch_size=32)
    assert tuple(scores) == PROXIES
    assert all(math.isfinite(v) for v in scores.values()), scores
    assert scores["synflow"] > 0 and scores["snip"] > 0 and scores["grad_norm"] > 0


def test_zero_cost_scores_is_deterministic(digits: Dataset) -> None:
    first = zero_cost_scores((FORK, FORK), digits, SMOKE, seed=5, batch_size=16)
    assert zero_cost_scores((FORK, FORK), digits, SMOKE, seed=5, batch_size=16) == first
    other = zero_cost_scores((FORK, FORK), digits, SMOKE, seed=6, batch_size=16)
    assert all(other[name] != first[name] for name in PROXIES)


def test_zero_cost_scores_uses_the_training_initialisation(digits: Dataset) -> None:
    # synflow ignores the batch, so it checks the network alone
    network = build_network((FORK, FORK), digits, SMOKE, derive_seeds(4, 3)[0], torch.device("cpu"))
    x, y = digits.train.x[:2], digits.train.y[:2]
    got = zero_cost_scores((FORK, FORK), digits, SMOKE, seed=4, proxies=["synflow"])
    assert got == {"synflow": synflow(network, x, y)}


def test_zero_cost_scores_order_and_batch_larger_than_the_split(digits: Dataset) -> None:
    small = Dataset("small", digits.train, digits.val, digits.test, 10, digits.input_shape)
    scores = zero_cost_scores((FORK, FORK), small, SMOKE, batch_size=10_000, proxies=["snip"])
    assert list(scores) == ["snip"] and math.isfinite(scores["snip"])
    scores = zero_cost_scores((FORK, FORK), digits, SMOKE, proxies=["naswot", "synflow"])
    assert list(scores) == ["naswot", "synflow"]


def test_zero_cost_scores_returns_nan_for_non_finite(digits: Dataset, registry: dict) -> None:
    register_proxy("infinite", lambda network, x, y: math.inf)
    register_proxy("minus_infinite", lambda network, x, y: -math.inf)
    scores = zero_cost_scores((FORK, FORK), digits, SMOKE, proxies=["infinite", "minus_infinite"])
    assert all(math.isnan(v) for v in scores.values())


# ------------------------------------------------------------------------------- registry


def test_register_proxy_adds_a_user_proxy(digits: Dataset, registry: dict) -> None:
    register_proxy("batch_size", lambda network, x, y: float(len(y)))
    scores = zero_cost_scores((FORK, FORK), digits, SMOKE, batch_size=8, proxies=["batch_size"])
    assert scores == {"batch_size": 8.0}


def test_register_proxy_refuses_a_duplicate(registry: dict) -> None:
    with pytest.raises(ConfigError, match="'synflow' is already registered"):
        register_proxy("synflow", snip)
    assert registry["synflow"] is synflow


def test_register_proxy_bad_arguments(registry: dict) -> None:
    with pytest.raises(ConfigError, match="must be a non-empty string; got ''"):
        register_proxy("", snip)
    with pytest.raises(ConfigError, match="must be callable as fn"):
        register_proxy("mine", 3)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- typed errors


def test_unknown_proxy_name(digits: Dataset) -> None:
    with pytest.raises(ConfigError, match=r"Unknown zero-cost proxy name\(s\) \['nope'\]"):
        zero_cost_scores((FORK, FORK), digits, SMOKE, proxies=["synflow", "nope"])
    with pytest.raises(ConfigError, match="sequence of proxy names or None; got str"):
        zero_cost_scores((FORK, FORK), digits, SMOKE, proxies="synflow")


def test_zero_cost_scores_bad_arguments(digits: Dataset) -> None:
    with pytest.raises(ConfigError, match="must be a CandidateConfig; got dict"):
        zero_cost_scores((FORK, FORK), digits, {})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="'seed' parameter of zero_cost_scores .* got -1"):
        zero_cost_scores((FORK, FORK), digits, SMOKE, seed=-1)
    with pytest.raises(ConfigError, match="'batch_size' parameter .* >= 2; got 1"):
        zero_cost_scores((FORK, FORK), digits, SMOKE, batch_size=1)
    with pytest.raises(DatasetError, match="'dataset' parameter of zero_cost_scores"):
        zero_cost_scores((FORK, FORK), "digits", SMOKE)  # type: ignore[arg-type]
    with pytest.raises(InvalidCellError, match="of zero_cost_scores must be a sequence of"):
        zero_cost_scores("FORK", digits, SMOKE)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="at least one cell per stage"):
        zero_cost_scores(FORK, digits, SMOKE)


def test_proxy_bad_inputs() -> None:
    x, y = tiny_xy()
    with pytest.raises(ConfigError, match="'network' parameter of snip must be a torch"):
        snip("net", x, y)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="'x' parameter of naswot must be a floating"):
        naswot(tiny(), y, y)
    with pytest.raises(ConfigError, match="'x' parameter of jacob_cov must hold at least 2"):
        jacob_cov(tiny(), x[:1], y[:1])
    with pytest.raises(ConfigError, match=r"'y' parameter of grad_norm must be a \(3,\) integer"):
        grad_norm(tiny(), x, y[:2])
    with pytest.raises(ConfigError, match=r"labels 'y' of snip must lie in \[0, 1\]"):
        snip(tiny(), x, torch.tensor([0, 1, 2]))
    with pytest.raises(ConfigError, match=r"\(B, num_classes\) logits.* shape \(3, 2, 1\)"):
        grad_norm(nn.Sequential(tiny(), nn.Unflatten(1, (2, 1))), x, y)
