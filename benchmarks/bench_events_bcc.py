#!/usr/bin/env python3
"""Events/s into a Python callback through ``from bcc import BPF``: BCC 0.26 vs bccless.

One BCC C program per channel (BPF_PERF_OUTPUT or BPF_RINGBUF_OUTPUT), the
same text for both toolchains: a tracepoint on syscalls:sys_enter_getppid,
filtered to one generator process (its tgid is written to a BPF_ARRAY, so the
text never changes), submits a 16-byte {u64 ts; u32 tgid; u32 cpu} record and
counts in a BPF_ARRAY whether the submission succeeded.  The generator is a
tiny C program (built with gcc into a temporary directory) making N getppid()
syscalls on a go signal: faster than any Python consumer, so the figure is
the consumer's capacity, not the producer's.
The consumer is what real tools do: ``open_perf_buffer`` (BCC's defaults but
for ``--pages``) or ``open_ring_buffer``, ``perf_buffer_poll``/
``ring_buffer_poll``, and ``b["events"].event(data)`` plus a field read in
the callback.

Each measurement is a worker process (this file, ``--worker``) under the
toolchain's interpreter: /usr/bin/python3 imports Debian's BCC, the venv's
python imports the bccless drop-in.  events/s = delivered / (last delivery -
go); the producer's rate = N / the generator's own time for its N syscalls,
the ceiling no consumer can pass (a stream at that rate is producer-bound);
lost = failed submissions counted by the BPF program (perf buffers also
report them to lost_cb; the two agree).  Runs are interleaved across
backends; the median of ``--runs`` is reported.  Usage:

    .venv/bin/python benchmarks/bench_events_bcc.py [-n 300000] [--runs 5] [--pages 64]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from bench_startup import (SYS_PYTHON, VENV_PYTHON, bcc_problems,  # noqa: E402
                           bccless_problems, byte_compile, require)

TEXT = r"""
struct event_t {
    u64 ts;
    u32 tgid;
    u32 cpu;
};

BPF_ARRAY(target, u32, 1);
BPF_ARRAY(stats, u64, 2);       /* [0] submitted, [1] submission failed (lost) */
OUTPUT_DECL

TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 zero = 0;
    u64 id = bpf_get_current_pid_tgid();
    u32 *want = target.lookup(&zero);
    if (!want || *want != (u32)(id >> 32))
        return 0;
    struct event_t ev = {};
    ev.ts = bpf_ktime_get_ns();
    ev.tgid = id >> 32;
    ev.cpu = bpf_get_smp_processor_id();
    u32 slot = SUBMIT != 0;
    stats.increment(slot);
    return 0;
}
"""

CHANNELS = {
    "perf": ("BPF_PERF_OUTPUT(events);", "events.perf_submit(args, &ev, sizeof(ev))"),
    "ringbuf": ("BPF_RINGBUF_OUTPUT(events, PAGES);", "events.ringbuf_output(&ev, sizeof(ev), 0)"),
}

# Each backend: the interpreter that provides `bcc`, and the channel.
BACKENDS: Dict[str, tuple] = {
    "bcc-perf": (SYS_PYTHON, "perf"),
    "bccless-perf": (VENV_PYTHON, "perf"),
    "bcc-ringbuf": (SYS_PYTHON, "ringbuf"),
    "bccless-ringbuf": (VENV_PYTHON, "ringbuf"),
}

GENERATOR_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 0;
    char go[8];
    struct timespec t0, t1;
    if (!fgets(go, sizeof(go), stdin))
        return 1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < n; i++)
        syscall(SYS_getppid);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    /* the producer's own time: a consumer can never beat n / this */
    printf("%.9f\n", (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
    return 0;
}
"""


def build_generator(workdir: str) -> str:
    """Compile the syscall generator; the path of the executable."""
    src, exe = os.path.join(workdir, "gen.c"), os.path.join(workdir, "gen")
    with open(src, "w") as f:
        f.write(GENERATOR_C)
    subprocess.run(["gcc", "-O2", "-o", exe, src], check=True)
    return exe


def program_text(channel: str, pages: int) -> str:
    decl, submit = CHANNELS[channel]
    return (TEXT.replace("OUTPUT_DECL", decl.replace("PAGES", str(pages)))
            .replace("SUBMIT", submit))


