"""BCC's event tables: ``PerfEventArray`` and ``RingBuf``.

Callbacks get BCC's ``(cpu, data, size)`` / ``(ctx, data, size)`` where
``data`` is an address valid until the next event, as with BCC (where it
points into the ring).  Records are staged in one reusable buffer, so the
per-event cost is a slice copy, not an allocation.
"""
from __future__ import annotations

import ctypes as ct
import errno
import os

from bccless.sys import bpf as _bpf
from bccless.sys.perf import online_cpus

from .table import ArrayBase, TableBase


class _Stage:
    """A reusable C buffer holding the current record; grows when a record is larger."""

    __slots__ = ("buf", "addr", "cap")

    def __init__(self, cap: int = 4096) -> None:
        self._grow(cap)

    def _grow(self, cap: int) -> None:
        self.buf = bytearray(cap)
        self.addr = ct.addressof(ct.c_char.from_buffer(self.buf))
        self.cap = cap

    def put(self, data: bytes) -> int:
        n = len(data)
        if n > self.cap:
            self._grow(max(n, 2 * self.cap))
        self.buf[:n] = data
        return self.addr


class _EventMixin:
    """``event(data)``: cast a callback's data pointer to the record's class."""

    _event_class = None
    _event_type_id = 0

    def event(self, data):
        if self._event_class is None:
            if not self._event_type_id:
                raise Exception("no event type known for table %s; define the data with "
                                "ctypes manually" % self._name)
            from ._ctypes import event_class
            self._event_class = event_class(self.bpf._btf, self._event_type_id)
        return self._event_class.from_address(data)


class PerfEventArray(_EventMixin, ArrayBase):
    def __init__(self, *args, **kwargs) -> None:
        self._event_type_id = kwargs.pop("event_type_id", 0)
        ArrayBase.__init__(self, *args, **kwargs)
        self._open_key_fds: dict = {}
        self._reader = None

    def __del__(self) -> None:
        self.close_perf_buffer()

    def __delitem__(self, key) -> None:
        key = self._normalize_key(key)
        _bpf.map_delete_elem(self.map_fd, bytes(key))
        fd = self._open_key_fds.pop(key.value, None)
        if fd is not None:
            os.close(fd)

    def open_perf_buffer(self, callback, page_cnt=8, lost_cb=None, wakeup_events=1) -> None:
        """Open one ring per online CPU and register it with the BPF object's poller."""
        from bccless.errors import BcclessError
        from bccless.events.perfbuf import PerfBuffer

        if page_cnt & (page_cnt - 1) != 0:
            raise Exception("Perf buffer page_cnt must be a power of two")

        stage = _Stage()

        def raw_cb(cpu: int, data: bytes) -> None:
            try:
                callback(cpu, stage.put(data), len(data))
            except IOError as exc:
                if exc.errno == errno.EPIPE:
                    exit()
                raise

        def lost(count: int) -> None:
            if lost_cb:
                lost_cb(count)
            else:
                import sys
                print("Possibly lost %d samples" % count, file=sys.stderr)

        try:
            self._reader = PerfBuffer(self.map_fd, raw_cb, lost_callback=lost, page_cnt=page_cnt,
                                      wakeup_events=wakeup_events,
                                      cpus=online_cpus(), map_name=str(self._name))
        except BcclessError as exc:
            raise Exception("Could not open perf buffer: %s" % exc) from None
        self.bpf._perf_readers[id(self)] = self._reader

    def close_perf_buffer(self) -> None:
        reader, self._reader = getattr(self, "_reader", None), None
        if reader is not None:
            self.bpf._perf_readers.pop(id(self), None)
            reader.close()

    def open_perf_event(self, typ, config, pid=-1) -> None:
        from bccless.sys import perf
        for cpu in online_cpus():
            fd = perf.perf_event_open(typ, config, pid=pid, cpu=cpu)
            self._open_key_fds[cpu] = fd
            _bpf.map_update_elem(self.map_fd, cpu.to_bytes(4, "little"),
                                 fd.to_bytes(4, "little"))


class RingBuf(_EventMixin, TableBase):
    def __init__(self, *args, **kwargs) -> None:
        self._event_type_id = kwargs.pop("event_type_id", 0)
        TableBase.__init__(self, *args, **kwargs)

    def __len__(self) -> int:
        return 0

    def open_ring_buffer(self, callback, ctx=None) -> None:
        stage = _Stage()

        def raw_cb(data: bytes):
            try:
                ret = callback(ctx, stage.put(data), len(data))
            except IOError as exc:
                if exc.errno == errno.EPIPE:
                    exit()
                raise
            try:
                return int(ret or 0)
            except (TypeError, ValueError):
                return 0

        self.bpf._ring_buffer().add(self.map_fd, raw_cb, map_name=str(self._name))
