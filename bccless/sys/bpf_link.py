"""``bpf(2)`` commands that attach programs or run them: links, legacy attach, test runs.

BPF_LINK_CREATE's attr ends in a union whose meaning depends on the attach
type; :func:`link_create` picks the member from the attach type the way the
kernel reads it (``link_create()`` in kernel/bpf/syscall.c) and takes the
member's fields as keyword arguments, so callers never pack the union.
"""
from __future__ import annotations

import os

from bccless.sys import bpf_consts as C
from bccless.sys.bpf_call import sys_bpf, sys_bpf_fd
from bccless.sys.ffi import ffi

_new = ffi.new
_buf = ffi.from_buffer
_NULL = ffi.NULL

# Attach types that select a link_create union member.
_TRACING = frozenset({C.BPF_TRACE_RAW_TP, C.BPF_TRACE_FENTRY, C.BPF_TRACE_FEXIT,
                      C.BPF_MODIFY_RETURN, C.BPF_LSM_MAC})
_TRACE_ITER = C.BPF_TRACE_ITER
_PERF_EVENT = C.BPF_PERF_EVENT
_KPROBE_MULTI = frozenset({C.BPF_TRACE_KPROBE_MULTI, C.BPF_TRACE_KPROBE_SESSION})
_NETFILTER = C.BPF_NETFILTER
_UPROBE_MULTI = frozenset({C.BPF_TRACE_UPROBE_MULTI, C.BPF_TRACE_UPROBE_SESSION})
_RELATIVE = frozenset({C.BPF_TCX_INGRESS, C.BPF_TCX_EGRESS, C.BPF_NETKIT_PRIMARY,
                       C.BPF_NETKIT_PEER})
_RELATIVE_ARGS = frozenset({"relative_fd", "relative_id", "expected_revision"})


def link_create(prog_fd: int, target_fd: int, attach_type: int, *, flags: int = 0,
                target_btf_id: int = 0, bpf_cookie: int = 0, **kind_specific: object) -> int:
    """BPF_LINK_CREATE; returns the link fd (closing it detaches, unless pinned).

    ``target_fd`` is the perf event fd, cgroup fd, ifindex (XDP, tcx, netkit),
    netns fd, or 0.  ``bpf_cookie`` goes to perf_event links and tracing links
    (fentry/fexit/tp_btf/lsm).  Keyword arguments by attach type:

    * BPF_TRACE_ITER: ``iter_info`` (bytes of ``union bpf_iter_link_info``)
    * kprobe_multi/session: ``syms`` (names) or ``addrs``, ``cookies``, ``multi_flags``
    * uprobe_multi/session: ``path``, ``offsets``, ``ref_ctr_offsets``, ``cookies``,
      ``pid``, ``multi_flags``
    * tcx, netkit and (kernel 6.15+) cgroup: ``relative_fd`` or ``relative_id``
      (sets BPF_F_ID), ``expected_revision``
    * BPF_NETFILTER: ``pf``, ``hooknum``, ``priority``, ``netfilter_flags``
    """
    a = _new("struct bpf_link_create_attr *")
    a.prog_fd = prog_fd
    a.target_fd = target_fd
    a.attach_type = attach_type
    keep: list[object] = []
    kw = dict(kind_specific)
    u = a.u
    if attach_type == _PERF_EVENT:
        u.perf_event.bpf_cookie = bpf_cookie
    elif attach_type in _TRACING:
        u.tracing.target_btf_id = target_btf_id
        u.tracing.cookie = bpf_cookie
    elif attach_type == _TRACE_ITER:
        info = kw.pop("iter_info", b"")
        if info:
            keep.append(_buf(info))
            u.iter.iter_info = keep[-1]
            u.iter.iter_info_len = len(info)
    elif attach_type in _KPROBE_MULTI:
        m = u.kprobe_multi
        syms, addrs, cookies = kw.pop("syms", None), kw.pop("addrs", None), kw.pop("cookies", None)
        m.flags = kw.pop("multi_flags", 0)
        m.cnt = len(syms or addrs or ())
        if syms:
            names = [_new("char[]", s.encode()) for s in syms]
            keep += names
            keep.append(_new("char *[]", names))
            m.syms = keep[-1]
        if addrs:
            keep.append(_new("uint64_t[]", addrs))
            m.addrs = keep[-1]
        if cookies:
            keep.append(_new("uint64_t[]", cookies))
            m.cookies = keep[-1]
    elif attach_type in _UPROBE_MULTI:
        m = u.uprobe_multi
        keep.append(_new("char[]", os.fsencode(kw.pop("path"))))
        m.path = keep[-1]
        offsets = kw.pop("offsets")
        m.cnt = len(offsets)
        keep.append(_new("uint64_t[]", offsets))
        m.offsets = keep[-1]
        for field in ("ref_ctr_offsets", "cookies"):
            vals = kw.pop(field, None)
            if vals:
                keep.append(_new("uint64_t[]", vals))
                setattr(m, field, keep[-1])
        m.flags = kw.pop("multi_flags", 0)
        m.pid = kw.pop("pid", 0)
    elif attach_type == _NETFILTER:
        n = u.netfilter
        n.pf, n.hooknum = kw.pop("pf"), kw.pop("hooknum")
        n.priority, n.flags = kw.pop("priority", 0), kw.pop("netfilter_flags", 0)
    elif attach_type in _RELATIVE or not _RELATIVE_ARGS.isdisjoint(kw):
        if "relative_id" in kw:
            flags |= C.BPF_F_ID
            u.rel.relative_fd = kw.pop("relative_id")
        else:
            u.rel.relative_fd = kw.pop("relative_fd", 0)
        u.rel.expected_revision = kw.pop("expected_revision", 0)
    else:
        u.target_btf_id = target_btf_id
    if kw:
        raise TypeError(f"link_create: arguments {sorted(kw)} do not apply to attach type "
                        f"{attach_type}")
    a.flags = flags
    return sys_bpf_fd(C.BPF_LINK_CREATE, a, ffi.sizeof(a[0]))


