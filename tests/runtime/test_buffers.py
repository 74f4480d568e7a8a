"""Perf buffer and ring buffer consumers against a tracepoint program on getppid()."""
from __future__ import annotations

import ctypes
import os
import struct

import pytest

import asm_helpers as A
from bccless.attach import tracepoint
from bccless.events.perfbuf import PerfBuffer
from bccless.events.ringbuf import RingBuf
from bccless.errors import MapError
from bccless.sys import bpf_consts as C
from bccless.sys import perf
from .conftest import open_fds


@pytest.fixture
def one_cpu():
    """Run on one CPU so a per-CPU perf ring sees every event, in order."""
    saved = os.sched_getaffinity(0)
    cpu = min(saved)
    os.sched_setaffinity(0, {cpu})
    yield cpu
    os.sched_setaffinity(0, saved)


def _emitter(kernel, ringbuf, out_fd, pad=0):
    counter = kernel.array(entries=1)
    prog = kernel.prog(C.BPF_PROG_TYPE_TRACEPOINT,
                       A.counter_to_buffer(counter, out_fd, ringbuf, tgid_filter=os.getpid(),
                                           pad=pad))
    return tracepoint.attach_tracepoint(prog, "syscalls:sys_enter_getppid")


def _fire(n):
    for _ in range(n):
        os.getppid()


def _perf_array(kernel):
    ncpu = max(perf.possible_cpus()) + 1
    return kernel.map(C.BPF_MAP_TYPE_PERF_EVENT_ARRAY, 4, 4, ncpu)


def test_perf_buffer_delivers_in_order(kernel, one_cpu):
    pmap = _perf_array(kernel)
    got = []
    pb = PerfBuffer(pmap, lambda cpu, data: got.append((cpu, data)), page_cnt=8)
    with _emitter(kernel, False, pmap):
        _fire(100)
        assert pb.poll(1000) > 0
        while pb.poll(0):
            pass
    pb.close()
    assert [struct.unpack_from("<Q", d)[0] for _, d in got] == list(range(1, 101))
    for cpu, data in got:
        assert cpu == one_cpu
        assert len(data) == 20  # 16 bytes of payload, padded with the size word to 8
        assert struct.unpack_from("<Q", data, 8)[0] == os.getpid()


def test_perf_buffer_wraps_around(kernel, one_cpu):
    pmap = _perf_array(kernel)
    seqs = []
    # one data page; a 48-byte record does not divide 4096, so records straddle the end
    pb = PerfBuffer(pmap, lambda cpu, data: seqs.append(struct.unpack_from("<Q", data)[0]),
                    page_cnt=1)
    with _emitter(kernel, False, pmap, pad=20):
        for _ in range(20):
            _fire(40)
            pb.consume()
    pb.close()
    assert seqs == list(range(1, 801))


def test_perf_buffer_lost_events(kernel, one_cpu):
    pmap = _perf_array(kernel)
    seqs, lost = [], []
    pb = PerfBuffer(pmap, lambda cpu, data: seqs.append(struct.unpack_from("<Q", data)[0]),
                    lost_callback=lost.append, page_cnt=1)
    with _emitter(kernel, False, pmap, pad=200):
        _fire(500)      # ~230 bytes each: a 4 KiB ring holds ~17
        pb.consume()
        _fire(1)        # now there is room: the kernel first writes the LOST record
        pb.consume()
    pb.close()
    assert lost and sum(lost) + len(seqs) == 501
    assert seqs == sorted(seqs) and seqs[-1] == 501


def _seq_at(address, size):
    """(seq, tgid, size) of a zero-copy record, read through its C address."""
    return struct.unpack("<QQ", ctypes.string_at(address, 16)) + (size,)


def test_perf_buffer_zero_copy_wraps_around(kernel, one_cpu):
    pmap = _perf_array(kernel)
    got = []
    # as in test_perf_buffer_wraps_around: 48-byte records straddle the end of one page,
    # so some are delivered from a staging copy and the rest from the ring itself
    pb = PerfBuffer(pmap, lambda cpu, addr, size: got.append((cpu,) + _seq_at(addr, size)),
                    page_cnt=1, zero_copy=True)
    with _emitter(kernel, False, pmap, pad=20):
        for _ in range(20):
            _fire(40)
            pb.consume()
    pb.close()
    assert got == [(one_cpu, i, os.getpid(), 36) for i in range(1, 801)]


def test_perf_buffer_zero_copy_lost_events(kernel, one_cpu):
    pmap = _perf_array(kernel)
    seqs, lost = [], []
    pb = PerfBuffer(pmap, lambda cpu, addr, size: seqs.append(_seq_at(addr, size)[0]),
                    lost_callback=lost.append, page_cnt=1, zero_copy=True)
    with _emitter(kernel, False, pmap, pad=200):
        _fire(500)
        pb.consume()
        _fire(1)
        pb.consume()
    pb.close()
    assert lost and sum(lost) + len(seqs) == 501
    assert seqs == sorted(seqs) and seqs[-1] == 501


