"""Shared helpers of the syscall-layer tests (real kernel, run as root)."""
from __future__ import annotations

import os
import struct
import subprocess

import pytest

BPFFS = "/sys/fs/bpf"


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


RET0 = insn(0xb7) + insn(0x95)            # r0 = 0; exit


def ret_imm(value: int) -> bytes:
    return insn(0xb7, imm=value) + insn(0x95)


def open_fds() -> set:
    return set(os.listdir("/proc/self/fd"))


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: bpf() map/program creation is privileged")


def ensure_bpffs() -> str:
    """Mount the BPF filesystem at /sys/fs/bpf if it is not mounted yet."""
    if not os.path.ismount(BPFFS):
        res = subprocess.run(["mount", "-t", "bpf", "bpf", BPFFS], capture_output=True)
        if res.returncode != 0:
            pytest.skip(f"bpffs not mounted and mount failed: {res.stderr.decode().strip()}")
    return BPFFS
