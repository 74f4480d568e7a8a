"""The process's libc through cffi's ABI mode, and a raw ``syscall()``.

Importing this module loads only ``_cffi_backend`` and the pre-generated type
tables in :mod:`bccless.sys._libc` (see ``_libc_build.py``): no compiler, no C
parser.  ``libc`` is ``dlopen(NULL)``, i.e. the symbols already mapped into the
interpreter, so no library is searched for either.

Syscall numbers live here because they are per-architecture facts that every
caller of :func:`syscall` needs; only the syscalls bccless makes are listed.
"""
from __future__ import annotations

import os

from bccless.sys._libc import ffi

libc = ffi.dlopen(None)

_SYSCALL_NUMBERS = {
    # machine: (bpf, perf_event_open)
    "x86_64": (321, 298),
    "aarch64": (280, 241),
    "riscv64": (280, 241),
    "loongarch64": (280, 241),
    "s390x": (351, 331),
    "ppc64le": (361, 319),
}

_machine = os.uname().machine
try:
    NR_BPF, NR_PERF_EVENT_OPEN = _SYSCALL_NUMBERS[_machine]
except KeyError:  # pragma: no cover - depends on the host
    raise ImportError(f"bccless: no syscall numbers known for machine {_machine!r}") from None

_cast = ffi.cast


def syscall(nr: int, *args: int) -> int:
    """Call ``syscall(nr, *args)``; raise ``OSError(errno, strerror)`` on -1.

    Integer arguments are passed as C ``long`` (what the kernel reads from each
    argument register); cffi pointer objects are passed unchanged.  Hot paths do
    not use this generic form: see :mod:`bccless.sys.bpf`.
    """
    cargs = [_cast("long", a) if isinstance(a, int) else a for a in args]
    ret = libc.syscall(nr, *cargs)
    if ret == -1:
        err = ffi.errno
        raise OSError(err, os.strerror(err))
    return ret


def pin_buffer(buf) -> tuple[object, int]:
    """Export ``buf`` (e.g. a ring's mmap, read-only or not); ``(handle, address)``.

    Ring consumers hand callbacks C pointers into the ring, as libbpf does,
    instead of copying every record out.  The handle keeps the buffer
    exported, so an mmap cannot be unmapped under a pointer, until
    :func:`unpin_buffer` releases it.
    """
    handle = ffi.from_buffer(buf)
    return handle, int(_cast("uintptr_t", handle))


def unpin_buffer(handle: object) -> None:
    """Release a :func:`pin_buffer` handle, so its buffer (mmap) may be closed."""
    ffi.release(handle)
