"""``dagrank supernet train``: train the Gumbel-softmax supernet into a run directory.

The run directory gets ``config.json`` (the resolved config), ``supernet.pt`` (the checkpoint,
every epoch), ``history.csv``, ``multinomials.csv``, ``multinomials.png`` and
``multinomial_history.png``. Re-running with the same config resumes from the checkpoint; a
different config is refused and nothing in the directory is touched.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from analysis.errors import RunConflictError

__all__ = ["register"]

# flag dest -> config key; a flag overrides the preset / config file only when given
_OVERRIDES = {
    "dataset": "dataset",
    "vertices": "vertices",
    "cells": "cells",
    "epochs": "epochs",
    "channels": "channels",
    "batch_size": "batch_size",
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
    from surrogate.config import PRESETS

    train.add_argument("--run", required=True, type=Path, metavar="DIR", help="run directory")
    train.add_argument("--preset", choices=sorted(PRESETS), help="a named starting config")
    train.add_argument("--config", type=Path, metavar="FILE", help="a .toml or .json config")
    train.add_argument("--dataset", help="dataset name (e.g. digits, mnist1d)")
    train.add_argument("--vertices", type=int, metavar="V", help="vertices per cell")
    train.add_argument("--cells", type=int, metavar="K", help="cells per architecture")
    train.add_argument("--epochs", type=int, metavar="E", help="training epochs")
    train.add_argument("--channels", type=int, help="stem channels")
    train.add_argument("--batch-size", type=int, dest="batch_size", help="batch size")
    train.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    train.add_argument("--seed", type=int, help="seed of the data split, weights and samples")
    train.add_argument("--no-progress", action="store_true", help="no progress bars")
    train.add_argument("--top-k", type=int, default=10, help="joint top-k architectures to list")
    train.set_defaults(handler=_train)


def _resolve_config(args: argparse.Namespace) -> Any:
    from surrogate.config import PRESETS, SupernetConfig, load_config

    config = PRESETS[args.preset] if args.preset else SupernetConfig()
    if args.config is not None:
        config = load_config(args.config, base=config)
    changes = {key: getattr(args, dest) for dest, key in _OVERRIDES.items()}
    return config.replace(**{k: v for k, v in changes.items() if v is not None})


def _write_atomic(path: Path, text: str) -> None:
    from analysis.io import atomic_write

    with atomic_write(path, newline="") as handle:
        handle.write(text)


def _csv_text(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue()


def _check_run_config(run: Path, config: Any) -> None:
    """Refuse a run directory whose config.json holds another config (touching nothing)."""
    from surrogate.config import config_differences, config_from_dict
    from surrogate.errors import ConfigError

    path = run / "config.json"
    if not path.exists():
        return
    try:
        existing = config_from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, ConfigError) as err:
        raise RunConflictError(
            f"{path} is not a readable supernet config ({err}); use another --run directory."
        ) from None
    if existing != config:
        diffs = "; ".join(config_differences(existing, config))
        raise RunConflictError(
            f"{path} holds a different config (in the run != asked: {diffs}); use another "
            "--run directory, or the run's own settings to resume it."
        )


def _train(args: argparse.Namespace) -> int:
    from analysis.plots import plot_multinomial_history, plot_multinomials
    from surrogate import data
    from surrogate.device import resolve_device
    from surrogate.training import (
        HISTORY_COLUMNS,
        MULTINOMIAL_COLUMNS,
        history_rows,
        multinomial_rows,
        train_supernet,
    )

    config = _resolve_config(args)
    run: Path = args.run
    if run.exists() and not run.is_dir():
        raise RunConflictError(f"The --run path {str(run)!r} exists and is not a directory.")
    _check_run_config(run, config)
    device = resolve_device(config.device)
    dataset = data.load_dataset(
        config.dataset,
        seed=config.seed,
        root=config.data_root,
        val_fraction=config.val_fraction,
        test_fraction=config.test_fraction,
        limit=config.data_limit,
        device=device,
    )
    run.mkdir(parents=True, exist_ok=True)
    if not (run / "config.json").exists():
        _write_atomic(run / "config.json", config.to_json())

    result = train_supernet(
        config, dataset, checkpoint_path=run / "supernet.pt", progress=not args.no_progress
    )
    history = result.history
    _write_atomic(run / "history.csv", _csv_text(HISTORY_COLUMNS, history_rows(history)))
    _write_atomic(
        run / "multinomials.csv",
        _csv_text(MULTINOMIAL_COLUMNS, multinomial_rows(history, config.ops)),
    )
    plot_multinomials(
        result.final.op_probabilities,
        config.ops,
        run / "multinomials.png",
        title=f"Op probabilities after {len(history)} epochs ({config.dataset})",
    )
    plot_multinomial_history(history, run / "multinomial_history.png", config.ops)
    ranked = _rank(run, result.supernet, config, top_k=args.top_k)
    final = result.final
    resumed = f", resumed at epoch {result.resumed_epochs}" if result.resumed_epochs else ""
    print(
        f"supernet trained: {run} | epochs {len(history)}{resumed} | val acc {final.val_acc:.3f} "
        f"(sampled), {final.argmax_val_acc:.3f} (argmax) | {result.train_seconds:.1f} s "
        f"training on {result.device}{ranked}"
    )
    return 0


def _rank(run: Path, supernet: Any, config: Any, top_k: int) -> str:
    """Rank the labelled space of the supernet's cells; write ranking.csv and joint_topk.csv."""
    from dagspace import Space, enumerate_space
    from dagspace.enumeration import MAX_ENUMERATION_VERTICES
    from surrogate.relative import rank_space

    if config.vertices > MAX_ENUMERATION_VERTICES:
        return f" | no ranking: spaces above {MAX_ENUMERATION_VERTICES} vertices are not enumerated"
    path = run / "space.npz"
    if path.exists():
        space = Space.load(path)
    else:
        space = enumerate_space(config.vertices, config.ops)
        space.save(path)
    ranking = rank_space(
        space, supernet.op_probabilities(), supernet.edge_probabilities(), op_names=config.ops
    )
    with _atomic(run / "ranking.csv") as handle:
        ranking.frame().to_csv(handle, index=False)
    top = ranking.top_k(top_k)
    with _atomic(run / "joint_topk.csv") as handle:
        top.to_csv(handle, index=False)
    return (
        f" | ranked {len(space):,} cells x {len(ranking.cells)} in {ranking.seconds:.2f} s, "
        f"best architecture log p = {top.log_probability.iloc[0]:.3f}"
    )


def _atomic(path: Path) -> Any:
    from analysis.io import atomic_write

    return atomic_write(path, newline="")
