"""``dagrank validate``: the surrogate's ranking against architectures trained from scratch."""

from __future__ import annotations

import argparse
from pathlib import Path

from scripts.study_args import add_study_arguments, study_from_args

__all__ = ["register"]


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


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "validate",
        help="correlate the surrogate's ranking with stand-alone training",
        description="Train (or reuse) the supernet in --run DIR and validate its ranking against "
        "architectures trained from scratch. Settings come from the defaults, then --preset, "
        "then --config, then the explicit flags.",
    )
    p.add_argument("--run", type=Path, required=True, metavar="DIR", help="run directory")
    add_study_arguments(p)
    p.add_argument("--n", type=int, help="architectures to train (default: the preset's)")
    p.add_argument("--seeds", help="comma-separated training seeds (default: the preset's, 0)")
    add_executor_arguments(p)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=run)


def parse_seeds(text: str | None) -> tuple[int, ...] | None:
    from surrogate.errors import ConfigError

    if text is None:
        return None
    try:
        return tuple(int(s) for s in text.split(","))
    except ValueError:
        message = f"--seeds must be comma-separated integers; got {text!r}."
        raise ConfigError(message) from None


def run(args: argparse.Namespace) -> int:
    from analysis.evaluation import make_job_executor
    from analysis.validation import run_validation

    study = study_from_args(
        args,
        {"validation": {"n": args.n, "seeds": parse_seeds(args.seeds)}},
        {"n": "--n", "seeds": "--seeds"},
    )
    config = study.validation_config()
    executor = make_job_executor(args.executor, workers=args.workers, address=args.address,
                                 device=args.device,
                                 gpus_per_candidate=args.gpus_per_candidate)  # fmt: skip
    with executor:
        result = run_validation(
            args.run,
            config,
            executor=executor,
            progress=not args.no_progress,
            retry_failed=args.retry_failed,
        )
    s = result.summary
    tau, rho = s.surrogate_kendall, s.surrogate_spearman
    print(
        f"validated {s.n} architectures in {result.report['timing_s']['wall']:.0f} s: "
        f"Kendall tau {tau.value:.3f} [{tau.low:.3f}, {tau.high:.3f}], Spearman rho "
        f"{rho.value:.3f} [{rho.low:.3f}, {rho.high:.3f}]; params tau "
        f"{s.params_kendall.value:.3f}, random tau {s.random_kendall.value:.3f} -> "
        f"{args.run / 'summary.json'}"
    )
    return 0
