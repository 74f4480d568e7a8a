"""Per-CPU perf ring buffers behind a BPF_MAP_TYPE_PERF_EVENT_ARRAY (bpf_perf_event_output).

For every CPU we open a PERF_COUNT_SW_BPF_OUTPUT software event, map its ring
(one metadata page + 2^n data pages) and store the event's fd in the map at
that CPU's index; BPF programs then write PERF_RECORD_SAMPLE records carrying
raw data into the ring of the CPU they run on.  We read between ``data_tail``
(ours) and ``data_head`` (the kernel's), hand each sample to the callback and
publish the new tail, which frees the space.

Hot-path rules: headers are read with one precompiled ``struct`` call on the
mmap, the only allocation per event is the payload ``bytes``, and the tail is
published once per drained ring rather than per record.
"""
from __future__ import annotations

import logging
import mmap
import os
import select
import struct
from typing import Callable, Dict, List, Optional, Sequence

from ..errors import MapError

log = logging.getLogger(__name__)

PAGE_SIZE = mmap.PAGESIZE
PERF_RECORD_LOST = 2
PERF_RECORD_SAMPLE = 9

# struct perf_event_mmap_page: data_head @1024, data_tail @1032, data_offset @1040, data_size @1048
_HEAD_OFF = 1024
_TAIL_OFF = 1032
_U64 = struct.Struct("<Q")
# perf_event_header (u32 type, u16 misc, u16 size) followed by the sample's u32 raw size,
# or by a LOST record's u64 id (whose low half we skip over) and u64 count.
_HDR_RAW = struct.Struct("<IHHI")
_HDR = struct.Struct("<IHH")
_LOST_COUNT_OFF = 16

SampleCallback = Callable[[int, bytes], None]
LostCallback = Callable[[int], None]


class _CpuRing:
    __slots__ = ("cpu", "fd", "mm", "data_off", "size", "mask", "buf")

    def __init__(self, cpu: int, fd: int, page_cnt: int) -> None:
        self.cpu = cpu
        self.fd = fd
        self.size = page_cnt * PAGE_SIZE
        self.mask = self.size - 1
        self.data_off = PAGE_SIZE
        self.mm = mmap.mmap(fd, PAGE_SIZE + self.size, mmap.MAP_SHARED,
                            mmap.PROT_READ | mmap.PROT_WRITE)


