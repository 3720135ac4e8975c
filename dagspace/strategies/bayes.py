"""Bayesian search with BoTorch: a GP on the architectures' graph features, batch log-EI over the
discrete set of unevaluated architectures.

Importing this module does not import torch or BoTorch; :meth:`BayesianSearch.ask` does, the
first time it fits a model.

Algorithm of one proposal round (``q`` architectures):

1. *Inputs*: an architecture's input is its ``K`` cells' embedding points (standardised
   features, :class:`dagspace.Embedding`) concatenated and scaled to the unit cube with the
   space's bounds, float64 ``(K * d,)``. Many cells share a point (every labelling of a topology,
   and many topologies), and the GP cannot tell them apart, so candidates are *joint points*:
   one distinct point per supernet cell.
2. *Candidates*: the product of the distinct points, when it has at most ``max_candidates``
   members (134 points per cell on the labelled NAS-Bench-101 space: exact up to 2 cells at the
   default cap); otherwise a seeded uniform sample of ``max_candidates`` joint points plus every
   joint point one cell away from the 5 best architectures told so far. Joint points whose
   architectures are all told or pending are dropped.
3. *Model*: ``SingleTaskGP`` on the finite values told so far (outcome ``-value``, standardised
   with ``Standardize``). Its hyperparameters (noise, constant mean, lengthscales) are fitted
   with ``fit_gpytorch_mll`` in the first model round and again whenever the finite values have
   grown by the factor ``refit_growth`` since the last fit, starting from the last fit's values
   (a warm start: a few L-BFGS iterations, where a cold fit takes tens); in the rounds between,
   the GP is conditioned on all values with the last fitted hyperparameters (no optimisation).
   Hyperparameters move less and less as values accumulate (their posterior narrows like
   ``1 / sqrt(n)``), so a geometric schedule refits often early and rarely late: 6 fits instead
   of 14 in a 150-query run with ``q = 10``. The fitted values are part of the state.
4. *Prefilter*: analytic ``LogExpectedImprovement`` on every candidate; the best ``prefilter``
   (default ``4 q``) go on. The batch acquisition below costs in proportion to the candidates it
   scores and picks ``q`` of them, most from the top of the analytic ranking: 40 instead of all
   129 NAS-Bench-101 points halves its time at the same regret (measured: README).
5. *Batch*: ``qLogExpectedImprovement`` (quasi-MC, seeded Sobol sampler; pending architectures as
   ``X_pending``) optimised by ``optimize_acqf_discrete`` over those, ``q`` distinct joint points
   by sequential greedy conditioning.
6. *Architectures*: at each chosen joint point, a uniformly random (seeded) architecture not yet
   told or pending.

The first ``n_init`` architectures (told or pending, asked or not) are uniformly random, and so
is every proposal while fewer than two finite values are known or if the GP cannot be fitted
(a ``RuntimeWarning`` says so). Diverged values (``nan``, ``±inf``) are left out of the fit,
but their architectures are never proposed again. All torch randomness comes from seeds drawn
from the strategy's generator inside ``torch.random.fork_rng``, so the global torch RNG is left
as it was. A proposal runs torch on one intra-op thread (restored afterwards): its matrices are
small, so more threads only add synchronisation (7-10x slower on a busy 2-core machine), and one
thread makes the floating-point results, hence the proposals, independent of the core count.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from dagspace.checks import check_float, check_int
from dagspace.features import DEFAULT_FEATURES
from dagspace.random import SeedLike
from dagspace.space import Space
from dagspace.strategies.base import Architecture, StrategyError
from dagspace.strategies.embedded import EmbeddedStrategy

if TYPE_CHECKING:
    import torch

__all__ = ["BayesianSearch"]

_INCUMBENTS = 5  # best told architectures whose neighbours join a sampled candidate set
_ACQF_BATCH = 1024  # candidates per acquisition evaluation (larger batches were slower)


class BayesianSearch(EmbeddedStrategy):
    """Bayesian optimisation over architectures (see the module docstring for the algorithm).

    Args:
        q: the batch size of one acquisition round; ``ask(n)`` runs rounds of at most ``q``.
        n_init: the number of uniformly random architectures before the GP takes over.
        prefilter: how many candidates, ranked by analytic log-EI, the batch acquisition sees
            (``None``: ``4 q``).
        max_candidates: the largest exact candidate product; beyond it, a sample of this size.
        features: the embedding's feature names.
        mc_samples: quasi-MC samples of ``qLogExpectedImprovement``.
        refit_growth: refit the hyperparameters when the finite values have grown by this
            factor since the last fit (``1.0``: every round, cold, as before this option).

    Attributes:
        timings_: seconds spent in the phases of the last model-based round (``fit_s``,
            ``candidates_s``, ``prefilter_s``, ``acquisition_s``) and its ``candidates`` count.
    """

    name = "bayes"

    def __init__(
        self,
        space: Space,
        num_cells: int,
        seed: SeedLike,
        *,
        q: int = 8,
        n_init: int = 10,
        prefilter: int | None = None,
        max_candidates: int = 20_000,
        features: Sequence[str] = DEFAULT_FEATURES,
        mc_samples: int = 128,
        refit_growth: float = 1.5,
    ) -> None:
        super().__init__(space, num_cells, seed, features)
        owner = type(self).__name__
        self.q = check_int(owner, "q", q, 1, StrategyError)
        self.n_init = check_int(owner, "n_init", n_init, 0, StrategyError)
        if prefilter is None:
            prefilter = 4 * self.q
        self.prefilter = check_int(owner, "prefilter", prefilter, 1, StrategyError)
        self.max_candidates = check_int(owner, "max_candidates", max_candidates, 1, StrategyError)
        self.mc_samples = check_int(owner, "mc_samples", mc_samples, 1, StrategyError)
        self.refit_growth = check_float(owner, "refit_growth", refit_growth, 1.0, math.inf,
                                        StrategyError, open_low=False)  # fmt: skip
        self._hyper: dict[str, list] | None = None  # the last fitted hyperparameters (raw)
        self._fitted_on = 0  # finite values at the last fit
        lo, hi = self.embedding.bounds()
        width = np.where(hi > lo, hi - lo, 1.0)
        self._unit_points = (self.embedding.points_ - lo) / width  # (M, d) in [0, 1]
        self.timings_: dict[str, float] = {}

    # -- bookkeeping ----------------------------------------------------------------------------
    def _features(self, archs: Sequence[Architecture]) -> np.ndarray:
        """``(n, K * d)`` unit-cube inputs of architectures."""
        points = self.embedding.point_of_cell_[np.asarray(archs, dtype=np.int64)]  # (n, K)
        return self._unit_points[points].reshape(len(archs), -1)

    # -- ask ------------------------------------------------------------------------------------
    def _propose(self, n: int) -> list[Architecture]:
        out: list[Architecture] = []
        while len(out) < n:
            finite = sum(math.isfinite(v) for _, v in self._history)
            if self._num_seen < self.n_init or finite < 2:
                batch = self._random_batch(1)
            else:
                batch = self._model_batch(min(self.q, n - len(out)))
            if not batch:
                break
            out += batch
        return out

    def _random_batch(self, size: int) -> list[Architecture]:
        return self._propose_each(size, self._draw_uniform)

    def _candidates(self) -> np.ndarray:
        """``(P, K)`` distinct joint points (point indices per supernet cell) not exhausted."""
        m, k = len(self._unit_points), self.num_cells
        if m**k <= self.max_candidates:
            grid = np.indices((m,) * k).reshape(k, -1).T
        else:
            sample = self.rng.integers(m, size=(self.max_candidates, k))
            finite = [(v, i) for i, (_, v) in enumerate(self._history) if math.isfinite(v)]
            blocks = [sample]
            for _, i in sorted(finite)[:_INCUMBENTS]:
                base = np.asarray(self.joint_point(self._history[i][0]))
                around = np.repeat(base[None, :], m * k, axis=0)
                around[np.arange(m * k), np.repeat(np.arange(k), m)] = np.tile(np.arange(m), k)
                blocks.append(around)
            grid = np.unique(np.concatenate(blocks), axis=0)
        exhausted = {key for key in self._point_counts if self._is_exhausted(key)}
        if exhausted:
            keep = [tuple(row) not in exhausted for row in grid.tolist()]
            grid = grid[np.asarray(keep, dtype=bool)]
        return grid

    def _model_batch(self, size: int) -> list[Architecture]:
        import torch

        start = time.perf_counter()
        grid = self._candidates()
        if len(grid) == 0:
            return self._random_batch(size)
        timings = {"candidates_s": time.perf_counter() - start, "candidates": len(grid)}
        told = [(a, v) for a, v in self._history if math.isfinite(v)]
        train_x = torch.as_tensor(self._features([a for a, _ in told]), dtype=torch.float64)
        train_y = -torch.as_tensor([[v] for _, v in told], dtype=torch.float64)
        pending = list(self._pending)
        x_pending = (
            torch.as_tensor(self._features(pending), dtype=torch.float64) if pending else None
        )
        choices = torch.as_tensor(
            self._unit_points[grid].reshape(len(grid), -1), dtype=torch.float64
        )
        fit_seed, sampler_seed = (int(s) for s in self.rng.integers(2**31, size=2))
        from botorch.exceptions.errors import ModelFittingError
        from linear_operator.utils.errors import NanError, NotPSDError

        refit = self._hyper is None or len(told) >= self.refit_growth * self._fitted_on
        warm = None if self.refit_growth == 1.0 else self._hyper  # 1.0: cold fits, as before
        threads = torch.get_num_threads()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(fit_seed)
            torch.set_num_threads(1)
            try:
                start = time.perf_counter()
                model, hyper = _fit_gp(train_x, train_y, warm if refit else self._hyper, refit)
                timings["fit_s"] = time.perf_counter() - start
                chosen = _acquire(
                    model, train_y.max(), choices, x_pending, size, self.prefilter,
                    self.mc_samples, sampler_seed, timings,
                )  # fmt: skip
            except (ModelFittingError, NotPSDError, NanError) as err:
                warnings.warn(
                    f"BayesianSearch could not fit its GP ({err}); proposing at random.",
                    RuntimeWarning,
                    stacklevel=3,
                )
                return self._random_batch(size)
            finally:
                torch.set_num_threads(threads)
        self.timings_ = {**timings, "refit": float(refit)}
        self._hyper = hyper
        self._fitted_on = len(told) if refit else self._fitted_on
        out = []
        for row in chosen:
            arch = self._pick_at(tuple(int(p) for p in grid[row]))
            assert arch is not None  # the candidates hold no exhausted joint point
            self._add_pending(arch)
            out.append(arch)
        return out

    # -- persistence ----------------------------------------------------------------------------
    def _config(self) -> dict[str, Any]:
        return {
            **super()._config(),
            "features": list(self.embedding.feature_names),
            "q": self.q,
            "n_init": self.n_init,
            "prefilter": self.prefilter,
            "max_candidates": self.max_candidates,
            "mc_samples": self.mc_samples,
            "refit_growth": self.refit_growth,
        }

    def _extra_state(self) -> dict[str, Any]:
        return {"hyper": self._hyper, "fitted_on": self._fitted_on}

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        self._hyper = extra["hyper"]
        self._fitted_on = int(extra["fitted_on"])


def _fit_gp(train_x: torch.Tensor, train_y: torch.Tensor, hyper: dict[str, list] | None,
            refit: bool) -> tuple[Any, dict[str, list]]:  # fmt: skip
    """A ``SingleTaskGP`` on ``train_x`` ``(n, D)`` / ``train_y`` ``(n, 1)`` (maximised), its
    hyperparameters set from ``hyper`` (raw values by parameter name; ``None``: the defaults),
    then fitted by maximum marginal likelihood if ``refit``; and its hyperparameters."""
    import torch
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.transforms.outcome import Standardize
    from gpytorch.mlls import ExactMarginalLogLikelihood

    model = SingleTaskGP(train_x, train_y, outcome_transform=Standardize(m=1))
    if hyper is not None:
        with torch.no_grad():
            for name, param in model.named_parameters():
                param.copy_(torch.as_tensor(hyper[name], dtype=param.dtype).reshape(param.shape))
    if refit:
        fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
    model.eval()
    return model, {name: p.detach().reshape(-1).tolist() for name, p in model.named_parameters()}


def _acquire(
    model: Any,
    best_f: torch.Tensor,
    choices: torch.Tensor,
    x_pending: torch.Tensor | None,
    q: int,
    prefilter: int,
    mc_samples: int,
    sampler_seed: int,
    timings: dict[str, float],
) -> list[int]:
    """Rows of ``choices`` ``(P, D)`` to evaluate next under the fitted ``model``: prefilter
    with analytic log-EI, then ``q`` by batch log-EI given ``x_pending`` ``(p, D)``."""
    import torch
    from botorch.acquisition import LogExpectedImprovement, qLogExpectedImprovement
    from botorch.optim import optimize_acqf_discrete
    from botorch.sampling import SobolQMCNormalSampler

    start = time.perf_counter()
    analytic = LogExpectedImprovement(model, best_f=best_f)
    with torch.no_grad():
        scores = torch.cat(
            [analytic(chunk.unsqueeze(-2)) for chunk in torch.split(choices, _ACQF_BATCH)]
        )
    top = np.argsort(-scores.numpy(), kind="stable")[:prefilter]
    timings["prefilter_s"] = time.perf_counter() - start

    start = time.perf_counter()
    shortlist = choices[torch.as_tensor(top)]
    batch = qLogExpectedImprovement(
        model,
        best_f=best_f,
        sampler=SobolQMCNormalSampler(sample_shape=torch.Size([mc_samples]), seed=sampler_seed),
        X_pending=x_pending,
    )
    picked, _ = optimize_acqf_discrete(
        batch, q=min(q, len(shortlist)), choices=shortlist, max_batch_size=_ACQF_BATCH
    )
    rows = [int(torch.nonzero((shortlist == x).all(dim=-1))[0, 0]) for x in picked]
    timings["acquisition_s"] = time.perf_counter() - start
    return [int(top[r]) for r in rows]
