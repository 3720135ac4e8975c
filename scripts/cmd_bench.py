"""``dagrank bench``: measured timings, printed as one JSON line each."""

from __future__ import annotations

import argparse
import json

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    bench = subparsers.add_parser("bench", help="benchmarks, one JSON line of timings each")
    sub = bench.add_subparsers(dest="bench_command", required=True, metavar="BENCHMARK")
    p = sub.add_parser("space", help="enumeration and features vs a per-graph networkx baseline")
    p.add_argument("--sample", type=int, default=2000, help="graphs timed for the baseline")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=run_space)
    p = sub.add_parser("supernet", help="epoch time: hard single-op sampling vs soft mixture")
    p.add_argument("--channels", type=int, default=32)
    p.add_argument("--epochs", type=int, default=3, help="timed epochs per mode, alternated")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=run_supernet)


def run_space(args: argparse.Namespace) -> int:
    from dagspace.bench import bench_space

    print(json.dumps({"bench": "space", **bench_space(args.sample, args.seed).to_dict()}))
    return 0


def run_supernet(args: argparse.Namespace) -> int:
    from surrogate.bench import bench_supernet

    result = bench_supernet(
        channels=args.channels, epochs=args.epochs, device=args.device, seed=args.seed
    )
    print(json.dumps({"bench": "supernet", **result}))
    return 0
