"""Search objectives: what a strategy minimises (lower is better; NaN marks a diverged point).

An architecture is a tuple of cell indices into the ranked space, one per supernet cell (the
strategies' representation). Three objectives:

``surrogate`` (:class:`SurrogateObjective`, the default)
    minus the relative surrogate's score of the architecture (by default the log-likelihood
    ratio of the trained multinomials against the untrained ones; see
    :mod:`surrogate.relative`): the surrogate as the landscape the search moves over. Exact
    and free.
``supernet`` (:class:`SupernetObjective`)
    The pseudo environment: the architecture's validation loss on the supernet's shared
    weights. Between descent steps (:meth:`SupernetObjective.advance`) the shared weights are
    trained further, for ``steps`` mini-batches, on the descent's current architecture. The
    value of an architecture is the one measured when it is first evaluated.
``standalone`` (:class:`StandaloneObjective`)
    ``1 - validation accuracy`` of the architecture trained from scratch (through the store,
    so each is trained once); a diverged or failed candidate is NaN.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from analysis.evaluation import Request, train_architectures
from analysis.store import EvalKey, EvalStatus, ResultsStore, hash_config

__all__ = [
    "OBJECTIVES",
    "StandaloneObjective",
    "SupernetObjective",
    "SurrogateObjective",
]

OBJECTIVES = ("surrogate", "supernet", "standalone")
Architecture = tuple[int, ...]


class SurrogateObjective:
    """``-sum_i s_i(cell_i)``: the relative surrogate's score (the ranking's, by default the
    likelihood ratio against the untrained prior), negated (vectorised)."""

    name = "surrogate"
    evaluator = "supernet"

    def __init__(self, ranking: Any, score: str | None = None) -> None:
        self.ranking = ranking
        self.score = score or ranking.score
        self._logp = np.stack(ranking.cell_scores(self.score))  # (K, N)

    def config(self) -> dict[str, Any]:
        return {"objective": self.name, "score": self.score}

    def __call__(self, architectures: Sequence[Architecture]) -> list[float]:
        if not architectures:
            return []
        idx = np.asarray(architectures, dtype=np.int64)  # (n, K)
        rows = np.arange(self._logp.shape[0])
        return [float(v) for v in -self._logp[rows, idx].sum(axis=1)]


class SupernetObjective:
    """The supernet as a pseudo environment (see the module docstring).

    ``supernet`` is copied: the run's trained supernet is never changed. ``dataset`` is the
    supernet run's :class:`surrogate.data.Dataset` on the device; ``steps`` mini-batches of
    ``batch_size`` at learning rate ``lr`` are trained on the current architecture per
    :meth:`advance`. Its state (weights, optimiser, data generator) saves and loads, so a resumed
    descent sees the same landscape.
    """

    name = "supernet"
    evaluator = "supernet"

    def __init__(
        self,
        supernet: Any,
        dataset: Any,
        space: Any,
        *,
        steps: int = 8,
        lr: float = 0.01,
        batch_size: int = 64,
        seed: int = 0,
    ) -> None:
        import torch

        from surrogate.device import torch_generator

        self.supernet = copy.deepcopy(supernet)
        self.dataset, self.space = dataset, space
        self.steps, self.lr, self.batch_size = steps, lr, batch_size
        self.optimizer = torch.optim.SGD(self.supernet.weight_parameters(), lr=lr, momentum=0.9)
        self.generator = torch_generator(seed)
        self.advanced = 0

    def config(self) -> dict[str, Any]:
        return {"objective": self.name, "steps": self.steps, "lr": self.lr,
                "batch_size": self.batch_size}  # fmt: skip

    def _cells(self, architecture: Architecture) -> tuple[Any, ...]:
        return tuple(self.space[int(i)] for i in architecture)

    def advance(self, architecture: Architecture) -> None:
        """Train the shared weights ``steps`` mini-batches on ``architecture``."""
        import torch
        import torch.nn.functional as F

        train = self.dataset.train
        cells = self._cells(architecture)
        self.supernet.train()
        batch = min(self.batch_size, len(train))
        for _ in range(self.steps):
            pick = torch.randperm(len(train), generator=self.generator)[:batch]
            pick = pick.to(train.x.device)
            loss = F.cross_entropy(self.supernet(train.x[pick], cells), train.y[pick])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        self.advanced += 1

    def __call__(self, architectures: Sequence[Architecture]) -> list[float]:
        from surrogate.training import evaluate_architecture

        self.supernet.eval()
        values = []
        for arch in architectures:
            loss, _ = evaluate_architecture(self.supernet, self._cells(arch), self.dataset.val)
            values.append(loss if np.isfinite(loss) else float("nan"))
        return values

    def save(self, path: Path) -> None:
        import torch

        from dagspace.io import atomic_write

        buffer = io.BytesIO()
        state = {"weights": self.supernet.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "generator": self.generator.get_state(), "advanced": self.advanced}  # fmt: skip
        torch.save(state, buffer)
        with atomic_write(path, "wb") as handle:
            handle.write(buffer.getvalue())

    def load(self, path: Path) -> None:
        import torch

        state = torch.load(path, map_location="cpu", weights_only=True)
        self.supernet.load_state_dict(state["weights"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.advanced = int(state["advanced"])


class StandaloneObjective:
    """``1 - validation accuracy`` after training from scratch, through the store (cached)."""

    name = "standalone"
    evaluator = "standalone"

    def __init__(
        self,
        store: ResultsStore,
        space: Any,
        *,
        run: str,
        method: str,
        dataset: Any,
        config: Any,
        executor: Any,
        seed: int = 0,
    ) -> None:
        self.store, self.space, self.run, self.method = store, space, run, method
        self.dataset, self.candidate, self.executor, self.seed = dataset, config, executor, seed
        self.records: dict[Architecture, Any] = {}

    def config(self) -> dict[str, Any]:
        return {"objective": self.name, "candidate": self.candidate.to_dict(), "seed": self.seed}

    def __call__(self, architectures: Sequence[Architecture]) -> list[float]:
        requests = [Request(tuple(self.space[int(i)] for i in a), self.seed) for a in architectures]
        records = train_architectures(
            self.store, requests, run=self.run, method=self.method, dataset=self.dataset,
            config=self.candidate, executor=self.executor,
        )  # fmt: skip
        values = []
        for arch, record in zip(architectures, records, strict=True):
            self.records[tuple(arch)] = record
            ok = record is not None and record.status is EvalStatus.COMPLETE
            values.append(1.0 - record.metrics["val_accuracy"] if ok else float("nan"))
        return values


def record_cheap(
    store: ResultsStore,
    objective: Any,
    space: Any,
    architectures: Sequence[Architecture],
    values: Sequence[float],
    *,
    run: str,
    method: str,
    seed: int,
) -> None:
    """Store the evaluations of a cheap objective (surrogate, supernet): one row each."""
    from dagspace import canonical_hash

    config_hash = hash_config({**objective.config(), "run": run, "method": method})
    for arch, value in zip(architectures, values, strict=True):
        cells = [space[int(i)] for i in arch]
        key = EvalKey(canonical_hash(cells), objective.evaluator, config_hash, seed)
        finite = bool(np.isfinite(value))
        store.add(
            key, run=run, method=method, arch_json=[c.to_dict() for c in cells],
            status=EvalStatus.COMPLETE if finite else EvalStatus.DIVERGED,
            metrics={"objective": float(value) if finite else float("nan")},
        )  # fmt: skip
