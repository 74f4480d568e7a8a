"""Just enough rtnetlink to attach XDP and tc programs on kernels without BPF links for them.

Messages are built with struct into one bytes object and sent on a fresh
NETLINK_ROUTE socket; the kernel's ACK (with extended-ack text when it has
one) decides success.  Only the handful of messages bccless needs exist here:
set a link's XDP program, add/delete a clsact qdisc, add/delete a cls_bpf
filter in direct-action mode.
"""
from __future__ import annotations

import os
import socket
import struct
from typing import Tuple

from ..errors import AttachError

NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_EXT_ACK = 11

NLMSG_ERROR = 2
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_CAPPED = 0x100
NLM_F_ACK_TLVS = 0x200
NLMSGERR_ATTR_MSG = 1
NLA_F_NESTED = 0x8000

RTM_SETLINK = 19
RTM_NEWQDISC = 36
RTM_DELQDISC = 37
RTM_NEWTFILTER = 44
RTM_DELTFILTER = 45

IFLA_XDP = 43
IFLA_XDP_FD = 1
IFLA_XDP_FLAGS = 3
IFLA_XDP_EXPECTED_FD = 8

XDP_FLAGS_UPDATE_IF_NOEXIST = 1 << 0
XDP_FLAGS_SKB_MODE = 1 << 1
XDP_FLAGS_DRV_MODE = 1 << 2
XDP_FLAGS_HW_MODE = 1 << 3
XDP_FLAGS_REPLACE = 1 << 4
XDP_FLAGS_MODES = XDP_FLAGS_SKB_MODE | XDP_FLAGS_DRV_MODE | XDP_FLAGS_HW_MODE

TCA_KIND = 1
TCA_OPTIONS = 2
TCA_BPF_FD = 6
TCA_BPF_NAME = 7
TCA_BPF_FLAGS = 8
TCA_BPF_FLAG_ACT_DIRECT = 1

TC_H_CLSACT = 0xFFFFFFF1
TC_H_MIN_INGRESS = 0xFFF2
TC_H_MIN_EGRESS = 0xFFF3
ETH_P_ALL = 0x0003

_NLMSGHDR = struct.Struct("=IHHII")
_IFINFOMSG = struct.Struct("=BxHiII")
_TCMSG = struct.Struct("=BxxxiIII")
_NLATTR = struct.Struct("=HH")


def tc_h_make(major: int, minor: int) -> int:
    return (major & 0xFFFF0000) | (minor & 0x0000FFFF)


def attr(kind: int, payload: bytes) -> bytes:
    """One rtattr, padded to 4 bytes."""
    length = _NLATTR.size + len(payload)
    return _NLATTR.pack(length, kind) + payload + b"\0" * (-length % 4)


def attr_u32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=I", value & 0xFFFFFFFF))


def attr_s32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=i", value))


def attr_str(kind: int, value: str) -> bytes:
    return attr(kind, value.encode() + b"\0")


def nested(kind: int, *attrs: bytes) -> bytes:
    return attr(kind | NLA_F_NESTED, b"".join(attrs))


def message(msg_type: int, flags: int, body: bytes, seq: int = 1) -> bytes:
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), msg_type, flags | NLM_F_REQUEST, seq, 0) + body


def xdp_set_message(ifindex: int, prog_fd: int, flags: int, expected_fd: int = 0) -> bytes:
    """RTM_SETLINK carrying IFLA_XDP {FD, FLAGS[, EXPECTED_FD]}; prog_fd -1 detaches."""
    inner = [attr_s32(IFLA_XDP_FD, prog_fd)]
    if flags:
        inner.append(attr_u32(IFLA_XDP_FLAGS, flags))
    if expected_fd:
        inner.append(attr_s32(IFLA_XDP_EXPECTED_FD, expected_fd))
    body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, ifindex, 0, 0) + nested(IFLA_XDP, *inner)
    return message(RTM_SETLINK, NLM_F_ACK, body)


