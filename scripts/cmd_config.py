"""``dagrank config show``: a complete, commented study TOML to start from (see
:mod:`analysis.study`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from surrogate.presets import PRESET_NAMES

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("config", help="print a study config (TOML) to start from")
    sub = p.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    show = sub.add_parser(
        "show",
        help="print the complete, commented TOML of a preset (or of --config with --preset)",
        description="Print the complete study TOML that --preset (default quick) and --config "
        "resolve to; save it, edit it, and pass it to validate, trajectory, compare or demo "
        "with --config.",
    )
    show.add_argument("--preset", choices=PRESET_NAMES)
    show.add_argument("--config", type=Path, metavar="FILE", help="a study TOML to resolve")
    show.set_defaults(handler=run_show)


def run_show(args: argparse.Namespace) -> int:
    from analysis.study import resolve_study, study_toml

    print(study_toml(resolve_study(preset=args.preset, config=args.config)), end="")
    return 0
