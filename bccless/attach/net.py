"""Networking attachments: XDP, tc (tcx or clsact + cls_bpf), socket filters, cgroup programs.

Each prefers a BPF link (XDP 5.9+, tcx 6.6+, cgroup 5.7+), which the kernel
detaches when its fd closes, so a crashed tool leaves nothing behind.  The
fallbacks (netlink IFLA_XDP, a clsact qdisc with a direct-action cls_bpf
filter, BPF_PROG_ATTACH) persist past the process, so their Link carries the
reverse operation and is in the clean-up registry.
"""
from __future__ import annotations

import errno
import logging
import os
import socket
from typing import Optional, Union

from ..errors import AttachError
from . import netlink as nl
from .link import Link

log = logging.getLogger(__name__)

SO_ATTACH_BPF = 50
SO_DETACH_BPF = 27  # == SO_DETACH_FILTER
_NO_LINK = frozenset({errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, 524})


def attach_xdp(prog_fd: int, dev: Union[str, int], flags: int = 0, *, mode: Optional[str] = None,
               prog_name: str = "") -> Link:
    """Attach an XDP program to a device.

    ``flags`` are XDP_FLAGS_* (SKB_MODE for generic XDP, DRV_MODE, HW_MODE,
    UPDATE_IF_NOEXIST).  ``mode`` 'link' or 'netlink' forces a mechanism;
    by default a BPF link is tried first.  UPDATE_IF_NOEXIST is inherent to
    links (one XDP link per device and mode), so it does not force netlink.
    """
    from ..sys import bpf, bpf_consts

    ifindex = nl.ifindex(str(dev))
    target = f"{dev} (ifindex {ifindex})"
    if mode not in (None, "link", "netlink"):
        raise ValueError(f"attach_xdp: mode must be 'link' or 'netlink', not {mode!r}")
    if mode != "netlink":
        try:
            fd = bpf.link_create(prog_fd, ifindex, bpf_consts.BPF_XDP,
                                 flags=flags & nl.XDP_FLAGS_MODES)
            return Link("xdp", target, fd=fd, bpf_link=True, prog_name=prog_name)
        except OSError as exc:
            if mode == "link" or exc.errno not in _NO_LINK:
                raise AttachError(f"cannot attach XDP program {prog_name} to {target}: "
                                  f"{exc.strerror}") from exc
            log.debug("XDP link on %s failed (%s); using netlink", target, exc.strerror)
    nl.request(nl.xdp_set_message(ifindex, prog_fd, flags),
               f"cannot attach XDP program {prog_name} to {target}")
    mode_flags = flags & nl.XDP_FLAGS_MODES

    def detach() -> None:
        nl.request(nl.xdp_set_message(ifindex, -1, mode_flags), f"detaching XDP from {target}",
                   ok_errnos=(errno.ENODEV,))
    return Link("xdp", target, undo=[detach], prog_name=prog_name)


def attach_tc(prog_fd: int, dev: Union[str, int], *, ingress: bool = True,
              mode: Optional[str] = None, priority: int = 1, handle: int = 1,
              prog_name: str = "") -> Link:
    """Attach a SCHED_CLS program (direct-action) on a device's ingress or egress.

    ``mode`` 'tcx' or 'netlink' forces a mechanism; by default tcx is tried
    first.  With netlink, a clsact qdisc is created if missing (and removed on
    close if we created it), then a cls_bpf filter with ``priority``/``handle``.
    """
    from ..sys import bpf, bpf_consts

    ifindex = nl.ifindex(str(dev))
    direction = "ingress" if ingress else "egress"
    target = f"{dev} {direction}"
    if mode not in (None, "tcx", "netlink"):
        raise ValueError(f"attach_tc: mode must be 'tcx' or 'netlink', not {mode!r}")
    if mode != "netlink":
        attach_type = bpf_consts.BPF_TCX_INGRESS if ingress else bpf_consts.BPF_TCX_EGRESS
        try:
            fd = bpf.link_create(prog_fd, ifindex, attach_type)
            return Link("tcx", target, fd=fd, bpf_link=True, prog_name=prog_name)
        except OSError as exc:
            if mode == "tcx" or exc.errno not in _NO_LINK:
                raise AttachError(f"cannot attach tc program {prog_name} to {target}: "
                                  f"{exc.strerror}") from exc
            log.debug("tcx link on %s failed (%s); using netlink", target, exc.strerror)
    created = nl.request(nl.clsact_message(ifindex), f"cannot create clsact qdisc on {dev}",
                         ok_errnos=(errno.EEXIST,)) == 0

    def delete_qdisc() -> None:
        nl.request(nl.clsact_message(ifindex, delete=True), f"removing clsact qdisc from {dev}",
                   ok_errnos=(errno.ENOENT, errno.EINVAL, errno.ENODEV))

    try:
        nl.request(nl.bpf_filter_message(ifindex, ingress, handle, priority, prog_fd,
                                         prog_name or "bccless"),
                   f"cannot add cls_bpf filter for {prog_name} on {target}")
    except AttachError:
        if created:
            delete_qdisc()
        raise

    def delete_filter() -> None:
        nl.request(nl.bpf_filter_message(ifindex, ingress, handle, priority, delete=True),
                   f"removing cls_bpf filter from {target}",
                   ok_errnos=(errno.ENOENT, errno.EINVAL, errno.ENODEV))
    undo = [delete_qdisc, delete_filter] if created else [delete_filter]
    return Link("tc", target, undo=undo, prog_name=prog_name)


