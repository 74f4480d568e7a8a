#!/usr/bin/env python3
"""Whole-process cost of ``bccless btf`` against the interpreter and bpftool.

Each command runs ``--runs`` times (default 7) as a subprocess with output to
/dev/null; the table gives the median wall time (time.perf_counter around the
run) and the peak RSS of the child (wait4's rusage).  Goal: ``btf type``
within 2x of a bare ``python3 -c pass``.  Each command runs once untimed
first: the first use of the kernel's BTF caches its index on disk
(bccless.btf.indexcache), as on any host after the first run.

    .venv/bin/python benchmarks/bench_btf.py [--runs 7] [--type task_struct]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from typing import List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
BCCLESS = os.path.join(HERE, "..", ".venv", "bin", "bccless")
VMLINUX = "/sys/kernel/btf/vmlinux"


def measure(argv: List[str], runs: int) -> Tuple[float, float]:
    """(median wall seconds, max peak RSS in MiB) of ``runs`` runs of argv."""
    walls: List[float] = []
    peak = 0
    with open(os.devnull, "wb") as null:
        subprocess.run(argv, stdout=null, stderr=subprocess.DEVNULL)
        for _ in range(runs):
            start = time.perf_counter()
            proc = subprocess.Popen(argv, stdout=null, stderr=subprocess.PIPE)
            _, status, usage = os.wait4(proc.pid, 0)
            walls.append(time.perf_counter() - start)
            proc.returncode = os.waitstatus_to_exitcode(status)
            err = proc.stderr.read().decode() if proc.stderr else ""
            if proc.stderr:
                proc.stderr.close()
            if proc.returncode:
                raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {err}")
            peak = max(peak, usage.ru_maxrss)
    return statistics.median(walls), peak / 1024


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--type", default="task_struct", help="type for `bccless btf type`")
    args = ap.parse_args(argv)

    python = sys.executable
    rows = [
        ("python3 -c pass", [python, "-c", "pass"]),
        (f"bccless btf type {args.type}", [BCCLESS, "btf", "type", args.type]),
        ("bccless btf dump --format c", [BCCLESS, "btf", "dump", "--format", "c"]),
    ]
    if shutil.which("bpftool"):
        rows.append(("bpftool btf dump ... format c",
                     ["bpftool", "btf", "dump", "file", VMLINUX, "format", "c"]))
    results = [(label, *measure(cmd, args.runs)) for label, cmd in rows]
    base = results[0][1]
    print(f"{'command':<40} {'median wall':>12} {'vs python':>10} {'peak RSS':>10}")
    for label, wall, rss in results:
        print(f"{label:<40} {wall * 1000:>9.1f} ms {wall / base:>9.1f}x {rss:>7.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
