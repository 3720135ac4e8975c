"""--retry-failed: a candidate that failed its last allowed attempt is retrained on purpose."""

from __future__ import annotations

from analysis.evaluation import Request, train_architectures
from analysis.results import EvalStatus, SQLiteStore
from dagspace import NASBENCH101_OPS, enumerate_space
from surrogate.candidate import CandidateResult, candidate_preset
from surrogate.executors import LocalExecutor
from surrogate.tasks import DatasetSpec


class DyingExecutor:
    """Every task's worker dies (a user's script that crashed its pool, say)."""

    capacity = 1

    def __init__(self) -> None:
        self.tasks = 0

    def map(self, tasks):
        for task in tasks:
            self.tasks += 1
            yield task, CandidateResult.failure("worker died (exit code 1)", device="cpu")


def test_retry_failed_retrains_an_exhausted_candidate(tmp_path):
    store = SQLiteStore(tmp_path / "results.sqlite")
    space = enumerate_space(4, NASBENCH101_OPS)
    requests = [Request((space[5], space[9]), 0)]
    dataset = DatasetSpec("digits", seed=0, limit=120)
    config = candidate_preset("smoke").replace(epochs=1, channels=4)
    common = dict(run="r", method="m", dataset=dataset, config=config)
    dying = DyingExecutor()
    (record,) = train_architectures(store, requests, executor=dying, **common)
    assert record.status is EvalStatus.FAILED and record.attempt == 3 and dying.tasks == 3
    (again,) = train_architectures(store, requests, executor=dying, **common)
    assert again.attempt == 3 and dying.tasks == 3  # exhausted: not trained again
    with LocalExecutor(workers=1, devices=["cpu"]) as executor:
        (retried,) = train_architectures(store, requests, executor=executor, retry_failed=True,
                                         **common)  # fmt: skip
    assert retried.status is EvalStatus.COMPLETE and retried.attempt == 4
    (cached,) = train_architectures(store, requests, executor=dying, retry_failed=True, **common)
    assert cached.id == retried.id and dying.tasks == 3  # a complete one is never retrained
    store.close()