def attach_socket_filter(prog_fd: int, sock: Union[socket.socket, int], *,
                         prog_name: str = "") -> Link:
    """SO_ATTACH_BPF a SOCKET_FILTER program; close() detaches it (the socket stays open)."""
    fd = sock if isinstance(sock, int) else sock.fileno()
    s = socket.socket(fileno=os.dup(fd))  # our own reference: the caller may close theirs
    try:
        s.setsockopt(socket.SOL_SOCKET, SO_ATTACH_BPF, prog_fd)
    except OSError as exc:
        s.close()
        raise AttachError(f"cannot attach socket filter {prog_name} to socket fd {fd}: "
                          f"{exc.strerror}") from exc

    def detach() -> None:
        try:
            s.setsockopt(socket.SOL_SOCKET, SO_DETACH_BPF, 0)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
    return Link("socket_filter", f"socket fd {fd}", undo=[s, detach], prog_name=prog_name)


def attach_cgroup(prog_fd: int, cgroup: Union[str, int], attach_type: int, *, flags: int = 0,
                  mode: Optional[str] = None, prog_name: str = "") -> Link:
    """Attach a cgroup program (cgroup_skb, sock, sockopt, sysctl, device ...).

    ``cgroup`` is a cgroup v2 directory or an open fd of one.  A BPF link is
    tried first (mode 'link'); 'attach' uses BPF_PROG_ATTACH with ``flags``
    (default BPF_F_ALLOW_MULTI) and detaches this program on close.
    """
    from ..sys import bpf, bpf_consts

    if isinstance(cgroup, int):
        cg_fd, target = os.dup(cgroup), f"cgroup fd {cgroup}"
    else:
        try:
            cg_fd = os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise AttachError(f"cannot open cgroup {cgroup}: {exc.strerror}") from exc
        target = cgroup
    if mode not in (None, "link", "attach"):
        os.close(cg_fd)
        raise ValueError(f"attach_cgroup: mode must be 'link' or 'attach', not {mode!r}")
    if mode != "attach":
        try:
            fd = bpf.link_create(prog_fd, cg_fd, attach_type, flags=flags)
            return Link("cgroup", target, fd=fd, bpf_link=True, fds=[cg_fd, fd],
                        prog_name=prog_name)
        except OSError as exc:
            if mode == "link" or exc.errno not in _NO_LINK:
                os.close(cg_fd)
                raise AttachError(f"cannot attach {prog_name or 'program'} to {target} "
                                  f"(attach type {attach_type}): {exc.strerror}") from exc
    own_prog = os.dup(prog_fd)  # BPF_PROG_DETACH names the program by fd at close time
    try:
        bpf.prog_attach(own_prog, cg_fd, attach_type, flags or bpf_consts.BPF_F_ALLOW_MULTI)
    except OSError as exc:
        os.close(own_prog)
        os.close(cg_fd)
        raise AttachError(f"cannot attach {prog_name or 'program'} to {target} "
                          f"(attach type {attach_type}): {exc.strerror}") from exc

    link = Link("cgroup", target, fds=[cg_fd, own_prog], prog_name=prog_name)
    link.add(lambda: bpf.prog_detach(cg_fd, attach_type, own_prog))  # runs before the closes
    return link
