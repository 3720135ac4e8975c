"""The ``dagrank`` console command: argument parsing and dispatch only.

Each subcommand lives in a module of :mod:`scripts` that defines ``register(subparsers)``; the
module's handler receives the parsed arguments and returns an exit code. Errors that the toolkit
raises on purpose (and bad command-line values) end the command with one line on stderr and exit
status 2; nothing else is caught, so a real bug still shows its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

from dagspace.errors import DagrankError

__all__ = ["main"]

# module name -> subcommand it registers; imported lazily so `dagrank space` never imports torch.
SUBCOMMAND_MODULES = (
    "cmd_space",
    "cmd_supernet",
    "cmd_validate",
    "cmd_search",
    "cmd_report",
    "cmd_demo",
    "cmd_config",
    "cmd_bench",
    "cmd_analyze",
    "cmd_nasbench",
)

USER_ERRORS = (DagrankError, OSError)  # every package's errors derive from DagrankError


class _Version(argparse.Action):
    """``--version``: the installed package's version, looked up only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="print the version and exit")  # fmt: skip

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib.metadata import PackageNotFoundError, version

        try:
            text = version("dagrank")
        except PackageNotFoundError:
            text = "unknown (not installed)"
        print(f"dagrank {text}")
        parser.exit()


def _add_verbosity(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument("-v", "--verbose", action="count", default=default,
                        help="more messages (-vv: debugging)")  # fmt: skip
    parser.add_argument("-q", "--quiet", action="store_true", default=default,
                        help="warnings and errors only, no progress bars")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dagrank",
        description="Rank the cell architectures of a DAG search space with a supernet.",
    )
    parser.add_argument("--version", action=_Version)
    _add_verbosity(parser, None)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(f"scripts.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"scripts.{name}":
                raise
            continue
        module.register(subparsers)
    _name_subcommands(parser)
    return parser


def _name_subcommands(parser: argparse.ArgumentParser, top: bool = True) -> None:
    """Give every parser's namespace its full command (``"space enumerate"``), for messages,
    and every command the -v / -q flags (also after the subcommand's name)."""
    parser.set_defaults(command_name=parser.prog.removeprefix("dagrank").strip())
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs and not top:
        _add_verbosity(parser, argparse.SUPPRESS)
    for action in subs:
        for sub in action.choices.values():
            _name_subcommands(sub, top=False)


class _Formatter(logging.Formatter):
    def __init__(self, command: str) -> None:
        super().__init__()
        self.command = command

    def format(self, record: logging.LogRecord) -> str:
        text = " ".join(record.getMessage().split())  # one line
        level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        return f"dagrank {self.command}: {level}{text}"


@contextlib.contextmanager
def _logging(command: str, verbose: int | None, quiet: bool | None) -> Iterator[None]:
    """The ``dagrank`` logger to stderr while a command runs (INFO by default, DEBUG with -v,
    WARNING with -q); as it was afterwards."""
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(command))
    logger = logging.getLogger("dagrank")
    before = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before[0])
        logger.propagate = before[1]


def _one_line_warnings(command: str) -> object:
    """A ``warnings.showwarning`` that logs every warning as one line: the toolkit's own at
    warning level; another package's (BoTorch, GPyTorch, Ray, ...) once per package and
    category at warning level, and its repeats at debug level (``-v``)."""
    seen: set[tuple[str, str]] = set()

    def show(message, category, filename, lineno, file=None, line=None):
        logger = logging.getLogger("dagrank")
        package = category.__module__.split(".")[0]
        if package in ("analysis", "dagspace", "surrogate"):
            logger.warning("%s", message)
            return
        origin = _package_of(filename)
        key = (origin, category.__name__)
        level = logging.DEBUG if key in seen else logging.WARNING
        seen.add(key)
        logger.log(level, "%s: %s: %s", origin, category.__name__, message)

    return show


def _package_of(filename: str) -> str:
    """The top-level package a warning came from (``botorch``), from its file's path."""
    parts = Path(filename).parts
    if "site-packages" in parts:
        tail = parts[parts.index("site-packages") + 1 :]
        if tail:
            return tail[0].removesuffix(".py")
    return Path(filename).stem


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    """The parser of the full subcommand ``command`` (``"supernet train"``)."""
    for name in command.split():
        actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not actions or name not in actions[0].choices:
            break
        parser = actions[0].choices[name]
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    command = getattr(args, "command_name", None) or args.command
    if unknown:  # said by the subcommand's parser: "dagrank supernet train: error: ..."
        _subparser(parser, command).error(f"unrecognized arguments: {' '.join(unknown)}")
    if hasattr(args, "no_progress") and (args.quiet or not _on_terminal()):
        args.no_progress = True  # progress bars only where someone watches
    with _logging(command, args.verbose, args.quiet):
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _one_line_warnings(command)
                return int(args.handler(args) or 0)
        except USER_ERRORS as err:
            message = " ".join(str(err).split())  # one line, whatever the message held
            print(f"dagrank {command}: error: {message}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print(f"dagrank {command}: interrupted; what was stored is kept.", file=sys.stderr)
            return 130


def _on_terminal() -> bool:
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


if __name__ == "__main__":
    sys.exit(main())
