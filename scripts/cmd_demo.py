"""``dagrank demo``: every job on the shipped default data; prints where the report is."""

from __future__ import annotations

import argparse
from pathlib import Path

from scripts.study_args import add_study_arguments, check_rankable, run_path, study_from_args

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="the main job: every experiment on the digits data (or a study of yours)",
        description="Every job in one run directory: the 6-vertex space, the supernet, "
        "validation, the trajectory, the comparison and report.md. Settings come from the "
        "defaults, then --preset, then --config, then the explicit flags.",
    )
    p.add_argument("--run", type=run_path, default=Path("runs/demo"), metavar="DIR")
    add_study_arguments(p)
    p.add_argument(
        "--retry-failed",
        action="store_true",
        dest="retry_failed",
        help="retrain candidates that failed their last allowed attempt",
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:

    from analysis.demo import run_demo

    study = study_from_args(args, {}, {}, demo=True)  # the demo's space and smaller validation
    check_rankable(study, args, "demo")
    result = run_demo(
        args.run,
        preset=study.preset,
        study=study,
        progress=not args.no_progress,
        retry_failed=args.retry_failed,
    )
    print(f"demo finished in {result.seconds:.0f} s; report: {result.report}")
    return 0
