"""Zero-cost proxies: scores of a candidate network at initialisation, from one minibatch.

Each proxy is a small function ``proxy(network, x, y) -> float`` of a network, a minibatch
``x`` ``(B, ...)`` and its labels ``y`` ``(B,)``, written from its paper's definition. Every one
works on a deep copy of the network (so the network's parameters, their ``.grad``, its
batch-norm statistics and its training mode are left as they were), takes gradients with
``torch.autograd.grad`` (no ``.grad`` is written), draws no random numbers, and is
deterministic. **Higher is better for every proxy**, as in the papers (none is negated).

The data-dependent proxies run the network in training mode, as the first step of training
sees it (batch norms use the batch's statistics, as in the reference code of the papers).
"Weights" are the ``weight`` tensors of the convolution and linear layers (the connections
that the pruning papers score; biases and norm parameters are left out, as in the code of
Abdelfattah et al. 2021).

- ``synflow`` (Tanaka et al. 2020, "Pruning neural networks without any data by iteratively
  conserving synaptic flow"): on a float64 copy with every parameter replaced by its absolute
  value and every batch norm replaced by the identity (the ``synflow`` of Abdelfattah et al.
  2021, "Zero-Cost Proxies for Lightweight NAS", which removes batch norms: with batch
  statistics an all-ones input would be normalised to zero), ``R = sum(f(1))`` for an all-ones
  input of one example's shape; the score is ``sum over weights of |w * dR/dw|``. It ignores
  the values of ``x`` and ``y``.
- ``snip`` (Lee et al. 2019, "SNIP: single-shot network pruning based on connection
  sensitivity"): ``sum over weights of |w * dL/dw|``, ``L`` the minibatch's mean cross-entropy.
- ``grad_norm`` (Abdelfattah et al. 2021): the sum over weight tensors of the L2 norm of
  ``dL/dw`` (per tensor, then summed; not the norm of all gradients together).
- ``naswot`` (Mellor et al. 2021, "Neural Architecture Search without Training", v2): the
  binary code of each example is ``output > 0`` of every ``nn.ReLU`` module call, concatenated
  (``N_A`` bits); ``K[i, j] = N_A - Hamming(c_i, c_j)``; the score is ``log |det K|``
  (``-inf`` when two examples share a code). ReLUs applied functionally (``F.relu``) are not
  seen.
- ``jacob_cov`` (Mellor et al. 2021, v1): ``J`` ``(B, D)`` is the gradient of the sum of all
  outputs with respect to the input, flattened per example (with batch statistics, the
  examples of a batch interact, as in the reference code); ``C`` the correlation matrix of the
  rows of ``J``; the score is ``-sum(log(v + k) + 1 / (v + k))`` over the eigenvalues ``v`` of
  ``C``, ``k = 1e-5`` (NaN when a row of ``J`` is constant, so that ``C`` is undefined).

:func:`zero_cost_scores` builds a candidate's network exactly as
:func:`surrogate.candidate.train_candidate` initialises it and scores it with every proxy.
Add a proxy with :func:`register_proxy`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.hooks import RemovableHandle

from dagspace.cell import CellSpec
from dagspace.checks import check_int
from surrogate.candidate import (
    CandidateConfig,
    build_network,
    check_architecture,
    check_config,
    check_dataset,
)
from surrogate.data import Dataset
from surrogate.device import derive_seeds, torch_generator
from surrogate.errors import ConfigError

__all__ = [
    "JACOB_COV_K",
    "ZERO_COST_PROXIES",
    "Proxy",
    "grad_norm",
    "jacob_cov",
    "naswot",
    "register_proxy",
    "snip",
    "synflow",
    "zero_cost_scores",
]

Proxy = Callable[[nn.Module, torch.Tensor, torch.Tensor], float]
"""``proxy(network, x, y) -> float``: ``x`` a ``(B, ...)`` minibatch, ``y`` its ``(B,)`` labels;
higher is better; the network is left unchanged."""

JACOB_COV_K = 1e-5  # the eigenvalue offset of jacob_cov (Mellor et al. 2021, v1)


# --------------------------------------------------------------------------------- helpers


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    return type(value).__name__


def _check_inputs(owner: str, network: Any, x: Any, y: Any, min_batch: int) -> None:
    """A ConfigError unless ``network`` is a module, ``x`` a ``(B, ...)`` floating tensor with
    ``B >= min_batch`` and ``y`` a ``(B,)`` integer tensor."""
    if not isinstance(network, nn.Module):
        raise ConfigError(
            f"The 'network' parameter of {owner} must be a torch.nn.Module; got "
            f"{type(network).__name__}."
        )
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 2:
        got = _describe(x)
        raise ConfigError(
            f"The 'x' parameter of {owner} must be a floating-point (B, ...) tensor of examples; "
            f"got {got}."
        )
    if x.shape[0] < min_batch:
        raise ConfigError(
            f"The 'x' parameter of {owner} must hold at least {min_batch} example(s); got "
            f"{x.shape[0]}."
        )
    integer = isinstance(y, torch.Tensor) and not y.is_floating_point() and not y.is_complex()
    if not integer or y.dim() != 1 or y.shape[0] != x.shape[0]:
        got = _describe(y)
        raise ConfigError(
            f"The 'y' parameter of {owner} must be a ({x.shape[0]},) integer tensor of labels, "
            f"one per example of x; got {got}."
        )


def _working_copy(network: nn.Module) -> nn.Module:
    """A deep copy of ``network`` in training mode, every parameter requiring a gradient."""
    work = copy.deepcopy(network)
    work.train()
    for p in work.parameters():
        p.grad = None
        p.requires_grad_(True)
    return work


def _weights(network: nn.Module) -> list[torch.Tensor]:
    """The ``weight`` of every convolution and linear layer of ``network``, in module order."""
    return [
        m.weight
        for m in network.modules()
        if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)) and m.weight is not None
    ]


def _gradients(output: torch.Tensor, weights: list[torch.Tensor]) -> list[torch.Tensor]:
    """``d output / d w`` for each of ``weights`` (zeros for a weight that ``output`` does not
    use); nothing is written to ``.grad``."""
    grads = torch.autograd.grad(output, weights, allow_unused=True)
    return [torch.zeros_like(w) if g is None else g for w, g in zip(weights, grads, strict=True)]


def _loss_gradients(
    owner: str, network: nn.Module, x: torch.Tensor, y: torch.Tensor
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The weights of a working copy of ``network`` and the gradients of the minibatch's mean
    cross-entropy with respect to them."""
    work = _working_copy(network)
    weights = _weights(work)
    logits = work(x.detach())  # (B, K)
    if logits.dim() != 2 or logits.shape[0] != y.shape[0]:
        raise ConfigError(
            f"{owner} needs a network that maps x to (B, num_classes) logits, B = {y.shape[0]}; "
            f"got an output of shape {tuple(logits.shape)}."
        )
    if int(y.min()) < 0 or int(y.max()) >= logits.shape[1]:
        raise ConfigError(
            f"The labels 'y' of {owner} must lie in [0, {logits.shape[1] - 1}] (the network has "
            f"{logits.shape[1]} outputs); got labels from {int(y.min())} to {int(y.max())}."
        )
    if not weights:
        return [], []
    loss = F.cross_entropy(logits, y.to(logits.device))
    return weights, _gradients(loss, weights)


