"""Small helpers shared by the loader tests."""
from __future__ import annotations

import os


def u32(n: int) -> bytes:
    return n.to_bytes(4, "little")


def u64(raw: bytes) -> int:
    return int.from_bytes(raw, "little")


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def prog_ids() -> set:
    """Ids of every BPF program in the kernel."""
    from bccless.sys import bpf

    ids, cur = set(), 0
    while True:
        cur = bpf.get_next_id("prog", cur)
        if cur is None:
            return ids
        ids.add(cur)
