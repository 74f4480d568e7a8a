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


class StrcmpRewrite:
    """``STRCMP("literal", expr)`` in trace/argdist filters, made into BPF C.

    Each occurrence becomes a call of a generated ``streq_<probeid>`` helper
    that reads ``expr`` (a pointer) with a probe read and compares the bytes of
    the literal (without its NUL) against it, so it is a prefix match, as in
    BCC's tools.
    """

    _TEMPLATE = """
static inline bool %(name)s(char const *ignored, uintptr_t str) {
        char needle[] = %(literal)s;
        char haystack[sizeof(needle)];
        %(read)s(&haystack, sizeof(haystack), (void *)str);
        for (int i = 0; i < sizeof(needle) - 1; ++i) {
                if (needle[i] != haystack[i]) {
                        return false;
                }
        }
        return true;
}
        """

    @staticmethod
    def _generate_streq_function(string, probe_read_func, streq_functions, probeid):
        fname = "streq_%d" % probeid
        streq_functions += StrcmpRewrite._TEMPLATE % {
            "name": fname, "literal": string, "read": probe_read_func}
        return fname, streq_functions

    @staticmethod
    def rewrite_expr(expr, bin_cmp, is_user, probe_user_list, streq_functions, probeid):
        """Rewrite every STRCMP in ``expr``; returns the new expr, helpers and next id.

        ``bin_cmp`` means the literal is given without quotes (argdist's form);
        user-space pointers (``is_user`` or an argument named in
        ``probe_user_list``) are read with ``bpf_probe_read_user``."""
        import re
        if bin_cmp:
            pattern = r'STRCMP\("([^"]+)\",(.+?)\)'
        else:
            pattern = r'STRCMP\(("[^"]+\"),(.+?)\)'
        for match in re.finditer(pattern, expr):
            read = "bpf_probe_read"
            if is_user or match.group(2).strip() in probe_user_list:
                read = "bpf_probe_read_user"
            fname, streq_functions = StrcmpRewrite._generate_streq_function(
                match.group(1), read, streq_functions, probeid)
            probeid += 1
            expr = expr.replace("STRCMP", fname, 1)
        return {"expr": expr, "streq_functions": streq_functions, "probeid": probeid}
