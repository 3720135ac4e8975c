"""``dagrank validate``: the surrogate's ranking against architectures trained from scratch."""

from __future__ import annotations

import argparse

from scripts.executor_args import add_executor_arguments, executor_from_args
from scripts.study_args import add_study_arguments, check_rankable, run_path, study_from_args

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "validate",
        help="correlate the surrogate's ranking with stand-alone training",
        description="Train (or reuse) the supernet in --run DIR and validate its ranking against "
        "architectures trained from scratch. Settings come from the defaults, then --preset, "
        "then --config, then the explicit flags.",
    )
    p.add_argument("--run", type=run_path, required=True, metavar="DIR", help="run directory")
    add_study_arguments(p)
    p.add_argument(
        "--n",
        type=int,
        help="uniformly drawn architectures to train (default: the "
        "preset's; every estimator's top of the pool is added)",
    )
    p.add_argument(
        "--pool",
        type=int,
        help="architectures scored by every estimator, whose top "
        "--include-top join the sample (default: the preset's)",
    )
    p.add_argument(
        "--include-top",
        type=int,
        help="each estimator's top architectures of the "
        "pool added to the sample (default: the preset's)",
    )
    p.add_argument(
        "--seeds",
        help="comma-separated training seeds, at least 2 for a noise "
        "ceiling (default: the preset's)",
    )
    p.add_argument(
        "--estimators",
        help="comma-separated estimators (default: every one registered in analysis.estimators)",
    )
    add_executor_arguments(p)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=run)


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [name.strip() for name in text.split(",") if name.strip()]


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
    from analysis.validation import run_validation

    study = study_from_args(
        args,
        {
            "validation": {
                "n": args.n,
                "seeds": parse_seeds(args.seeds),
                "pool": args.pool,
                "include_top": args.include_top,
                "estimators": _names(args.estimators),
            }
        },
        {
            "n": "--n",
            "seeds": "--seeds",
            "pool": "--pool",
            "include_top": "--include-top",
            "estimators": "--estimators",
        },
    )
    check_rankable(study, args, "validate")
    config = study.validation_config()
    executor = executor_from_args(args)
    with executor:
        result = run_validation(
            args.run,
            config,
            executor=executor,
            progress=not args.no_progress,
            retry_failed=args.retry_failed,
        )
    s = result.summary
    wall = result.report["timing_s"]["wall"]
    print(f"validated {s.n} architectures x {len(s.seeds)} seeds in {wall:.0f} s -> "
          f"{args.run / 'estimators.csv'}")  # fmt: skip
    if s.ceiling is not None:
        c = s.ceiling.seed_vs_rest
        print(f"  noise ceiling (one seed vs the rest): Kendall tau {c.value:.3f} "
              f"[{c.low:.3f}, {c.high:.3f}]")  # fmt: skip
    else:
        print("  no noise ceiling: one training seed (--seeds 0,1 or more give one)")
    for name, f in s.estimators.items():
        t, d = f.kendall, f.vs_params
        versus = "" if name == "params" else f"  vs params {d.value:+.3f} (p {d.p_value:.3f})"
        print(f"  {name:24s} Kendall tau {t.value:+.3f} [{t.low:+.3f}, {t.high:+.3f}]{versus}")
    print(f"  best: {s.best}; surrogate tau interval +/-{s.half_width:.2f}")
    return 0
