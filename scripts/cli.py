"""The ``dagrank`` console command: argument parsing and dispatch only.

Each subcommand lives in a module of :mod:`scripts` that defines ``register(subparsers)``; the
module's handler receives the parsed arguments and returns an exit code. Errors that the toolkit
raises on purpose (and bad command-line values) end the command with one line on stderr and exit
status 2; nothing else is caught, so a real bug still shows its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Sequence

from analysis.errors import AnalysisError
from dagspace.errors import DagspaceError
from surrogate.errors import SurrogateError

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
)

USER_ERRORS = (DagspaceError, SurrogateError, AnalysisError, OSError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dagrank",
        description="Rank the cell architectures of a DAG search space with a supernet.",
    )
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


def _name_subcommands(parser: argparse.ArgumentParser) -> None:
    """Give every parser's namespace its full command (``"space enumerate"``), for messages."""
    parser.set_defaults(command_name=parser.prog.removeprefix("dagrank").strip())
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _name_subcommands(sub)


def _one_line_warnings(command: str) -> object:
    """A ``warnings.showwarning`` that prints the toolkit's own warnings as one line each."""
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if category.__module__.split(".")[0] in ("analysis", "dagspace", "surrogate"):
            text = " ".join(str(message).split())
            print(f"dagrank {command}: warning: {text}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    return show


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = getattr(args, "command_name", None) or args.command
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


if __name__ == "__main__":
    sys.exit(main())