def _remove_batch_norms(module: nn.Module) -> None:
    """Replace every batch norm inside ``module`` by ``nn.Identity``, in place."""
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(module, name, nn.Identity())
        else:
            _remove_batch_norms(child)


# --------------------------------------------------------------------------------- proxies


def synflow(network: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """SynFlow: ``sum over weights of |w * dR/dw|``, ``R = sum(f(1))`` on the linearised network.

    The copy is in float64, every parameter is replaced by its absolute value and every batch
    norm by the identity; the input is all ones, of one example's shape (``x`` gives the shape
    only; ``y`` is not used). Non-negative; higher is better.
    """
    _check_inputs("synflow", network, x, y, 1)
    work = _working_copy(network)
    _remove_batch_norms(work)
    work.double()
    with torch.no_grad():
        for p in work.parameters():
            p.abs_()
    weights = _weights(work)
    if not weights:
        return 0.0
    ones = torch.ones((1, *x.shape[1:]), dtype=torch.float64, device=weights[0].device)
    flow = work(ones).sum()  # R
    grads = _gradients(flow, weights)
    return float(sum((w.detach() * g).abs().sum() for w, g in zip(weights, grads, strict=True)))


def snip(network: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """SNIP: ``sum over weights of |w * dL/dw|``, ``L`` the minibatch's mean cross-entropy.

    Non-negative; higher is better.
    """
    _check_inputs("snip", network, x, y, 2)
    weights, grads = _loss_gradients("snip", network, x, y)
    return float(sum((w.detach() * g).abs().sum() for w, g in zip(weights, grads, strict=True)))


def grad_norm(network: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Gradient norm: ``sum over weight tensors of ||dL/dw||_2``, ``L`` the minibatch's mean
    cross-entropy (per-tensor norms summed, as Abdelfattah et al. 2021 do).

    Non-negative; higher is better.
    """
    _check_inputs("grad_norm", network, x, y, 2)
    _, grads = _loss_gradients("grad_norm", network, x, y)
    return float(sum(torch.linalg.vector_norm(g) for g in grads))


def naswot(network: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """NASWOT (v2): ``log |det K|``, ``K[i, j] = N_A - Hamming(c_i, c_j)`` over the binary codes
    ``c_i`` (``output > 0`` of every ``nn.ReLU`` call) of the examples of ``x``.

    ``y`` is not used. Higher is better; ``-inf`` when ``K`` is singular (two examples with the
    same code); NaN when the network has no ``nn.ReLU``.
    """
    _check_inputs("naswot", network, x, y, 2)
    work = _working_copy(network)
    batch = x.shape[0]
    kernel = torch.zeros((batch, batch), dtype=torch.float64, device=x.device)  # (B, B)
    calls = 0

    def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        nonlocal kernel, calls
        codes = (output.reshape(batch, -1) > 0).to(torch.float64)  # (B, N) of 0 / 1
        agree = codes @ codes.T + (1.0 - codes) @ (1.0 - codes).T  # (B, B): N - Hamming
        kernel = kernel + agree.to(kernel.device)
        calls += 1

    handles: list[RemovableHandle] = [
        m.register_forward_hook(hook) for m in work.modules() if isinstance(m, nn.ReLU)
    ]
    try:
        with torch.no_grad():
            work(x.detach())
    finally:
        for handle in handles:
            handle.remove()
    if calls == 0:
        return math.nan
    return float(torch.linalg.slogdet(kernel).logabsdet)


def jacob_cov(network: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Jacobian covariance (NASWOT v1): ``-sum(log(v + k) + 1 / (v + k))`` over the eigenvalues
    ``v`` of the correlation matrix of the rows of ``J`` ``(B, D)``, ``J`` the gradient of the
    sum of the outputs with respect to the flattened input, ``k = JACOB_COV_K``.

    ``y`` is not used. Higher is better (largest when the rows of ``J`` are uncorrelated);
    NaN when a row of ``J`` is constant.
    """
    _check_inputs("jacob_cov", network, x, y, 2)
    work = _working_copy(network)
    inputs = x.detach().clone().requires_grad_(True)
    output = work(inputs)
    (jacobian,) = torch.autograd.grad(output.sum(), inputs)
    rows = jacobian.reshape(x.shape[0], -1).to(torch.float64)  # (B, D)
    correlation = torch.corrcoef(rows)  # (B, B); NaN where a row of J is constant
    if not bool(torch.isfinite(correlation).all()):
        return math.nan
    eigenvalues = torch.linalg.eigvalsh(correlation)  # (B,)
    shifted = eigenvalues + JACOB_COV_K
    return float(-(torch.log(shifted) + 1.0 / shifted).sum())


# -------------------------------------------------------------------------------- registry

ZERO_COST_PROXIES: dict[str, Proxy] = {
    "synflow": synflow,
    "snip": snip,
    "grad_norm": grad_norm,
    "naswot": naswot,
    "jacob_cov": jacob_cov,
}


def register_proxy(name: str, fn: Proxy) -> None:
    """Add the proxy ``fn(network, x, y) -> float`` (higher is better) as ``name``.

    Raises:
        ConfigError: ``name`` is not a non-empty string, ``fn`` is not callable, or ``name`` is
            already registered.
    """
    if not isinstance(name, str) or not name:
        raise ConfigError(f"A zero-cost proxy name must be a non-empty string; got {name!r}.")
    if not callable(fn):
        raise ConfigError(
            f"The zero-cost proxy {name!r} must be callable as fn(network, x, y) -> float; got "
            f"{type(fn).__name__}."
        )
    if name in ZERO_COST_PROXIES:
        raise ConfigError(
            f"The zero-cost proxy {name!r} is already registered (to "
            f"{ZERO_COST_PROXIES[name]!r}); registered names: {sorted(ZERO_COST_PROXIES)}."
        )
    ZERO_COST_PROXIES[name] = fn


def _check_names(proxies: Sequence[str] | None) -> tuple[str, ...]:
    if proxies is None:
        return tuple(ZERO_COST_PROXIES)
    if isinstance(proxies, str) or not isinstance(proxies, Sequence):
        raise ConfigError(
            "The 'proxies' parameter of zero_cost_scores must be a sequence of proxy names or "
            f"None; got {type(proxies).__name__}: {proxies!r:.200}."
        )
    unknown = [name for name in proxies if name not in ZERO_COST_PROXIES]
    if unknown:
        raise ConfigError(
            f"Unknown zero-cost proxy name(s) {unknown!r}; expected names from "
            f"{sorted(ZERO_COST_PROXIES)} (add one with surrogate.zero_cost.register_proxy)."
        )
    return tuple(proxies)


def zero_cost_scores(
    architecture: Sequence[CellSpec],
    dataset: Dataset,
    config: CandidateConfig,
    *,
    seed: int = 0,
    batch_size: int = 64,
    proxies: Sequence[str] | None = None,
) -> dict[str, float]:
    """Every proxy's score for the network that ``train_candidate(..., seed=seed)`` would train.

    The network is built on the CPU from the initialisation seed that
    :func:`~surrogate.candidate.train_candidate` derives from ``seed`` (the first of its three
    derived seeds), so it is that candidate's network before its first step. The minibatch:
    ``min(batch_size, len(dataset.train))`` training examples drawn without replacement with a
    generator seeded by a fourth seed derived from ``seed`` (independent of the three that
    training uses).

    Args:
        architecture: one labelled :class:`CellSpec` per cell.
        dataset: the dataset whose training split gives the minibatch (any device).
        config: the candidate recipe (``channels`` and ``num_stages`` shape the network).
        seed: a non-negative int, as for ``train_candidate``.
        batch_size: the minibatch size, at least 2.
        proxies: names from :data:`ZERO_COST_PROXIES`, in the order wanted; ``None`` for all.

    Returns:
        ``{name: score}`` in the order of ``proxies``; a score that is not finite is NaN.

    Raises:
        ConfigError: ``config``, ``seed``, ``batch_size`` or ``proxies`` is invalid (an unknown
            proxy name among them), or the architecture has fewer cells than stages.
        dagspace.InvalidCellError: ``architecture`` is not a sequence of labelled, trainable
            cells.
        DatasetError: ``dataset`` is not a Dataset, or has fewer than 2 training examples.
    """
    config = check_config(config, "zero_cost_scores")
    seed = check_int("zero_cost_scores", "seed", seed, 0, ConfigError)
    batch_size = check_int("zero_cost_scores", "batch_size", batch_size, 2, ConfigError)
    names = _check_names(proxies)
    cells = check_architecture(architecture, config, "zero_cost_scores")
    dataset = check_dataset(dataset, "zero_cost_scores")
    init_seed, _, _, batch_seed = derive_seeds(seed, 4)  # the first three as in train_candidate
    cpu = torch.device("cpu")
    network = build_network(cells, dataset, config, init_seed, cpu)
    train = dataset.train
    order = torch.randperm(len(train), generator=torch_generator(batch_seed))
    idx = order[: min(batch_size, len(train))]
    x = train.x.cpu()[idx]  # (B, C, H, W)
    y = train.y.cpu()[idx]  # (B,)
    scores: dict[str, float] = {}
    for name in names:
        score = float(ZERO_COST_PROXIES[name](network, x, y))
        scores[name] = score if math.isfinite(score) else math.nan
    return scores
