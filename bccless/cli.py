"""The ``bccless`` command line.

Each subcommand lives in ``bccless.commands.<name>`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a handler
``(args) -> int``.  Command modules import heavy dependencies inside their
handlers only, so ``bccless --help`` and the fast paths stay cheap.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import List, Optional

from .errors import BcclessError

COMMAND_MODULES = ("btf", "object", "doctor", "cache", "translate", "run")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bccless",
        description="Compile BCC tools once to CO-RE objects, cache them, and load them "
                    "with a pure-Python CO-RE loader on any kernel with BTF.")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log more (-v: info, -vv: debug) to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"bccless.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"bccless.commands.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="bccless: %(levelname)s: %(message)s")
    if not getattr(args, "func", None):
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
