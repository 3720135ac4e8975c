"""Flags shared by the study commands (``validate``, ``trajectory``, ``compare``, ``demo``):
``--preset``, ``--config FILE``, ``--dataset``, ``--data-root``, ``--device``, and the study
they resolve to (:func:`analysis.study.resolve_study`: defaults, preset, file, flags).

A bad value given by a flag is reported under the flag's name (``--vertices must be ...``),
not under the config key it sets.
"""

from __future__ import annotations

import argparse
import contextlib
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from surrogate.presets import PRESET_NAMES

__all__ = [
    "add_study_arguments",
    "check_rankable",
    "flags_named",
    "positive_int",
    "run_path",
    "study_from_args",
]


def run_path(text: str) -> Path:
    """``--run DIR``: a named directory (an unset shell variable would make it the current
    directory; what a run directory may be is :mod:`analysis.rundir`'s to check)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            f"a run directory must be named; got {text!r} (an unset shell variable?), which "
            "would be the current directory"
        )
    return Path(text)


def positive_int(text: str) -> int:
    """A flag's value that must be an int >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1 or str(value) != text.strip().lstrip("+"):
        raise argparse.ArgumentTypeError(f"expected an int >= 1; got {text!r}")
    return value


# the subject of the toolkit's standard messages: "The config key 'x' must be", "The search
# config's 'x' must be", "The 'x' of enumerate_space must be", "[supernet] The config key ..."
_SUBJECT = re.compile(r"^.*?The [^.]*?'(?P<key>\w+)'[^.']*? must be ")


def rename_to_flag(err: Exception, flags: Mapping[str, str]) -> Exception | None:
    """``err`` with its subject replaced by the flag that set it (``flags``: key -> flag), or
    ``None`` when its message names no key of ``flags``."""
    text = str(err)
    match = _SUBJECT.match(text)
    if match is None or match["key"] not in flags:
        return None
    rest = text[match.end() :].replace(" or None;", " (or left out);")  # a flag is left out
    return type(err)(f"{flags[match['key']]} must be {rest}")


@contextlib.contextmanager
def flags_named(flags: Mapping[str, str]) -> Iterator[None]:
    """Re-raise the toolkit's errors about a key that a flag set under the flag's name."""
    from dagspace.errors import DagrankError

    try:
        yield
    except DagrankError as err:
        renamed = rename_to_flag(err, flags)
        if renamed is None:
            raise
        raise renamed from None


def add_study_arguments(p: argparse.ArgumentParser, *, device: bool = True) -> None:
    p.add_argument(
        "--preset",
        choices=PRESET_NAMES,
        help="a named starting study (default: quick; else the file's preset)",
    )
    p.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="a study TOML ([supernet], [candidate], [validation], [search]); "
        "`dagrank config show` prints one to start from",
    )
    p.add_argument(
        "--dataset",
        metavar="NAME",
        help="digits, mnist1d, mnist, fashion-mnist, cifar10 or npz:PATH",
    )
    p.add_argument(
        "--data-root",
        dest="data_root",
        metavar="DIR",
        help="directory holding the dataset's files (mnist, fashion-mnist, cifar10)",
    )
    if device:
        p.add_argument("--device", help="auto, cpu, cuda or cuda:N (supernet and candidates)")
    add_fresh_argument(p)


def add_fresh_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--fresh",
        action="store_true",
        help="start the run over: the existing run directory is moved aside to "
        "DIR.old-<UTC time> (never deleted)",
    )


def fresh_start(args: argparse.Namespace) -> None:
    """With ``--fresh``: move the run directory aside (after every flag was checked)."""
    if getattr(args, "fresh", False):
        import logging

        from analysis.rundir import set_aside

        aside = set_aside(args.run)
        if aside is not None:
            logging.getLogger("dagrank").warning("--fresh: %s moved aside to %s", args.run, aside)


def check_dataset_flag(name: str | None) -> None:
    """Refuse a ``--dataset`` the loader does not know before anything runs."""
    if name is None:
        return
    from surrogate.data import DATASETS
    from surrogate.errors import DatasetError

    if name in DATASETS or name.startswith("npz:") or name.endswith(".npz"):
        return
    raise DatasetError(
        f"--dataset must be one of {', '.join(DATASETS)}, npz:PATH or a path ending in .npz; "
        f"got {name!r}."
    )


def check_rankable(study: Any, args: argparse.Namespace, job: str) -> None:
    """Refuse, before anything runs, a study whose space is too large to enumerate (search and
    validation rank it), naming where its vertices were set."""
    from dagspace.enumeration import MAX_ENUMERATION_VERTICES
    from surrogate.errors import ConfigError

    vertices = study.supernet.vertices
    if vertices <= MAX_ENUMERATION_VERTICES:
        return
    if getattr(args, "vertices", None) is not None:
        source = f"--vertices {vertices}"
    elif getattr(args, "config", None) is not None:
        source = f"{args.config}: [supernet] vertices = {vertices}"
    else:
        source = f"the {study.preset} preset's vertices = {vertices}"
    raise ConfigError(
        f"{job} ranks the whole space, which needs at most {MAX_ENUMERATION_VERTICES} vertices "
        f"to be enumerated; got {source}."
    )


def study_from_args(
    args: argparse.Namespace,
    overrides: Mapping[str, Mapping[str, Any]],
    flags: Mapping[str, str],
    *,
    demo: bool = False,
) -> Any:
    """The study of ``--preset``, ``--config`` and the flags (``overrides``: section -> key ->
    value, ``None`` for a flag not given; ``flags``: key -> flag, for messages)."""
    from analysis.study import apply_study_dict, resolve_study

    check_dataset_flag(getattr(args, "dataset", None))
    study = resolve_study(preset=args.preset, config=args.config, demo=demo)
    supernet = {
        "dataset": getattr(args, "dataset", None),
        "data_root": getattr(args, "data_root", None),
        "device": getattr(args, "device", None),
    }
    changes = {section: dict(values) for section, values in overrides.items()}
    changes["supernet"] = {**supernet, **changes.get("supernet", {})}
    changes = {
        section: {k: v for k, v in values.items() if v is not None}
        for section, values in changes.items()
    }
    changes = {section: values for section, values in changes.items() if values}
    if not changes:
        fresh_start(args)
        return study
    names = {**flags, "dataset": "--dataset", "data_root": "--data-root", "device": "--device"}
    given = {
        key: flag
        for key, flag in names.items()
        if any(key in values for values in changes.values())
    }
    with flags_named(given):
        study = apply_study_dict(study, changes)
    fresh_start(args)
    return study