def link_detach(link_fd: int) -> None:
    """BPF_LINK_DETACH: detach now; the fd stays valid (and defunct) until closed."""
    a = _new("struct bpf_u32_attr *", {"value": link_fd})
    sys_bpf(C.BPF_LINK_DETACH, a, ffi.sizeof(a[0]))


def raw_tracepoint_open(name: str | None, prog_fd: int) -> int:
    """BPF_RAW_TRACEPOINT_OPEN; ``name=None`` for tp_btf/fentry-style programs
    whose target is already fixed by ``attach_btf_id``.  Returns a link fd."""
    a = _new("struct bpf_raw_tp_attr *")
    if name is not None:
        n = _new("char[]", name.encode())
        a.name = n
    a.prog_fd = prog_fd
    return sys_bpf_fd(C.BPF_RAW_TRACEPOINT_OPEN, a, ffi.sizeof(a[0]))


def prog_attach(prog_fd: int, target_fd: int, attach_type: int, flags: int = 0,
                replace_prog_fd: int = 0) -> None:
    """BPF_PROG_ATTACH (cgroup, sockmap, flow dissector, lirc ...): no link object."""
    a = _new("struct bpf_prog_attach_attr *")
    a.target_fd = target_fd
    a.attach_bpf_fd = prog_fd
    a.attach_type = attach_type
    a.attach_flags = flags
    a.replace_bpf_fd = replace_prog_fd
    sys_bpf(C.BPF_PROG_ATTACH, a, ffi.sizeof(a[0]))


def prog_detach(target_fd: int, attach_type: int, prog_fd: int = 0) -> None:
    """BPF_PROG_DETACH of ``prog_fd`` (or the only program) from ``target_fd``."""
    a = _new("struct bpf_prog_attach_attr *")
    a.target_fd = target_fd
    a.attach_bpf_fd = prog_fd
    a.attach_type = attach_type
    sys_bpf(C.BPF_PROG_DETACH, a, ffi.sizeof(a[0]))


def prog_test_run(prog_fd: int, data_in: bytes = b"", *, repeat: int = 1, ctx_in: bytes = b"",
                  data_size_out: int = 0) -> tuple[int, bytes, int]:
    """BPF_PROG_TEST_RUN; returns (retval, data_out, duration in ns per run).

    The output buffer is ``data_size_out`` bytes, by default the input size plus
    room for XDP/skb head adjustments.  The kernel would copy without bound if
    the size were left 0, so it is always set.
    """
    a = _new("struct bpf_test_run_attr *")
    keep = []
    a.prog_fd = prog_fd
    a.repeat = repeat
    if data_in:
        keep.append(_buf(data_in))
        a.data_in = keep[-1]
        a.data_size_in = len(data_in)
    out_size = data_size_out or (len(data_in) + 512 if data_in else 0)
    out = _new("char[]", out_size) if out_size else None
    if out is not None:
        a.data_out = out
        a.data_size_out = out_size
    if ctx_in:
        keep.append(_buf(ctx_in))
        a.ctx_in = keep[-1]
        a.ctx_size_in = len(ctx_in)
    sys_bpf(C.BPF_PROG_TEST_RUN, a, ffi.sizeof(a[0]))
    data_out = ffi.unpack(out, min(a.data_size_out, out_size)) if out is not None else b""
    return a.retval, data_out, a.duration


def iter_create(link_fd: int) -> int:
    """BPF_ITER_CREATE: a readable fd producing the iterator program's output."""
    a = _new("uint32_t[2]", [link_fd, 0])   # link_fd, flags
    return sys_bpf_fd(C.BPF_ITER_CREATE, a, ffi.sizeof(a))


def prog_bind_map(prog_fd: int, map_fd: int) -> None:
    """BPF_PROG_BIND_MAP: keep ``map_fd`` alive as long as the program (e.g. .rodata)."""
    a = _new("uint32_t[3]", [prog_fd, map_fd, 0])
    sys_bpf(C.BPF_PROG_BIND_MAP, a, ffi.sizeof(a))


def enable_stats(stat_type: int) -> int:
    """BPF_ENABLE_STATS (BPF_STATS_RUN_TIME): stats stay on while the fd is open."""
    a = _new("struct bpf_u32_attr *", {"value": stat_type})
    return sys_bpf_fd(C.BPF_ENABLE_STATS, a, ffi.sizeof(a[0]))
