"""Shared fixtures for runtime tests: root check, maps, programs loaded from asm_helpers."""
from __future__ import annotations

import os
import struct
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))


def _root_reason() -> str:
    if os.geteuid() != 0:
        return "runtime tests load BPF programs: needs root (CAP_BPF+CAP_PERFMON)"
    return ""


@pytest.fixture(autouse=True)
def _need_root():
    reason = _root_reason()
    if reason:
        pytest.skip(reason)


class Kernel:
    """Creates maps and programs for one test and closes them afterwards."""

    def __init__(self) -> None:
        self.fds = []

    def array(self, entries: int = 4, value_size: int = 8) -> int:
        from bccless.sys import bpf, bpf_consts as c
        fd = bpf.map_create(c.BPF_MAP_TYPE_ARRAY, 4, value_size, entries, name="t_array")
        self.fds.append(fd)
        return fd

    def map(self, map_type: int, key_size: int, value_size: int, entries: int) -> int:
        from bccless.sys import bpf
        fd = bpf.map_create(map_type, key_size, value_size, entries, name="t_map")
        self.fds.append(fd)
        return fd

    def prog(self, prog_type: int, insns: bytes, **kw) -> int:
        from bccless.sys import bpf
        fd, _log = bpf.prog_load(prog_type, insns, "GPL", name=kw.pop("name", "t_prog"), **kw)
        self.fds.append(fd)
        return fd

    @staticmethod
    def read_u64(map_fd: int, slot: int = 0) -> int:
        from bccless.sys import bpf
        return struct.unpack("<Q", bpf.map_lookup_elem(map_fd, struct.pack("<I", slot), 8))[0]

    def close(self) -> None:
        for fd in reversed(self.fds):
            os.close(fd)
        self.fds.clear()


@pytest.fixture
def kernel():
    k = Kernel()
    yield k
    k.close()


def open_fds() -> set:
    return set(os.listdir("/proc/self/fd"))
