"""Consumer of BPF_MAP_TYPE_RINGBUF maps (bpf_ringbuf_output / reserve+submit).

The map is mmapped twice over: the consumer page read-write (we publish
``consumer_pos`` there), then the producer page and the data area read-only,
where the kernel maps the data pages twice in a row so a record that wraps
round the end can still be sliced in one piece.  Each record has an 8-byte
header (u32 length with BUSY and DISCARD bits, u32 page offset) and starts
8-byte aligned.  A BUSY record is still being written: we stop there and
resume on the next poll.

Several maps can share one consumer (BCC keeps one per BPF object); epoll
tells which map has data.
"""
from __future__ import annotations

import logging
import mmap
import select
import struct
from typing import Callable, List, Optional

from ..errors import MapError

log = logging.getLogger(__name__)

PAGE_SIZE = mmap.PAGESIZE
BPF_RINGBUF_BUSY_BIT = 1 << 31
BPF_RINGBUF_DISCARD_BIT = 1 << 30
BPF_RINGBUF_HDR_SZ = 8
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")

RingCallback = Callable[[bytes], Optional[int]]


class _Ring:
    __slots__ = ("map_fd", "name", "callback", "mask", "consumer", "producer")

    def __init__(self, map_fd: int, callback: RingCallback, size: int, name: str) -> None:
        self.map_fd = map_fd
        self.name = name
        self.callback = callback
        self.mask = size - 1
        self.consumer = mmap.mmap(map_fd, PAGE_SIZE, mmap.MAP_SHARED,
                                  mmap.PROT_READ | mmap.PROT_WRITE)
        try:
            self.producer = mmap.mmap(map_fd, PAGE_SIZE + 2 * size, mmap.MAP_SHARED,
                                      mmap.PROT_READ, offset=PAGE_SIZE)
        except OSError:
            self.consumer.close()
            raise

    def close(self) -> None:
        self.consumer.close()
        self.producer.close()


class StopConsuming(Exception):
    """Internal: a callback returned non-zero, ending the current pass over all rings."""


class RingBuf:
    """Consumer of one or more ring buffer maps.

    ``callback(data)`` receives each committed record's bytes; a non-zero
    return value stops the current ``poll``/``consume`` pass (the record
    counts as consumed), like libbpf's ring_buffer__poll.
    """

    def __init__(self, map_fd: Optional[int] = None, callback: Optional[RingCallback] = None,
                 *, map_name: str = "") -> None:
        from .. import cleanup

        self.rings: List[_Ring] = []
        self._by_fd = {}
        self._epoll = select.epoll()
        self._closed = False
        cleanup.register(self)
        if map_fd is not None:
            if callback is None:
                raise ValueError("a callback is required with map_fd")
            self.add(map_fd, callback, map_name=map_name)

    def add(self, map_fd: int, callback: RingCallback, *, map_name: str = "") -> None:
        """Start consuming another ring buffer map."""
        from ..sys import bpf

        name = map_name or f"fd {map_fd}"
        info = bpf.obj_get_info_by_fd(map_fd, "map")
        size = int(info["max_entries"])
        if size <= 0 or size & (size - 1) or size % PAGE_SIZE:
            raise MapError(f"ring buffer {name}: size {size} is not a power-of-two number of pages")
        try:
            ring = _Ring(map_fd, callback, size, name)
        except OSError as exc:
            raise MapError(f"ring buffer {name}: mmap failed: {exc.strerror}") from exc
        self._epoll.register(map_fd, select.EPOLLIN)
        self.rings.append(ring)
        self._by_fd[map_fd] = ring

    def fileno(self) -> int:
        return self._epoll.fileno()

    def poll(self, timeout_ms: int = -1) -> int:
        """Wait up to ``timeout_ms`` (-1: forever) for data, then consume the ready rings.

        Returns the number of records delivered.
        """
        try:
            ready = self._epoll.poll(timeout_ms / 1000.0 if timeout_ms >= 0 else -1)
        except InterruptedError:
            return 0
        n = 0
        try:
            for fd, _ev in ready:
                n += self._drain(self._by_fd[fd])
        except StopConsuming as stop:
            return n + stop.args[0]
        return n

    def consume(self) -> int:
        """Consume every ring regardless of readiness; returns records delivered."""
        n = 0
        try:
            for ring in self.rings:
                n += self._drain(ring)
        except StopConsuming as stop:
            return n + stop.args[0]
        return n

    @staticmethod
    def _drain(ring: _Ring) -> int:
        cons_mm, prod_mm, mask = ring.consumer, ring.producer, ring.mask
        callback = ring.callback
        u32, u64 = _U32.unpack_from, _U64.unpack_from
        cons = u64(cons_mm, 0)[0]
        n = 0
        while True:
            prod = u64(prod_mm, 0)[0]
            if cons >= prod:
                return n
            while cons < prod:
                off = PAGE_SIZE + (cons & mask)
                length = u32(prod_mm, off)[0]
                if length & BPF_RINGBUF_BUSY_BIT:
                    return n
                size = length & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT)
                cons += (size + BPF_RINGBUF_HDR_SZ + 7) & ~7
                if length & BPF_RINGBUF_DISCARD_BIT:
                    _U64.pack_into(cons_mm, 0, cons)
                    continue
                start = off + BPF_RINGBUF_HDR_SZ
                try:
                    ret = callback(prod_mm[start:start + size])
                finally:
                    _U64.pack_into(cons_mm, 0, cons)
                n += 1
                if ret:
                    raise StopConsuming(n)

    def close(self) -> None:
        """Unmap every ring.  The maps themselves belong to their owner.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        from .. import cleanup

        cleanup.unregister(self)
        for ring in self.rings:
            ring.close()
        self.rings.clear()
        self._by_fd.clear()
        self._epoll.close()

    def __enter__(self) -> "RingBuf":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
