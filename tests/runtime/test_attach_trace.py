"""Tracing attachments on the real kernel: tracepoint, raw_tp, tp_btf, uprobes, perf events,
and the exact errors of the kinds this kernel cannot attach (kprobes, fentry)."""
from __future__ import annotations

import errno
import os
import subprocess

import pytest

import asm_helpers as A
from bccless.attach import kprobe, perf_event, tracefs, tracepoint, uprobe
from bccless.attach.link import Link
from bccless.errors import AttachError
from bccless.sys import perf
from bccless.sys import bpf_consts as C

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "runtime")


def test_tracepoint_stores_current_pid(kernel):
    m = kernel.array()
    prog = kernel.prog(C.BPF_PROG_TYPE_TRACEPOINT, A.store_tgid_into_array(m))
    with tracepoint.attach_tracepoint(prog, "syscalls:sys_enter_getppid", prog_name="tp") as link:
        os.getppid()
        info = link.info()
        assert info["perf_event_type"] == C.BPF_PERF_EVENT_TRACEPOINT
        assert info["tp_name"] == "sys_enter_getppid"
    assert kernel.read_u64(m) == os.getpid()


def test_tracepoint_detaches_on_close(kernel):
    m = kernel.array()
    prog = kernel.prog(C.BPF_PROG_TYPE_TRACEPOINT, A.count_into_array(m))
    link = tracepoint.attach_tracepoint(prog, "syscalls", "sys_enter_getppid")
    for _ in range(5):
        os.getppid()
    link.close()
    link.close()  # idempotent
    before = kernel.read_u64(m)
    for _ in range(5):
        os.getppid()
    assert before >= 5 and kernel.read_u64(m) == before


def test_tracepoint_errors(kernel):
    prog = kernel.prog(C.BPF_PROG_TYPE_TRACEPOINT, A.prog(A.mov64_imm(A.R0, 0), A.exit_()))
    with pytest.raises(AttachError, match="tracepoint syscalls:no_such_event does not exist"):
        tracepoint.attach_tracepoint(prog, "syscalls:no_such_event")
    with pytest.raises(AttachError, match="category:event"):
        tracepoint.attach_tracepoint(prog, "nocolon")


def test_raw_tracepoint(kernel):
    m = kernel.array()
    prog = kernel.prog(C.BPF_PROG_TYPE_RAW_TRACEPOINT, A.count_into_array(m))
    with tracepoint.attach_raw_tracepoint(prog, "sys_enter") as link:
        for _ in range(10):
            os.getppid()
        assert link.info()["tp_name"] == "sys_enter"
    assert kernel.read_u64(m) >= 10
    with pytest.raises(AttachError, match="raw tracepoint no_such_tp"):
        tracepoint.attach_raw_tracepoint(prog, "no_such_tp")


def test_tp_btf(kernel):
    from bccless.btf import Kind, load_kernel_btf

    ids = load_kernel_btf().find("btf_trace_sys_enter", Kind.TYPEDEF)
    assert ids, "kernel BTF has no btf_trace_sys_enter"
    m = kernel.array()
    prog = kernel.prog(C.BPF_PROG_TYPE_TRACING, A.count_into_array(m),
                       expected_attach_type=C.BPF_TRACE_RAW_TP, attach_btf_id=ids[0])
    with tracepoint.attach_btf(prog, C.BPF_TRACE_RAW_TP, target="sys_enter") as link:
        for _ in range(10):
            os.getppid()
        assert link.kind == "tp_btf"
    assert kernel.read_u64(m) >= 10


def test_fentry_cannot_load_here(kernel):
    from bccless.btf import Kind, load_kernel_btf

    ids = load_kernel_btf().find("vfs_read", Kind.FUNC)
    assert ids
    with pytest.raises(OSError) as exc:
        kernel.prog(C.BPF_PROG_TYPE_TRACING, A.prog(A.mov64_imm(A.R0, 0), A.exit_()),
                    expected_attach_type=C.BPF_TRACE_FENTRY, attach_btf_id=ids[0])
    assert exc.value.errno == errno.EPERM


@pytest.fixture
def kprobe_prog(kernel):
    if kprobe.kprobe_support():
        pytest.skip("this kernel has kprobes; the no-kprobe errors cannot be checked")
    return kernel.prog(C.BPF_PROG_TYPE_KPROBE, A.prog(A.mov64_imm(A.R0, 0), A.exit_()))


@pytest.mark.parametrize("call", [
    lambda p: kprobe.attach_kprobe(p, "do_sys_openat2"),
    lambda p: kprobe.attach_kprobe(p, "do_sys_openat2", 4),
    lambda p: kprobe.attach_kprobe(p, "do_sys_openat2", retprobe=True),
    lambda p: kprobe.attach_kprobe(p, "do_sys_openat2", retprobe=True, maxactive=8),
    lambda p: kprobe.attach_ksyscall(p, "openat"),
    lambda p: kprobe.attach_kprobe_multi(p, ["do_sys_openat2", "vfs_read"]),
], ids=["kprobe", "kprobe+off", "kretprobe", "kretprobe-maxactive", "ksyscall", "kprobe.multi"])
def test_kprobes_fail_with_exact_error(kprobe_prog, call):
    before = os.listdir("/proc/self/fd")
    with pytest.raises(AttachError) as exc:
        call(kprobe_prog)
    assert str(exc.value) == "this kernel has no kprobe support (CONFIG_KPROBES is not set)"
    assert os.listdir("/proc/self/fd") == before


def test_ksyscall_name_uses_arch_wrapper():
    assert kprobe.ksyscall_function("openat") == "__x64_sys_openat"


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    exe = tmp_path_factory.mktemp("uprobe") / "target"
    subprocess.run(["gcc", "-O1", "-o", str(exe), os.path.join(DATA, "target.c")], check=True)
    return str(exe)


