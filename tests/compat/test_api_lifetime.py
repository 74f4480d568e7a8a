"""Lifetime of what a bcc.BPF attaches: context manager, idempotent cleanup, and
Ctrl-C on a running tool leaving no probe and no program behind."""
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from bcc import BPF

from .conftest import Target

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="loading BPF programs needs root")

TEXT = r"""
BPF_ARRAY(calls, u64, 2);
int on_square(struct pt_regs *ctx) { calls.increment(0); return 0; }
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if ((bpf_get_current_pid_tgid() >> 32) == TARGET)
        calls.increment(1);
    return 0;
}
"""


def _prog_ids():
    from bccless.sys import bpf
    ids, cur = set(), 0
    while True:
        cur = bpf.get_next_id("prog", cur)
        if cur is None:
            return ids
        ids.add(cur)


def _own_prog_ids(pid: int):
    """The ids of the BPF programs process ``pid`` holds fds of."""
    ids = set()
    fdinfo = "/proc/%d/fdinfo" % pid
    for fd in os.listdir(fdinfo):
        try:
            with open(os.path.join(fdinfo, fd)) as f:
                for line in f:
                    if line.startswith("prog_id:"):
                        ids.add(int(line.split()[1]))
        except OSError:
            pass
    return ids


def _uprobe_events():
    from bccless.attach.tracefs import tracefs_root
    with open(os.path.join(tracefs_root(), "uprobe_events")) as f:
        return set(f.read().splitlines())


def test_context_manager_and_idempotent_cleanup(target, uprobe_target):
    with BPF(text=TEXT, cflags=["-DTARGET=%d" % os.getpid()]) as b:
        assert b.num_open_tracepoints() == 1
        b.attach_uprobe(name=uprobe_target, sym="square", fn_name="on_square")
        assert b.num_open_uprobes() == 1
        target.call("square")
        os.getppid()
        assert [v.value for v in b["calls"].values()] == [1, 1]
        ids = _own_prog_ids(os.getpid())
        assert len(ids) >= 2
    assert b.num_open_uprobes() == 0 and b.num_open_tracepoints() == 0
    assert not ids & _prog_ids()
    b.cleanup()          # again: nothing left to do, no error
    b.cleanup()


SCRIPT = """
import os, sys, time
from bcc import BPF
b = BPF(text=%r, cflags=["-DTARGET=%%d" %% os.getpid()])
b.attach_uprobe(name=sys.argv[1], sym="square", fn_name="on_square")
print("ready", flush=True)
%s
"""

LOOPS = {
    # BCC tools' usual shape: sleep until Ctrl-C, then print and exit
    "caught": """
try:
    time.sleep(60)
except KeyboardInterrupt:
    print("Detaching...")
""",
    # no handler at all: the KeyboardInterrupt traceback ends the script
    "uncaught": """
while True:
    b.perf_buffer_poll(timeout=100)
    time.sleep(0.01)
""",
}


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_sigint_leaves_nothing_behind(tmp_path, uprobe_target, loop):
    script = tmp_path / "tool.py"
    script.write_text(SCRIPT % (TEXT, textwrap.dedent(LOOPS[loop])))
    events_before = _uprobe_events()
    proc = subprocess.Popen([sys.executable, str(script), uprobe_target], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "ready\n", proc.stderr.read()
        held = _own_prog_ids(proc.pid)
        assert len(held) >= 2 and held <= _prog_ids()
        t = Target(uprobe_target)
        assert t.call("square") == 49      # the probe is live while the tool runs
        t.close()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if loop == "caught":
        assert proc.returncode == 0 and out == "Detaching...\n", err
    else:
        assert proc.returncode != 0 and "KeyboardInterrupt" in err
    assert not held & _prog_ids()
    assert _uprobe_events() <= events_before
