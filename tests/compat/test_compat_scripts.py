"""BCC-style programs run through the ``bcc`` drop-in against the real kernel.

Each test builds a BPF object from BCC C text (translated and compiled once,
cached under a per-test cache root), triggers real events from this process
and checks the values the kernel programs recorded.
"""
import ctypes as ct
import os
import time

import pytest

from bcc import BPF

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="loading BPF programs needs root")


COUNT_TEXT = r"""
BPF_HASH(counts, u32, u64);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    counts.increment(pid);
    return 0;
}
"""


def test_tracepoint_probe_counts_this_process():
    with BPF(text=COUNT_TEXT) as b:
        for _ in range(7):
            os.getppid()
        counts = b["counts"]
        leaf = counts[counts.Key(os.getpid())]
        assert leaf.value == 7
        assert b.num_open_tracepoints() == 1
        assert any(k.value == os.getpid() for k in counts.keys())


HIST_TEXT = r"""
BPF_HISTOGRAM(dist);
BPF_ARRAY(target, u32, 1);
TRACEPOINT_PROBE(syscalls, sys_enter_getpriority) {
    u32 zero = 0;
    u32 *t = target.lookup(&zero);
    if (!t || *t != (bpf_get_current_pid_tgid() >> 32))
        return 0;
    dist.increment(bpf_log2l(args->who));
    return 0;
}
"""


def test_histogram_slots_and_output(capsys):
    with BPF(text=HIST_TEXT) as b:
        b["target"][0] = ct.c_uint(os.getpid())
        whos = [1, 3, 5, 6, 100, 1000, 1000]
        for who in whos:
            try:
                os.getpriority(os.PRIO_PROCESS, who)
            except OSError:
                pass
        dist = b["dist"]
        slots = {k.value: v.value for k, v in dist.items() if v.value}
        # bpf_log2l(v) is floor(log2(v)) + 1 for v > 0
        assert slots == {1: 1, 2: 1, 3: 2, 7: 1, 10: 2}
        dist.print_log2_hist("who")
        out = capsys.readouterr().out
        assert "     who                 : count     distribution" in out
        assert "         4 -> 7          : 2        |****************************************|" in out


PERF_TEXT = r"""
#include <linux/sched.h>
struct data_t {
    u32 pid;
    u64 ts;
    char comm[TASK_COMM_LEN];
};
BPF_PERF_OUTPUT(events);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    struct data_t data = {};
    data.pid = bpf_get_current_pid_tgid() >> 32;
    data.ts = bpf_ktime_get_ns();
    bpf_get_current_comm(&data.comm, sizeof(data.comm));
    events.perf_submit(args, &data, sizeof(data));
    return 0;
}
"""


def test_perf_output_events_decode():
    seen = []
    with BPF(text=PERF_TEXT) as b:
        def handle(cpu, data, size):
            event = b["events"].event(data)
            if event.pid == os.getpid():
                seen.append((event.pid, event.ts, bytes(event.comm)))
        b["events"].open_perf_buffer(handle)
        for _ in range(5):
            os.getppid()
        deadline = time.time() + 5
        while len(seen) < 5 and time.time() < deadline:
            b.perf_buffer_poll(timeout=100)
    assert len(seen) == 5
    comm = open("/proc/self/comm", "rb").read().strip()
    assert all(s[2] == comm[:15] for s in seen)
    assert [s[1] for s in seen] == sorted(s[1] for s in seen)


RING_TEXT = r"""
struct event { u32 pid; u32 seq; };
BPF_RINGBUF_OUTPUT(ring, 8);
BPF_ARRAY(seqno, u32, 1);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 zero = 0;
    u32 *s = seqno.lookup(&zero);
    if (!s)
        return 0;
    struct event e = {};
    e.pid = bpf_get_current_pid_tgid() >> 32;
    e.seq = *s;
    *s += 1;
    ring.ringbuf_output(&e, sizeof(e), 0);
    return 0;
}
"""


def test_ringbuf_output_in_order():
    got = []
    with BPF(text=RING_TEXT) as b:
        def handle(ctx, data, size):
            e = b["ring"].event(data)
            if e.pid == os.getpid():
                got.append(e.seq)
        b["ring"].open_ring_buffer(handle)
        for _ in range(10):
            os.getppid()
        b.ring_buffer_consume()
    assert len(got) == 10
    assert got == sorted(got)


def _prog_ids():
    from bccless.sys import bpf
    ids, cur = set(), 0
    while True:
        cur = bpf.get_next_id("prog", cur)
        if cur is None:
            return ids
        ids.add(cur)


def test_cleanup_closes_programs_and_fds():
    BPF(text=COUNT_TEXT).cleanup()  # warm process-wide caches (kernel BTF, probes)
    fds_before = set(os.listdir("/proc/self/fd"))
    progs_before = _prog_ids()
    for _ in range(3):
        b = BPF(text=COUNT_TEXT)
        os.getppid()
        assert _prog_ids() - progs_before
        b.cleanup()
    assert set(os.listdir("/proc/self/fd")) == fds_before
    assert not (_prog_ids() - progs_before)


def test_kprobe_attach_reports_missing_kernel_support():
    text = "int kprobe__do_nanosleep(struct pt_regs *ctx) { return 0; }"
    with pytest.raises(Exception) as info:
        BPF(text=text)
    assert "CONFIG_KPROBES" in str(info.value)
