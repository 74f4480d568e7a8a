"""Nothing is left behind: killed tools, closed links, trace_pipe parsing."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from bccless.attach.tracefs import tracefs_root
from bccless.events.trace_pipe import parse_trace_line
from bccless.sys import bpf

HERE = os.path.dirname(__file__)
DATA = os.path.join(HERE, "..", "data", "runtime")

TOOL = r"""
import ctypes, os, sys
sys.path.insert(0, sys.argv[1])
import asm_helpers as A
from bccless import cleanup
from bccless.attach import elfsym, tracepoint, uprobe
from bccless.sys import bpf, bpf_consts as C
m = bpf.map_create(C.BPF_MAP_TYPE_ARRAY, 4, 8, 2)
tp, _ = bpf.prog_load(C.BPF_PROG_TYPE_TRACEPOINT, A.count_into_array(m), "GPL", name="leak_tp")
up, _ = bpf.prog_load(C.BPF_PROG_TYPE_KPROBE, A.count_into_array(m, 1), "GPL", name="leak_up")
cleanup.install_signal_handlers()
tracepoint.attach_tracepoint(tp, "syscalls:sys_enter_getppid")
uprobe.attach_uprobe(up, "c", "getpid", pid=os.getpid())
libc = elfsym.find_library("c")
uprobe._attach_legacy(up, libc, elfsym.symbol_offset(libc, "getppid"), "uprobe", "legacy",
                      False, os.getpid(), -1, 0, 0, "leak_legacy")
ids = [bpf.obj_get_info_by_fd(fd, "prog")["id"] for fd in (tp, up)]
print(*ids, flush=True)
sys.stdin.readline()
"""


def _prog_ids():
    ids, cur = set(), 0
    while True:
        cur = bpf.get_next_id("prog", cur)
        if cur is None:
            return ids
        ids.add(cur)


def _uprobe_events():
    with open(os.path.join(tracefs_root(), "uprobe_events")) as f:
        return f.read()


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, -signal.SIGINT),
                                         (signal.SIGTERM, -signal.SIGTERM)])
def test_killed_tool_leaves_nothing(sig, status):
    before = _uprobe_events()
    p = subprocess.Popen([sys.executable, "-c", TOOL, HERE], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        assert line, p.stderr.read()
        ids = {int(x) for x in line.split()}
        assert ids <= _prog_ids()
        assert _uprobe_events() != before          # the legacy entry exists while running
        p.send_signal(sig)
        p.wait(10)
    finally:
        p.kill()
    # SIGINT: KeyboardInterrupt, atexit clean-up, then Python re-raises SIGINT;
    # SIGTERM: our handler cleans up and dies by the signal.
    assert p.returncode == status
    assert _uprobe_events() == before
    assert not ids & _prog_ids()


def test_registry_close_all_and_fork_safety():
    from bccless.cleanup import Registry

    closed = []

    class Res:
        def __init__(self, n):
            self.n = n

        def close(self):
            closed.append(self.n)

    reg = Registry()
    for i in range(3):
        reg.register(Res(i))
    reg.close_all()
    assert closed == [2, 1, 0] and len(reg) == 0
    reg.register(Res(9))
    pid = os.fork()
    if pid == 0:
        reg.close_all()                            # child must not release parent's resources
        os._exit(0 if closed == [2, 1, 0] else 1)
    assert os.waitpid(pid, 0)[1] == 0
    reg.close_all()
    assert closed == [2, 1, 0, 9]


@pytest.mark.parametrize("line, expect", [
    (b"           <...>-12345   [001] d..31  4567.123456: bpf_trace_printk: hello world\n",
     (b"<...>", 12345, 1, b"d..31", 4567.123456, b"hello world")),
    (b"          python-77     [000] ....  12.5: 0x00000001: value=3",
     (b"python", 77, 0, b"....", 12.5, b"value=3")),
])
def test_parse_trace_line(line, expect):
    assert parse_trace_line(line) == expect


def test_parse_trace_line_skips_and_unknown():
    assert parse_trace_line(b"CPU:1 [LOST 3 EVENTS]") is None
    assert parse_trace_line(b"garbage without fields") is None
    assert parse_trace_line(b"            task-xx      [00a] ....  1.0: sym: m") == \
        ("Unknown", 0, 0, "Unknown", 0.0, "Unknown")