def clsact_message(ifindex: int, delete: bool = False) -> bytes:
    """RTM_NEWQDISC (exclusive create) or RTM_DELQDISC of the clsact qdisc."""
    body = _TCMSG.pack(socket.AF_UNSPEC, ifindex, tc_h_make(TC_H_CLSACT, 0), TC_H_CLSACT, 0)
    body += attr_str(TCA_KIND, "clsact")
    if delete:
        return message(RTM_DELQDISC, NLM_F_ACK, body)
    return message(RTM_NEWQDISC, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body)


def tc_parent(ingress: bool) -> int:
    return tc_h_make(TC_H_CLSACT, TC_H_MIN_INGRESS if ingress else TC_H_MIN_EGRESS)


def bpf_filter_message(ifindex: int, ingress: bool, handle: int, priority: int,
                       prog_fd: int = -1, prog_name: str = "", delete: bool = False) -> bytes:
    """RTM_NEWTFILTER/RTM_DELTFILTER of a cls_bpf filter (direct-action) on clsact."""
    info = tc_h_make(priority << 16, socket.htons(ETH_P_ALL))
    body = _TCMSG.pack(socket.AF_UNSPEC, ifindex, handle, tc_parent(ingress), info)
    body += attr_str(TCA_KIND, "bpf")
    if delete:
        return message(RTM_DELTFILTER, NLM_F_ACK, body)
    opts = [attr_u32(TCA_BPF_FD, prog_fd)]
    if prog_name:
        opts.append(attr_str(TCA_BPF_NAME, prog_name))
    opts.append(attr_u32(TCA_BPF_FLAGS, TCA_BPF_FLAG_ACT_DIRECT))
    body += nested(TCA_OPTIONS, *opts)
    return message(RTM_NEWTFILTER, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body)


def parse_ack(data: bytes) -> Tuple[int, str]:
    """(errno, extended-ack message) from an NLMSG_ERROR reply; errno 0 is success."""
    pos = 0
    while pos + _NLMSGHDR.size <= len(data):
        length, msg_type, flags, _seq, _pid = _NLMSGHDR.unpack_from(data, pos)
        if length < _NLMSGHDR.size:
            break
        if msg_type == NLMSG_ERROR:
            (err,) = struct.unpack_from("=i", data, pos + _NLMSGHDR.size)
            text = ""
            if flags & NLM_F_ACK_TLVS:
                orig_len = _NLMSGHDR.size
                if not flags & NLM_F_CAPPED:
                    (orig_len,) = struct.unpack_from("=I", data, pos + _NLMSGHDR.size + 4)
                text = _ext_ack_text(data, pos + _NLMSGHDR.size + 4 + _align4(orig_len), pos + length)
            return -err, text
        pos += _align4(length)
    raise AttachError("netlink: no acknowledgement in the kernel's reply")


def _ext_ack_text(data: bytes, pos: int, end: int) -> str:
    while pos + _NLATTR.size <= end:
        alen, atype = _NLATTR.unpack_from(data, pos)
        if alen < _NLATTR.size:
            break
        if atype & ~NLA_F_NESTED == NLMSGERR_ATTR_MSG:
            return data[pos + _NLATTR.size:pos + alen].split(b"\0", 1)[0].decode(errors="replace")
        pos += _align4(alen)
    return ""


def _align4(n: int) -> int:
    return (n + 3) & ~3


def request(msg: bytes, what: str, *, ok_errnos: Tuple[int, ...] = ()) -> int:
    """Send one request and wait for its ACK.  Returns 0 or an errno listed in ``ok_errnos``."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                       NETLINK_ROUTE) as sock:
        try:
            sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
        except OSError:
            pass  # older kernels: no extended ack text
        sock.bind((0, 0))
        sock.sendto(msg, (0, 0))
        reply = sock.recv(65536)
    err, text = parse_ack(reply)
    if err == 0 or err in ok_errnos:
        return err
    detail = f" ({text})" if text else ""
    raise AttachError(f"{what}: {os.strerror(err)}{detail}")


def ifindex(dev: str) -> int:
    """Interface index of a device name (an int or digit string is taken as an index)."""
    if dev.isdigit():
        return int(dev)
    try:
        return socket.if_nametoindex(dev)
    except OSError:
        raise AttachError(f"no such network device '{dev}'") from None

