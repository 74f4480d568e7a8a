"""Output channels: histograms (text compared with real BCC 0.26), perf and ring
buffer events with nested types, and bpf_trace_printk through trace_pipe."""
import ctypes as ct
import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

from bcc import BPF

from .conftest import wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="loading BPF programs needs root")

REAL_BCC = "/usr/lib/python3/dist-packages/bcc/table.py"

HIST_TEXT = r"""
struct hkey { u32 bucket; u64 slot; };
BPF_HISTOGRAM(log2s, struct hkey);
BPF_HISTOGRAM(lin, int, 32);
TRACEPOINT_PROBE(syscalls, sys_enter_getpriority) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    struct hkey k = {};
    k.bucket = args->which;
    k.slot = bpf_log2l(args->who);
    log2s.increment(k);
    lin.increment((int)(args->who % 20));
    return 0;
}
"""

# Real BCC's own print_*_hist, on a table object whose items() are given.
_REAL_RUNNER = r"""
import ctypes as ct, json, sys
from bcc.table import HashTable
spec = json.load(sys.stdin)

class Key(ct.Structure):
    _pack_ = 1
    _fields_ = [("bucket", ct.c_uint), ("__pad_1", ct.c_char * 4), ("slot", ct.c_ulonglong)]

class Table(HashTable):
    def __init__(self, key, items):
        self.Key, self._items = key, items
    def items(self):
        return self._items

if spec["kind"] == "struct":
    items = [(Key(bucket=k, slot=slot), ct.c_ulonglong(v)) for k, slot, v in spec["items"]]
    Table(Key, items).print_log2_hist("usecs", section_header="which",
                                      section_print_fn=lambda b: "<%d>" % b)
    Table(Key, items).print_log2_hist("usecs", strip_leading_zero=True)
else:
    items = [(ct.c_int(k), ct.c_ulonglong(v)) for k, v in spec["items"]]
    Table(ct.c_int, items).print_linear_hist("mod20")
    Table(ct.c_int, items).print_linear_hist("mod20", strip_leading_zero=True)
"""


def _real_bcc(spec) -> str:
    return subprocess.run(["/usr/bin/python3", "-c", _REAL_RUNNER], input=json.dumps(spec),
                          capture_output=True, text=True, check=True).stdout


@pytest.mark.skipif(not os.path.exists(REAL_BCC), reason="real BCC (python3-bpfcc) is not installed")
def test_histograms_render_like_real_bcc(capsys):
    whos = [1, 2, 3, 5, 9, 17, 40, 100, 300, 1000, 1001, 5000, 123456]
    with BPF(text=HIST_TEXT, cflags=["-DTARGET=%d" % os.getpid()]) as b:
        for which in (os.PRIO_PROCESS, os.PRIO_PGRP):
            for who in whos[which::1 + which]:
                try:
                    os.getpriority(which, who)
                except OSError:
                    pass
        log2s, lin = b["log2s"], b["lin"]
        # the key shape the struct-keyed histogram code relies on
        assert [f[0] for f in log2s.Key._fields_] == ["bucket", "__pad_1", "slot"]
        items = [(k.bucket, k.slot, v.value) for k, v in log2s.items()]
        expected = {}
        for which in (os.PRIO_PROCESS, os.PRIO_PGRP):
            for who in whos[which::1 + which]:
                slot = who.bit_length()          # bpf_log2l(v) == floor(log2(v)) + 1
                expected[(which, slot)] = expected.get((which, slot), 0) + 1
        assert {(k, slot): v for k, slot, v in items} == expected
        log2s.print_log2_hist("usecs", section_header="which",
                              section_print_fn=lambda bucket: "<%d>" % bucket)
        log2s.print_log2_hist("usecs", strip_leading_zero=True)
        ours_log2 = capsys.readouterr().out
        lin_items = [(k.value, v.value) for k, v in lin.items() if v.value]
        lin.print_linear_hist("mod20")
        lin.print_linear_hist("mod20", strip_leading_zero=True)
        ours_lin = capsys.readouterr().out
    expected_lin = {}
    for which in (os.PRIO_PROCESS, os.PRIO_PGRP):
        for who in whos[which::1 + which]:
            expected_lin[who % 20] = expected_lin.get(who % 20, 0) + 1
    assert dict(lin_items) == expected_lin
    # real BCC renders the same items, in the same (kernel hash) order
    real_log2 = _real_bcc({"kind": "struct", "items": items})
    assert ours_log2 == real_log2
    assert "\nwhich = <0>\n" in ours_log2 and "\nwhich = <1>\n" in ours_log2
    assert ours_lin == _real_bcc({"kind": "linear", "items": lin_items})
    assert "        0          : %-8d |****************************************|" % \
        expected_lin[0] in ours_lin                           # the largest row


