"""
The `recovery` command line.

Each family contributes one module here with an `add_parser(subparsers)`
function that registers its sub-command and sets `handler` on the parser.
Modules are imported only when the command line runs, so the library itself
never pays for them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

__all__ = ["main"]

# Sub-command modules, in the order `recovery --help` lists them.
_COMMAND_MODULES = ("run", "status", "services", "sagas", "backup", "dashboard")


class _SubcommandParser(argparse.ArgumentParser):
    """
    A sub-command's parser that refuses unknown options itself.

    argparse hands a sub-command's leftovers back to the top-level parser,
    whose error would then name `recovery` instead of `recovery run`.
    """

    def parse_known_args(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        namespace: argparse.Namespace | None = None,
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def build_parser() -> argparse.ArgumentParser:
    """
    Return the parser with every available sub-command registered.
    """
    parser = argparse.ArgumentParser(
        prog="recovery",
        description="Recovery strategies from the shell: retry, breakers, "
        "sagas, service checks and backups.",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (repeatable)"
    )
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_SubcommandParser
    )
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            # A family whose command module is absent simply adds no command.
            if exc.name == f"{__name__}.{name}":
                continue
            raise
        module.add_parser(subparsers)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the command line and return its exit status.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2

    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="recovery: %(message)s", stream=sys.stderr)
    status: int = args.handler(args)

    return status
