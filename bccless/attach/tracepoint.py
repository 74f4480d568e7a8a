"""Tracepoints, raw tracepoints and BTF-targeted programs (tp_btf, fentry/fexit, fmod_ret, LSM, iter).

Perf-event based attachments (tracepoints here, kprobes and uprobes in their
modules) share :func:`link_perf_event`: a BPF perf link where the kernel has
one (5.15+), which also carries a bpf_cookie, else the older
PERF_EVENT_IOC_SET_BPF + ENABLE ioctls.  BTF-targeted programs already name
their target through ``attach_btf_id`` at load time; attaching them only
creates the link.
"""
from __future__ import annotations

import errno
import os
from typing import Optional, Sequence, Tuple

from ..errors import AttachError
from ..lazylog import LazyLogger
from .link import Link, close_on_error, release
from .tracefs import tracepoint_id

log = LazyLogger(__name__)

# Kernels without perf links answer BPF_LINK_CREATE(BPF_PERF_EVENT) with one of these.
_NO_LINK_ERRNOS = frozenset({errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EBADF,
                             524})  # 524: ENOTSUPP, the kernel-internal "not supported"
_perf_link_ok: Optional[bool] = None


def split_tracepoint(tp: str, name: Optional[str] = None) -> Tuple[str, str]:
    """('syscalls', 'sys_enter_getppid') from 'syscalls:sys_enter_getppid', 'syscalls/...' or two args."""
    if name is not None:
        return tp, name
    for sep in (":", "/"):
        if sep in tp:
            cat, _, ev = tp.partition(sep)
            if cat and ev:
                return cat, ev
    raise AttachError(f"tracepoint '{tp}' is not of the form category:event")


def link_perf_event(prog_fd: int, perf_fd: int, kind: str, target: str, *,
                    bpf_cookie: int = 0, prog_name: str = "",
                    undo: Sequence[object] = ()) -> Link:
    """Attach a loaded program to an opened perf event; the Link owns ``perf_fd`` (and ``undo``).

    On any failure ``perf_fd`` is closed and ``undo`` steps are run, so callers
    hand over ownership at the call.
    """
    global _perf_link_ok
    from ..sys import bpf, bpf_consts, perf

    try:
        if _perf_link_ok is not False:
            try:
                link_fd = bpf.link_create(prog_fd, perf_fd, bpf_consts.BPF_PERF_EVENT,
                                          bpf_cookie=bpf_cookie)
            except OSError as exc:
                if exc.errno not in _NO_LINK_ERRNOS or _perf_link_ok:
                    raise
                _perf_link_ok = False
                log.debug("no BPF perf links (%s): using PERF_EVENT_IOC_SET_BPF", exc.strerror)
            else:
                _perf_link_ok = True
                return Link(kind, target, fd=link_fd, bpf_link=True, fds=[perf_fd, link_fd],
                            undo=undo, prog_name=prog_name)
        if bpf_cookie:
            raise AttachError(f"{kind} {target}: bpf_cookie needs BPF perf links (kernel 5.15+)")
        perf.perf_event_set_bpf(perf_fd, prog_fd)
        perf.perf_event_enable(perf_fd)
        return Link(kind, target, fd=perf_fd, fds=[perf_fd], undo=undo, prog_name=prog_name)
    except BaseException as exc:
        close_on_error([perf_fd])
        for step in reversed(list(undo)):
            release(step)
        if isinstance(exc, OSError):
            raise AttachError(f"cannot attach {prog_name or 'program'} to {kind} {target}: "
                              f"{os.strerror(exc.errno or 0)}") from exc
        raise


def attach_tracepoint(prog_fd: int, tp: str, name: Optional[str] = None, *,
                      bpf_cookie: int = 0, prog_name: str = "") -> Link:
    """Attach a BPF_PROG_TYPE_TRACEPOINT program to ``category:event``."""
    from ..sys import perf

    cat, ev = split_tracepoint(tp, name)
    target = f"{cat}:{ev}"
    tp_id = tracepoint_id(cat, ev)
    try:
        pfd = perf.perf_event_open(perf.PERF_TYPE_TRACEPOINT, tp_id, pid=-1, cpu=0)
    except OSError as exc:
        raise AttachError(f"tracepoint {target}: perf_event_open failed: {exc.strerror}") from exc
    return link_perf_event(prog_fd, pfd, "tracepoint", target, bpf_cookie=bpf_cookie,
                           prog_name=prog_name)


def attach_raw_tracepoint(prog_fd: int, name: str, *, prog_name: str = "") -> Link:
    """Attach a BPF_PROG_TYPE_RAW_TRACEPOINT program to the bare event name (``sched_switch``)."""
    from ..sys import bpf

    try:
        fd = bpf.raw_tracepoint_open(name, prog_fd)
    except OSError as exc:
        raise AttachError(f"cannot attach {prog_name or 'program'} to raw tracepoint {name}: "
                          f"{exc.strerror}") from exc
    return Link("raw_tracepoint", name, fd=fd, bpf_link=True, prog_name=prog_name)


def attach_btf(prog_fd: int, attach_type: int, *, target: str = "", bpf_cookie: int = 0,
               prog_name: str = "") -> Link:
    """Link a tp_btf/fentry/fexit/fmod_ret/LSM program loaded with ``attach_btf_id``.

    BPF_LINK_CREATE is tried first (it carries a cookie); kernels before 5.x
    only know BPF_RAW_TRACEPOINT_OPEN with a NULL name for these.
    """
    from ..sys import bpf

    what = f"{prog_name or 'program'} to {target or 'its BTF target'}"
    try:
        fd = bpf.link_create(prog_fd, 0, attach_type, bpf_cookie=bpf_cookie)
    except OSError as exc:
        if exc.errno not in _NO_LINK_ERRNOS or bpf_cookie:
            raise AttachError(f"cannot attach {what}: {exc.strerror}") from exc
        try:
            fd = bpf.raw_tracepoint_open(None, prog_fd)
        except OSError as exc2:
            raise AttachError(f"cannot attach {what}: {exc2.strerror}") from exc2
    return Link(_btf_kind(attach_type), target, fd=fd, bpf_link=True, prog_name=prog_name)


def _btf_kind(attach_type: int) -> str:
    from ..sys import bpf_consts as c

    return {c.BPF_TRACE_RAW_TP: "tp_btf", c.BPF_TRACE_FENTRY: "fentry",
            c.BPF_TRACE_FEXIT: "fexit", c.BPF_MODIFY_RETURN: "fmod_ret",
            c.BPF_LSM_MAC: "lsm"}.get(attach_type, "tracing")


def attach_iter(prog_fd: int, *, iter_info: bytes = b"", target: str = "",
                prog_name: str = "") -> Link:
    """Create an iterator link; read its output through :func:`open_iter`."""
    from ..sys import bpf, bpf_consts

    try:
        fd = bpf.link_create(prog_fd, 0, bpf_consts.BPF_TRACE_ITER, iter_info=iter_info)
    except OSError as exc:
        raise AttachError(f"cannot create iterator link for {prog_name or 'program'}"
                          f"{' (' + target + ')' if target else ''}: {exc.strerror}") from exc
    return Link("iter", target, fd=fd, bpf_link=True, prog_name=prog_name)


def open_iter(link: Link) -> int:
    """A new readable fd that runs the iterator program once from the start."""
    from ..sys import bpf

    try:
        return bpf.iter_create(link.fd)
    except OSError as exc:
        raise AttachError(f"cannot open iterator {link}: {exc.strerror}") from exc
