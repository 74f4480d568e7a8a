"""libbpf's ``SEC()`` name table: what a section name says about a program.

A BPF object carries no program type: the convention (libbpf ``section_defs``,
core-semantics.md §1.17) is that the ELF section name encodes it.  Users'
objects are written against libbpf, so the table, its order and its matching
rules are reproduced here exactly; an object that loads with libbpf must get
the same program type, expected attach type and flags from us.

Newer multi-attach tracing entries of libbpf's development tree (fsession,
fentry.multi) are left out: their uapi values are not in any released kernel.
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Tuple

from ..sys import bpf_consts as C

# Section flags (libbpf enum sec_def_flags).  ATTACHABLE: the kernel wants the
# expected attach type at load.  EXP_ATTACH_OPT: drop it when the kernel does
# not know BPF_PROG_LOAD's expected_attach_type.  ATTACH_BTF: the target is a
# BTF id resolved at load.  SLEEPABLE: BPF_F_SLEEPABLE.  XDP_FRAGS:
# BPF_F_XDP_HAS_FRAGS.  USDT: attach through the USDT manager.
SEC_NONE = 0
SEC_EXP_ATTACH_OPT = 1 << 0
SEC_ATTACHABLE = 1 << 1
SEC_ATTACHABLE_OPT = SEC_ATTACHABLE | SEC_EXP_ATTACH_OPT
SEC_ATTACH_BTF = 1 << 2
SEC_SLEEPABLE = 1 << 3
SEC_XDP_FRAGS = 1 << 4
SEC_USDT = 1 << 5

# (pattern, prog type, expected attach type, flags) in libbpf's order: the
# first match wins, so the order is part of the semantics.
_TABLE: Tuple[Tuple[str, int, int, int], ...] = (
    ("socket", C.BPF_PROG_TYPE_SOCKET_FILTER, 0, SEC_NONE),
    ("sk_reuseport/migrate",
     C.BPF_PROG_TYPE_SK_REUSEPORT, C.BPF_SK_REUSEPORT_SELECT_OR_MIGRATE, SEC_ATTACHABLE),
    ("sk_reuseport", C.BPF_PROG_TYPE_SK_REUSEPORT, C.BPF_SK_REUSEPORT_SELECT, SEC_ATTACHABLE),
    ("kprobe+", C.BPF_PROG_TYPE_KPROBE, 0, SEC_NONE),
    ("uprobe+", C.BPF_PROG_TYPE_KPROBE, 0, SEC_NONE),
    ("uprobe.s+", C.BPF_PROG_TYPE_KPROBE, 0, SEC_SLEEPABLE),
    ("kretprobe+", C.BPF_PROG_TYPE_KPROBE, 0, SEC_NONE),
    ("uretprobe+", C.BPF_PROG_TYPE_KPROBE, 0, SEC_NONE),
    ("uretprobe.s+", C.BPF_PROG_TYPE_KPROBE, 0, SEC_SLEEPABLE),
    ("kprobe.multi+", C.BPF_PROG_TYPE_KPROBE, C.BPF_TRACE_KPROBE_MULTI, SEC_NONE),
    ("kretprobe.multi+", C.BPF_PROG_TYPE_KPROBE, C.BPF_TRACE_KPROBE_MULTI, SEC_NONE),
    ("kprobe.session+", C.BPF_PROG_TYPE_KPROBE, C.BPF_TRACE_KPROBE_SESSION, SEC_NONE),
    ("uprobe.multi+", C.BPF_PROG_TYPE_KPROBE, C.BPF_TRACE_UPROBE_MULTI, SEC_NONE),
    ("uretprobe.multi+", C.BPF_PROG_TYPE_KPROBE, C.BPF_TRACE_UPROBE_MULTI, SEC_NONE),
    ("uprobe.session+", C.BPF_PROG_TYPE_KPROBE, C.BPF_TRACE_UPROBE_SESSION, SEC_NONE),
    ("uprobe.multi.s+", C.BPF_PROG_TYPE_KPROBE, C.BPF_TRACE_UPROBE_MULTI, SEC_SLEEPABLE),
    ("uretprobe.multi.s+", C.BPF_PROG_TYPE_KPROBE, C.BPF_TRACE_UPROBE_MULTI, SEC_SLEEPABLE),
    ("uprobe.session.s+", C.BPF_PROG_TYPE_KPROBE, C.BPF_TRACE_UPROBE_SESSION, SEC_SLEEPABLE),
    ("ksyscall+", C.BPF_PROG_TYPE_KPROBE, 0, SEC_NONE),
    ("kretsyscall+", C.BPF_PROG_TYPE_KPROBE, 0, SEC_NONE),
    ("usdt+", C.BPF_PROG_TYPE_KPROBE, 0, SEC_USDT),
    ("usdt.s+", C.BPF_PROG_TYPE_KPROBE, 0, SEC_USDT | SEC_SLEEPABLE),
    ("tc/ingress", C.BPF_PROG_TYPE_SCHED_CLS, C.BPF_TCX_INGRESS, SEC_NONE),
    ("tc/egress", C.BPF_PROG_TYPE_SCHED_CLS, C.BPF_TCX_EGRESS, SEC_NONE),
    ("tcx/ingress", C.BPF_PROG_TYPE_SCHED_CLS, C.BPF_TCX_INGRESS, SEC_NONE),
    ("tcx/egress", C.BPF_PROG_TYPE_SCHED_CLS, C.BPF_TCX_EGRESS, SEC_NONE),
    ("tc", C.BPF_PROG_TYPE_SCHED_CLS, 0, SEC_NONE),
    ("classifier", C.BPF_PROG_TYPE_SCHED_CLS, 0, SEC_NONE),
    ("action", C.BPF_PROG_TYPE_SCHED_ACT, 0, SEC_NONE),
    ("netkit/primary", C.BPF_PROG_TYPE_SCHED_CLS, C.BPF_NETKIT_PRIMARY, SEC_NONE),
    ("netkit/peer", C.BPF_PROG_TYPE_SCHED_CLS, C.BPF_NETKIT_PEER, SEC_NONE),
    ("tracepoint+", C.BPF_PROG_TYPE_TRACEPOINT, 0, SEC_NONE),
    ("tp+", C.BPF_PROG_TYPE_TRACEPOINT, 0, SEC_NONE),
    ("tracepoint.s+", C.BPF_PROG_TYPE_TRACEPOINT, 0, SEC_SLEEPABLE),
    ("tp.s+", C.BPF_PROG_TYPE_TRACEPOINT, 0, SEC_SLEEPABLE),
    ("raw_tracepoint+", C.BPF_PROG_TYPE_RAW_TRACEPOINT, 0, SEC_NONE),
    ("raw_tp+", C.BPF_PROG_TYPE_RAW_TRACEPOINT, 0, SEC_NONE),
    ("raw_tracepoint.s+", C.BPF_PROG_TYPE_RAW_TRACEPOINT, 0, SEC_SLEEPABLE),
    ("raw_tp.s+", C.BPF_PROG_TYPE_RAW_TRACEPOINT, 0, SEC_SLEEPABLE),
    ("raw_tracepoint.w+", C.BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE, 0, SEC_NONE),
    ("raw_tp.w+", C.BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE, 0, SEC_NONE),
    ("tp_btf+", C.BPF_PROG_TYPE_TRACING, C.BPF_TRACE_RAW_TP, SEC_ATTACH_BTF),
    ("tp_btf.s+", C.BPF_PROG_TYPE_TRACING, C.BPF_TRACE_RAW_TP, SEC_ATTACH_BTF | SEC_SLEEPABLE),
    ("fentry+", C.BPF_PROG_TYPE_TRACING, C.BPF_TRACE_FENTRY, SEC_ATTACH_BTF),
    ("fmod_ret+", C.BPF_PROG_TYPE_TRACING, C.BPF_MODIFY_RETURN, SEC_ATTACH_BTF),
    ("fexit+", C.BPF_PROG_TYPE_TRACING, C.BPF_TRACE_FEXIT, SEC_ATTACH_BTF),
    ("fentry.s+", C.BPF_PROG_TYPE_TRACING, C.BPF_TRACE_FENTRY, SEC_ATTACH_BTF | SEC_SLEEPABLE),
    ("fmod_ret.s+", C.BPF_PROG_TYPE_TRACING, C.BPF_MODIFY_RETURN, SEC_ATTACH_BTF | SEC_SLEEPABLE),
    ("fexit.s+", C.BPF_PROG_TYPE_TRACING, C.BPF_TRACE_FEXIT, SEC_ATTACH_BTF | SEC_SLEEPABLE),
    ("freplace+", C.BPF_PROG_TYPE_EXT, 0, SEC_ATTACH_BTF),
    ("lsm+", C.BPF_PROG_TYPE_LSM, C.BPF_LSM_MAC, SEC_ATTACH_BTF),
    ("lsm.s+", C.BPF_PROG_TYPE_LSM, C.BPF_LSM_MAC, SEC_ATTACH_BTF | SEC_SLEEPABLE),
    ("lsm_cgroup+", C.BPF_PROG_TYPE_LSM, C.BPF_LSM_CGROUP, SEC_ATTACH_BTF),
    ("iter+", C.BPF_PROG_TYPE_TRACING, C.BPF_TRACE_ITER, SEC_ATTACH_BTF),
    ("iter.s+", C.BPF_PROG_TYPE_TRACING, C.BPF_TRACE_ITER, SEC_ATTACH_BTF | SEC_SLEEPABLE),
    ("syscall", C.BPF_PROG_TYPE_SYSCALL, 0, SEC_SLEEPABLE),
    ("xdp.frags/devmap", C.BPF_PROG_TYPE_XDP, C.BPF_XDP_DEVMAP, SEC_XDP_FRAGS),
    ("xdp/devmap", C.BPF_PROG_TYPE_XDP, C.BPF_XDP_DEVMAP, SEC_ATTACHABLE),
    ("xdp.frags/cpumap", C.BPF_PROG_TYPE_XDP, C.BPF_XDP_CPUMAP, SEC_XDP_FRAGS),
    ("xdp/cpumap", C.BPF_PROG_TYPE_XDP, C.BPF_XDP_CPUMAP, SEC_ATTACHABLE),
    ("xdp.frags", C.BPF_PROG_TYPE_XDP, C.BPF_XDP, SEC_XDP_FRAGS),
    ("xdp", C.BPF_PROG_TYPE_XDP, C.BPF_XDP, SEC_ATTACHABLE_OPT),
    ("perf_event", C.BPF_PROG_TYPE_PERF_EVENT, 0, SEC_NONE),
    ("lwt_in", C.BPF_PROG_TYPE_LWT_IN, 0, SEC_NONE),
    ("lwt_out", C.BPF_PROG_TYPE_LWT_OUT, 0, SEC_NONE),
    ("lwt_xmit", C.BPF_PROG_TYPE_LWT_XMIT, 0, SEC_NONE),
    ("lwt_seg6local", C.BPF_PROG_TYPE_LWT_SEG6LOCAL, 0, SEC_NONE),
    ("sockops", C.BPF_PROG_TYPE_SOCK_OPS, C.BPF_CGROUP_SOCK_OPS, SEC_ATTACHABLE_OPT),
    ("sk_skb/stream_parser",
     C.BPF_PROG_TYPE_SK_SKB, C.BPF_SK_SKB_STREAM_PARSER, SEC_ATTACHABLE_OPT),
    ("sk_skb/stream_verdict",
     C.BPF_PROG_TYPE_SK_SKB, C.BPF_SK_SKB_STREAM_VERDICT, SEC_ATTACHABLE_OPT),
    ("sk_skb/verdict", C.BPF_PROG_TYPE_SK_SKB, C.BPF_SK_SKB_VERDICT, SEC_ATTACHABLE_OPT),
    ("sk_skb", C.BPF_PROG_TYPE_SK_SKB, 0, SEC_NONE),
    ("sk_msg", C.BPF_PROG_TYPE_SK_MSG, C.BPF_SK_MSG_VERDICT, SEC_ATTACHABLE_OPT),
    ("lirc_mode2", C.BPF_PROG_TYPE_LIRC_MODE2, C.BPF_LIRC_MODE2, SEC_ATTACHABLE_OPT),
    ("flow_dissector", C.BPF_PROG_TYPE_FLOW_DISSECTOR, C.BPF_FLOW_DISSECTOR, SEC_ATTACHABLE_OPT),
    ("cgroup_skb/ingress",
     C.BPF_PROG_TYPE_CGROUP_SKB, C.BPF_CGROUP_INET_INGRESS, SEC_ATTACHABLE_OPT),
    ("cgroup_skb/egress",
     C.BPF_PROG_TYPE_CGROUP_SKB, C.BPF_CGROUP_INET_EGRESS, SEC_ATTACHABLE_OPT),
    ("cgroup/skb", C.BPF_PROG_TYPE_CGROUP_SKB, 0, SEC_NONE),
    ("cgroup/sock_create",
     C.BPF_PROG_TYPE_CGROUP_SOCK, C.BPF_CGROUP_INET_SOCK_CREATE, SEC_ATTACHABLE),
    ("cgroup/sock_release",
     C.BPF_PROG_TYPE_CGROUP_SOCK, C.BPF_CGROUP_INET_SOCK_RELEASE, SEC_ATTACHABLE),
    ("cgroup/sock",
     C.BPF_PROG_TYPE_CGROUP_SOCK, C.BPF_CGROUP_INET_SOCK_CREATE, SEC_ATTACHABLE_OPT),
    ("cgroup/post_bind4",
     C.BPF_PROG_TYPE_CGROUP_SOCK, C.BPF_CGROUP_INET4_POST_BIND, SEC_ATTACHABLE),
    ("cgroup/post_bind6",
     C.BPF_PROG_TYPE_CGROUP_SOCK, C.BPF_CGROUP_INET6_POST_BIND, SEC_ATTACHABLE),
    ("cgroup/bind4", C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, C.BPF_CGROUP_INET4_BIND, SEC_ATTACHABLE),
    ("cgroup/bind6", C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, C.BPF_CGROUP_INET6_BIND, SEC_ATTACHABLE),
    ("cgroup/connect4",
     C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, C.BPF_CGROUP_INET4_CONNECT, SEC_ATTACHABLE),
    ("cgroup/connect6",
     C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, C.BPF_CGROUP_INET6_CONNECT, SEC_ATTACHABLE),
    ("cgroup/connect_unix",
     C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, C.BPF_CGROUP_UNIX_CONNECT, SEC_ATTACHABLE),
    ("cgroup/sendmsg4",
     C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, C.BPF_CGROUP_UDP4_SENDMSG, SEC_ATTACHABLE),
    ("cgroup/sendmsg6",
     C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, C.BPF_CGROUP_UDP6_SENDMSG, SEC_ATTACHABLE),
    ("cgroup/sendmsg_unix",
     C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, C.BPF_CGROUP_UNIX_SENDMSG, SEC_ATTACHABLE),
    ("cgroup/recvmsg4",
     C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, C.BPF_CGROUP_UDP4_RECVMSG, SEC_ATTACHABLE),
    ("cgroup/recvmsg6",
     C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, C.BPF_CGROUP_UDP6_RECVMSG, SEC_ATTACHABLE),
    ("cgroup/recvmsg_unix",
     C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, C.BPF_CGROUP_UNIX_RECVMSG, SEC_ATTACHABLE),
    ("cgroup/getpeername4",
     C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, C.BPF_CGROUP_INET4_GETPEERNAME, SEC_ATTACHABLE),
    ("cgroup/getpeername6",
     C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, C.BPF_CGROUP_INET6_GETPEERNAME, SEC_ATTACHABLE),
    ("cgroup/getpeername_unix",
     C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, C.BPF_CGROUP_UNIX_GETPEERNAME, SEC_ATTACHABLE),
    ("cgroup/getsockname4",
     C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, C.BPF_CGROUP_INET4_GETSOCKNAME, SEC_ATTACHABLE),
    ("cgroup/getsockname6",
     C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, C.BPF_CGROUP_INET6_GETSOCKNAME, SEC_ATTACHABLE),
    ("cgroup/getsockname_unix",
     C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, C.BPF_CGROUP_UNIX_GETSOCKNAME, SEC_ATTACHABLE),
    ("cgroup/sysctl", C.BPF_PROG_TYPE_CGROUP_SYSCTL, C.BPF_CGROUP_SYSCTL, SEC_ATTACHABLE),
    ("cgroup/getsockopt", C.BPF_PROG_TYPE_CGROUP_SOCKOPT, C.BPF_CGROUP_GETSOCKOPT, SEC_ATTACHABLE),
    ("cgroup/setsockopt", C.BPF_PROG_TYPE_CGROUP_SOCKOPT, C.BPF_CGROUP_SETSOCKOPT, SEC_ATTACHABLE),
    ("cgroup/dev", C.BPF_PROG_TYPE_CGROUP_DEVICE, C.BPF_CGROUP_DEVICE, SEC_ATTACHABLE_OPT),
    ("struct_ops+", C.BPF_PROG_TYPE_STRUCT_OPS, 0, SEC_NONE),
    ("struct_ops.s+", C.BPF_PROG_TYPE_STRUCT_OPS, 0, SEC_SLEEPABLE),
    ("sk_lookup", C.BPF_PROG_TYPE_SK_LOOKUP, C.BPF_SK_LOOKUP, SEC_ATTACHABLE),
    ("netfilter", C.BPF_PROG_TYPE_NETFILTER, C.BPF_NETFILTER, SEC_NONE),
)


class SecDef(NamedTuple):
    """The outcome of matching one section name against the table."""

    prefix: str             # the table entry, e.g. 'tracepoint+'
    prog_type: int          # BPF_PROG_TYPE_*
    expected_attach_type: int  # BPF_* attach type, 0 when the entry has none
    flags: int              # SEC_* bits
    attach_target: str      # what follows 'prefix/' ('' for exact entries)


def _matches(pattern: str, sec_name: str) -> Optional[str]:
    """libbpf's ``sec_def_matches``; returns the attach target on a match.

    ``x/`` needs the prefix; ``x+`` is exactly ``x`` or ``x/...``; anything
    else must be equal.  ``kprobe+`` thus does not claim ``kprobe.multi/f``.
    """
    last = pattern[-1]
    if last == "/":
        return sec_name[len(pattern):] if sec_name.startswith(pattern) else None
    if last == "+":
        stem = pattern[:-1]
        if not sec_name.startswith(stem):
            return None
        rest = sec_name[len(stem):]
        if not rest:
            return ""
        return rest[1:] if rest[0] == "/" else None
    return "" if sec_name == pattern else None


def match_section(sec_name: str) -> Optional[SecDef]:
    """Find the table entry for a SEC() name (without a leading '?').

    None means libbpf would not recognise the name: such a program keeps
    prog type UNSPEC and fails at load with "missing BPF prog type".
    """
    for pattern, ptype, atype, flags in _TABLE:
        target = _matches(pattern, sec_name)
        if target is not None:
            return SecDef(pattern, ptype, atype, flags, target)
    return None
