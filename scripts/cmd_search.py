"""``dagrank trajectory`` and ``dagrank compare``: the search jobs (see :mod:`analysis.search`)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from scripts.cmd_validate import add_executor_arguments

__all__ = ["register"]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", type=Path, required=True, metavar="DIR", help="run directory")
    p.add_argument("--preset", choices=("smoke", "quick", "paper"), default="quick")
    p.add_argument("--objective", type=objective_name, metavar="OBJECTIVE",
                   help="what the strategies minimise: surrogate (default), supernet, "
                   "standalone, or tabular:FILE[:COLUMN] (a published table)")  # fmt: skip
    p.add_argument("--features", help="embedding features of fd and bayes, comma-separated "
                   "(tabular objectives; default: the seed's three)")  # fmt: skip
    p.add_argument("--space", type=Path, metavar="FILE", dest="space_file",
                   help="tabular objectives: a saved space (.npz)")  # fmt: skip
    p.add_argument("--vertices", type=int, help="vertices per cell (the supernet's space)")
    p.add_argument("--seed", type=int, help="seed of the strategies")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--no-progress", action="store_true")


def objective_name(text: str) -> str:
    """``--objective``: one of the named objectives or ``tabular:FILE[:COLUMN]``."""
    if text in ("surrogate", "supernet", "standalone") or text.startswith("tabular:"):
        return text
    raise argparse.ArgumentTypeError(
        f"expected surrogate, supernet, standalone or tabular:FILE[:COLUMN]; got {text!r}"
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "trajectory", help="finite-difference descent through the feature space, trajectories"
    )
    _common(p)
    p.add_argument("--epochs", type=int, help="descent epochs (default 100)")
    p.set_defaults(handler=run_trajectory_command)
    p = subparsers.add_parser(
        "compare", help="random vs Bayesian vs finite-difference search, top-k from scratch"
    )
    _common(p)
    p.add_argument("--budget", type=int, help="evaluations per method and repeat")
    p.add_argument("--budget-mode", choices=("evaluations", "compute"), dest="budget_mode")
    p.add_argument("--repeats", type=int, help="seeds per method")
    p.add_argument("--top-k", type=int, dest="top_k", help="architectures trained per method")
    p.add_argument("--methods", help="comma-separated subset of fd,random,bayes,evolution,local")
    add_executor_arguments(p)
    p.set_defaults(handler=run_compare_command)


def search_config(args: argparse.Namespace) -> Any:
    from analysis.search import search_preset

    config = search_preset(args.preset)
    changes: dict[str, Any] = {}
    for name in ("objective", "seed", "epochs", "budget", "budget_mode", "repeats", "top_k"):
        value = getattr(args, name, None)
        if value is not None:
            changes[name] = value
    if getattr(args, "methods", None):
        changes["methods"] = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    supernet = {}
    if args.vertices is not None:
        supernet["vertices"] = args.vertices
    if args.device is not None:
        supernet["device"] = args.device
    if supernet:
        changes["supernet"] = config.supernet.replace(**supernet)
    return dataclasses.replace(config, **changes)


def run_trajectory_command(args: argparse.Namespace) -> int:
    from analysis.search import run_trajectory

    if (args.objective or "").startswith("tabular:"):
        from scripts.cmd_tabular import run_tabular_trajectory_command

        return run_tabular_trajectory_command(args)

    result = run_trajectory(args.run, search_config(args), progress=not args.no_progress)
    r = result.report
    print(
        f"{r['epochs']} epochs, {r['evaluations']} evaluations in {r['seconds']:.1f} s: "
        f"{r['objective']} objective {r['objective_first']:.3f} -> {r['objective_last']:.3f} "
        f"(best {r['objective_best']:.3f}) -> {result.run_dir / 'trajectories.csv'}"
    )
    return 0


def run_compare_command(args: argparse.Namespace) -> int:
    from analysis.evaluation import make_job_executor
    from analysis.search import run_compare

    if (args.objective or "").startswith("tabular:"):
        from scripts.cmd_tabular import run_tabular_compare_command

        return run_tabular_compare_command(args)

    executor = make_job_executor(args.executor, workers=args.workers, address=args.address,
                                 device=args.device,
                                 gpus_per_candidate=args.gpus_per_candidate)  # fmt: skip
    with executor:
        result = run_compare(args.run, search_config(args), executor=executor,
                             progress=not args.no_progress)  # fmt: skip
    methods = result.report["methods"]
    parts = [f"{m} {v['top_k_test_accuracy']['median']:.3f}" for m, v in methods.items()]
    print(f"median top-{result.report['top_k']} test accuracy: " + ", ".join(parts)
          + f" -> {result.run_dir / 'top10.csv'}")  # fmt: skip
    return 0
