"""Uprobes, uretprobes and USDT through the bcc drop-in, on processes this test runs.

The target (tests/data/compat/uprobe_target.c) calls ``add_numbers(40 + n, 2)``,
``square(n + 6)`` or ``deep1(n)`` -> ``deep2`` -> ``square`` for the n-th
command it reads, so every argument and return value is known in advance.
"""
import os
import subprocess
from collections import namedtuple

import pytest

from bcc import BPF, USDT

from .conftest import Target, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="loading BPF programs needs root")

UPROBE_TEXT = r"""
#include <uapi/linux/ptrace.h>
BPF_HASH(vals, u32, u64);
BPF_ARRAY(calls, u64, 4);
static inline void put(u32 k, u64 v) { vals.update(&k, &v); }
int on_add(struct pt_regs *ctx) {
    put(0, PT_REGS_PARM1(ctx));
    put(1, PT_REGS_PARM2(ctx));
    calls.increment(0);
    return 0;
}
int on_add_off(struct pt_regs *ctx) { put(2, PT_REGS_PARM1(ctx)); calls.increment(1); return 0; }
int on_square_ret(struct pt_regs *ctx) { put(3, PT_REGS_RC(ctx)); calls.increment(2); return 0; }
int on_square_addr(struct pt_regs *ctx) { put(4, PT_REGS_PARM1(ctx)); calls.increment(3); return 0; }
"""


def _symbol_vaddr(path: str, name: str) -> int:
    from bccless.attach.elfsym import elf_image
    return elf_image(path).symbols[name].value


def test_uprobe_uretprobe_args_and_detach(uprobe_target):
    t = Target(uprobe_target)
    other = Target(uprobe_target)
    try:
        with BPF(text=UPROBE_TEXT) as b:
            vals, calls = b["vals"], b["calls"]
            # pid filter: only t's calls count for on_add
            assert b.attach_uprobe(name=uprobe_target, sym="add_numbers", fn_name="on_add",
                                   pid=t.pid) is b
            # sym_off 4 is past "push %rbp; mov %rsp,%rbp": rdi still holds arg 1
            b.attach_uprobe(name=uprobe_target.encode(), sym=b"add_numbers", sym_off=4,
                            fn_name=b"on_add_off")
            b.attach_uretprobe(name=uprobe_target, sym="square", fn_name="on_square_ret")
            b.attach_uprobe(name=uprobe_target, addr=_symbol_vaddr(uprobe_target, "square"),
                            fn_name="on_square_addr")
            assert b.num_open_uprobes() == 4
            san = uprobe_target.encode().replace(b"/", b"_").replace(b"-", b"_").replace(
                b".", b"_")
            off = _symbol_vaddr(uprobe_target, "add_numbers")
            assert b"p_%s_0x%x_%d" % (san, off, t.pid) in b.uprobe_fds
            assert b"p_%s_0x%x" % (san, off + 4) in b.uprobe_fds

            assert t.call("add") == 43           # add_numbers(41, 2)
            assert other.call("add") == 43       # filtered out by pid for on_add
            assert t.call("square") == 64        # square(8)
            got = {k.value: v.value for k, v in vals.items()}
            assert got == {0: 41, 1: 2, 2: 41, 3: 64, 4: 8}
            assert [c.value for c in calls.values()] == [1, 2, 1, 1]

            b.detach_uprobe(name=uprobe_target, sym="add_numbers", pid=t.pid)
            b.detach_uretprobe(name=uprobe_target, sym="square")
            assert b.num_open_uprobes() == 2
            with pytest.raises(Exception, match="Uprobe .* is not attached"):
                b.detach_uretprobe(name=uprobe_target, sym="square")
            assert t.call("add") == 45           # add_numbers(43, 2): only on_add_off left
            assert t.call("square") == 100       # square(10): only on_square_addr left
            assert [c.value for c in calls.values()] == [1, 3, 1, 2]
            assert vals[vals.Key(4)].value == 10 and vals[vals.Key(3)].value == 64
    finally:
        t.close()
        other.close()


def test_uprobe_sym_re_attaches_every_match(target, uprobe_target):
    text = r"""
    BPF_ARRAY(calls, u64, 1);
    int on_deep(struct pt_regs *ctx) { calls.increment(0); return 0; }
    """
    with BPF(text=text) as b:
        assert b.attach_uprobe(name=uprobe_target, sym_re=b"deep[12]$", fn_name="on_deep") \
            is None
        assert b.num_open_uprobes() == 2
        assert target.call("deep") == 3          # deep1(1) = square(1) + 2
        assert b["calls"][0].value == 2


def test_uprobe_unknown_symbol(uprobe_target):
    with BPF(text=UPROBE_TEXT) as b:
        with pytest.raises(Exception, match="could not determine address of symbol "
                                            "no_such_fn in " + uprobe_target):
            b.attach_uprobe(name=uprobe_target, sym="no_such_fn", fn_name="on_add")


