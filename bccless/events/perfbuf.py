"""Per-CPU perf ring buffers behind a BPF_MAP_TYPE_PERF_EVENT_ARRAY (bpf_perf_event_output).

For every CPU we open a PERF_COUNT_SW_BPF_OUTPUT software event, map its ring
(one metadata page + 2^n data pages) and store the event's fd in the map at
that CPU's index; BPF programs then write PERF_RECORD_SAMPLE records carrying
raw data into the ring of the CPU they run on.  We read between ``data_tail``
(ours) and ``data_head`` (the kernel's), hand each sample to the callback and
publish the new tail, which frees the space.

Hot-path rules: the ring is read through native-endian memoryviews (one
index per header word, no tuple), a drain walks each contiguous span of the
ring in one tight loop, and the tail is published once per span, so a sample
stays in place while its callback runs.  That is what lets ``zero_copy``
consumers (the ``bcc`` drop-in) get a pointer into the ring, as libbpf gives
one, instead of a copy.  Records that are not plain samples (lost counts,
samples that wrap round the end of the ring) take a slower path.
"""
from __future__ import annotations

import logging
import mmap
import os
import select
import struct
from functools import partial
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ..errors import MapError

log = logging.getLogger(__name__)

PAGE_SIZE = mmap.PAGESIZE
PERF_RECORD_LOST = 2
PERF_RECORD_SAMPLE = 9

# struct perf_event_mmap_page, as u64 indexes: data_head @1024, data_tail @1032
_HEAD_IDX = 1024 // 8
_TAIL_IDX = 1032 // 8
# perf_event_header {u32 type; u16 misc; u16 size} read as one u64, then the sample's
# u32 raw size; a LOST record's u64 count follows its u64 id.
_HDR = struct.Struct("=IHH")
_RAW_SIZE_OFF = 8
_SAMPLE_DATA_OFF = 12
_LOST_COUNT_OFF = 16
if struct.pack("=I", 1)[0] == 1:
    _TYPE_MASK, _SIZE_SHIFT, _SIZE_MASK = 0xFFFFFFFF, 48, 0xFFFF
else:  # big-endian: type is the high half, size the low 16 bits
    _TYPE_MASK, _SIZE_SHIFT, _SIZE_MASK = 0xFFFFFFFF << 32, 0, 0xFFFF
_SAMPLE_WORD = PERF_RECORD_SAMPLE if _SIZE_SHIFT else PERF_RECORD_SAMPLE << 32

SampleCallback = Callable[[int, bytes], None]
PointerCallback = Callable[[int, int, int], None]
LostCallback = Callable[[int], None]


class _CpuRing:
    """One CPU's mapped ring and the views the drain loop reads it through."""

    __slots__ = ("cpu", "fd", "mm", "size", "mask", "meta", "quads", "words", "pin", "addr")

    def __init__(self, cpu: int, fd: int, page_cnt: int) -> None:
        from ..sys.ffi import pin_buffer

        self.cpu = cpu
        self.fd = fd
        self.size = page_cnt * PAGE_SIZE
        self.mask = self.size - 1
        self.mm = mmap.mmap(fd, PAGE_SIZE + self.size, mmap.MAP_SHARED,
                            mmap.PROT_READ | mmap.PROT_WRITE)
        whole = memoryview(self.mm)
        self.meta = whole[:PAGE_SIZE].cast("Q")
        self.quads = whole[PAGE_SIZE:].cast("Q")
        self.words = whole[PAGE_SIZE:].cast("I")
        whole.release()
        self.pin, base = pin_buffer(self.mm)
        self.addr = base + PAGE_SIZE

    def record(self, off: int, length: int) -> bytes:
        """``length`` bytes at ring offset ``off``, joined across the end of the ring."""
        first = min(length, self.size - off)
        start = PAGE_SIZE + off
        return self.mm[start:start + first] + self.mm[PAGE_SIZE:PAGE_SIZE + length - first]

    def close(self) -> None:
        """Drop the views and the pin (an mmap cannot close under them), unmap, close."""
        from ..sys.ffi import unpin_buffer

        for view in (self.meta, self.quads, self.words):
            view.release()
        unpin_buffer(self.pin)
        self.mm.close()
        os.close(self.fd)


