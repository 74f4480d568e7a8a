"""Networking attachments: XDP and tc on a veth pair, socket filters, cgroup_skb."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

import asm_helpers as A
from bccless.attach import net, netlink
from bccless.attach.tracefs import mounts
from bccless.sys import bpf_consts as C

XDP_PASS = 2
IFA, IFB = "bcclrt0", "bcclrt1"


def test_netlink_xdp_message_layout():
    msg = netlink.xdp_set_message(7, 12, netlink.XDP_FLAGS_SKB_MODE)
    # nlmsghdr(16) + ifinfomsg(16) + IFLA_XDP(4) + FD(8) + FLAGS(8)
    assert len(msg) == 52
    assert int.from_bytes(msg[0:4], "little") == 52
    assert int.from_bytes(msg[4:6], "little") == netlink.RTM_SETLINK
    assert int.from_bytes(msg[20:24], "little", signed=True) == 7          # ifi_index
    assert int.from_bytes(msg[34:36], "little") == netlink.IFLA_XDP | netlink.NLA_F_NESTED
    assert msg[36:48] == bytes.fromhex("0800 0100 0c000000 0800 0300".replace(" ", ""))
    assert int.from_bytes(msg[48:52], "little") == netlink.XDP_FLAGS_SKB_MODE


def test_netlink_ack_with_extended_message():
    hdr = (16 + 4 + 16 + 8 + 12).to_bytes(4, "little") + (2).to_bytes(2, "little") \
        + (netlink.NLM_F_CAPPED | netlink.NLM_F_ACK_TLVS).to_bytes(2, "little") + bytes(8)
    body = (-22).to_bytes(4, "little", signed=True) + bytes(16)
    tlv = (4 + 7).to_bytes(2, "little") + (1).to_bytes(2, "little") + b"no way\0" + b"\0"
    err, text = netlink.parse_ack(hdr + body + bytes(8)[:0] + tlv)
    assert err == 22 and text == "no way"


@pytest.fixture
def veth():
    subprocess.run(["ip", "link", "del", IFA], stderr=subprocess.DEVNULL, check=False)
    res = subprocess.run(["ip", "link", "add", IFA, "type", "veth", "peer", "name", IFB],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot create a veth pair: {res.stderr.strip()}")
    for dev in (IFA, IFB):
        # no IPv6 autoconfiguration traffic: the tests count every frame
        with open(f"/proc/sys/net/ipv6/conf/{dev}/disable_ipv6", "w") as f:
            f.write("1")
        subprocess.run(["ip", "link", "set", dev, "up"], check=True)
    yield IFA, IFB
    subprocess.run(["ip", "link", "del", IFA], check=False)


def _send_frames(dev, n):
    """Raw Ethernet frames out of ``dev``: they arrive on its veth peer."""
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
        s.bind((dev, 0))
        frame = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x88\xb5" + b"bccless-test".ljust(50, b"\0")
        for _ in range(n):
            s.send(frame)


@pytest.mark.parametrize("mode", ["link", "netlink"])
def test_xdp_generic_counts_frames(kernel, veth, mode):
    m = kernel.array()
    prog = kernel.prog(C.BPF_PROG_TYPE_XDP, A.count_into_array(m, ret=XDP_PASS))
    link = net.attach_xdp(prog, veth[1], netlink.XDP_FLAGS_SKB_MODE, mode=mode, prog_name="x")
    try:
        out = subprocess.run(["ip", "link", "show", veth[1]], capture_output=True, text=True).stdout
        assert "xdpgeneric" in out
        _send_frames(veth[0], 7)
    finally:
        link.close()
    assert kernel.read_u64(m) == 7
    out = subprocess.run(["ip", "link", "show", veth[1]], capture_output=True, text=True).stdout
    assert "xdp" not in out


@pytest.mark.parametrize("mode", ["tcx", "netlink"])
def test_tc_ingress_counts_frames(kernel, veth, mode):
    m = kernel.array()
    prog = kernel.prog(C.BPF_PROG_TYPE_SCHED_CLS, A.count_into_array(m, ret=0))
    link = net.attach_tc(prog, veth[1], ingress=True, mode=mode, prog_name="tc_test")
    try:
        if mode == "netlink":
            out = subprocess.run(["tc", "filter", "show", "dev", veth[1], "ingress"],
                                 capture_output=True, text=True).stdout
            assert "tc_test" in out and "direct-action" in out
        _send_frames(veth[0], 5)
    finally:
        link.close()
    assert kernel.read_u64(m) == 5
    qd = subprocess.run(["tc", "qdisc", "show", "dev", veth[1]], capture_output=True, text=True).stdout
    assert "clsact" not in qd
    _send_frames(veth[0], 2)
    assert kernel.read_u64(m) == 5


def test_socket_filter_counts_datagrams(kernel):
    m = kernel.array()
    prog = kernel.prog(C.BPF_PROG_TYPE_SOCKET_FILTER, A.count_into_array(m, ret=0xFFFF))
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    link = net.attach_socket_filter(prog, rx)
    for i in range(6):
        tx.sendto(b"x%d" % i, rx.getsockname())
    assert [rx.recv(10) for _ in range(6)] == [b"x%d" % i for i in range(6)]
    link.close()
    tx.sendto(b"late", rx.getsockname())
    assert rx.recv(10) == b"late"
    assert kernel.read_u64(m) == 6
    rx.close()
    tx.close()


def _cgroup2_root():
    for path, fstype in mounts().items():
        if fstype == "cgroup2":
            return path
    pytest.skip("no cgroup v2 hierarchy is mounted")


SENDER = """
import os, socket, sys
with open(sys.argv[1], "w") as f:
    f.write(str(os.getpid()))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(int(sys.argv[3])):
    s.sendto(b"p", ("127.0.0.1", int(sys.argv[2])))
"""


@pytest.mark.parametrize("mode", ["link", "attach"])
def test_cgroup_skb_egress(kernel, mode):
    cg = os.path.join(_cgroup2_root(), f"bccless_rt_{os.getpid()}_{mode}")
    os.mkdir(cg)
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    try:
        m = kernel.array()
        prog = kernel.prog(C.BPF_PROG_TYPE_CGROUP_SKB, A.count_into_array(m, ret=1),
                           expected_attach_type=C.BPF_CGROUP_INET_EGRESS)
        with net.attach_cgroup(prog, cg, C.BPF_CGROUP_INET_EGRESS, mode=mode):
            subprocess.run([sys.executable, "-c", SENDER, os.path.join(cg, "cgroup.procs"),
                            str(rx.getsockname()[1]), "9"], check=True)
            os.getppid()
            rx.sendto(b"not counted: this process is outside the cgroup", rx.getsockname())
        assert kernel.read_u64(m) == 9
    finally:
        rx.close()
        os.rmdir(cg)
