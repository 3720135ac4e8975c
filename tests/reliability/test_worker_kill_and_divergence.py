"""Reliability 3 and 6 through the driver every job uses (:func:`train_architectures`).

3. A candidate whose worker process dies is stored FAILED ("worker died"), never left RUNNING,
   and retried with the same architecture and seed, each retry under its own attempt number.
6. A NaN or inf loss injected at a chosen epoch gives a DIVERGED record with its epoch and the
   last finite metrics; the batch and the search go on, the search treating the point by the
   documented policy (never proposed again; the descent moves away from it).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.evaluation import Request, train_architectures
from analysis.objectives import StandaloneObjective
from analysis.results import EvalStatus, SQLiteStore
from dagspace import NASBENCH101_OPS, enumerate_space
from dagspace.strategies import make_strategy
from surrogate.candidate import FaultPlan, candidate_preset
from surrogate.executors import LocalExecutor
from surrogate.tasks import DatasetSpec

DATA = DatasetSpec(name="digits", seed=0, limit=300)
CONFIG = candidate_preset("smoke").replace(epochs=2)


@pytest.fixture(scope="module")
def space():
    return enumerate_space(4, NASBENCH101_OPS)


def _requests(space, n: int) -> list[Request]:
    rng = np.random.default_rng(3)
    picks = rng.choice(len(space), size=(n, 2), replace=False)
    return [Request((space[int(a)], space[int(b)]), seed=0) for a, b in picks]


@pytest.mark.slow
def test_a_killed_worker_is_failed_then_retried_with_the_same_arch_and_seed(tmp_path, space):
    store = SQLiteStore(tmp_path / "results.sqlite")
    requests = _requests(space, 3)
    with LocalExecutor(workers=2) as executor:
        records = train_architectures(
            store, requests, run="drill", method="random", dataset=DATA, config=CONFIG,
            executor=executor, faults={1: FaultPlan(kill_worker=True)},
        )  # fmt: skip
    assert [r.status for r in records] == [EvalStatus.COMPLETE] * 3
    history = store.history(records[1].key)
    assert [(r.attempt, r.status) for r in history] == [
        (1, EvalStatus.FAILED),
        (2, EvalStatus.COMPLETE),
    ]
    assert history[0].error.startswith("worker died")
    assert history[0].arch_json == history[1].arch_json and history[0].seed == history[1].seed
    assert all(len(store.history(r.key)) == 1 for r in (records[0], records[2]))
    assert not store.records(status=EvalStatus.RUNNING)
    assert len(store.records()) == 4  # 3 candidates + 1 retry, nothing trained twice


@pytest.mark.slow
def test_a_worker_that_always_dies_stops_after_max_attempts(tmp_path, space, monkeypatch):
    from analysis import evaluation

    store = SQLiteStore(tmp_path / "results.sqlite")
    requests = _requests(space, 1)

    class Dying:  # an executor whose worker dies on every attempt
        def map(self, tasks):
            from surrogate.candidate import CandidateResult

            for task in tasks:
                yield task, CandidateResult.failure("worker died (exit code -9)", device="cpu")

    records = evaluation.train_architectures(
        store, requests, run="drill", method="random", dataset=DATA, config=CONFIG,
        executor=Dying(), max_attempts=3,
    )  # fmt: skip
    history = store.history(records[0].key)
    assert [r.attempt for r in history] == [1, 2, 3]
    assert all(r.status is EvalStatus.FAILED for r in history)
    assert records[0].status is EvalStatus.FAILED


@pytest.mark.parametrize("fault", [FaultPlan(nan_at_epoch=1), FaultPlan(inf_at_epoch=1)])
def test_divergence_is_recorded_with_its_epoch_and_last_finite_metrics(tmp_path, space, fault):
    store = SQLiteStore(tmp_path / "results.sqlite")
    requests = _requests(space, 2)
    executor = LocalExecutor(workers=1)
    records = train_architectures(
        store, requests, run="drill", method="fd", dataset=DATA, config=CONFIG,
        executor=executor, faults={0: fault},
    )  # fmt: skip
    diverged, fine = records
    assert diverged.status is EvalStatus.DIVERGED and fine.status is EvalStatus.COMPLETE
    assert diverged.metrics["diverged_epoch"] == 1
    assert diverged.metrics["epochs_run"] == 1
    assert 0 <= diverged.metrics["val_accuracy"] <= 1  # the epoch-0 network's, finite
    assert math.isfinite(diverged.metrics["val_loss"])
    # a re-run does not train the diverged candidate again (DIVERGED is a cached outcome)
    again = train_architectures(
        store, requests, run="drill", method="fd", dataset=DATA, config=CONFIG, executor=executor
    )
    assert [r.id for r in again] == [r.id for r in records]


def test_the_search_goes_on_past_a_diverged_candidate(tmp_path, space):
    """A diverged stand-alone evaluation is NaN to the strategies: Bayesian search never
    proposes it again; the descent keeps stepping (its penalty policy is unit-tested)."""
    store = SQLiteStore(tmp_path / "results.sqlite")
    objective = StandaloneObjective(
        store, space, run="drill", method="bayes", dataset=DATA, config=CONFIG,
        executor=LocalExecutor(workers=1),
    )  # fmt: skip
    strategy = make_strategy("bayes", space, 2, seed=0, q=2, n_init=3)
    first = strategy.ask(3)
    values = objective(first)
    values[0] = float("nan")  # as a DIVERGED record reads to the strategies
    strategy.tell(first, values)
    nxt = strategy.ask(2)
    assert len(nxt) == 2 and first[0] not in nxt
    strategy.tell(nxt, objective(nxt))
    assert len(strategy.history) == 5
    fd = make_strategy("fd", space, 2, seed=0)
    for _ in range(3):
        batch = fd.ask(100)
        fd.tell(batch, [float("nan")] + [1.0] * (len(batch) - 1) if batch else [])
    assert fd.epoch >= 1