def _run_target(exe, n):
    p = subprocess.Popen([exe, str(n)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


def _finish(p):
    p.stdin.write("go\n")
    p.stdin.flush()
    out = p.stdout.readline()
    p.wait(10)
    return out


@pytest.mark.parametrize("retprobe", [False, True])
def test_uprobe_counts_calls_with_pid_filter(kernel, target, retprobe):
    m = kernel.array()
    prog = kernel.prog(C.BPF_PROG_TYPE_KPROBE, A.count_into_array(m))
    watched, other = _run_target(target, 37), _run_target(target, 11)
    link = uprobe.attach_uprobe(prog, target, "bccless_target", retprobe=retprobe, pid=watched.pid)
    try:
        info = link.info()
        assert info["perf_event_type"] == (C.BPF_PERF_EVENT_URETPROBE if retprobe
                                           else C.BPF_PERF_EVENT_UPROBE)
        _finish(other)
        _finish(watched)
    finally:
        link.close()
    assert kernel.read_u64(m) == 37


def test_uprobe_binary_wide_address_and_offset(kernel, target):
    from bccless.attach import elfsym

    m = kernel.array()
    p_all = kernel.prog(C.BPF_PROG_TYPE_KPROBE, A.count_into_array(m, 0))
    p_addr = kernel.prog(C.BPF_PROG_TYPE_KPROBE, A.count_into_array(m, 1))
    sym = elfsym.elf_image(target).symbols["bccless_other"]
    links = [uprobe.attach_uprobe(p_all, target, "bccless_target"),
             uprobe.attach_uprobe(p_addr, target, addr=sym.value)]
    try:
        a, b = _run_target(target, 5), _run_target(target, 6)
        _finish(a)
        _finish(b)
    finally:
        for link in links:
            link.close()
    assert kernel.read_u64(m, 0) == 11
    assert kernel.read_u64(m, 1) == 2
    with pytest.raises(AttachError, match="either a symbol"):
        uprobe.attach_uprobe(p_all, target, "bccless_target", addr=sym.value)


def test_uprobe_regex(kernel, target):
    m = kernel.array()
    prog = kernel.prog(C.BPF_PROG_TYPE_KPROBE, A.count_into_array(m))
    p = _run_target(target, 3)
    with uprobe.attach_uprobe_regex(prog, target, "bccless_", pid=p.pid) as links:
        assert len(links) == 2
        _finish(p)
    assert kernel.read_u64(m) == 4


def test_uprobe_on_libc_getpid_in_this_process(kernel):
    import ctypes

    m = kernel.array()
    prog = kernel.prog(C.BPF_PROG_TYPE_KPROBE, A.count_into_array(m))
    libc = ctypes.CDLL("libc.so.6")
    with uprobe.attach_uprobe(prog, "c", "getpid", pid=os.getpid()):
        for _ in range(20):
            libc.getpid()
    assert 20 <= kernel.read_u64(m) < 40


def test_legacy_uprobe_events_entry_is_removed(kernel, target):
    m = kernel.array()
    prog = kernel.prog(C.BPF_PROG_TYPE_KPROBE, A.count_into_array(m))
    from bccless.attach import elfsym

    events = os.path.join(tracefs.tracefs_root(), "uprobe_events")
    before = open(events).read()
    off = elfsym.symbol_offset(target, "bccless_target")
    p = _run_target(target, 9)
    link = uprobe._attach_legacy(prog, target, off, "uprobe", "legacy", False, p.pid, -1, 0, 0, "t")
    assert "bccless/" in open(events).read()
    _finish(p)
    link.close()
    assert open(events).read() == before
    assert kernel.read_u64(m) == 9


def test_perf_event_software_cpu_clock(kernel):
    m = kernel.array()
    prog = kernel.prog(C.BPF_PROG_TYPE_PERF_EVENT, A.count_into_array(m))
    links = perf_event.attach_perf_event(prog, perf.PERF_TYPE_SOFTWARE, perf.PERF_COUNT_SW_CPU_CLOCK,
                                         sample_freq=1000)
    assert len(links) == len(perf.online_cpus())
    import time
    end = time.time() + 0.2
    while time.time() < end:
        pass
    links.close()
    n = kernel.read_u64(m)
    assert 50 <= n <= 2000


def test_perf_event_hardware_fails_without_pmu(kernel):
    if perf_event.has_hardware_pmu():
        pytest.skip("this machine has a hardware PMU")
    prog = kernel.prog(C.BPF_PROG_TYPE_PERF_EVENT, A.prog(A.mov64_imm(A.R0, 0), A.exit_()))
    with pytest.raises(AttachError, match="no hardware PMU"):
        perf_event.attach_perf_event(prog, perf.PERF_TYPE_HARDWARE, perf.PERF_COUNT_HW_CPU_CYCLES,
                                     sample_period=100000)
    with pytest.raises(AttachError, match="exactly one"):
        perf_event.attach_perf_event(prog, perf.PERF_TYPE_SOFTWARE, 0)


def test_link_repr_and_registry(kernel):
    from bccless import cleanup

    prog = kernel.prog(C.BPF_PROG_TYPE_RAW_TRACEPOINT, A.prog(A.mov64_imm(A.R0, 0), A.exit_()))
    n = len(cleanup.registry)
    link = tracepoint.attach_raw_tracepoint(prog, "sys_exit", prog_name="p")
    assert isinstance(link, Link) and len(cleanup.registry) == n + 1
    assert "raw_tracepoint p -> sys_exit fd=" in repr(link)
    link.close()
    assert len(cleanup.registry) == n and "closed" in repr(link)