def test_perf_buffer_callback_error_leaves_sample_unconsumed(kernel, one_cpu):
    pmap = _perf_array(kernel)
    seqs = []

    def cb(cpu, addr, size):
        seq = _seq_at(addr, size)[0]
        if seq == 3 and 3 not in seqs:
            seqs.append(3)
            raise RuntimeError("callback failed")
        seqs.append(seq)

    pb = PerfBuffer(pmap, cb, page_cnt=8, zero_copy=True)
    with _emitter(kernel, False, pmap):
        _fire(5)
        with pytest.raises(RuntimeError):
            pb.consume()
        assert pb.consume() == 3        # the failed sample comes again, then the rest
    pb.close()
    assert seqs == [1, 2, 3, 3, 4, 5]


def test_perf_buffer_page_cnt_must_be_power_of_two(kernel):
    with pytest.raises(MapError, match="power of two"):
        PerfBuffer(_perf_array(kernel), lambda c, d: None, page_cnt=3)


def test_perf_buffer_close_releases_fds(kernel):
    pmap = _perf_array(kernel)
    before = open_fds()
    pb = PerfBuffer(pmap, lambda c, d: None, page_cnt=2)
    assert len(open_fds()) > len(before)
    pb.close()
    pb.close()
    assert open_fds() == before


def _ringbuf(kernel, size=4096):
    return kernel.map(C.BPF_MAP_TYPE_RINGBUF, 0, 0, size)


def test_ring_buffer_delivers_in_order(kernel):
    rmap = _ringbuf(kernel, 16 * 4096)
    got = []
    rb = RingBuf(rmap, got.append)
    with _emitter(kernel, True, rmap):
        _fire(300)
        assert rb.poll(1000) == 300
    rb.close()
    assert [struct.unpack_from("<QQ", d) for d in got] == [(i, os.getpid()) for i in range(1, 301)]
    assert all(len(d) == 16 for d in got)


def test_ring_buffer_wraps_and_stops(kernel):
    rmap = _ringbuf(kernel, 4096)
    seqs = []

    def cb(data):
        seqs.append(struct.unpack_from("<Q", data)[0])
        return 1 if len(seqs) == 5 else 0

    rb = RingBuf(rmap, cb)
    with _emitter(kernel, True, rmap, pad=36):   # 8 + 52 -> 56-byte records
        _fire(10)
        assert rb.consume() == 5                 # the callback asked to stop after the 5th
        assert rb.consume() == 5
        for _ in range(30):                      # 30 x 50 x 56 bytes: wraps the 4 KiB ring
            _fire(50)
            rb.consume()
    rb.close()
    assert seqs == list(range(1, 1511))


def test_ring_buffer_zero_copy_wraps_and_stops(kernel):
    rmap = _ringbuf(kernel, 4096)
    got = []

    def cb(addr, size):
        got.append(_seq_at(addr, size))
        return 1 if len(got) == 5 else None

    rb = RingBuf(rmap, cb, zero_copy=True)
    with _emitter(kernel, True, rmap, pad=36):   # 56-byte records wrap the 4 KiB ring
        _fire(10)
        assert rb.consume() == 5
        assert rb.consume() == 5
        for _ in range(30):
            _fire(50)
            rb.consume()
    rb.close()
    assert got == [(i, os.getpid(), 52) for i in range(1, 1511)]


def test_ring_buffer_return_value_is_an_int(kernel):
    """BCC's rule: int(ret) != 0 stops the pass; a value int() rejects counts as 0."""
    rmap = _ringbuf(kernel, 4096)
    rets = iter(["not a number", 0.5, "0", True, None])
    rb = RingBuf(rmap, lambda data: next(rets))
    with _emitter(kernel, True, rmap):
        _fire(5)
        assert rb.consume() == 4        # True, the 4th return value, stopped the pass
        assert rb.consume() == 1
    rb.close()


def test_ring_buffer_full_drops_and_recovers(kernel):
    rmap = _ringbuf(kernel, 4096)
    seqs = []
    rb = RingBuf(rmap, lambda d: seqs.append(struct.unpack_from("<Q", d)[0]))
    with _emitter(kernel, True, rmap, pad=100):
        _fire(200)
        rb.consume()
        kept = len(seqs)
        assert 0 < kept < 200 and seqs == list(range(1, kept + 1))
        _fire(1)
        rb.consume()
    rb.close()
    assert seqs[-1] == 201


def test_ring_buffer_close_releases(kernel):
    rmap = _ringbuf(kernel)
    before = open_fds()
    rb = RingBuf(rmap, lambda d: None)
    rb.close()
    assert open_fds() == before
