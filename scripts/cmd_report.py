"""``dagrank plot RUN_DIR`` and ``dagrank report RUN_DIR`` (see :mod:`analysis.report`)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("plot", help="redraw every plot of a run from what it stored")
    p.add_argument("run", type=Path, metavar="RUN_DIR")
    p.add_argument("--dpi", type=float, default=110.0, help="resolution (default 110)")
    p.set_defaults(handler=run_plot)
    p = subparsers.add_parser("report", help="write RUN_DIR/report.md: every table and plot")
    p.add_argument("run", type=Path, metavar="RUN_DIR")
    p.set_defaults(handler=run_report)


def run_plot(args: argparse.Namespace) -> int:
    from analysis.report import redraw_plots

    for path in redraw_plots(args.run, dpi=args.dpi):
        print(path)
    return 0


def run_report(args: argparse.Namespace) -> int:
    from analysis.report import write_report

    print(write_report(args.run))
    return 0
