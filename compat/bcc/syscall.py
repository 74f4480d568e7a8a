"""Syscall number <-> name table, as ``bcc.syscall`` offers it.

BCC embeds a table and prefers ``ausyscall --dump`` when present; bccless
ships the x86-64 numbers as data (``bccless/data/syscalls_x86_64.tsv``) and
honours ausyscall the same way, so names match what BCC prints.
"""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
from typing import Dict

_DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                     "bccless", "data", "syscalls_x86_64.tsv")


def _parse_syscall(line: bytes):
    parts = line.split()
    return int(parts[0]), parts[1].strip()


def _load() -> Dict[int, bytes]:
    if shutil.which("ausyscall"):
        out = subprocess.run(["ausyscall", "--dump"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, check=False).stdout
        table = dict(_parse_syscall(line) for line in out.splitlines()[1:] if line.strip())
        if table:
            return table
    if platform.machine() != "x86_64":
        raise Exception("ausyscall: command not found")
    from importlib import resources
    try:
        text = resources.files("bccless").joinpath("data/syscalls_x86_64.tsv").read_bytes()
    except (AttributeError, FileNotFoundError):
        with open(_DATA, "rb") as f:
            text = f.read()
    return dict(_parse_syscall(line) for line in text.splitlines() if line.strip())


syscalls: Dict[int, bytes] = _load()


def syscall_name(syscall_num: int) -> bytes:
    """Name of a syscall number, or ``b"[unknown: N]"`` as BCC prints it."""
    return syscalls.get(syscall_num, b"[unknown: %d]" % syscall_num)
