"""bcc.BPF construction, program loading and the tracepoint/perf-event attach API.

Each BCC-style program counts events this process triggers (filtered on this
pid, passed in with ``cflags``) and the counts are checked exactly.
"""
import os
import struct
import subprocess
import sys
import textwrap
import time

import pytest

from bcc import BPF, PerfSWConfig, PerfType

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="loading BPF programs needs root")

NR_GETPPID = 110  # x86-64 syscall numbers
NR_GETPGRP = 111

RAW_TEXT = r"""
BPF_ARRAY(vals, u64, 4);
#ifdef AUTO
RAW_TRACEPOINT_PROBE(sys_enter) {
    if (ctx->args[1] != NR || (bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    u32 k = 0;
    u64 *v = vals.lookup(&k);
    if (v)
        __sync_fetch_and_add(v, MULT);
    return 0;
}
#endif
int on_enter(struct bpf_raw_tracepoint_args *ctx) {
    if (ctx->args[1] != NR || (bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    u32 k = 1;
    u64 *v = vals.lookup(&k);
    if (v)
        __sync_fetch_and_add(v, 1);
    return 0;
}
"""


def _flags(**defs):
    return ["-D%s=%s" % kv for kv in defs.items()]


def test_raw_tracepoint_probe_and_explicit_function():
    flags = _flags(TARGET=os.getpid(), NR=NR_GETPPID, MULT=5)
    with BPF(text=RAW_TEXT, cflags=flags + ["-DAUTO"]) as auto, \
            BPF(text=RAW_TEXT, cflags=flags) as manual:
        assert list(auto.raw_tracepoint_fds) == [b"sys_enter"]
        assert manual.raw_tracepoint_fds == {}
        fn = manual.load_func("on_enter", BPF.RAW_TRACEPOINT)
        assert isinstance(fn, BPF.Function) and fn.name == b"on_enter" and fn.fd >= 0
        assert manual.load_func(b"on_enter", BPF.RAW_TRACEPOINT) is fn  # cached by name
        assert manual.attach_raw_tracepoint(tp=b"sys_enter", fn_name=b"on_enter") is manual
        for _ in range(3):
            os.getppid()
        # -DMULT=5 reached the C: three calls add 15 in the auto-attached probe
        assert [v.value for v in auto["vals"].values()] == [15, 0, 0, 0]
        assert [v.value for v in manual["vals"].values()] == [0, 3, 0, 0]
        with pytest.raises(Exception, match="Raw tracepoint sys_enter has been attached"):
            manual.attach_raw_tracepoint(tp="sys_enter", fn_name="on_enter")
        manual.detach_raw_tracepoint(tp="sys_enter")
        os.getppid()
        assert manual["vals"][1].value == 3
        assert auto["vals"][0].value == 20


