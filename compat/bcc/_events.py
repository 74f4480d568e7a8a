"""BCC's event tables: ``PerfEventArray`` and ``RingBuf``.

Callbacks get BCC's ``(cpu, data, size)`` / ``(ctx, data, size)`` where
``data`` is the record's address in the ring, valid during the callback, as
with BCC: the bccless consumers run in zero-copy mode and call the user's
callback directly, with no wrapper frame per event.  BCC's wrappers also turn
EPIPE from a callback into ``exit()``; that is done once per poll in
:mod:`bcc` (``BPF.perf_buffer_poll`` and friends) instead.
"""
from __future__ import annotations

import os
import sys
from functools import partial

from bccless.sys import bpf as _bpf
from bccless.sys.perf import online_cpus

from .table import ArrayBase, TableBase


class _EventMixin:
    """``event(data)``: the record at a callback's data address, as the table's ctypes class."""

    _event_class = None
    _event_type_id = 0

    def event(self, data):
        """Build the event class once, then serve later calls with no Python frame.

        The class's bound ``from_address`` is stored on the instance, where it
        shadows this method: the per-event call is then a C call (BCC's
        ``ct.cast(...).contents`` costs several times more).
        """
        if self._event_class is None:
            if not self._event_type_id:
                raise Exception("no event type known for table %s; define the data with "
                                "ctypes manually" % self._name)
            from ._ctypes import event_class
            self._event_class = event_class(self.bpf._btf, self._event_type_id)
        self.event = self._event_class.from_address
        return self.event(data)


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

        def lost(count: int) -> None:
            if lost_cb:
                lost_cb(count)
            else:
                print("Possibly lost %d samples" % count, file=sys.stderr)

        try:
            self._reader = PerfBuffer(self.map_fd, callback, lost_callback=lost, page_cnt=page_cnt,
                                      wakeup_events=wakeup_events, cpus=online_cpus(),
                                      map_name=str(self._name), zero_copy=True,
                                      multiplexed=True)
        except BcclessError as exc:
            raise Exception("Could not open perf buffer: %s" % exc) from None
        self.bpf._perf_readers[id(self)] = self._reader
        self.bpf._perf_poller_stale()

    def close_perf_buffer(self) -> None:
        reader, self._reader = getattr(self, "_reader", None), None
        if reader is not None:
            self.bpf._perf_readers.pop(id(self), None)
            self.bpf._perf_poller_stale()
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
        """Consume this map in the BPF object's ring buffer manager.

        ``partial`` supplies BCC's leading ``ctx`` argument without a Python
        frame; the manager applies BCC's int(return value) rule.
        """
        self.bpf._ring_buffer().add(self.map_fd, partial(callback, ctx),
                                    map_name=str(self._name), zero_copy=True)
