"""uprobes and uretprobes on user-space binaries and libraries, and uprobe.multi.

A uprobe is (inode, file offset): :mod:`.elfsym` finds the file and turns a
symbol or address into the offset.  The ``uprobe`` perf PMU takes the path
by pointer in config1 and the offset in config2; USDT semaphores ride along
as ``ref_ctr_offset``.  Kernels without the PMU get a legacy tracefs
``uprobe_events`` entry, removed again on close.  A pid limits the probe to
one process (perf_event_open pid argument); without one the probe fires in
every process that maps the file.
"""
from __future__ import annotations

import itertools
import logging
import os
from typing import Optional, Sequence

from ..errors import AttachError
from .elfsym import address_offset, find_symbols, normalize_pid, resolve_binary, symbol_offset
from .link import Link, MultiLink
from .tracefs import LegacyProbeEvent, pmu_format_field, pmu_type, sanitize_event_name
from .tracepoint import link_perf_event

log = logging.getLogger(__name__)

_counter = itertools.count()


def attach_uprobe_offset(prog_fd: int, path: str, offset: int, *, retprobe: bool = False,
                         pid: Optional[int] = None, ref_ctr_offset: int = 0, bpf_cookie: int = 0,
                         prog_name: str = "", what: str = "") -> Link:
    """Attach at a file offset of ``path`` (already resolved); the core of every user probe."""
    from ..sys import perf

    kind = "uretprobe" if retprobe else "uprobe"
    target = what or f"{path}:0x{offset:x}"
    pid = normalize_pid(pid)
    cpu = 0 if pid == -1 else -1
    uprobe_type = pmu_type("uprobe")
    if uprobe_type is not None:
        config = 0
        if retprobe:
            field = pmu_format_field("uprobe", "retprobe")
            if field is None:
                raise AttachError(f"{kind} {target}: uprobe PMU has no format/retprobe")
            config = 1 << field[1]
        if ref_ctr_offset and pmu_format_field("uprobe", "ref_ctr_offset") is None:
            raise AttachError(f"{kind} {target}: this kernel cannot maintain USDT semaphores "
                              "(no uprobe format/ref_ctr_offset, kernel 4.20+)")
        try:
            pfd = perf.perf_event_open(uprobe_type, config, config1=path, probe_offset=offset,
                                       ref_ctr_offset=ref_ctr_offset, pid=pid, cpu=cpu)
        except OSError as exc:
            raise AttachError(f"cannot create {kind} {target}"
                              f"{f' for pid {pid}' if pid != -1 else ''}: {exc.strerror}") from exc
        return link_perf_event(prog_fd, pfd, kind, target, bpf_cookie=bpf_cookie,
                               prog_name=prog_name)
    return _attach_legacy(prog_fd, path, offset, kind, target, retprobe, pid, cpu,
                          ref_ctr_offset, bpf_cookie, prog_name)


def _attach_legacy(prog_fd: int, path: str, offset: int, kind: str, target: str,
                   retprobe: bool, pid: int, cpu: int, ref_ctr_offset: int, bpf_cookie: int,
                   prog_name: str) -> Link:
    from ..sys import perf

    spec = f"{path}:0x{offset:x}" + (f"(0x{ref_ctr_offset:x})" if ref_ctr_offset else "")
    name = sanitize_event_name(f"{'r' if retprobe else 'p'}_{os.path.basename(path)}_"
                               f"0x{offset:x}_{os.getpid()}_{next(_counter)}")
    event = LegacyProbeEvent("uprobe_events", "r" if retprobe else "p", name, spec)
    try:
        pfd = perf.perf_event_open(perf.PERF_TYPE_TRACEPOINT, event.event_id(), pid=pid, cpu=cpu)
    except (OSError, AttachError) as exc:
        event.close()
        msg = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise AttachError(f"cannot open legacy {kind} event {target}: {msg}") from exc
    return link_perf_event(prog_fd, pfd, kind, target, bpf_cookie=bpf_cookie,
                           prog_name=prog_name, undo=[event])


def attach_uprobe(prog_fd: int, binary: str, sym: str = "", *, sym_off: int = 0,
                  addr: Optional[int] = None, retprobe: bool = False, pid: Optional[int] = None,
                  bpf_cookie: int = 0, prog_name: str = "") -> Link:
    """Attach to ``sym``+``sym_off`` or to virtual address ``addr`` in a binary or library.

    ``binary`` is a path, a library short name ("c") or an executable found in
    PATH; with a pid, that process's own mappings are searched first.
    """
    if addr is not None and (sym or sym_off):
        raise AttachError("uprobe: give either a symbol (with optional offset) or an address")
    if retprobe and sym_off:
        raise AttachError(f"uretprobe {binary}:{sym}: a return probe cannot have an offset")
    path = resolve_binary(binary, normalize_pid(pid) if pid else None)
    if addr is not None:
        offset, what = address_offset(path, addr), f"{path}:0x{addr:x}"
    elif sym:
        offset = symbol_offset(path, sym, sym_off)
        what = f"{path}:{sym}" + (f"+{sym_off}" if sym_off else "")
    else:
        raise AttachError(f"uprobe on {path}: no symbol or address given")
    return attach_uprobe_offset(prog_fd, path, offset, retprobe=retprobe, pid=pid,
                                bpf_cookie=bpf_cookie, prog_name=prog_name, what=what)


def attach_uprobe_regex(prog_fd: int, binary: str, pattern: str, *, retprobe: bool = False,
                        pid: Optional[int] = None, prog_name: str = "") -> MultiLink:
    """One probe per code symbol whose name ``re.match``es ``pattern`` (BCC's sym_re)."""
    path = resolve_binary(binary, normalize_pid(pid) if pid else None)
    matches = find_symbols(path, pattern)
    if not matches:
        raise AttachError(f"{path}: no function matches '{pattern}'")
    links = []
    seen = set()
    try:
        for name, offset in matches:
            if offset in seen:  # aliases share code: one probe per address
                continue
            seen.add(offset)
            links.append(attach_uprobe_offset(prog_fd, path, offset, retprobe=retprobe, pid=pid,
                                              prog_name=prog_name, what=f"{path}:{name}"))
    except BaseException:
        for link in links:
            link.close()
        raise
    return MultiLink(links)


def attach_uprobe_multi(prog_fd: int, binary: str, syms: Sequence[str], *,
                        retprobe: bool = False, pid: Optional[int] = None,
                        ref_ctr_offsets: Sequence[int] = (), cookies: Sequence[int] = (),
                        prog_name: str = "") -> Link:
    """One link for many functions (program loaded with BPF_TRACE_UPROBE_MULTI), kernel 6.6+."""
    from ..sys import bpf, bpf_consts

    path = resolve_binary(binary, normalize_pid(pid) if pid else None)
    offsets = [symbol_offset(path, s) for s in syms]
    target = f"{path}:{','.join(syms[:3])}" + ("..." if len(syms) > 3 else "")
    try:
        fd = bpf.link_create(prog_fd, 0, bpf_consts.BPF_TRACE_UPROBE_MULTI, path=path,
                             offsets=offsets, ref_ctr_offsets=list(ref_ctr_offsets) or None,
                             cookies=list(cookies) or None, pid=max(normalize_pid(pid), 0),
                             multi_flags=bpf_consts.BPF_F_UPROBE_MULTI_RETURN if retprobe else 0)
    except OSError as exc:
        raise AttachError(f"cannot attach {prog_name or 'program'} to uprobe.multi {target}: "
                          f"{exc.strerror}") from exc
    return Link("uprobe.multi", target, fd=fd, bpf_link=True, prog_name=prog_name)
