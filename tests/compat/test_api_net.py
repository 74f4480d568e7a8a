"""XDP (generic/SKB mode) and socket-filter programs on the loopback device,
counting UDP datagrams this test sends to a port it owns."""
import os
import socket

import pytest

from bcc import BPF

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="loading BPF programs needs root")

TEXT = r"""
#include <uapi/linux/if_ether.h>
#include <uapi/linux/ip.h>
#include <uapi/linux/udp.h>
BPF_ARRAY(pkts, u64, 2);

static __always_inline int to_port(void *data, void *end) {
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > end || eth->h_proto != htons(ETH_P_IP))
        return 0;
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_UDP)
        return 0;
    struct udphdr *udp = (void *)(ip + 1);
    if ((void *)(udp + 1) > end)
        return 0;
    return udp->dest == htons(PORT);
}

int xdp_count(struct xdp_md *ctx) {
    if (to_port((void *)(long)ctx->data, (void *)(long)ctx->data_end))
        pkts.increment(0);
    return XDP_PASS;
}

/* BCC's load_byte/load_half: packet loads in network order, returned in host order */
int sock_count(struct __sk_buff *skb) {
    if (load_half(skb, 12) != ETH_P_IP || load_byte(skb, 14 + 9) != IPPROTO_UDP)
        return 0;
    if (load_half(skb, 14 + 20 + 2) != PORT)
        return 0;
    pkts.increment(1);
    return -1;
}
"""


@pytest.fixture
def udp_port():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    yield rx, rx.getsockname()[1]
    rx.close()


def _send(port: int, n: int, rx) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        for i in range(n):
            tx.sendto(b"bccless%d" % i, ("127.0.0.1", port))
    for _ in range(n):
        rx.recv(64)


def test_xdp_on_lo_counts_and_detaches(udp_port):
    rx, port = udp_port
    with BPF(text=TEXT, cflags=["-DPORT=%d" % port]) as b:
        fn = b.load_func("xdp_count", BPF.XDP)
        assert BPF.XDP_FLAGS_SKB_MODE == 1 << 1 and BPF.XDP_PASS == 2
        BPF.attach_xdp("lo", fn, BPF.XDP_FLAGS_SKB_MODE)
        try:
            _send(port, 5, rx)
            assert b["pkts"][0].value == 5
        finally:
            BPF.remove_xdp("lo", BPF.XDP_FLAGS_SKB_MODE)
        _send(port, 3, rx)
        assert b["pkts"][0].value == 5


def test_raw_socket_filter_on_lo(udp_port):
    rx, port = udp_port
    with BPF(text=TEXT, cflags=["-DPORT=%d" % port]) as b:
        fn = b.load_func("sock_count", BPF.SOCKET_FILTER)
        BPF.attach_raw_socket(fn, "lo")
        raw = socket.fromfd(fn.sock, socket.PF_PACKET, socket.SOCK_RAW, socket.IPPROTO_IP)
        os.close(fn.sock)
        try:
            _send(port, 4, rx)
            got = []
            while True:
                try:
                    got.append(raw.recv(2048))
                except BlockingIOError:
                    break
        finally:
            raw.close()
        # lo shows every datagram twice to a packet socket: outgoing and incoming
        assert b["pkts"][1].value == 8
    assert len(got) == 8
    assert all(pkt[14 + 20 + 8:].startswith(b"bccless") for pkt in got)
