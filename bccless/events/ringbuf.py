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
from typing import Callable, List, Optional

from ..errors import MapError

log = logging.getLogger(__name__)

PAGE_SIZE = mmap.PAGESIZE
BPF_RINGBUF_BUSY_BIT = 1 << 31
BPF_RINGBUF_DISCARD_BIT = 1 << 30
BPF_RINGBUF_HDR_SZ = 8

RingCallback = Callable[[bytes], Optional[int]]
PointerCallback = Callable[[int, int], Optional[int]]


class _Ring:
    """One mapped ring buffer map and the native-endian views the drain reads."""

    __slots__ = ("map_fd", "name", "callback", "zero_copy", "mask", "consumer", "producer",
                 "consumer_pos", "producer_pos", "words", "pin", "addr")

    def __init__(self, map_fd: int, callback: RingCallback | PointerCallback, size: int,
                 name: str, zero_copy: bool) -> None:
        from ..sys.ffi import pin_buffer

        self.map_fd = map_fd
        self.name = name
        self.callback = callback
        self.zero_copy = zero_copy
        self.mask = size - 1
        self.consumer = mmap.mmap(map_fd, PAGE_SIZE, mmap.MAP_SHARED,
                                  mmap.PROT_READ | mmap.PROT_WRITE)
        try:
            self.producer = mmap.mmap(map_fd, PAGE_SIZE + 2 * size, mmap.MAP_SHARED,
                                      mmap.PROT_READ, offset=PAGE_SIZE)
        except OSError:
            self.consumer.close()
            raise
        self.consumer_pos = memoryview(self.consumer)[:8].cast("Q")
        self.producer_pos = memoryview(self.producer)[:8].cast("Q")
        self.words = memoryview(self.producer)[PAGE_SIZE:].cast("I")
        self.pin, base = pin_buffer(self.producer)
        self.addr = base + PAGE_SIZE

    def close(self) -> None:
        """Drop the views and the pin (an mmap cannot close under them), then unmap."""
        from ..sys.ffi import unpin_buffer

        for view in (self.consumer_pos, self.producer_pos, self.words):
            view.release()
        unpin_buffer(self.pin)
        self.consumer.close()
        self.producer.close()


class StopConsuming(Exception):
    """Internal: a callback returned non-zero, ending the current pass over all rings."""


def _stops(ret: object) -> bool:
    """Whether a callback's truthy return value asks to stop: ``int(ret) != 0``.

    As in BCC, which hands libbpf ``int(ret)``, a value int() rejects counts as 0.
    """
    try:
        return int(ret) != 0
    except (TypeError, ValueError):
        return False


class RingBuf:
    """Consumer of one or more ring buffer maps.

    ``callback(data)`` receives each committed record's bytes; with
    ``zero_copy=True`` it is ``callback(address, size)``: the record's C
    address in the ring (which the kernel maps twice over, so no record is
    ever split), valid until the callback returns, as libbpf gives it.  A
    return value whose int() is non-zero stops the current ``poll``/``consume``
    pass (the record counts as consumed), like libbpf's ring_buffer__poll.
    """

    def __init__(self, map_fd: Optional[int] = None,
                 callback: RingCallback | PointerCallback | None = None,
                 *, map_name: str = "", zero_copy: bool = False) -> None:
        from .. import cleanup

        self.rings: List[_Ring] = []
        self._by_fd = {}
        self._epoll = select.epoll()
        self._closed = False
        cleanup.register(self)
        if map_fd is not None:
            if callback is None:
                raise ValueError("a callback is required with map_fd")
            self.add(map_fd, callback, map_name=map_name, zero_copy=zero_copy)

    def add(self, map_fd: int, callback: RingCallback | PointerCallback, *, map_name: str = "",
            zero_copy: bool = False) -> None:
        """Start consuming another ring buffer map (``zero_copy``: see the class)."""
        from ..sys import bpf

        name = map_name or f"fd {map_fd}"
        info = bpf.obj_get_info_by_fd(map_fd, "map")
        size = int(info["max_entries"])
        if size <= 0 or size & (size - 1) or size % PAGE_SIZE:
            raise MapError(f"ring buffer {name}: size {size} is not a power-of-two number of pages")
        try:
            ring = _Ring(map_fd, callback, size, name, zero_copy)
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
        """Deliver committed records up to producer_pos, publishing consumer_pos per record.

        Publishing per record (as libbpf does) returns space to the producer
        as soon as possible; a memoryview store is a single native write.
        Discarded records are skipped; a BUSY one (still being written) ends
        the pass, to resume on the next poll.
        """
        consumer_pos, producer_pos, words = ring.consumer_pos, ring.producer_pos, ring.words
        mask, callback, zero_copy, mm = ring.mask, ring.callback, ring.zero_copy, ring.producer
        data = ring.addr + BPF_RINGBUF_HDR_SZ
        cons = consumer_pos[0]
        n = 0
        try:
            while cons < (prod := producer_pos[0]):
                while cons < prod:
                    off = cons & mask
                    length = words[off >> 2]
                    if length >= BPF_RINGBUF_DISCARD_BIT:       # BUSY or DISCARD set
                        if length & BPF_RINGBUF_BUSY_BIT:
                            return n
                        cons += ((length & ~BPF_RINGBUF_DISCARD_BIT) + 15) & ~7
                        consumer_pos[0] = cons
                        continue
                    cons += (length + 15) & ~7      # 8-byte header + data, rounded up to 8
                    if zero_copy:
                        ret = callback(data + off, length)
                    else:
                        start = PAGE_SIZE + BPF_RINGBUF_HDR_SZ + off
                        ret = callback(mm[start:start + length])
                    consumer_pos[0] = cons
                    n += 1
                    if ret and _stops(ret):
                        raise StopConsuming(n)
        finally:
            consumer_pos[0] = cons
        return n

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
