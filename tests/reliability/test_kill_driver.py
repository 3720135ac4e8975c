"""Reliability 1 and 2: a `compare` run SIGKILLed at random moments and restarted until its budget
is done stores every finished evaluation exactly once, never goes back, and ends with exactly the
architectures and results of an uninterrupted run (random, Bayesian and finite-difference
search alike: their states are saved with every step)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.slow

COMMAND = ["-m", "scripts.cli", "compare", "--preset", "smoke", "--no-progress", "--run"]
FINISHED = "('COMPLETE', 'DIVERGED')"


def _start(run: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, *COMMAND, str(run)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


def _finished(run: Path) -> int:
    if not (run / "results.sqlite").exists():
        return 0
    with sqlite3.connect(run / "results.sqlite", timeout=30) as conn:
        try:
            query = f"SELECT COUNT(*) FROM evaluations WHERE status IN {FINISHED}"
            return conn.execute(query).fetchone()[0]
        except sqlite3.OperationalError:  # killed before the schema was written
            return 0


def _evaluations(run: Path) -> pd.DataFrame:
    with sqlite3.connect(run / "results.sqlite") as conn:
        return pd.read_sql(
            "SELECT method, arch_hash, evaluator, evaluator_config_hash, seed, status, attempt, "
            "error, metrics_json FROM evaluations WHERE run = 'compare'",
            conn,
        )


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("reference") / "run"
    proc = _start(run)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()[-2000:]
    return run


def test_repeated_sigkill_loses_nothing_trains_nothing_twice_and_matches(
    reference: Path, tmp_path: Path
) -> None:
    run = tmp_path / "killed"
    rng = np.random.default_rng(20261123)
    # when to kill: a few seconds in (the supernet's training), then once the store holds this
    # many finished evaluations (the searches, then the top-k training), plus a random delay
    plan = [("seconds", 3.0), ("seconds", 6.0), ("rows", 5), ("rows", 25), ("rows", 50),
            ("rows", 53)]  # fmt: skip
    kills, progress = 0, [0]
    for attempt in range(len(plan) + 5):
        proc = _start(run)
        kind, target = plan[attempt] if attempt < len(plan) else ("never", 0)
        started = time.monotonic()
        while proc.poll() is None and kind != "never":
            elapsed = time.monotonic() - started
            if (kind == "seconds" and elapsed >= target) or (
                kind == "rows" and _finished(run) >= target
            ):
                time.sleep(float(rng.uniform(0.0, 0.5)))
                break
            if elapsed > 300:
                pytest.fail(f"attempt {attempt} made no progress in 300 s")
            time.sleep(0.05)
        if proc.poll() is None and kind != "never":
            proc.send_signal(signal.SIGKILL)  # the driver only: its pool workers must follow it
            try:
                proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                pytest.fail("the killed driver's workers outlived it by a minute")
            kills += 1
            done = _finished(run)
            assert done >= progress[-1], f"progress went back: {progress} -> {done}"
            progress.append(done)
            continue
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()[-2000:]
        break
    else:
        pytest.fail(f"the run never finished after {kills} kills")
    assert kills >= 4, f"only {kills} kills happened; the drill did not interrupt the run"
    assert max(progress) >= 25, f"no kill landed after the searches began: {progress}"

    frame = _evaluations(run)
    key = ["arch_hash", "evaluator", "evaluator_config_hash", "seed"]
    finished = frame[frame["status"].isin(["COMPLETE", "DIVERGED"])].copy()
    twice = finished.groupby(key).size()
    assert (twice == 1).all(), f"trained twice: {twice[twice > 1]}"
    assert not (frame["status"] == "RUNNING").any(), "a killed evaluation stayed RUNNING"
    failed = frame[frame["status"] == "FAILED"]
    assert failed["error"].str.startswith("worker died").all()  # only the ones killed in flight
    # the driver claims only what its executor runs at once (a pool of one worker per core)
    assert len(failed) <= kills * len(os.sched_getaffinity(0))

    ref = _evaluations(reference)
    ref_done = ref[ref["status"].isin(["COMPLETE", "DIVERGED"])].copy()
    # the same architectures were proposed by every method, and gave the same numbers (bar the
    # wall time, which no seed fixes)
    for part in (finished, ref_done):
        part["metrics_json"] = [
            json.dumps({k: v for k, v in json.loads(m).items() if "seconds" not in k},
                       sort_keys=True) for m in part["metrics_json"]
        ]  # fmt: skip
    columns = ["method", "arch_hash", "evaluator", "metrics_json"]
    left = finished[columns].sort_values(columns).reset_index(drop=True)
    right = ref_done[columns].sort_values(columns).reset_index(drop=True)
    pd.testing.assert_frame_equal(left, right)
    pd.testing.assert_frame_equal(pd.read_csv(run / "top3.csv"),
                                  pd.read_csv(reference / "top3.csv"))  # fmt: skip
    print(f"kills={kills} progress={progress} rows={len(frame)} failed={len(failed)}")
