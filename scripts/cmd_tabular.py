"""``dagrank trajectory`` and ``dagrank compare`` on ``--objective tabular:FILE[:COLUMN]``
(see :mod:`analysis.tabular`); reached through :mod:`scripts.cmd_search`."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = [
    "parse_part",
    "parse_variant",
    "run_tabular_compare_command",
    "run_tabular_trajectory_command",
    "tabular_config",
]


def _split(text: str | None) -> tuple[str, ...] | None:
    return None if not text else tuple(t.strip() for t in text.split(",") if t.strip())


def tabular_config(args: argparse.Namespace) -> Any:
    """The :class:`analysis.tabular.TabularConfig` of a command line (its defaults where a flag
    is not given: 100 repeats, 150 queries, every method)."""
    from analysis.tabular import TabularConfig, parse_tabular

    file, column = parse_tabular(args.objective)
    changes: dict[str, Any] = {"table": str(file), "column": column}
    for name in ("seed", "epochs", "budget", "repeats"):
        value = getattr(args, name, None)
        if value is not None:
            changes[name] = value
    if getattr(args, "methods", None) is not None:
        changes["methods"] = _split(args.methods) or ()
    if args.vertices is not None:
        changes["vertices"] = args.vertices
        changes["max_edges"] = 9 if args.vertices == 7 else None
    if getattr(args, "features", None):
        changes["features"] = _split(args.features)
    if getattr(args, "space_file", None) is not None:
        changes["space"] = str(args.space_file)
        _check_space_vertices(args.space_file, args.vertices)
    if getattr(args, "variants", None):
        changes["variants"] = dict(parse_variant(text) for text in args.variants)
    if getattr(args, "part", None) is not None:
        changes["part"] = parse_part(args.part)
    from scripts.study_args import flags_named

    flags = {name: f"--{name}" for name in ("methods", "budget", "repeats", "epochs", "seed",
                                            "part", "vertices")}  # fmt: skip
    with flags_named(flags):
        return TabularConfig(**changes)


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """``LABEL=STRATEGY[:KEY=VALUE,...]`` to ``(LABEL, {"strategy": STRATEGY, KEY: VALUE})``;
    a value reads as JSON where it can (numbers, ``true``, ``null``), else as a string.

    Raises:
        TabularConfigError: not of that form (the message shows the form and the text).
    """
    from analysis.tabular import TabularConfigError

    def bad() -> TabularConfigError:
        return TabularConfigError(
            f"--variant is LABEL=STRATEGY[:KEY=VALUE,...], e.g. fd-points=fd:probes=points; "
            f"got {text!r}."
        )

    label, sep, rest = text.partition("=")
    strategy, _, options = rest.partition(":")
    if not sep or not label.strip() or not strategy.strip():
        raise bad()
    spec: dict[str, Any] = {"strategy": strategy.strip()}
    for item in filter(None, (o.strip() for o in options.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise bad()
        try:
            spec[key.strip()] = json.loads(value)
        except ValueError:
            spec[key.strip()] = value.strip()
    return label.strip(), spec


def parse_part(text: str) -> tuple[int, int, int]:
    """``K/N@SEED`` to ``(K, N, SEED)`` (the ranges are the config's to check).

    Raises:
        TabularConfigError: not of that form.
    """
    from analysis.tabular import TabularConfigError

    fraction, at, seed = text.partition("@")
    k, slash, n = fraction.partition("/")
    try:
        if not at or not slash:
            raise ValueError
        return int(k), int(n), int(seed)
    except ValueError:
        raise TabularConfigError(
            f"--part is K/N@SEED (part K of N of the table's cells, split by a permutation "
            f"seeded SEED), e.g. 1/2@101; got {text!r}."
        ) from None


def _check_space_vertices(path: Any, vertices: int | None) -> None:
    """``--vertices`` and ``--space`` together must agree (the space file wins otherwise, and
    the flag would be silently ignored)."""
    import numpy as np

    from analysis.tables import TableError

    if vertices is None:
        return
    try:
        with np.load(path, allow_pickle=False) as data:
            found = int(data["max_vertices"])
    except Exception:  # unreadable: Space.load says how when the job opens it
        return
    if found != vertices:
        raise TableError(
            f"--vertices {vertices} disagrees with --space {path} (a space of {found} vertices); "
            "give one of them."
        )


def run_tabular_trajectory_command(args: argparse.Namespace) -> int:
    from analysis.tabular import run_tabular_trajectory

    result = run_tabular_trajectory(args.run, tabular_config(args), progress=not args.no_progress)
    r = result.report
    print(
        f"{r['epochs']} epochs, {r['evaluations']} lookups in {r['seconds']:.1f} s: "
        f"{r['objective']} objective {r['objective_first']:.4f} -> {r['objective_last']:.4f} "
        f"(best {r['objective_best']:.4f}) -> {result.run_dir / 'trajectories.csv'}"
    )
    return 0


def run_tabular_compare_command(args: argparse.Namespace) -> int:
    from analysis.tabular import run_tabular_compare
    from scripts.study_args import flags_named

    config = tabular_config(args)
    with flags_named({"budget": "--budget"}):  # the table's size is known only once it is read
        result = run_tabular_compare(args.run, config, progress=not args.no_progress)
    r = result.report
    print(f"{r['repeats']} repeats x {r['budget']} queries on {r['cells']} cells "
          f"(best {r['column']} {r['optimum']:.4f}); median regret at {r['budget']}: "
          + ", ".join(f"{m} {v['median_regret'][r['budget']]:.4f}" for m, v in r["methods"].items())
          + f" -> {result.run_dir / 'tabular_regret.csv'}")  # fmt: skip
    return 0
