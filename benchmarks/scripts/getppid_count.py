#!/usr/bin/env python3
"""BCC-style tool, minimal: count this process's getppid() calls in a hash.

The small end of benchmarks/bench_startup.py: no kernel headers, one
TRACEPOINT_PROBE and one BPF_HASH, so start-up is mostly the fixed cost of
each toolchain (BCC: libbcc + clang front end; bccless: import + cache
lookup + load).  Builds, attaches, calls getppid() a few times, reads the
hash, prints one line and exits.
"""
import os

from bcc import BPF

TEXT = r"""
BPF_HASH(counts, u32, u64);

TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    counts.increment(pid);
    return 0;
}
"""

CALLS = 7


def main() -> None:
    b = BPF(text=TEXT)
    for _ in range(CALLS):
        os.getppid()
    counts = b["counts"]
    mine = counts[counts.Key(os.getpid())].value
    print("pid %d: %d getppid() calls counted (%s), %d processes in the hash" % (
        os.getpid(), mine, "correct" if mine == CALLS else "WRONG, expected %d" % CALLS,
        len(counts.items())))


if __name__ == "__main__":
    main()
