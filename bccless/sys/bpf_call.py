"""The one place where ``bpf(2)`` is entered, plus the error and fd conventions.

Every command wrapper packs a cffi attr struct and calls :func:`sys_bpf` (or
the raw ``_sys_bpf`` pointer on hot paths).  Failures become ``OSError`` with
the errno and, as ``filename``, the command name or path, so a message reads
``[Errno 1] Operation not permitted: 'bpf(BPF_PROG_LOAD)'`` and the usual
errno subclasses (``PermissionError``, ``FileNotFoundError``) still apply.
"""
from __future__ import annotations

import os

from bccless.sys.ffi import NR_BPF, ffi, libc

# glibc's syscall() is variadic, but it is a register shuffle written in
# assembly that never consults the variadic-call conventions (%al on x86-64;
# aarch64 passes variadic and named integer arguments alike).  Calling it
# through a fixed prototype avoids cffi's per-call variadic type building,
# which costs about a quarter of a map lookup.
_sys_bpf = ffi.cast("long(*)(long, long, void *, long)", libc.syscall)

_CMD_NAMES = (
    "BPF_MAP_CREATE", "BPF_MAP_LOOKUP_ELEM", "BPF_MAP_UPDATE_ELEM", "BPF_MAP_DELETE_ELEM",
    "BPF_MAP_GET_NEXT_KEY", "BPF_PROG_LOAD", "BPF_OBJ_PIN", "BPF_OBJ_GET", "BPF_PROG_ATTACH",
    "BPF_PROG_DETACH", "BPF_PROG_TEST_RUN", "BPF_PROG_GET_NEXT_ID", "BPF_MAP_GET_NEXT_ID",
    "BPF_PROG_GET_FD_BY_ID", "BPF_MAP_GET_FD_BY_ID", "BPF_OBJ_GET_INFO_BY_FD",
    "BPF_PROG_QUERY", "BPF_RAW_TRACEPOINT_OPEN", "BPF_BTF_LOAD", "BPF_BTF_GET_FD_BY_ID",
    "BPF_TASK_FD_QUERY", "BPF_MAP_LOOKUP_AND_DELETE_ELEM", "BPF_MAP_FREEZE",
    "BPF_BTF_GET_NEXT_ID", "BPF_MAP_LOOKUP_BATCH", "BPF_MAP_LOOKUP_AND_DELETE_BATCH",
    "BPF_MAP_UPDATE_BATCH", "BPF_MAP_DELETE_BATCH", "BPF_LINK_CREATE", "BPF_LINK_UPDATE",
    "BPF_LINK_GET_FD_BY_ID", "BPF_LINK_GET_NEXT_ID", "BPF_ENABLE_STATS", "BPF_ITER_CREATE",
    "BPF_LINK_DETACH", "BPF_PROG_BIND_MAP",
)


def bpf_error(err: int, cmd: int, where: str = "") -> OSError:
    """The OSError for a failed command; ``where`` (a path) replaces the command name."""
    name = where or (f"bpf({_CMD_NAMES[cmd]})" if cmd < len(_CMD_NAMES) else f"bpf(cmd {cmd})")
    return OSError(err, os.strerror(err), name)


def good_fd(fd: int) -> int:
    """Move a new fd off 0-2, as libbpf does.

    If the process started with stdin closed, the kernel hands out fd 0 for a
    map, and 0 means "no fd" in many attr fields (inner_map_fd, btf_fd, ...).
    The duplicate keeps O_CLOEXEC like every fd the bpf() syscall returns.
    """
    if fd >= 3:
        return fd
    import fcntl

    try:
        return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    finally:
        os.close(fd)


def sys_bpf(cmd: int, attr, size: int, where: str = "") -> int:
    """Issue ``bpf(cmd, attr, size)``; raise OSError on failure, return the result."""
    ret = _sys_bpf(NR_BPF, cmd, attr, size)
    if ret < 0:
        raise bpf_error(ffi.errno, cmd, where)
    return ret


def sys_bpf_fd(cmd: int, attr, size: int, where: str = "") -> int:
    """Like :func:`sys_bpf` for commands that return a new fd (owned by the caller)."""
    ret = _sys_bpf(NR_BPF, cmd, attr, size)
    if ret < 0:
        raise bpf_error(ffi.errno, cmd, where)
    return ret if ret >= 3 else good_fd(ret)


def obj_name(name: str) -> bytes:
    """A kernel object name: at most BPF_OBJ_NAME_LEN - 1 bytes, NUL added by the struct."""
    return name.encode()[:15]
