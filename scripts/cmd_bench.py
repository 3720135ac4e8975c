"""``dagrank bench``: measured timings, printed as one JSON line each."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from surrogate.presets import PRESET_NAMES

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
    p = sub.add_parser("train", help="candidates per minute: one at a time vs batched (K=8, 32)")
    p.add_argument("--ks", default="8,32", help="comma-separated batch sizes K (max(K) archs)")
    p.add_argument("--preset", choices=PRESET_NAMES, default="smoke")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch threads, the same for all modes")
    p.add_argument(
        "--pool-workers",
        type=int,
        help="also time the jobs' CPU default, a pool of this many single-threaded workers "
        "(default: one per core on the CPU, none on a GPU; 0: no pool)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=run_train)
    p = sub.add_parser("threads", help="a supernet epoch and a candidate at 1 vs 2 threads")
    p.add_argument("--presets", default="smoke,quick", help="comma-separated presets")
    p.add_argument("--threads", default="1,2", help="comma-separated intra-op thread counts")
    p.add_argument("--epochs", type=int, default=3, help="timed supernet epochs per count")
    p.add_argument("--candidates", type=int, default=3, help="timed candidates per count")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=run_threads)
    p = sub.add_parser("bo", help="one q-batch Bayesian proposal on the NAS-Bench-101 space")
    p.add_argument("--q", type=int, default=8)
    p.add_argument("--observations", type=int, default=64, help="random observations first")
    p.add_argument("--cells", type=int, default=3, help="supernet cells per architecture")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=run_bo)
    p = sub.add_parser("nasbench-hash", help="NAS-Bench-101's module hash over its whole space")
    p.add_argument("--space", type=Path, help="a saved space (.npz; default: enumerate NB101)")
    p.add_argument("--sample", type=int, default=2000, help="cells timed for the per-cell loop")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=run_nasbench_hash)
    p = sub.add_parser("nasbench-file", help="read + cache a NAS-Bench-101 file built from a table")
    p.add_argument("--slice", type=Path, required=True, metavar="JSON",
                   help="the published slice (nb101_slice_10k.json) to build from")  # fmt: skip
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="where the .tfrecord and its cache are written")  # fmt: skip
    p.add_argument("--space", type=Path, help="a saved NB101 space (.npz) with its hashes")
    p.add_argument("--budgets", default="4,12,36,108",
                   help="epochs: 4,12,36,108 (as nasbench_full) or 108 (only108)")  # fmt: skip
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--whole-space", action="store_true",
                   help="a file of the official size (slice values in turn)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=run_nasbench_file)


def run_nasbench_file(args: argparse.Namespace) -> int:
    from analysis.nasbench_bench import bench_nasbench_file
    from dagspace import Space

    budgets = tuple(int(b) for b in args.budgets.split(","))
    space = Space.load(args.space) if args.space is not None else None
    result = bench_nasbench_file(args.slice, args.out, space=space, budgets=budgets,
                                 repeats=args.repeats, seed=args.seed,
                                 whole_space=args.whole_space)  # fmt: skip
    print(json.dumps({"bench": "nasbench-file", **result}))
    return 0


def run_nasbench_hash(args: argparse.Namespace) -> int:
    from dagspace import Space
    from dagspace.bench import bench_nasbench_hash

    space = Space.load(args.space) if args.space is not None else None
    result = bench_nasbench_hash(space, sample=args.sample, seed=args.seed)
    print(json.dumps({"bench": "nasbench-hash", **result}))
    return 0


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


def run_bo(args: argparse.Namespace) -> int:
    import time

    from dagspace import NASBENCH101_OPS, enumerate_space
    from dagspace.bench import bench_bo

    start = time.perf_counter()
    space = enumerate_space(7, NASBENCH101_OPS, max_edges=9)
    enumerate_s = round(time.perf_counter() - start, 3)
    result = bench_bo(space, q=args.q, n_train=args.observations, seed=args.seed,
                      num_cells=args.cells)  # fmt: skip
    print(json.dumps({"bench": "bo", "cells": len(space), "enumerate_s": enumerate_s, **result}))
    return 0


def run_train(args: argparse.Namespace) -> int:
    from surrogate.bench import bench_train
    from surrogate.device import cpu_count

    ks = tuple(int(k) for k in args.ks.split(","))
    pool = args.pool_workers
    if pool is None:
        pool = cpu_count() if args.device == "cpu" else 0
    result = bench_train(None, ks, config=args.preset, device=args.device, threads=args.threads,
                         seed=args.seed, pool_workers=pool)  # fmt: skip
    print(json.dumps({"bench": "train", **result}))
    return 0


def run_threads(args: argparse.Namespace) -> int:
    from surrogate.bench import bench_threads
    from surrogate.errors import ConfigError

    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    unknown = [p for p in presets if p not in PRESET_NAMES]
    if unknown or not presets:
        raise ConfigError(f"--presets must name presets from {list(PRESET_NAMES)}; got {presets}.")
    try:
        threads = [int(t) for t in args.threads.split(",")]
    except ValueError:
        message = f"--threads must be comma-separated ints; got {args.threads!r}."
        raise ConfigError(message) from None
    result = bench_threads(presets, threads=threads, epochs=args.epochs,
                           candidates=args.candidates, seed=args.seed)  # fmt: skip
    print(json.dumps({"bench": "threads", **result}))
    return 0
