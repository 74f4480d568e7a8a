"""Shared pieces of the feature probes: the result type and tiny encoders.

Probes must not depend on the assembler or the BTF encoder (both sit on top of
this layer and consult the probes), so instructions and BTF records are packed
here by hand, in the kernel's little-endian uapi layouts.
"""
from __future__ import annotations

import os
import struct

from bccless.sys import bpf

ENOTSUPP = 524  # kernel-internal "operation not supported"; leaks to user space


class Probe:
    """Outcome of one probe: ``bool(probe)`` says whether the feature is usable."""

    __slots__ = ("ok", "errno", "reason")

    def __init__(self, ok: bool, errno: int = 0, reason: str = "") -> None:
        self.ok = ok
        self.errno = errno
        self.reason = reason

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        if self.ok:
            return f"Probe(ok{', ' + self.reason if self.reason else ''})"
        return f"Probe(missing, errno={self.errno}, reason={self.reason!r})"


YES = Probe(True)


def failed(exc: OSError, what: str) -> Probe:
    """A negative probe result from the error that proved it (logged at debug level)."""
    import logging   # only on failures: logging is too heavy for the import path

    reason = f"{what}: {exc.strerror or exc}"
    logging.getLogger("bccless.sys.features").debug("probe failed: %s (errno %s)",
                                                    reason, exc.errno)
    return Probe(False, exc.errno or 0, reason)


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


RET0 = insn(0xb7) + insn(0x95)          # r0 = 0; exit


def call_exit(helper: int) -> bytes:
    return insn(0x85, imm=helper) + insn(0x95)   # call helper; exit


def btf_type(name_off: int, kind: int, vlen: int, size_or_type: int, kflag: int = 0) -> bytes:
    return struct.pack("<III", name_off, (kflag << 31) | (kind << 24) | vlen, size_or_type)


def btf_int(name_off: int) -> bytes:  # signed 32-bit int
    return btf_type(name_off, 1, 0, 4) + struct.pack("<I", (1 << 24) | 32)


def btf_blob(types: bytes, strs: bytes) -> bytes:
    header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strs))
    return header + types + strs


def try_btf(types: bytes, strs: bytes, what: str) -> Probe:
    try:
        fd = bpf.btf_load(btf_blob(types, strs))
    except OSError as exc:
        return failed(exc, what)
    os.close(fd)
    return YES


def try_prog(prog_type: int, insns: bytes, what: str, **kw) -> Probe:
    try:
        fd, _ = bpf.prog_load(prog_type, insns, "GPL", **kw)
    except OSError as exc:
        return failed(exc, what)
    os.close(fd)
    return YES


