"""The SEC() table: libbpf's matching rules and values for representative names."""
from __future__ import annotations

import pytest

from bccless.elf.sections import (
    SEC_ATTACH_BTF, SEC_ATTACHABLE, SEC_EXP_ATTACH_OPT, SEC_SLEEPABLE, SEC_USDT, SEC_XDP_FRAGS,
    match_section,
)
from bccless.sys import bpf_consts as C


@pytest.mark.parametrize("name, prefix, ptype, eat, target", [
    ("tracepoint/syscalls/sys_enter_getpid", "tracepoint+", C.BPF_PROG_TYPE_TRACEPOINT, 0,
     "syscalls/sys_enter_getpid"),
    ("tp/sched/sched_switch", "tp+", C.BPF_PROG_TYPE_TRACEPOINT, 0, "sched/sched_switch"),
    ("kprobe/do_unlinkat", "kprobe+", C.BPF_PROG_TYPE_KPROBE, 0, "do_unlinkat"),
    ("kprobe", "kprobe+", C.BPF_PROG_TYPE_KPROBE, 0, ""),
    ("kprobe.multi/vfs_*", "kprobe.multi+", C.BPF_PROG_TYPE_KPROBE,
     C.BPF_TRACE_KPROBE_MULTI, "vfs_*"),
    ("uprobe//bin/bash:readline", "uprobe+", C.BPF_PROG_TYPE_KPROBE, 0, "/bin/bash:readline"),
    ("raw_tp/sys_enter", "raw_tp+", C.BPF_PROG_TYPE_RAW_TRACEPOINT, 0, "sys_enter"),
    ("raw_tp.w/foo", "raw_tp.w+", C.BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE, 0, "foo"),
    ("tp_btf/sched_switch", "tp_btf+", C.BPF_PROG_TYPE_TRACING, C.BPF_TRACE_RAW_TP,
     "sched_switch"),
    ("fentry/do_unlinkat", "fentry+", C.BPF_PROG_TYPE_TRACING, C.BPF_TRACE_FENTRY,
     "do_unlinkat"),
    ("fmod_ret/x", "fmod_ret+", C.BPF_PROG_TYPE_TRACING, C.BPF_MODIFY_RETURN, "x"),
    ("lsm/file_open", "lsm+", C.BPF_PROG_TYPE_LSM, C.BPF_LSM_MAC, "file_open"),
    ("iter/task", "iter+", C.BPF_PROG_TYPE_TRACING, C.BPF_TRACE_ITER, "task"),
    ("xdp", "xdp", C.BPF_PROG_TYPE_XDP, C.BPF_XDP, ""),
    ("xdp.frags", "xdp.frags", C.BPF_PROG_TYPE_XDP, C.BPF_XDP, ""),
    ("xdp/devmap", "xdp/devmap", C.BPF_PROG_TYPE_XDP, C.BPF_XDP_DEVMAP, ""),
    ("tc", "tc", C.BPF_PROG_TYPE_SCHED_CLS, 0, ""),
    ("tcx/ingress", "tcx/ingress", C.BPF_PROG_TYPE_SCHED_CLS, C.BPF_TCX_INGRESS, ""),
    ("socket", "socket", C.BPF_PROG_TYPE_SOCKET_FILTER, 0, ""),
    ("cgroup_skb/egress", "cgroup_skb/egress", C.BPF_PROG_TYPE_CGROUP_SKB,
     C.BPF_CGROUP_INET_EGRESS, ""),
    ("cgroup/connect4", "cgroup/connect4", C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
     C.BPF_CGROUP_INET4_CONNECT, ""),
    ("cgroup/sock", "cgroup/sock", C.BPF_PROG_TYPE_CGROUP_SOCK,
     C.BPF_CGROUP_INET_SOCK_CREATE, ""),
    ("sk_reuseport/migrate", "sk_reuseport/migrate", C.BPF_PROG_TYPE_SK_REUSEPORT,
     C.BPF_SK_REUSEPORT_SELECT_OR_MIGRATE, ""),
    ("perf_event", "perf_event", C.BPF_PROG_TYPE_PERF_EVENT, 0, ""),
    ("usdt/./a.out:p:n", "usdt+", C.BPF_PROG_TYPE_KPROBE, 0, "./a.out:p:n"),
    ("syscall", "syscall", C.BPF_PROG_TYPE_SYSCALL, 0, ""),
    ("struct_ops/test", "struct_ops+", C.BPF_PROG_TYPE_STRUCT_OPS, 0, "test"),
])
def test_match(name, prefix, ptype, eat, target):
    d = match_section(name)
    assert d is not None
    assert (d.prefix, d.prog_type, d.expected_attach_type, d.attach_target) == (
        prefix, ptype, eat, target)


def test_flags():
    assert match_section("fentry.s/x").flags == SEC_ATTACH_BTF | SEC_SLEEPABLE
    assert match_section("xdp").flags == SEC_ATTACHABLE | SEC_EXP_ATTACH_OPT
    assert match_section("xdp.frags/cpumap").flags == SEC_XDP_FRAGS
    assert match_section("usdt.s/x").flags == SEC_USDT | SEC_SLEEPABLE
    assert match_section("syscall").flags == SEC_SLEEPABLE
    assert match_section("cgroup/bind4").flags == SEC_ATTACHABLE


@pytest.mark.parametrize("name", [
    "kprobex/foo",          # '+' needs end of string or '/' after the stem
    "tracepointfoo",
    "xdp/other",            # exact entries do not take suffixes
    "socket/1",
    "my_section",
    "",
])
def test_no_match(name):
    assert match_section(name) is None


def test_first_match_wins():
    # 'kprobe.multi/x' must not be claimed by the earlier 'kprobe+' entry
    assert match_section("kprobe.multi/x").prefix == "kprobe.multi+"
    # 'tc/ingress' (tcx alias) comes before the legacy exact 'tc'
    assert match_section("tc/ingress").expected_attach_type == C.BPF_TCX_INGRESS