class PerfBuffer:
    """Consumer of one PERF_EVENT_ARRAY map: ``poll(timeout_ms)`` or ``consume()``.

    ``callback(cpu, data)`` gets each sample's raw bytes (as the kernel padded
    them to 8 bytes with the 4-byte size word); ``lost_callback(count)`` gets
    the kernel's count of samples dropped because the ring was full.
    """

    def __init__(self, map_fd: int, callback: SampleCallback, *,
                 lost_callback: Optional[LostCallback] = None, page_cnt: int = 8,
                 wakeup_events: int = 1, cpus: Optional[Sequence[int]] = None,
                 map_name: str = "") -> None:
        from .. import cleanup
        from ..sys import perf

        if page_cnt <= 0 or page_cnt & (page_cnt - 1):
            raise MapError(f"perf buffer {map_name or map_fd}: page_cnt must be a power of two, "
                           f"not {page_cnt}")
        self.map_fd = map_fd
        self.map_name = map_name
        self.callback = callback
        self.lost_callback = lost_callback
        self.rings: List[_CpuRing] = []
        self._by_fd: Dict[int, _CpuRing] = {}
        self._epoll = select.epoll()
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
        perf.perf_event_enable(fd)
        try:
            bpf.map_update_elem(self.map_fd, struct.pack("<I", cpu), struct.pack("<I", fd))
        except OSError as exc:
            raise MapError(f"perf buffer {self.map_name or self.map_fd}: storing the cpu {cpu} "
                           f"event in the map: {exc.strerror}") from exc
        self._epoll.register(fd, select.EPOLLIN)

    def fileno(self) -> int:
        """The epoll fd: readable when any CPU ring has data (for outer event loops)."""
        return self._epoll.fileno()

    def poll(self, timeout_ms: int = -1) -> int:
        """Wait up to ``timeout_ms`` (-1: forever) for data, then drain the ready rings.

        Returns the number of samples delivered.
        """
        try:
            ready = self._epoll.poll(timeout_ms / 1000.0 if timeout_ms >= 0 else -1)
        except InterruptedError:
            return 0
        if not ready:
            return 0
        by_fd = self._by_fd
        return sum(self._drain(by_fd[fd]) for fd, _ev in ready)

    def ring_fds(self) -> List[int]:
        """The per-CPU perf fds, for a caller multiplexing several buffers in one epoll.

        Register these directly, not :meth:`fileno`: a perf fd reports each
        wakeup once (the kernel clears it when polled), which a nested epoll
        can swallow.
        """
        return [r.fd for r in self.rings]

    def drain_fd(self, fd: int) -> int:
        """Deliver the samples waiting in the ring of one fd from :meth:`ring_fds`."""
        return self._drain(self._by_fd[fd])

    def consume(self) -> int:
        """Drain every ring whether or not it signalled; returns samples delivered."""
        return sum(self._drain(r) for r in self.rings)

    def _drain(self, ring: _CpuRing) -> int:
        mm = ring.mm
        head = _U64.unpack_from(mm, _HEAD_OFF)[0]
        tail = _U64.unpack_from(mm, _TAIL_OFF)[0]
        if tail == head:
            return 0
        base, mask, size, cpu = ring.data_off, ring.mask, ring.size, ring.cpu
        callback, hdr_raw = self.callback, _HDR_RAW.unpack_from
        n = 0
        try:
            while tail < head:
                off = tail & mask
                if off + 12 <= size:
                    rtype, _misc, rsize, raw_size = hdr_raw(mm, base + off)
                    wrapped = off + rsize > size
                else:
                    rtype, _misc, rsize = _HDR.unpack_from(self._record(ring, off, 8))
                    raw_size, wrapped = 0, True
                if wrapped:
                    rec = self._record(ring, off, rsize)
                    if rtype == PERF_RECORD_SAMPLE:
                        raw_size = struct.unpack_from("<I", rec, 8)[0]
                        callback(cpu, rec[12:12 + raw_size])
                        n += 1
                    elif rtype == PERF_RECORD_LOST:
                        self._lost(_U64.unpack_from(rec, _LOST_COUNT_OFF)[0])
                elif rtype == PERF_RECORD_SAMPLE:
                    start = base + off + 12
                    callback(cpu, mm[start:start + raw_size])
                    n += 1
                elif rtype == PERF_RECORD_LOST:
                    self._lost(_U64.unpack_from(mm, base + off + _LOST_COUNT_OFF)[0])
                if rsize == 0:  # a zero-sized header would loop forever: ring is corrupt
                    log.error("perf buffer %s cpu %d: zero-sized record at %d", self.map_name,
                              cpu, tail)
                    tail = head
                    break
                tail += rsize
        finally:
            _U64.pack_into(mm, _TAIL_OFF, tail)
        return n

    @staticmethod
    def _record(ring: _CpuRing, off: int, length: int) -> bytes:
        """``length`` bytes at ring offset ``off``, joined across the end of the ring."""
        base, size = ring.data_off, ring.size
        first = min(length, size - off)
        return ring.mm[base + off:base + off + first] + ring.mm[base:base + length - first]

    def _lost(self, count: int) -> None:
        if self.lost_callback is not None:
            self.lost_callback(count)
        else:
            log.warning("perf buffer %s: lost %d samples", self.map_name or self.map_fd, count)

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
            ring.mm.close()
            os.close(ring.fd)
        self.rings.clear()
        self._by_fd.clear()
        self._epoll.close()

    def __enter__(self) -> "PerfBuffer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
