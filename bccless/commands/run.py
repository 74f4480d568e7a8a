"""``bccless run SCRIPT [ARGS...]``: run an unmodified BCC script on bccless.

The script runs in this interpreter with the ``bcc`` drop-in placed first on
``sys.path``, so it wins over a real BCC installed system-wide.  Exit status,
stdout and signals are the script's own.
"""
from __future__ import annotations

import argparse


def register(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser(
        "run", help="run an unmodified BCC Python script with bccless's bcc drop-in",
        description="Run a BCC tool (e.g. /usr/sbin/syscount-bpfcc) unchanged: its BPF C is "
                    "compiled once to a cached CO-RE object and loaded by bccless.")
    p.add_argument("script", help="path of the BCC Python script")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the script")
    p.set_defaults(func=_run)


def _compat_root() -> str:
    import importlib.util
    import os

    spec = importlib.util.find_spec("bcc")
    if spec is None or not spec.submodule_search_locations:
        from ..errors import BcclessError
        raise BcclessError("the bcc drop-in package is not installed with bccless")
    return os.path.dirname(list(spec.submodule_search_locations)[0])


def _run(args: argparse.Namespace) -> int:
    import os
    import runpy
    import sys

    from ..errors import BcclessError

    script = args.script
    if not os.path.isfile(script):
        raise BcclessError(f"{script}: no such script")
    root = _compat_root()
    sys.path[:] = [root, os.path.dirname(os.path.abspath(script))] + \
        [p for p in sys.path if p != root]
    for name in [m for m in sys.modules if m == "bcc" or m.startswith("bcc.")]:
        del sys.modules[name]
    sys.argv = [script] + list(args.args)
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1
    return 0
