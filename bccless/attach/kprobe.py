"""kprobes, kretprobes, ksyscall and kprobe.multi.

Mechanisms in libbpf's order of preference: the ``kprobe`` perf PMU (4.17+;
function name by pointer in config1, offset in config2, return probes by the
PMU's ``format/retprobe`` bit), else a legacy event written into tracefs
``kprobe_events`` and opened as a tracepoint.  ``maxactive`` exists only in
the legacy syntax (``r<N>:``), so it forces that path, as in BCC.

Support is decided by probing for those two entry points, never from
kallsyms: a kernel built without CONFIG_KPROBES still lists every function.
"""
from __future__ import annotations

import itertools
import logging
import os
import platform
from typing import Optional, Sequence

from ..errors import AttachError
from .link import Link
from .tracefs import (
    LegacyProbeEvent, pmu_format_field, pmu_type, sanitize_event_name, tracefs_root,
)
from .tracepoint import link_perf_event

log = logging.getLogger(__name__)

NO_KPROBES = "this kernel has no kprobe support (CONFIG_KPROBES is not set)"
_SYSCALL_PREFIX = {"x86_64": "__x64_", "aarch64": "__arm64_", "s390x": "__s390x_",
                   "ppc64le": "__powerpc_", "ppc64": "__powerpc_", "riscv64": "__riscv_"}
_counter = itertools.count()


def kprobe_events_file() -> Optional[str]:
    """Path of tracefs ``kprobe_events`` if this kernel has it."""
    try:
        path = os.path.join(tracefs_root(), "kprobe_events")
    except AttachError:
        return None
    return path if os.path.exists(path) else None


def kprobe_support() -> str:
    """'pmu', 'legacy' or '' (no kprobes at all), by probing."""
    if pmu_type("kprobe") is not None:
        return "pmu"
    return "legacy" if kprobe_events_file() else ""


def _require_kprobes() -> str:
    how = kprobe_support()
    if not how:
        raise AttachError(NO_KPROBES)
    return how


def attach_kprobe(prog_fd: int, func: str, offset: int = 0, *, retprobe: bool = False,
                  maxactive: int = 0, bpf_cookie: int = 0, prog_name: str = "") -> Link:
    """Attach a KPROBE program at kernel function ``func`` (+``offset``), or at its return."""
    how = _require_kprobes()
    kind = "kretprobe" if retprobe else "kprobe"
    target = f"{func}+{offset}" if offset else func
    if retprobe and offset:
        raise AttachError(f"{kind} {target}: a return probe cannot have an offset")
    from ..sys import perf

    if how == "pmu" and not maxactive:
        config = 0
        if retprobe:
            field = pmu_format_field("kprobe", "retprobe")
            if field is None:
                raise AttachError(f"{kind} {target}: kprobe PMU has no format/retprobe")
            config = 1 << field[1]
        try:
            pfd = perf.perf_event_open(pmu_type("kprobe"), config, config1=func,
                                       probe_offset=offset, pid=-1, cpu=0)
        except OSError as exc:
            raise AttachError(f"cannot create {kind} on {target}: {exc.strerror} (is it "
                              "traceable: not inlined, not notrace, not blacklisted?)") from exc
        return link_perf_event(prog_fd, pfd, kind, target, bpf_cookie=bpf_cookie,
                               prog_name=prog_name)
    if not kprobe_events_file():
        raise AttachError(f"{kind} {target}: maxactive needs tracefs kprobe_events, "
                          "which this kernel lacks")
    prefix = f"r{maxactive}" if retprobe and maxactive else ("r" if retprobe else "p")
    name = sanitize_event_name(f"{prefix[0]}_{func}_{offset:x}_{os.getpid()}_{next(_counter)}")
    event = LegacyProbeEvent("kprobe_events", prefix, name, target)
    try:
        pfd = perf.perf_event_open(perf.PERF_TYPE_TRACEPOINT, event.event_id(), pid=-1, cpu=0)
    except (OSError, AttachError) as exc:
        event.close()
        msg = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise AttachError(f"cannot open legacy {kind} event on {target}: {msg}") from exc
    return link_perf_event(prog_fd, pfd, kind, target, bpf_cookie=bpf_cookie,
                           prog_name=prog_name, undo=[event])


def syscall_prefix() -> str:
    """'__x64_' when syscalls are reached through pt_regs wrappers (4.17+), else ''.

    Looked up in kallsyms (function symbols are there even when data symbols
    are not), the way libbpf probes for the wrapper of bpf().
    """
    prefix = _SYSCALL_PREFIX.get(platform.machine(), "")
    if not prefix:
        return ""
    needle = f" {prefix}sys_bpf\n"
    try:
        with open("/proc/kallsyms") as f:
            for line in f:
                if line.endswith(needle) or line.endswith(needle[:-1]):
                    return prefix
    except OSError:
        pass
    return ""


def ksyscall_function(name: str) -> str:
    """The kernel function behind syscall ``name`` ('openat' -> '__x64_sys_openat')."""
    return f"{syscall_prefix()}sys_{name}"


def attach_ksyscall(prog_fd: int, name: str, *, retprobe: bool = False, bpf_cookie: int = 0,
                    prog_name: str = "") -> Link:
    """kprobe on a syscall by its name, through the arch wrapper when the kernel has one."""
    _require_kprobes()
    return attach_kprobe(prog_fd, ksyscall_function(name), retprobe=retprobe,
                         bpf_cookie=bpf_cookie, prog_name=prog_name)


def attach_kprobe_multi(prog_fd: int, funcs: Sequence[str], *, retprobe: bool = False,
                        cookies: Sequence[int] = (), prog_name: str = "") -> Link:
    """One link for many functions (program loaded with BPF_TRACE_KPROBE_MULTI), kernel 5.18+."""
    _require_kprobes()
    from ..sys import bpf, bpf_consts

    if not funcs:
        raise AttachError("kprobe.multi: no functions given")
    target = ",".join(funcs[:3]) + ("..." if len(funcs) > 3 else "")
    try:
        fd = bpf.link_create(prog_fd, 0, bpf_consts.BPF_TRACE_KPROBE_MULTI, syms=list(funcs),
                             cookies=list(cookies) or None,
                             multi_flags=bpf_consts.BPF_F_KPROBE_MULTI_RETURN if retprobe else 0)
    except OSError as exc:
        raise AttachError(f"cannot attach {prog_name or 'program'} to kprobe.multi {target}: "
                          f"{exc.strerror}") from exc
    return Link("kprobe.multi", target, fd=fd, bpf_link=True, prog_name=prog_name)
