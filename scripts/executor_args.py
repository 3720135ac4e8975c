"""Flags shared by the jobs that train candidates (``validate``, ``compare``): ``--executor``,
``--workers``, ``--address``, ``--gpus-per-candidate``, ``--retry-failed``, and the executor
they build."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_executor_arguments", "executor_from_args"]


def add_executor_arguments(p: argparse.ArgumentParser) -> None:
    """--executor, --workers, --address: how a job trains its candidates."""
    p.add_argument(
        "--executor",
        choices=("local", "batched", "ray"),
        default="local",
        help="local: a pool of one single-threaded worker per core (on one GPU: 32 candidates "
        "stacked; with several GPUs: one worker per GPU); batched: candidates stacked in one "
        "process; ray: a Ray cluster",
    )
    p.add_argument("--workers", type=int, help="local candidates trained at once")
    p.add_argument("--address", help="Ray cluster address (default: a local Ray instance)")
    p.add_argument(
        "--retry-failed",
        action="store_true",
        dest="retry_failed",
        help="retrain candidates that failed their last allowed attempt (e.g. three 'worker died')",
    )
    p.add_argument(
        "--gpus-per-candidate",
        type=_gpu_share,
        default="auto",
        metavar="SHARE",
        help="Ray: GPUs reserved per candidate, e.g. 0.25 packs four on a GPU (default auto: "
        "0.25 where the cluster has GPUs, else 0)",
    )


def _gpu_share(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number >= 0, got {text!r}")
    return value


def executor_from_args(args: argparse.Namespace) -> Any:
    """The executor that the flags of :func:`add_executor_arguments` (and ``--device``) ask for;
    a context manager that closes it."""
    from analysis.evaluation import make_job_executor

    return make_job_executor(
        args.executor,
        workers=args.workers,
        address=args.address,
        device=args.device,
        gpus_per_candidate=args.gpus_per_candidate,
    )