class PerfBuffer:
    """Consumer of one PERF_EVENT_ARRAY map: ``poll(timeout_ms)`` or ``consume()``.

    ``callback(cpu, data)`` gets each sample's raw bytes (as the kernel padded
    them to 8 bytes with the 4-byte size word).  With ``zero_copy=True`` it is
    ``callback(cpu, address, size)`` instead: the C address of the raw data in
    the ring (in a staging copy for a sample that wraps round the ring's end)
    and the raw size, valid until the callback returns, like libbpf's
    perf_buffer and BCC's callbacks.  ``lost_callback(count)`` gets the
    kernel's count of samples dropped because the ring was full.  An exception
    from a callback propagates; that sample stays unconsumed.  A
    ``multiplexed`` buffer has no poller of its own (no :meth:`poll` or
    :meth:`fileno`): its owner waits on the fds of :meth:`drainers`.
    """

    def __init__(self, map_fd: int, callback: SampleCallback | PointerCallback, *,
                 lost_callback: Optional[LostCallback] = None, page_cnt: int = 8,
                 wakeup_events: int = 1, cpus: Optional[Sequence[int]] = None,
                 map_name: str = "", zero_copy: bool = False,
                 multiplexed: bool = False) -> None:
        from .. import cleanup
        from ..sys import perf

        if page_cnt <= 0 or page_cnt & (page_cnt - 1):
            raise MapError(f"perf buffer {map_name or map_fd}: page_cnt must be a power of two, "
                           f"not {page_cnt}")
        self.map_fd = map_fd
        self.map_name = map_name
        self.callback = callback
        self.lost_callback = lost_callback
        self._zero_copy = zero_copy
        self.rings: List[_CpuRing] = []
        self._by_fd: Dict[int, _CpuRing] = {}
        # An epoll holds a callback on each ring's wait queue that every wakeup runs, on
        # the BPF program's CPU: a multiplexed buffer is polled by its owner instead.
        self._epoll = None if multiplexed else select.epoll()
        self._closed = False
        cleanup.register(self)
        try:
            for cpu in (perf.online_cpus() if cpus is None else cpus):
                self._open_cpu(perf, cpu, page_cnt, wakeup_events)
        except BaseException:
            self.close()
            raise

    def _open_cpu(self, perf, cpu: int, page_cnt: int, wakeup_events: int) -> None:
        from ..sys import bpf

        try:
            fd = perf.perf_event_open(perf.PERF_TYPE_SOFTWARE, perf.PERF_COUNT_SW_BPF_OUTPUT,
                                      pid=-1, cpu=cpu, sample_type=perf.PERF_SAMPLE_RAW,
                                      sample_period=1, wakeup_events=wakeup_events)
        except OSError as exc:
            raise MapError(f"perf buffer {self.map_name or self.map_fd}: perf_event_open "
                           f"on cpu {cpu}: {exc.strerror}") from exc
        try:
            ring = _CpuRing(cpu, fd, page_cnt)
        except OSError as exc:
            os.close(fd)
            raise MapError(f"perf buffer {self.map_name or self.map_fd}: mmap of "
                           f"{page_cnt} pages on cpu {cpu}: {exc.strerror}") from exc
        self.rings.append(ring)
        self._by_fd[fd] = ring
        if self._epoll is not None:     # before any sample can arrive, so none goes unreported
            self._epoll.register(fd, select.EPOLLIN)
        perf.perf_event_enable(fd)
        try:
            bpf.map_update_elem(self.map_fd, struct.pack("<I", cpu), struct.pack("<I", fd))
        except OSError as exc:
            raise MapError(f"perf buffer {self.map_name or self.map_fd}: storing the cpu {cpu} "
                           f"event in the map: {exc.strerror}") from exc

    def _own_epoll(self) -> select.epoll:
        """Our epoll over the rings; a multiplexed buffer has none."""
        if self._epoll is None:
            raise MapError(f"perf buffer {self.map_name or self.map_fd} is multiplexed: poll "
                           f"its drainers() in the caller's poller")
        return self._epoll

    def fileno(self) -> int:
        """The epoll fd: readable when any CPU ring has data (for outer event loops)."""
        return self._own_epoll().fileno()

    def poll(self, timeout_ms: int = -1) -> int:
        """Wait up to ``timeout_ms`` (-1: forever) for data, then drain the ready rings.

        Returns the number of samples delivered.
        """
        try:
            ready = self._own_epoll().poll(timeout_ms / 1000.0 if timeout_ms >= 0 else -1)
        except InterruptedError:
            return 0
        if not ready:
            return 0
        by_fd, drain = self._by_fd, self._drain
        return sum(drain(by_fd[fd]) for fd, _ev in ready)

    def drainers(self) -> Dict[int, Callable[[], int]]:
        """Per-CPU perf fd -> a no-argument drain of its ring, for the caller's own poller.

        Wait on the fds themselves, not on :meth:`fileno`: a perf fd reports
        each wakeup once (the kernel clears it when polled), which a nested
        epoll can swallow.  The ready-made callables spare a multiplexing
        poller (``bcc``'s ``perf_buffer_poll``) a lookup and a frame per ready ring.
        """
        return {r.fd: partial(self._drain, r) for r in self.rings}

    def consume(self) -> int:
        """Drain every ring whether or not it signalled; returns samples delivered."""
        return sum(self._drain(r) for r in self.rings)

    def _drain(self, ring: _CpuRing) -> int:
        """Deliver records until the ring is empty; returns the samples delivered.

        Each contiguous span (up to data_head or the ring's end) is walked in
        one loop and the tail published after it, so a zero-copy address
        stays valid through its callback; an exception publishes the tail up
        to the record whose callback raised.  data_head is read again after
        each span, as BCC's reader does: samples that arrived meanwhile are
        taken now rather than after another poll(2), whose wait-queue traffic
        the BPF program's CPU would share.
        """
        meta = ring.meta
        tail = meta[_TAIL_IDX]
        quads, words, mm, size, cpu = ring.quads, ring.words, ring.mm, ring.size, ring.cpu
        callback, zero_copy = self.callback, self._zero_copy
        data = ring.addr + _SAMPLE_DATA_OFF
        n = 0
        try:
            while tail < (head := meta[_HEAD_IDX]):
                off = start = tail & ring.mask
                end = min(start + head - tail, size)
                try:
                    while off < end:
                        word = quads[off >> 3]
                        # a sample wholly inside the span (a zero size would never advance)
                        if word & _TYPE_MASK == _SAMPLE_WORD and \
                                off < (nxt := off + (word >> _SIZE_SHIFT & _SIZE_MASK)) <= end:
                            raw = words[(off + _RAW_SIZE_OFF) >> 2]
                            if zero_copy:
                                callback(cpu, data + off, raw)
                            else:
                                pos = PAGE_SIZE + _SAMPLE_DATA_OFF + off
                                callback(cpu, mm[pos:pos + raw])
                            n += 1
                            off = nxt
                        else:
                            skip, delivered = self._other_record(
                                ring, off, head - tail - (off - start))
                            n += delivered
                            off += skip
                finally:
                    tail += off - start
        finally:
            meta[_TAIL_IDX] = tail
        return n

    def _other_record(self, ring: _CpuRing, off: int, remaining: int) -> Tuple[int, int]:
        """A record the fast loop does not take: lost count, wrapping sample, other type.

        Returns (bytes to skip, samples delivered).  A zero-sized header means
        a corrupt ring: everything up to data_head (``remaining``) is dropped,
        since walking on would loop forever.
        """
        rtype, _misc, rsize = _HDR.unpack_from(ring.mm, PAGE_SIZE + off)
        if rsize == 0:
            log.error("perf buffer %s cpu %d: zero-sized record at offset %d",
                      self.map_name or self.map_fd, ring.cpu, off)
            return remaining, 0
        if rtype == PERF_RECORD_LOST:
            count = struct.unpack_from("=Q", ring.record(off, rsize), _LOST_COUNT_OFF)[0]
            if self.lost_callback is not None:
                self.lost_callback(count)
            else:
                log.warning("perf buffer %s: lost %d samples", self.map_name or self.map_fd,
                            count)
            return rsize, 0
        if rtype != PERF_RECORD_SAMPLE:
            return rsize, 0
        rec = ring.record(off, rsize)
        raw = rec[_SAMPLE_DATA_OFF:_SAMPLE_DATA_OFF
                  + struct.unpack_from("=I", rec, _RAW_SIZE_OFF)[0]]
        if self._zero_copy:
            import ctypes

            staged = ctypes.create_string_buffer(raw, len(raw))
            self.callback(ring.cpu, ctypes.addressof(staged), len(raw))
        else:
            self.callback(ring.cpu, raw)
        return rsize, 1

    def close(self) -> None:
        """Remove our fds from the map, unmap the rings and close the events.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        from .. import cleanup
        from ..sys import bpf

        cleanup.unregister(self)
        for ring in self.rings:
            try:
                bpf.map_delete_elem(self.map_fd, struct.pack("<I", ring.cpu))
            except OSError:
                pass  # the map may already be gone or never got the entry
            ring.close()
        self.rings.clear()
        self._by_fd.clear()
        if self._epoll is not None:
            self._epoll.close()

    def __enter__(self) -> "PerfBuffer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
