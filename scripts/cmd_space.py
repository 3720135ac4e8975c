"""``dagrank space``: enumerate, describe, export and plot a DAG cell space."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported in the handlers: `dagrank --help` loads no numpy
    from dagspace import Space

__all__ = ["describe", "register"]


def parse_ops(text: str | None) -> tuple[str, ...] | None:
    from dagspace import NASBENCH101_OPS

    if text is None:
        return None
    if text == "nasbench101":
        return NASBENCH101_OPS
    return tuple(op.strip() for op in text.split(",") if op.strip())


def register(subparsers: argparse._SubParsersAction) -> None:
    space = subparsers.add_parser("space", help="enumerate, describe, export and plot a space")
    sub = space.add_subparsers(dest="space_command", required=True, metavar="SUBCOMMAND")

    p = sub.add_parser("enumerate", help="enumerate every distinct pruned cell into a .npz file")
    p.add_argument("--vertices", type=int, required=True, help="largest cell, 2..7 vertices")
    p.add_argument(
        "--ops",
        help="comma-separated interior ops, or 'nasbench101' (default: none, "
        "an unlabelled topology space)",
    )
    p.add_argument("--max-edges", type=int, help="keep cells with at most this many edges")
    p.add_argument("--out", type=Path, required=True, help="the .npz file to write")
    p.set_defaults(handler=run_enumerate)

    p = sub.add_parser("describe", help="counts, feature ranges and distinct feature points")
    p.add_argument("file", type=Path)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run_describe)

    p = sub.add_parser("features", help="write every cell's features to a CSV file")
    p.add_argument("file", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(handler=run_features)

    p = sub.add_parser("plot", help="the space in its three default features")
    p.add_argument("file", type=Path)
    p.add_argument("--out", type=Path, required=True, help="a .png, .svg or .pdf file")
    p.add_argument("--dpi", type=float, default=110.0, help="resolution (default 110)")
    p.set_defaults(handler=run_plot)


def _same_space(space: Space, vertices: int, ops, max_edges) -> bool:
    return (space.max_vertices, space.op_names, space.max_edges) == (
        vertices,
        None if ops is None else tuple(ops),
        max_edges,
    )


_ENUMERATE_FLAGS = {"num_vertices": "--vertices", "max_edges": "--max-edges", "ops": "--ops"}


def run_enumerate(args: argparse.Namespace) -> int:
    from scripts.study_args import flags_named

    with flags_named(_ENUMERATE_FLAGS):
        return _enumerate(args)


def _enumerate(args: argparse.Namespace) -> int:
    from dagspace import InvalidSpaceError, Space, enumerate_space

    ops = parse_ops(args.ops)
    if args.out.exists():
        existing = Space.load(args.out)
        if not _same_space(existing, args.vertices, ops, args.max_edges):
            raise InvalidSpaceError(
                f"{args.out} already holds another space (vertices={existing.max_vertices}, "
                f"ops={existing.op_names}, max_edges={existing.max_edges}); it is left as it is. "
                "Choose another --out."
            )
        print(f"{len(existing)} unique cells already in {args.out} (same space); nothing to do")
        return 0
    start = time.perf_counter()
    space = enumerate_space(args.vertices, ops, args.max_edges)
    elapsed = time.perf_counter() - start
    space.save(args.out)
    print(f"{len(space)} unique cells in {elapsed:.2f} s -> {args.out}")
    return 0


def describe(space: Space) -> dict:
    """A JSON-ready summary: counts per vertex count, feature ranges, distinct points."""
    import numpy as np

    from dagspace import DEFAULT_FEATURES
    from dagspace.features import topology_keys

    raw = np.stack([space.feature(name) for name in DEFAULT_FEATURES], axis=1)
    sizes = np.bincount(space.num_vertices, minlength=space.max_vertices + 1)
    return {
        "cells": len(space),
        "labelled": space.is_labelled,
        "ops": list(space.op_names) if space.op_names else None,
        "max_vertices": space.max_vertices,
        "max_edges": space.max_edges,
        "cells_by_vertices": {str(v): int(sizes[v]) for v in range(2, len(sizes)) if sizes[v]},
        "distinct_topologies": len(np.unique(topology_keys(space.matrices))),
        "distinct_feature_points": len(np.unique(raw, axis=0)),
        "feature_points_of": list(DEFAULT_FEATURES),
        "features": {
            name: {
                "min": float(space.feature(name).min()),
                "max": float(space.feature(name).max()),
                "distinct": len(np.unique(space.feature(name))),
            }
            for name in space.feature_names
        },
    }


def run_describe(args: argparse.Namespace) -> int:
    from dagspace import Space

    info = describe(Space.load(args.file))
    if args.json:
        print(json.dumps(info))
        return 0
    kind = "labelled (" + ", ".join(info["ops"]) + ")" if info["labelled"] else "unlabelled"
    print(
        f"{args.file}: {info['cells']} {kind} cells, at most {info['max_vertices']} vertices, "
        f"max_edges={info['max_edges']}"
    )
    print(
        "  cells by vertex count: "
        + ", ".join(f"{v}: {n}" for v, n in info["cells_by_vertices"].items())
    )
    print(
        f"  distinct topologies: {info['distinct_topologies']}; distinct feature points "
        f"({', '.join(info['feature_points_of'])}): {info['distinct_feature_points']}"
    )
    for name, rng in info["features"].items():
        print(f"  {name:24s} {rng['min']:8.4g} .. {rng['max']:<8.4g} ({rng['distinct']} values)")
    return 0


def _refuse_overwrite(path: Path) -> None:
    from dagspace import InvalidSpaceError

    if path.exists():
        raise InvalidSpaceError(
            f"{path} already exists; it is left as it is. Choose another --out or remove it first."
        )


def run_features(args: argparse.Namespace) -> int:
    from analysis.io import atomic_write
    from dagspace import Space

    _refuse_overwrite(args.out)
    frame = Space.load(args.file).to_frame()
    with atomic_write(args.out) as handle:
        frame.to_csv(handle, index=False)
    print(f"{len(frame)} rows x {frame.shape[1]} columns -> {args.out}")
    return 0


def run_plot(args: argparse.Namespace) -> int:
    from analysis.plots import check_plot_path
    from analysis.space_plot import plot_space
    from dagspace import Space

    check_plot_path(args.out, args.dpi)  # before loading the space
    space = Space.load(args.file)
    plot_space(space, args.out, dpi=args.dpi)
    print(f"plot of {len(space)} cells -> {args.out}")
    return 0