EVENT_TEXT = r"""
struct inner { u16 a; u8 tag[3]; };
union num { u32 u; int s; char c[4]; };
struct data_t {
    u32 pid;
    struct inner in;
    struct inner arr[2];
    union num n;
    u64 ts[2];
    char name[8];
};
BPF_PERF_OUTPUT(events);
BPF_RINGBUF_OUTPUT(ring, 4);
BPF_ARRAY(seq, u32, 1);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != TARGET)
        return 0;
    struct data_t d = {};
    d.pid = pid;
    d.in.a = 0x1234;
    d.in.tag[0] = 'x';
    d.in.tag[2] = 'z';
    d.arr[0].a = 1;
    d.arr[1].a = 2;
    d.arr[1].tag[1] = 7;
    d.n.s = -5;
    d.ts[0] = 11;
    d.ts[1] = 22;
    __builtin_memcpy(d.name, "hello", 6);
    events.perf_submit(args, &d, sizeof(d));

    u32 zero = 0;
    u32 *s = seq.lookup(&zero);
    if (!s)
        return 0;
    u32 n = *s;
    *s = n + 1;
    struct data_t *r = ring.ringbuf_reserve(sizeof(struct data_t));
    if (!r)
        return 0;
    r->pid = pid;
    r->n.u = 0xdeadbe00 + n;
    r->ts[1] = n;
    if (n % 2)
        ring.ringbuf_discard(r, 0);      /* odd sequence numbers never arrive */
    else
        ring.ringbuf_submit(r, 0);
    return 0;
}
"""


def test_event_decodes_nested_struct_array_union():
    """bccless's event() understands nested structs, arrays of them and unions;
    BCC's rejects such types (it only decodes flat structs)."""
    with BPF(text=EVENT_TEXT, cflags=["-DTARGET=%d" % os.getpid()]) as b:
        perf, ring = [], []

        def on_perf(cpu, data, size):
            e = b["events"].event(data)
            inner = getattr(e, "in")
            perf.append((size >= ct.sizeof(e), e.pid, inner.a, bytes(inner.tag),
                         [x.a for x in e.arr], e.arr[1].tag[1], e.n.s, e.n.u, list(e.ts),
                         e.name))

        def on_ring(ctx, data, size):
            e = b["ring"].event(data)
            ring.append((ctx, size, e.pid, e.n.u, e.ts[1]))

        b["events"].open_perf_buffer(on_perf)
        b["ring"].open_ring_buffer(on_ring, ctx=17)
        for _ in range(4):
            os.getppid()
        wait_for(lambda: len(perf) == 4, step=lambda: b.perf_buffer_poll(timeout=100))
        b.ring_buffer_poll(timeout=100)
        b.ring_buffer_consume()
    pid = os.getpid()
    assert perf == [(True, pid, 0x1234, b"x\0z", [1, 2], 7, -5, 0xfffffffb, [11, 22],
                     b"hello")] * 4
    size = 56
    assert ring == [(17, size, pid, 0xdeadbe00, 0), (17, size, pid, 0xdeadbe02, 2)]


TRACE_TEXT = r"""
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    bpf_trace_printk("bccless-marker-%d value=%d\n", TARGET, 42);
    return 0;
}
"""


def test_trace_fields_and_readline():
    marker = b"bccless-marker-%d value=42" % os.getpid()
    with BPF(text=TRACE_TEXT, cflags=["-DTARGET=%d" % os.getpid()]) as b:
        os.getppid()
        fields = []
        wait_for(lambda: fields and fields[-1][5] == marker,
                 step=lambda: fields.append(b.trace_fields(nonblocking=True)))
        task, pid, cpu, flags, ts, msg = fields[-1]
        assert (pid, msg) == (os.getpid(), marker)
        assert isinstance(task, bytes) and isinstance(flags, bytes)
        assert isinstance(cpu, int) and 0 <= cpu < os.cpu_count() and ts > 0
        os.getppid()
        lines = []
        wait_for(lambda: lines and lines[-1] and lines[-1].endswith(marker),
                 step=lambda: lines.append(b.trace_readline(nonblocking=True)))
        assert lines[-1].endswith(b": bpf_trace_printk: " + marker)
        assert b"-%d " % os.getpid() in lines[-1]


def test_trace_print_formats_each_line(tmp_path):
    script = tmp_path / "printer.py"
    script.write_text(textwrap.dedent('''
        import os, sys, threading, time
        from bcc import BPF
        b = BPF(text=%r, cflags=["-DTARGET=%%d" %% os.getpid()])
        def trigger():
            while True:
                time.sleep(0.05)
                os.getppid()
        threading.Thread(target=trigger, daemon=True).start()
        b.trace_print(fmt="pid={1} msg={5}")
    ''' % TRACE_TEXT))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = ""
        for _ in range(200):
            line = proc.stdout.readline()
            if "bccless-marker-%d" % proc.pid in line or not line:
                break
    finally:
        proc.kill()
        proc.wait()
    # fields are bytes, formatted as BCC's str.format shows them
    # {1} is the thread id (the trigger thread's), {5} the message as bytes
    assert re.fullmatch(r"pid=\d+ msg=b'bccless-marker-%d value=42'\n" % proc.pid, line), line