def test_src_file_relative_to_script_dir_cflags_and_debug(tmp_path):
    """src_file is found next to the script when the cwd is elsewhere; debug output
    goes to stderr without breaking the load."""
    (tmp_path / "prog.c").write_text(RAW_TEXT)
    script = tmp_path / "tool.py"
    script.write_text(textwrap.dedent("""
        import os, sys
        from bcc import (BPF, DEBUG_BPF, DEBUG_BTF, DEBUG_LLVM_IR, DEBUG_PREPROCESSOR,
                         DEBUG_SOURCE)
        debug = DEBUG_BPF | DEBUG_PREPROCESSOR | DEBUG_LLVM_IR | DEBUG_SOURCE | DEBUG_BTF
        b = BPF(src_file=b"prog.c", debug=debug,
                cflags=["-DTARGET=%d" % os.getpid(), "-DNR=110", "-DMULT=7", "-DAUTO"])
        os.getppid()
        os.getppid()
        print(b["vals"][0].value)
    """))
    out = subprocess.run([sys.executable, str(script)], cwd="/", capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "14\n"
    # DEBUG_PREPROCESSOR: the translated C; DEBUG_BPF: the verifier's log of the load
    assert "SEC(\"raw_tracepoint/sys_enter\")" in out.stderr
    assert "processed" in out.stderr and "insns" in out.stderr


def test_src_file_missing():
    with pytest.raises(Exception, match="Could not find file /nonexistent/x.c"):
        BPF(src_file=b"/nonexistent/x.c")


def test_dump_func_is_the_loaded_bytecode():
    with BPF(text=RAW_TEXT, cflags=_flags(TARGET=1, NR=1, MULT=1)) as b:
        code = b.dump_func("on_enter")
        assert isinstance(code, bytes) and len(code) % 8 == 0 and len(code) >= 8 * 8
        assert code[-8:] == bytes([0x95]) + bytes(7)  # ends with "exit"
        # the map reference is patched with the map's fd (BPF_PSEUDO_MAP_FD)
        loads = [struct.unpack_from("<BBhi", code, i) for i in range(0, len(code), 8)]
        assert any(op == 0x18 and regs >> 4 == 1 and imm == b["vals"].map_fd
                   for op, regs, _, imm in loads)
        assert b"on_enter" in b.funcs
        with pytest.raises(Exception, match="Unknown program b'nope'"):
            b.dump_func("nope")


def test_load_func_unknown_program():
    with BPF(text=RAW_TEXT, cflags=_flags(TARGET=1, NR=1, MULT=1)) as b:
        with pytest.raises(Exception) as info:
            b.load_func("missing_fn", BPF.KPROBE)
        assert str(info.value) == "Unknown program b'missing_fn'"


TP_TEXT = r"""
BPF_HASH(hits, u32, u64);
int on_tp(void *ctx) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    u32 k = bpf_get_smp_processor_id() * 0;
    hits.increment(k);
    return 0;
}
"""


def test_attach_tracepoint_regex_and_detach():
    with BPF(text=TP_TEXT, cflags=_flags(TARGET=os.getpid())) as b:
        # getppid and getpgrp enter points only (getpgid/getpid/... do not match)
        assert b.attach_tracepoint(tp_re=b"syscalls:sys_enter_getp(p|gr)", fn_name=b"on_tp") \
            is None
        assert sorted(b.tracepoint_fds) == [b"syscalls:sys_enter_getpgrp",
                                            b"syscalls:sys_enter_getppid"]
        assert b.num_open_tracepoints() == 2
        os.getppid()
        os.getpgrp()
        os.getpid()
        hits = b["hits"]
        assert hits[hits.Key(0)].value == 2
        b.detach_tracepoint(tp=b"syscalls:sys_enter_getpgrp")
        assert b.num_open_tracepoints() == 1
        os.getpgrp()
        os.getppid()
        assert hits[hits.Key(0)].value == 3
        with pytest.raises(Exception, match="Tracepoint syscalls:sys_enter_getpgrp is not attached"):
            b.detach_tracepoint(tp="syscalls:sys_enter_getpgrp")
        assert b.attach_tracepoint(tp="syscalls:sys_enter_getpgrp", fn_name="on_tp") is b
        os.getpgrp()
        assert hits[hits.Key(0)].value == 4


def test_tracepoint_discovery():
    assert BPF.tracepoint_exists("syscalls", "sys_enter_getppid")
    assert BPF.tracepoint_exists(b"sched", b"sched_switch")
    assert not BPF.tracepoint_exists("syscalls", "sys_enter_no_such_call")
    tps = BPF.get_tracepoints(b"syscalls:sys_(enter|exit)_getppid")
    assert tps == [b"syscalls:sys_enter_getppid", b"syscalls:sys_exit_getppid"]
    # re.match semantics: a prefix is enough
    assert b"sched:sched_switch" in BPF.get_tracepoints("sched:sched_sw")


PERF_TEXT = r"""
#include <uapi/linux/bpf_perf_event.h>
BPF_ARRAY(ticks, u64, 1);
BPF_ARRAY(period, u64, 1);
int on_clock(struct bpf_perf_event_data *ctx) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    u32 k = 0;
    u64 *v = ticks.lookup(&k);
    if (v)
        __sync_fetch_and_add(v, 1);
    u64 *p = period.lookup(&k);
    if (p)
        *p = ctx->sample_period;
    return 0;
}
"""


def test_attach_perf_event_cpu_clock():
    assert (PerfType.SOFTWARE, PerfSWConfig.CPU_CLOCK) == (1, 0)
    assert (PerfSWConfig.TASK_CLOCK, PerfSWConfig.CONTEXT_SWITCHES) == (1, 3)
    with BPF(text=PERF_TEXT, cflags=_flags(TARGET=os.getpid())) as b:
        b.attach_perf_event(ev_type=PerfType.SOFTWARE, ev_config=PerfSWConfig.CPU_CLOCK,
                            fn_name=b"on_clock", sample_period=1000000)  # every 1 ms
        assert list(b.open_perf_events) == [(PerfType.SOFTWARE, PerfSWConfig.CPU_CLOCK)]
        end = time.time() + 0.3
        while time.time() < end:
            pass
        ticks = b["ticks"][0].value
        assert 50 <= ticks <= 400, ticks  # ~300 samples of 1 ms in 0.3 s of busy CPU
        assert b["period"][0].value == 1000000
        b.detach_perf_event(ev_type=PerfType.SOFTWARE, ev_config=PerfSWConfig.CPU_CLOCK)
        assert b.open_perf_events == {}
        end = time.time() + 0.05
        while time.time() < end:
            pass
        assert b["ticks"][0].value == ticks
        with pytest.raises(Exception, match="Perf event type 1 config 0 not attached"):
            b.detach_perf_event(ev_type=PerfType.SOFTWARE, ev_config=PerfSWConfig.CPU_CLOCK)
