#!/usr/bin/env python3
"""BCC-style tool: who is my parent, seen from a tracepoint through task_struct.

The reference workload of benchmarks/bench_startup.py (the program measured in
/work/shared/docs/this-machine.md): a syscalls tracepoint program with a
BPF_HASH, a BPF_PERF_OUTPUT, a read of
``((struct task_struct *)bpf_get_current_task())->real_parent->tgid`` and
kernel headers included.  It builds, attaches, triggers a few getppid()
calls, reads the hash and the perf buffer, prints one line and exits.  The
pid filter lives in a map, not in the text, so that every run compiles the
same source (a text templated per pid is a new program for any cache).

The parent tgid the kernel program read is compared with os.getppid(): with
headers that do not match the running kernel (BCC on this host) the offset of
``real_parent`` is wrong and the comparison says so.
"""
import ctypes as ct
import os

from bcc import BPF

TEXT = r"""
#include <uapi/linux/ptrace.h>
#include <linux/sched.h>

struct event_t {
    u32 pid;
    u32 ppid;
    char comm[TASK_COMM_LEN];
};

BPF_HASH(calls, u32, u64);
BPF_ARRAY(target, u32, 1);
BPF_PERF_OUTPUT(events);

TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 zero = 0, pid = bpf_get_current_pid_tgid() >> 32;
    u32 *want = target.lookup(&zero);
    if (!want || *want != pid)
        return 0;
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    struct event_t ev = {};
    ev.pid = pid;
    ev.ppid = task->real_parent->tgid;
    bpf_get_current_comm(&ev.comm, sizeof(ev.comm));
    calls.increment(ev.ppid);
    events.perf_submit(args, &ev, sizeof(ev));
    return 0;
}
"""

CALLS = 5


def main() -> None:
    b = BPF(text=TEXT)
    b["target"][0] = ct.c_uint(os.getpid())
    seen = []
    b["events"].open_perf_buffer(lambda cpu, data, size: seen.append(b["events"].event(data)))
    for _ in range(CALLS):
        os.getppid()
    while len(seen) < CALLS:
        b.perf_buffer_poll(timeout=1000)
    counts = {k.value: v.value for k, v in b["calls"].items()}
    ppid = seen[-1].ppid
    print("pid %d comm %s: %d events, parent tgid %d (%s), hash %s" % (
        seen[-1].pid, seen[-1].comm.decode(), len(seen), ppid,
        "correct" if ppid == os.getppid() else "WRONG, os.getppid() is %d" % os.getppid(),
        counts))


if __name__ == "__main__":
    main()
