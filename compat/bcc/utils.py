"""``bcc.utils``: CPU lists, byte printing, argument helpers."""
from __future__ import annotations

import sys
import warnings
from typing import List

from bccless.sys.perf import online_cpus, possible_cpus

FILESYSTEMENCODING = sys.getfilesystemencoding()
_strict_bytes = False


def get_online_cpus() -> List[int]:
    return online_cpus()


def get_possible_cpus() -> List[int]:
    return possible_cpus()


def detect_language(candidates, pid):
    """The runtime language of ``pid`` if it is one of ``candidates``.

    Decided from the libraries the process maps, like BCC's heuristic.
    """
    markers = {"java": b"libjvm.so", "node": b"/node", "perl": b"libperl",
               "php": b"libphp", "python": b"libpython", "ruby": b"libruby"}
    try:
        with open("/proc/%d/maps" % int(pid), "rb") as f:
            maps = f.read()
        with open("/proc/%d/comm" % int(pid), "rb") as f:
            comm = f.read().strip()
    except OSError:
        return None
    for lang in candidates:
        marker = markers.get(lang)
        if marker and (marker in maps or comm.startswith(lang.encode())):
            return lang
    return None


def printb(s: bytes, file=sys.stdout, nl: int = 1) -> None:
    """Write bytes to a text stream's buffer, as BCC tools expect."""
    buf = file.buffer if hasattr(file, "buffer") else file
    buf.write(s)
    if nl:
        buf.write(b"\n")
    file.flush()


class ArgString:
    """A command-line string usable both as str and as bytes."""

    def __init__(self, arg: str) -> None:
        self.s = arg

    def __bytes__(self) -> bytes:
        return self.s.encode(FILESYSTEMENCODING)

    def __str__(self) -> str:
        return self.s


def warn_with_traceback(message, category, filename, lineno, file=None, line=None):
    import traceback

    log = file if hasattr(file, "write") else sys.stderr
    traceback.print_stack(f=sys._getframe(2), file=log)
    log.write(warnings.formatwarning(message, category, filename, lineno, line))


def _assert_is_bytes(arg):
    if arg is None:
        return arg
    if _strict_bytes:
        assert type(arg) is bytes, "not a bytes object: %r" % arg
    elif type(arg) is not bytes:
        warnings.warn("not a bytes object: %r" % arg, DeprecationWarning, 2)
        return ArgString(arg).__bytes__()
    return arg
