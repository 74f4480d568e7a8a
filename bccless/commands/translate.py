"""``bccless translate FILE.c``: print the CO-RE C a BCC program becomes.

Useful to see what bccless does with a BCC tool's C text (or to take the
output as a starting point for a libbpf program).  ``--meta`` prints the
metadata stored with the compiled object instead.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys


def register(subparsers: "argparse._SubParsersAction") -> None:
    parser = subparsers.add_parser("translate", help="print the CO-RE C of a BCC C program")
    parser.add_argument("file", help="BCC C source ('-' for standard input)")
    parser.add_argument("--cflags", default="", metavar="FLAGS",
                        help="extra compiler flags, as one shell-quoted string")
    parser.add_argument("--meta", action="store_true",
                        help="print the JSON metadata (maps, programs, events) instead")
    parser.set_defaults(func=_translate)


def _translate(args: argparse.Namespace) -> int:
    from ..bcc.translate import translate
    if args.file == "-":
        text, filename = sys.stdin.read(), "<stdin>"
    else:
        with open(args.file, encoding="utf-8") as fh:
            text, filename = fh.read(), args.file
    result = translate(text, cflags=shlex.split(args.cflags), filename=filename)
    if args.meta:
        print(json.dumps(result.metadata(), indent=1))
    else:
        sys.stdout.write(result.text)
    for warning in result.warnings:
        print(f"bccless: {warning}", file=sys.stderr)
    return 0