def worker(channel: str, n: int, pages: int, wakeup: int, generator: str) -> Dict[str, float]:
    """Load, stream n syscalls through the channel, count what the callback saw."""
    import ctypes as ct
    from bcc import BPF

    b = BPF(text=program_text(channel, pages))
    gen = subprocess.Popen([generator, str(n)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        b["target"][0] = ct.c_uint(gen.pid)
        seen = [0, 0, 0]   # delivered, lost_cb total, last ts

        def on_perf(cpu, data, size):
            ev = b["events"].event(data)
            seen[0] += 1
            seen[2] = ev.ts

        def on_ring(ctx, data, size):
            ev = b["events"].event(data)
            seen[0] += 1
            seen[2] = ev.ts

        def on_lost(count):
            seen[1] += count

        if channel == "perf":
            b["events"].open_perf_buffer(on_perf, page_cnt=pages, lost_cb=on_lost,
                                         wakeup_events=wakeup)
            poll = b.perf_buffer_poll
        else:
            b["events"].open_ring_buffer(on_ring)
            poll = b.ring_buffer_poll
        t0 = last = time.perf_counter()
        gen.stdin.write(b"go\n")
        gen.stdin.flush()
        while True:
            before = seen[0]
            poll(100)
            if seen[0] != before:
                last = time.perf_counter()
            elif gen.poll() is not None:
                break
        stats = b["stats"]
        submitted, failed = stats[0].value, stats[1].value
        produced_in = float(gen.stdout.read() or 0)
    finally:
        gen.kill()
        gen.wait()
    elapsed = last - t0
    return {"delivered": seen[0], "lost": failed, "lost_cb": seen[1],
            "submitted": submitted, "seconds": elapsed,
            "events_per_s": seen[0] / elapsed if elapsed > 0 else 0.0,
            "produced_per_s": n / produced_in if produced_in > 0 else 0.0}


def run_worker(backend: str, args: argparse.Namespace, n: int, scratch: str,
               generator: str) -> Dict[str, float]:
    python, channel = BACKENDS[backend]
    proc = subprocess.run([python, os.path.abspath(__file__), "--worker", channel, "-n", str(n),
                           "--pages", str(args.pages), "--wakeup-events", str(args.wakeup_events),
                           "--generator", generator], capture_output=True, text=True,
                          env=dict(os.environ, BCCLESS_CACHE=os.path.join(scratch, "cache")))
    if proc.returncode != 0:
        raise RuntimeError(f"{backend} worker exited {proc.returncode}:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=300_000, help="getppid() calls per run")
    ap.add_argument("--runs", type=int, default=5, help="runs per backend (median reported)")
    ap.add_argument("--pages", type=int, default=4096,
                    help="perf buffer page_cnt per CPU, and ring buffer pages (power of two)")
    ap.add_argument("--wakeup-events", type=int, default=1,
                    help="perf buffer wakeup_events (BCC's default 1: one wakeup per event)")
    ap.add_argument("--worker", choices=sorted(CHANNELS), help=argparse.SUPPRESS)
    ap.add_argument("--generator", help=argparse.SUPPRESS)
    ap.add_argument("backends", nargs="*", help=f"any of {', '.join(BACKENDS)} (default: all)")
    args = ap.parse_args(argv)
    unknown = sorted(set(args.backends) - set(BACKENDS))
    if unknown:
        ap.error(f"unknown backend(s) {', '.join(unknown)}; known: {', '.join(BACKENDS)}")
    if args.pages < 1 or args.pages & (args.pages - 1):
        ap.error("--pages must be a power of two")
    if args.worker:
        print(json.dumps(worker(args.worker, args.n, args.pages, args.wakeup_events,
                                      args.generator)))
        return 0
    require(bcc_problems() + bccless_problems()
            + ([] if shutil.which("gcc") else ["gcc missing (builds the generator): "
                                               "apt-get install -y gcc"]))
    byte_compile()
    backends = args.backends or list(BACKENDS)
    results: Dict[str, List[Dict[str, float]]] = {b: [] for b in backends}
    with tempfile.TemporaryDirectory(prefix="bccless-bench-") as scratch:
        os.mkdir(os.path.join(scratch, "cache"), 0o700)
        generator = build_generator(scratch)
        for backend in backends:    # unmeasured: compiles bccless's cache, warms BCC's files
            run_worker(backend, args, min(args.n, 1000), scratch, generator)
        for _ in range(args.runs):
            for backend in backends:
                results[backend].append(run_worker(backend, args, args.n, scratch, generator))
    print(f"events/s into a Python callback, N={args.n} getppid() calls, pages={args.pages}, "
          f"perf wakeup_events={args.wakeup_events}, median of {args.runs}\n")
    print("| backend | events/s | producer's rate | delivered | lost (min - max) | bccless / bcc |")
    print("|---|---:|---:|---:|---:|---:|")
    rates = {b: statistics.median(r["events_per_s"] for r in rs) for b, rs in results.items()}
    for backend, rs in results.items():
        lost = [r["lost"] for r in rs]
        peer = backend.replace("bccless-", "bcc-")
        ratio = (f"{rates[backend] / rates[peer]:.2f}x"
                 if backend.startswith("bccless-") and peer in rates else "")
        delivered = statistics.median(r["delivered"] for r in rs)
        produced = statistics.median(r["produced_per_s"] for r in rs)
        print(f"| {backend} | {rates[backend] / 1e3:.0f} k | {produced / 1e3:.0f} k | {delivered:.0f} | "
              f"{min(lost)} - {max(lost)} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
