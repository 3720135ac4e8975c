"""The score-function (REINFORCE) gradient of the multinomials: unbiased, and by losses alone.

The supernet samples a cell by drawing every module's op and every edge independently from their
multinomials (logits ``alpha`` ``(K, V-2, n_ops)`` and ``beta`` ``(K, E, 2)``), redrawing the
edges of a cell whose input cannot reach its output. The gradient of the expected loss
``E_P[L(c)]`` with respect to the logits is ``E[L(c) grad log P(c)]``; with ``S`` samples per
step and the leave-one-out baseline ``b_s = mean_{j != s} L_j`` (Kool et al. 2019, "Buy 4
REINFORCE samples, get a baseline for free"),

    ``g = 1/S sum_s (L_s - b_s) grad log P(c_s)``

is unbiased, because ``b_s`` does not depend on sample ``s``. Two exact simplifications:

- ``log P(c)`` is the log of the product of the sampled options' probabilities minus the log
  of the probability that a draw is valid; the second term is the same for every sample and
  ``sum_s (L_s - b_s) = 0`` exactly, so it drops out of ``g`` and the unconditioned product is
  used (:func:`sample_log_probability`).
- The op of a module that the sample prunes away (off every input -> output path) does not
  change ``L``; its term has expectation 0 given the edges and is left out (Rao-Blackwellised).

Nothing is differentiated through the network: the losses are plain numbers (forward passes
under ``torch.no_grad`` or any other score, :func:`surrogate.training` decides), which is why
the estimator compares architectures by their losses instead of by the scale of the sampled
op's output, as the straight-through gradient does.

An optional entropy term makes the objective ``E_P[L] - lam * H(P)`` (``H`` the entropy of the
factorised options): its minimiser over all distributions is the Gibbs distribution
``exp(-L / lam)``, whose log-likelihood ratio against the uniform prior ranks exactly by ``L``;
over the factorised family it is that distribution's mean-field fit. Without it the
multinomials concentrate on the mode and forget how they rank the rest.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from dagspace.cell import on_path_mask
from surrogate.errors import ConfigError

__all__ = [
    "active_modules",
    "factorised_entropy",
    "leave_one_out_advantages",
    "sample_log_probability",
    "score_function_objective",
]


def leave_one_out_advantages(losses: torch.Tensor) -> torch.Tensor:
    """``(S,)`` advantages ``L_s - mean_{j != s} L_j`` of ``(S,)`` losses (``S >= 2``).

    Computed as ``S / (S - 1) * (d_s - mean(d))`` with ``d = L - L_0``: equal losses give
    advantages that are exactly 0 (no rounding residue), whatever their value.
    """
    losses = torch.as_tensor(losses, dtype=torch.float64)
    if losses.ndim != 1 or len(losses) < 2:
        raise ConfigError(
            f"Leave-one-out advantages need a 1-d tensor of at least 2 losses; got shape "
            f"{tuple(losses.shape)}."
        )
    d = losses - losses[0]
    s = len(losses)
    return (d - d.mean()) * (s / (s - 1))


def active_modules(edges: np.ndarray, num_vertices: int) -> np.ndarray:
    """bool ``(..., V-2)``: which modules of the sampled cells run (on an input -> output path).

    ``edges``: bool ``(..., E)`` edge presences in ``numpy.triu_indices(V, 1)`` order.
    """
    edges = np.asarray(edges, dtype=bool)
    rows, cols = np.triu_indices(num_vertices, 1)
    matrices = np.zeros((*edges.shape[:-1], num_vertices, num_vertices), dtype=bool)
    matrices[..., rows, cols] = edges
    return on_path_mask(matrices)[..., 1:-1]


def sample_log_probability(
    alpha: torch.Tensor,
    beta: torch.Tensor | None,
    op_index: torch.Tensor,
    edges: torch.Tensor | None,
    active: torch.Tensor,
    learned_edges: torch.Tensor | None = None,
) -> torch.Tensor:
    """``(S,)`` the log-probability of each sample's options, differentiable in the logits.

    Args:
        alpha: ``(K, V-2, n_ops)`` op logits; beta: ``(K, E, 2)`` edge logits (absent, present),
            or ``None`` when the edges are fixed.
        op_index: int64 ``(S, K, V-2)`` the sampled ops; edges: bool ``(S, K, E)``.
        active: bool ``(S, K, V-2)``: which modules count (the others are left out).
        learned_edges: bool ``(E,)``: which edges count (``None``: every edge); a frozen edge
            keeps its logits, so its term is left out.
    """
    log_ops = torch.log_softmax(alpha, dim=-1)  # (K, V-2, n_ops)
    picked = log_ops.unsqueeze(0).expand(len(op_index), *log_ops.shape)
    picked = picked.gather(-1, op_index.unsqueeze(-1)).squeeze(-1)  # (S, K, V-2)
    total = (picked * active.to(picked.dtype)).sum(dim=(1, 2))
    if beta is not None and edges is not None:
        log_edges = torch.log_softmax(beta, dim=-1)  # (K, E, 2)
        present = edges.to(log_edges.dtype)  # (S, K, E)
        terms = present * log_edges[..., 1] + (1 - present) * log_edges[..., 0]
        if learned_edges is not None:
            terms = terms * learned_edges.to(terms.dtype)
        total = total + terms.sum(dim=(1, 2))
    return total


def factorised_entropy(
    alpha: torch.Tensor, beta: torch.Tensor | None, learned_edges: torch.Tensor | None = None
) -> torch.Tensor:
    """The entropy (nats) of every module's and every learned edge's multinomial, summed."""
    entropy = -(torch.softmax(alpha, -1) * torch.log_softmax(alpha, -1)).sum()
    if beta is not None:
        per_edge = -(torch.softmax(beta, -1) * torch.log_softmax(beta, -1)).sum(-1)  # (K, E)
        if learned_edges is not None:
            per_edge = per_edge * learned_edges.to(per_edge.dtype)
        entropy = entropy + per_edge.sum()
    return entropy


def _entropy_descent(logits: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """A scalar whose gradient is minus the gradient of the multinomials' entropy.

    ``-dH/da_k = p_k (log p_k - sum_j p_j log p_j) = p_k sum_j p_j (log p_k - log p_j)``, written
    with the differences of log-probabilities so that equal logits give a gradient of exactly 0
    (autograd through ``-sum p log p`` leaves a rounding residue there, which Adam would
    amplify into steps of the learning rate's size).
    """
    p = torch.softmax(logits, -1).detach()
    log_p = torch.log_softmax(logits, -1).detach()
    diffs = log_p.unsqueeze(-1) - log_p.unsqueeze(-2)  # (..., n, n): log p_k - log p_j
    coefficient = p * (diffs * p.unsqueeze(-2)).sum(-1)  # (..., n)
    if mask is not None:
        coefficient = coefficient * mask.to(coefficient.dtype).unsqueeze(-1)
    return (coefficient * logits).sum()


def score_function_objective(
    alpha: torch.Tensor,
    beta: torch.Tensor | None,
    op_index: np.ndarray,
    edges: np.ndarray,
    losses: Sequence[float] | np.ndarray | torch.Tensor,
    *,
    entropy_weight: float = 0.0,
    learned_edges: np.ndarray | None = None,
) -> torch.Tensor:
    """A scalar whose gradient in ``alpha`` and ``beta`` is the score-function estimate of the
    gradient of ``E_P[L] - entropy_weight * H`` (module docstring) from ``S`` samples (its value
    is not that objective's: only its gradient is meant). Equal losses at equal logits give a
    gradient of exactly 0.

    Args:
        op_index: int ``(S, K, V-2)``; edges: bool ``(S, K, E)`` the sampled (or, when ``beta``
            is ``None``, the fixed) edges: a module counts where it is on a path.
        losses: ``(S,)`` each sample's loss (lower = better), plain numbers.
        learned_edges: bool ``(E,)`` the edges whose logits learn (``None``: all).
    """
    op_index = np.asarray(op_index, dtype=np.int64)
    num_vertices = alpha.shape[1] + 2
    device = alpha.device
    advantages = leave_one_out_advantages(torch.as_tensor(np.asarray(losses, np.float64)))
    edges = np.asarray(edges, dtype=bool)
    active = active_modules(edges, num_vertices)  # (S, K, V-2)
    mask = None
    if learned_edges is not None:
        mask = torch.from_numpy(np.asarray(learned_edges, dtype=bool)).to(device)
    log_p = sample_log_probability(
        alpha, beta, torch.from_numpy(op_index).to(device), torch.from_numpy(edges).to(device),
        torch.from_numpy(active).to(device), mask,
    )  # fmt: skip
    weights = advantages.to(device=device, dtype=log_p.dtype)
    objective = (weights * log_p).mean()
    if entropy_weight > 0:  # the gradient of - entropy_weight * H (see _entropy_descent)
        objective = objective + entropy_weight * _entropy_descent(alpha)
        if beta is not None:
            objective = objective + entropy_weight * _entropy_descent(beta, mask)
    return objective
