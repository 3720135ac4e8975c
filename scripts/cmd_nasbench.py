"""``dagrank nasbench convert``: read NAS-Bench-101's official file once into its cache."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    nasbench = subparsers.add_parser("nasbench", help="NAS-Bench-101's official data files")
    sub = nasbench.add_subparsers(dest="nasbench_command", required=True, metavar="ACTION")
    p = sub.add_parser(
        "convert",
        help="read a .tfrecord (CRCs checked, no TensorFlow) into its columnar cache",
        description="Read nasbench_only108.tfrecord or nasbench_full.tfrecord once and write "
        "its cache (FILE.dagrank.npz) beside it or in --cache-dir; jobs then take the file or "
        "the cache as --objective tabular:FILE[:COLUMN].",
    )
    p.add_argument("file", type=Path, metavar="FILE", help="a NAS-Bench-101 .tfrecord file")
    p.add_argument("--cache-dir", type=Path, metavar="DIR",
                   help="write the cache here (default: beside FILE)")  # fmt: skip
    p.add_argument("--skip-damaged", action="store_true",
                   help="skip and count damaged records instead of stopping")  # fmt: skip
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=run_convert)


def run_convert(args: argparse.Namespace) -> int:
    import time

    from analysis.nasbench_cache import describe_table, open_nasbench
    from analysis.tfrecord import TFRecordError

    if args.file.suffix.lower() != ".tfrecord":
        raise TFRecordError(f"dagrank nasbench convert reads a .tfrecord file; got {args.file}.")
    start = time.perf_counter()
    table = open_nasbench(args.file, cache_dir=args.cache_dir, skip_damaged=args.skip_damaged,
                          progress=not args.no_progress)  # fmt: skip
    seconds = time.perf_counter() - start
    d = describe_table(table)
    print(f"{args.file}: {d['records']} records ({d['skipped']} skipped), {d['cells']} cells "
          f"({d['in_nasbench101_space']} of NAS-Bench-101's space), budgets {d['budgets']}, "
          f"up to {d['repeats']} repeats; {seconds:.1f} s -> {d['cache']} "
          f"({d['cache_bytes'] / 1e6:.1f} MB)")  # fmt: skip
    return 0
