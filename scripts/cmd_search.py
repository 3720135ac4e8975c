"""``dagrank trajectory`` and ``dagrank compare``: the search jobs (see :mod:`analysis.search`)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from scripts.executor_args import add_executor_arguments, executor_from_args
from scripts.study_args import add_study_arguments, check_rankable, run_path, study_from_args

__all__ = ["register"]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", type=run_path, required=True, metavar="DIR", help="run directory")
    add_study_arguments(p)
    p.add_argument("--objective", type=objective_name, metavar="OBJECTIVE",
                   help="what the strategies minimise: surrogate (default), supernet, "
                   "standalone, tabular:FILE[:COLUMN] (a published table) or module:function "
                   "(your own function of the cells)")  # fmt: skip
    p.add_argument("--features", help="embedding features of fd and bayes, comma-separated "
                   "(tabular objectives; default: the seed's three)")  # fmt: skip
    p.add_argument("--space", type=Path, metavar="FILE", dest="space_file",
                   help="tabular objectives: a saved space (.npz)")  # fmt: skip
    p.add_argument("--vertices", type=int, help="vertices per cell (the supernet's space)")
    p.add_argument("--seed", type=int, help="seed of the strategies")
    p.add_argument("--no-progress", action="store_true")


def objective_name(text: str) -> str:
    """``--objective``: a named objective, ``tabular:FILE[:COLUMN]`` or ``module:function``."""
    if text in ("surrogate", "supernet", "standalone") or text.startswith("tabular:"):
        return text
    if re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", text):
        return text  # module:function, checked when the search config is made
    raise argparse.ArgumentTypeError(
        "expected surrogate, supernet, standalone, tabular:FILE[:COLUMN] or module:function; "
        f"got {text!r}"
    )


_DESCRIPTION = ("Settings come from the defaults, then --preset, then --config, then the "
                "explicit flags.")  # fmt: skip


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "trajectory", help="finite-difference descent through the feature space, trajectories",
        description="Finite-difference descent through the feature space. " + _DESCRIPTION,
    )  # fmt: skip
    _common(p)
    p.add_argument("--epochs", type=int, help="descent epochs (default 100)")
    p.add_argument("--retry-failed", action="store_true", dest="retry_failed",
                   help="a descent whose objective failed somewhere starts over, evaluating "
                   "the failures again (completed evaluations are reused)")  # fmt: skip
    p.set_defaults(handler=run_trajectory_command)
    p = subparsers.add_parser(
        "compare", help="random vs Bayesian vs finite-difference search, top-k from scratch",
        description="Random, Bayesian and finite-difference search on equal budgets, each "
        "method's top-k trained from scratch. " + _DESCRIPTION,
    )  # fmt: skip
    _common(p)
    p.add_argument("--budget", type=int, help="evaluations per method and repeat")
    p.add_argument("--budget-mode", choices=("evaluations", "compute"), dest="budget_mode")
    p.add_argument("--repeats", type=int, help="seeds per method")
    p.add_argument("--top-k", type=int, dest="top_k", help="architectures trained per method")
    p.add_argument("--methods", help="comma-separated subset of fd,random,bayes,evolution,local")
    p.add_argument("--variant", action="append", dest="variants", metavar="LABEL=STRATEGY:K=V,...",
                   help="tabular objectives: a strategy with options run beside the methods "
                   "under its own label, e.g. fd-points=fd:probes=points (repeatable)")  # fmt: skip
    p.add_argument("--part", metavar="K/N@SEED",
                   help="tabular objectives: run on part K of N of the table's cells, split by "
                   "a permutation seeded SEED (e.g. 1/2@101: one random half)")  # fmt: skip
    add_executor_arguments(p)
    p.set_defaults(handler=run_compare_command)


_SEARCH_FLAGS = {"objective": "--objective", "seed": "--seed", "epochs": "--epochs",
                 "budget": "--budget", "budget_mode": "--budget-mode", "repeats": "--repeats",
                 "top_k": "--top-k", "methods": "--methods", "vertices": "--vertices"}  # fmt: skip


def search_config(args: argparse.Namespace) -> Any:
    """The :class:`analysis.search.SearchConfig` of the study the arguments resolve to."""
    from surrogate.errors import ConfigError

    given = [flag for flag, dest in (("--features", "features"), ("--space", "space_file"),
                                     ("--variant", "variants"), ("--part", "part"))
             if getattr(args, dest, None) is not None]  # fmt: skip
    if given:
        raise ConfigError(
            f"{' and '.join(given)} applies to tabular objectives only (--objective "
            f"tabular:FILE); got --objective {args.objective or 'surrogate (the default)'}."
        )
    search = {
        name: getattr(args, name, None)
        for name in ("objective", "seed", "epochs", "budget", "budget_mode", "repeats", "top_k")
    }
    if getattr(args, "methods", None) is not None:
        search["methods"] = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    overrides = {"search": search, "supernet": {"vertices": args.vertices}}
    study = study_from_args(args, overrides, _SEARCH_FLAGS)
    check_rankable(study, args, args.command_name)
    return study.search_config()


def run_trajectory_command(args: argparse.Namespace) -> int:
    from analysis.search import run_trajectory

    if (args.objective or "").startswith("tabular:"):
        from scripts.cmd_tabular import run_tabular_trajectory_command

        return run_tabular_trajectory_command(args)

    result = run_trajectory(args.run, search_config(args), progress=not args.no_progress,
                            retry_failed=args.retry_failed)  # fmt: skip
    r = result.report
    print(
        f"{r['epochs']} epochs, {r['evaluations']} evaluations in {r['seconds']:.1f} s: "
        f"{r['objective']} objective {r['objective_first']:.3f} -> {r['objective_last']:.3f} "
        f"(best {r['objective_best']:.3f}) -> {result.run_dir / 'trajectories.csv'}"
    )
    return 0


def run_compare_command(args: argparse.Namespace) -> int:
    from analysis.search import run_compare

    if (args.objective or "").startswith("tabular:"):
        from scripts.cmd_tabular import run_tabular_compare_command

        return run_tabular_compare_command(args)

    executor = executor_from_args(args)
    with executor:
        result = run_compare(
            args.run,
            search_config(args),
            executor=executor,
            progress=not args.no_progress,
            retry_failed=args.retry_failed,
        )
    methods = result.report["methods"]
    parts = [f"{m} {v['top_k_test_accuracy']['median']:.3f}" for m, v in methods.items()]
    print(f"median top-{result.report['top_k']} test accuracy: " + ", ".join(parts)
          + f" -> {result.run_dir / result.report['table']}")  # fmt: skip
    return 0
