"""``dagrank analyze``: measurements of the search premise on a tabular benchmark."""

from __future__ import annotations

import argparse
from pathlib import Path

from scripts.study_args import run_path

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    analyze = subparsers.add_parser("analyze", help="measure what an embedding can see")
    sub = analyze.add_subparsers(dest="analyze_command", required=True, metavar="ANALYSIS")
    p = sub.add_parser(
        "features",
        help="variance share between feature points, held-out GP R^2 / Kendall tau: the seed's "
        "features vs op-aware features vs one-hot adjacency+ops",
    )
    p.add_argument("--objective", required=True, metavar="tabular:FILE[:COLUMN]")
    p.add_argument("--run", type=run_path, required=True, metavar="DIR", help="run directory")
    p.add_argument("--train", type=int, default=500, help="cells the GP is fitted on")
    p.add_argument("--test", type=int, default=2000, help="held-out cells it is scored on")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vertices", type=int, help="vertices per cell (default 7, NAS-Bench-101)")
    p.add_argument("--space", type=Path, metavar="FILE", dest="space_file",
                   help="a saved space (.npz) of the table's cells")  # fmt: skip
    p.set_defaults(handler=run_features)


def run_features(args: argparse.Namespace) -> int:
    from analysis.premise import run_premise
    from scripts.cmd_tabular import tabular_config

    result = run_premise(args.run, tabular_config(args), train=args.train, test=args.test)
    for row in result.frame.itertuples():
        print(f"{row.encoding}: {row.distinct_points} distinct points hold "
              f"{row.variance_share:.1%} of the variance ({row.variance_share_trimmed:.1%} "
              f"without the worst 1%); GP held-out R^2 {row.r2:.3f} (trimmed "
              f"{row.r2_trimmed:.3f}), Kendall tau {row.kendall_tau:.3f}")  # fmt: skip
    print(f"-> {result.run_dir / 'premise.csv'}, {result.run_dir / 'premise.png'}")
    return 0
