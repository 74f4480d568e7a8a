#!/usr/bin/env python3
"""Events/s delivered into a Python callback: bccless perf buffer and ring buffer.

The event stream is fixed so other consumers can be compared on it: a child
process calls getppid() in a tight loop (N times, after a go signal); a
tracepoint program on syscalls:sys_enter_getppid, filtered to the child's
tgid, emits a 16-byte record {u64 seq, u64 tgid}.  Each backend registers a
``Backend`` with setup/poll/close; a BCC 0.26 backend (same C semantics, run
under /usr/bin/python3 with python3-bpfcc) can be added to BACKENDS.

    .venv/bin/python benchmarks/bench_events.py [-n 200000] [--runs 3] [backend ...]
"""
from __future__ import annotations

import argparse
import os
import statistics
import struct
import subprocess
import sys
import time
from typing import Callable, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "runtime"))

CHILD = ("import os, sys\nn = int(sys.argv[1])\nsys.stdin.readline()\n"
         "g = os.getppid\nfor _ in range(n):\n    g()\n")


class Stream:
    """The child process generating exactly ``n`` getppid() calls on demand."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.proc = subprocess.Popen([sys.executable, "-S", "-c", CHILD, str(n)],
                                     stdin=subprocess.PIPE)

    def start(self) -> None:
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def running(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


class BcclessBackend:
    """Loads the emitter with bccless's syscall layer and consumes with bccless.events."""

    def __init__(self, ringbuf: bool, wakeup_events: int = 1) -> None:
        self.ringbuf = ringbuf
        self.wakeup_events = wakeup_events

    def run(self, stream: Stream) -> Dict[str, float]:
        import asm_helpers as A
        from bccless.attach import tracepoint
        from bccless.sys import bpf, perf
        from bccless.sys import bpf_consts as C

        counter = bpf.map_create(C.BPF_MAP_TYPE_ARRAY, 4, 8, 1)
        if self.ringbuf:
            out = bpf.map_create(C.BPF_MAP_TYPE_RINGBUF, 0, 0, 16 << 20)
        else:
            out = bpf.map_create(C.BPF_MAP_TYPE_PERF_EVENT_ARRAY, 4, 4,
                                 max(perf.possible_cpus()) + 1)
        prog, _ = bpf.prog_load(C.BPF_PROG_TYPE_TRACEPOINT,
                                A.counter_to_buffer(counter, out, self.ringbuf,
                                                    tgid_filter=stream.proc.pid), "GPL")
        state = {"n": 0, "lost": 0, "last": 0}
        unpack = struct.Struct("<Q").unpack_from

        def on_event(*args) -> None:   # (cpu, data) for perf, (data,) for ring buffers
            state["n"] += 1
            state["last"] = unpack(args[-1])[0]

        if self.ringbuf:
            from bccless.events.ringbuf import RingBuf
            consumer = RingBuf(out, on_event)
        else:
            from bccless.events.perfbuf import PerfBuffer

            def on_lost(count: int) -> None:
                state["lost"] += count
            consumer = PerfBuffer(out, on_event, lost_callback=on_lost, page_cnt=256,
                                  wakeup_events=self.wakeup_events)
        link = tracepoint.attach_tracepoint(prog, "syscalls:sys_enter_getppid")
        try:
            t0 = time.perf_counter()
            stream.start()
            while state["n"] + state["lost"] < stream.n:
                if not consumer.poll(100) and not stream.running():
                    consumer.consume()
                    break
            elapsed = time.perf_counter() - t0
        finally:
            link.close()
            consumer.close()
            for fd in (prog, out, counter):
                os.close(fd)
        return {"events": state["n"], "lost": state["lost"], "seconds": elapsed,
                "events_per_s": state["n"] / elapsed}


# bccless-perf uses wakeup_events=1 like BCC's open_perf_buffer default: one wakeup
# (irq_work + epoll return) per event dominates; -w64 shows the consumer's own speed.
BACKENDS: Dict[str, Callable[[], object]] = {
    "bccless-perf": lambda: BcclessBackend(ringbuf=False),
    "bccless-perf-w64": lambda: BcclessBackend(ringbuf=False, wakeup_events=64),
    "bccless-ringbuf": lambda: BcclessBackend(ringbuf=True),
}


def main(argv: List[str] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=200_000, help="events per run")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("backends", nargs="*", default=list(BACKENDS))
    args = ap.parse_args(argv)
    for name in args.backends:
        results = []
        for _ in range(args.runs):
            stream = Stream(args.n)
            try:
                results.append(BACKENDS[name]().run(stream))
            finally:
                stream.close()
        rate = statistics.median(r["events_per_s"] for r in results)
        lost = max(r["lost"] for r in results)
        got = min(r["events"] for r in results)
        print(f"{name:<16} {rate / 1e3:8.0f} k events/s  (median of {args.runs}; "
              f"min delivered {got}/{args.n}, max lost {lost})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
