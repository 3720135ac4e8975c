"""``dagrank demo``: every job on the shipped default data; prints where the report is."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("demo", help="the main job: every experiment on the digits data")
    p.add_argument("--run", type=Path, default=Path("runs/demo"), metavar="DIR")
    p.add_argument("--preset", choices=("smoke", "quick", "paper"), default="quick")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from analysis.demo import run_demo

    result = run_demo(args.run, preset=args.preset, progress=not args.no_progress)
    print(f"demo finished in {result.seconds:.0f} s; report: {result.report}")
    return 0
