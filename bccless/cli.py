"""The ``bccless`` command line.

Each subcommand lives in ``bccless.commands.<name>`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a handler
``(args) -> int``.  Command modules import heavy dependencies inside their
handlers only, so ``bccless --help`` and the fast paths stay cheap.  Only the
module of the command being run is imported (all of them for ``--help`` or
an unknown command).  A command that sets ``lazy_logging=True`` as a parser
default is run without importing :mod:`logging` unless ``-v`` is given:
what it logs at WARNING then reaches stderr without the ``bccless:`` prefix.
A command module may also offer ``quick_parse(argv)``, which recognises its
most common plain command lines without argparse (whose import and parser
construction cost more than such a command's own work) and returns None for
anything else.
"""
from __future__ import annotations

import importlib
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

from .errors import BcclessError

COMMAND_MODULES = ("btf", "object", "doctor", "cache", "translate", "run")


def _command_of(argv: list[str]) -> str | None:
    """The subcommand named on the command line (the first word that is not an
    option: the top-level options take no value), if it is a known one and no
    top-level help is asked for before it."""
    for word in argv:
        if word in ("-h", "--help"):
            return None
        if not word.startswith("-"):
            return word if word in COMMAND_MODULES else None
    return None


def _quick_args(argv: list[str]):
    """The named command's ``quick_parse(argv)``, if it has one; else None."""
    command = _command_of(argv)
    if command is None:
        return None
    quick = getattr(importlib.import_module(f"bccless.commands.{command}"), "quick_parse", None)
    return quick(argv) if quick is not None else None


def build_parser(argv: list[str] | None = None) -> "argparse.ArgumentParser":
    """The parser; with ``argv``, only the subcommand it names is registered."""
    import argparse
    parser = argparse.ArgumentParser(
        prog="bccless",
        description="Compile BCC tools once to CO-RE objects, cache them, and load them "
                    "with a pure-Python CO-RE loader on any kernel with BTF.")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log more (-v: info, -vv: debug) to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    command = _command_of(argv) if argv is not None else None
    for name in (command,) if command else COMMAND_MODULES:
        try:
            module = importlib.import_module(f"bccless.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"bccless.commands.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    parser = None
    args = _quick_args(words)
    if args is None:
        parser = build_parser(words)
        args = parser.parse_args(words)
    if args.verbose or not getattr(args, "lazy_logging", False):
        import logging
        level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
        logging.basicConfig(level=level, format="bccless: %(levelname)s: %(message)s")
    if not getattr(args, "func", None):
        assert parser is not None   # quick_parse always names a handler
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except BcclessError as exc:
        print(f"bccless: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
