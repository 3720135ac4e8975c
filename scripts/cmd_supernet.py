"""``dagrank supernet train``: train the Gumbel-softmax supernet into a run directory.

What the run directory holds, and the resume/refuse rules: :mod:`analysis.runs`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from scripts.study_args import positive_int, run_path
from surrogate.presets import PRESET_NAMES

__all__ = ["register"]

# flag dest -> config key; a flag overrides the preset / config file only when given
_OVERRIDES = {
    "dataset": "dataset",
    "vertices": "vertices",
    "cells": "cells",
    "epochs": "epochs",
    "channels": "channels",
    "batch_size": "batch_size",
    "data_root": "data_root",
    "device": "device",
    "seed": "seed",
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "supernet",
        help="train the Gumbel-softmax supernet",
        description="Train the Gumbel-softmax supernet whose multinomials rank the space.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    train = actions.add_parser(
        "train",
        help="train into a run directory (resumes a run of the same config)",
        description=(
            "Train the supernet into --run DIR. Settings come from the defaults, then --preset, "
            "then --config, then the explicit flags."
        ),
    )
    train.add_argument("--run", required=True, type=run_path, metavar="DIR", help="run directory")
    train.add_argument("--preset", choices=PRESET_NAMES, help="a named starting config")
    train.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="a .toml or .json supernet config, or a study TOML (its [supernet])",
    )
    train.add_argument(
        "--dataset", help="digits, mnist1d, mnist, fashion-mnist, cifar10 or npz:PATH"
    )
    train.add_argument("--data-root", dest="data_root", metavar="DIR",
                       help="directory holding the dataset's files")  # fmt: skip
    train.add_argument("--vertices", type=int, metavar="V", help="vertices per cell")
    train.add_argument("--cells", type=int, metavar="K", help="cells per architecture")
    train.add_argument("--epochs", type=int, metavar="E", help="training epochs")
    train.add_argument("--channels", type=int, help="stem channels")
    train.add_argument("--batch-size", type=int, dest="batch_size", help="batch size")
    train.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    train.add_argument("--seed", type=int, help="seed of the data split, weights and samples")
    train.add_argument("--no-progress", action="store_true", help="no progress bars")
    train.add_argument("--top-k", type=positive_int, default=10,
                       help="joint top-k architectures to list (joint_topk.csv)")  # fmt: skip
    train.add_argument("--ranking-rows", type=ranking_rows, metavar="N",
                       help="ranking.csv: the best N cells of each supernet cell, or 'all' "
                       "(default: the top thousand; ranking.npz holds every cell)")  # fmt: skip
    from scripts.study_args import add_fresh_argument

    add_fresh_argument(train)
    train.set_defaults(handler=_train)

    study = actions.add_parser(
        "study",
        help="which supernet training ranks best: variants on the same trained architectures",
        description=(
            "Train N uniformly drawn architectures (each once per seed) and one supernet per "
            "variant of the preset's config, and compare the variants' rankings of the same "
            "architectures (Kendall tau with intervals, paired tests against the first variant "
            "and the parameter count). Writes study.csv and summary.json."
        ),
    )
    study.add_argument("--run", required=True, type=run_path, metavar="DIR", help="run directory")
    study.add_argument("--preset", choices=PRESET_NAMES, default="quick")
    study.add_argument("--dataset", help="dataset name (e.g. digits, mnist1d)")
    study.add_argument(
        "--data-limit",
        type=int,
        metavar="N",
        help="a stratified subset of N examples (supernet and candidates)",
    )
    study.add_argument("--n", type=int, default=150, help="architectures to train")
    study.add_argument("--seeds", default="0,1", help="comma-separated training seeds")
    study.add_argument(
        "--variants",
        help="comma-separated names from analysis.supernet_study.SUPERNET_VARIANTS "
        "(default: DEFAULT_VARIANTS, its first 7)",
    )
    study.add_argument("--no-progress", action="store_true", help="no progress bars")
    study.set_defaults(handler=_study)


_FLAGS = {"batch_size": "--batch-size", "data_root": "--data-root"}


def ranking_rows(text: str) -> int | str:
    """``--ranking-rows``: an int >= 1, or ``"all"``."""
    return "all" if text.strip().lower() == "all" else positive_int(text)


def _is_study_file(path: Path) -> bool:
    """A study TOML (with a [supernet] section) rather than a flat supernet config."""
    import tomllib

    if path.suffix.lower() != ".toml":
        return False
    try:
        return isinstance(tomllib.loads(path.read_bytes().decode()).get("supernet"), dict)
    except (OSError, ValueError, UnicodeDecodeError):
        return False  # load_config says what is wrong


def _resolve_config(args: argparse.Namespace) -> Any:
    from scripts.study_args import check_dataset_flag, flags_named
    from surrogate.config import SupernetConfig, load_config, supernet_preset

    config = supernet_preset(args.preset) if args.preset else SupernetConfig()
    if args.config is not None and _is_study_file(args.config):
        from analysis.study import resolve_study

        config = resolve_study(preset=args.preset, config=args.config).supernet
    elif args.config is not None:
        config = load_config(args.config, base=config)
    check_dataset_flag(args.dataset)
    changes = {key: getattr(args, dest) for dest, key in _OVERRIDES.items()}
    changes = {k: v for k, v in changes.items() if v is not None}
    flags = {key: _FLAGS.get(key, "--" + key.replace("_", "-")) for key in changes}
    with flags_named(flags):
        return config.replace(**changes)


def _train(args: argparse.Namespace) -> int:
    from analysis.runs import supernet_run
    from scripts.study_args import fresh_start

    config = _resolve_config(args)
    fresh_start(args)
    rows = {} if args.ranking_rows is None else {
        "ranking_rows": None if args.ranking_rows == "all" else args.ranking_rows}  # fmt: skip
    done = supernet_run(args.run, config, progress=not args.no_progress, top_k=args.top_k,
                        **rows)  # fmt: skip
    result, ranking = done.result, done.ranking
    final = result.final
    done, epochs = result.resumed_epochs, result.config.epochs
    resumed = ""
    if done:
        at = f"epoch {done}" if done <= epochs else f"round {done - epochs} of the fit"
        resumed = f", resumed {'at' if done <= epochs else 'after'} {at}"
    ranked = " | no ranking: the space is too large to enumerate"
    if ranking is not None:
        best = ranking.top_k(1).score.iloc[0]
        ranked = (
            f" | ranked {len(ranking.space):,} cells x {len(ranking.cells)} in "
            f"{ranking.seconds:.2f} s, best architecture {ranking.score} = {best:.3f}"
        )
    rounds = sum(r.phase == "arch" for r in result.history)
    fitted = f" + {rounds} round{'s' * (rounds != 1)} of the multinomials' fit" if rounds else ""
    print(
        f"supernet trained: {args.run} | epochs {len(result.history) - rounds}{fitted}{resumed} "
        f"| val acc {final.val_acc:.3f} (sampled), {final.argmax_val_acc:.3f} (argmax) | "
        f"{result.train_seconds:.1f} s training on {result.device}{ranked}"
    )
    return 0


def _study(args: argparse.Namespace) -> int:
    import dataclasses

    from analysis.supernet_study import DEFAULT_VARIANTS, SUPERNET_VARIANTS, run_supernet_study
    from analysis.validation import validation_preset
    from surrogate.errors import ConfigError

    config = validation_preset(args.preset)
    data = {"dataset": args.dataset, "data_limit": args.data_limit}
    data = {k: v for k, v in data.items() if v is not None}
    config = dataclasses.replace(config, supernet=config.supernet.replace(**data))
    try:
        seeds = tuple(int(s) for s in args.seeds.split(","))
    except ValueError:
        raise ConfigError(
            f"--seeds must be comma-separated integers; got {args.seeds!r}."
        ) from None
    config = dataclasses.replace(config, n=args.n, seeds=seeds)
    variants = {name: SUPERNET_VARIANTS[name] for name in DEFAULT_VARIANTS}
    if args.variants is not None:
        names = [v.strip() for v in args.variants.split(",") if v.strip()]
        unknown = [v for v in names if v not in SUPERNET_VARIANTS]
        if unknown or not names:
            known = list(SUPERNET_VARIANTS)
            raise ConfigError(
                f"--variants must name variants from {known}; got {unknown or names}."
            )
        variants = {v: SUPERNET_VARIANTS[v] for v in names}
    table = run_supernet_study(args.run, config, variants, progress=not args.no_progress)
    for row in table.itertuples(index=False):
        print(f"{row.variant:22s} {row.estimator:20s} tau {row.kendall:+.3f} "
              f"[{row.kendall_low:+.3f}, {row.kendall_high:+.3f}]  vs reference "
              f"{row.delta_vs_reference:+.3f} (p {row.p_vs_reference:.3f})  vs params "
              f"{row.delta_vs_params:+.3f} (p {row.p_vs_params:.3f})")  # fmt: skip
    print(f"-> {args.run / 'study.csv'}")
    return 0