STACK_TEXT = r"""
BPF_STACK_TRACE(stacks, 64);
BPF_ARRAY(ids, int, 2);
int on_square(struct pt_regs *ctx) {
    int id = stacks.get_stackid(ctx, BPF_F_USER_STACK);
    ids.update(&(u32){0}, &id);
    return 0;
}
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    int id = stacks.get_stackid(args, 0);
    ids.update(&(u32){1}, &id);
    return 0;
}
"""


def test_stack_traces_user_and_kernel(target, uprobe_target):
    with BPF(text=STACK_TEXT, cflags=["-DTARGET=%d" % os.getpid()]) as b:
        b.attach_uprobe(name=uprobe_target, sym="square", fn_name="on_square", pid=target.pid)
        assert target.call("deep") == 3
        os.getppid()
        stacks, ids = b["stacks"], b["ids"]
        assert stacks.Leaf.__name__ == "bpf_stacktrace"
        assert [f[0] for f in stacks.Leaf._fields_] == ["ip"]
        user_id, kernel_id = ids[0].value, ids[1].value
        assert user_id >= 0 and kernel_id >= 0
        names = [b.sym(addr, target.pid) for addr in stacks.walk(user_id)]
        assert names[:4] == [b"square", b"deep2", b"deep1", b"main"]
        if BPF.get_user_functions(BPF.find_library("c"), b"__libc_start_call_main$"):
            # a local symbol: resolvable through libc's separate debug file
            assert names[4] == b"__libc_start_call_main"
        shown = b.sym(next(stacks.walk(user_id)), target.pid, show_module=True, show_offset=True)
        assert shown == b"square+0x0 [uprobe_target]"
        kernel = [b.ksym(addr) for addr in stacks.walk(kernel_id)]
        assert kernel and all(name != b"[unknown]" for name in kernel), kernel
        assert any(b"syscall" in name for name in kernel), kernel
        assert b.ksym(next(stacks.walk(kernel_id)), show_module=True).endswith(b" [kernel]")
        # BCC: resolve is applied to every address
        assert list(stacks.walk(user_id, resolve=lambda a: a & 0)) == [0] * len(names)


PYTHON = "/usr/bin/python3.11"

USDT_TEXT = r"""
#include <uapi/linux/ptrace.h>
struct ev { u32 pid; int line; char fn[32]; char file[96]; };
BPF_PERF_OUTPUT(events);
int on_return(struct pt_regs *ctx) {
    struct ev e = {};
    u64 filep = 0;
    e.pid = bpf_get_current_pid_tgid() >> 32;
    if (e.pid != CHILD)
        return 0;
    bpf_usdt_readarg(1, ctx, &filep);
    bpf_usdt_readarg_p(2, ctx, &e.fn, sizeof(e.fn));
    bpf_usdt_readarg(3, ctx, &e.line);
    bpf_probe_read_user_str(&e.file, sizeof(e.file), (void *)filep);
    events.perf_submit(ctx, &e, sizeof(e));
    return 0;
}
"""

Ev = namedtuple("Ev", "pid line fn file")

CHILD_SCRIPT = """import sys
sys.stdin.readline()
def bccless_usdt_marker():
    x = 1
    return x
bccless_usdt_marker()
"""


def _has_python_usdt() -> bool:
    if not os.path.exists(PYTHON):
        return False
    from bccless.attach import usdt
    return any(p.provider == "python" and p.name == "function__return"
               for p in usdt.parse_notes(PYTHON))


@pytest.mark.skipif(not _has_python_usdt(),
                    reason=PYTHON + " is missing or has no python:function__return probe")
def test_usdt_python_function_return(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD_SCRIPT)
    child = subprocess.Popen([PYTHON, "-S", str(script)], stdin=subprocess.PIPE)
    try:
        u = USDT(path=PYTHON)
        u.enable_probe(probe="python:function__return", fn_name="on_return")
        assert [p.short_name() for p in u.enumerate_probes()
                if p.name == b"function__return"] == [b"python:function__return"]
        with BPF(text=USDT_TEXT, usdt_contexts=[u], cflags=["-DCHILD=%d" % child.pid]) as b:
            seen = []

            def record(cpu, data, size):
                e = b["events"].event(data)  # valid during the call only, as in BCC
                seen.append(Ev(e.pid, e.line, e.fn, e.file))

            b["events"].open_perf_buffer(record)
            child.communicate(b"go\n", timeout=30)
            wait_for(lambda: any(e.fn == b"bccless_usdt_marker" for e in seen),
                     step=lambda: b.perf_buffer_poll(timeout=100))
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
    marker = [e for e in seen if e.fn == b"bccless_usdt_marker"]
    assert len(marker) == 1
    assert marker[0].pid == child.pid
    assert marker[0].line == 5                     # the "return x" line
    assert marker[0].file == str(script).encode()
