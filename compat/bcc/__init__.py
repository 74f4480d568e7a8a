"""``bcc``: BCC's Python API, served by bccless.

``from bcc import BPF`` works unchanged: the BPF C text is translated to
libbpf-style CO-RE C, compiled once with clang and cached, then loaded by
bccless's own CO-RE loader.  Maps are created at construction and programs
are loaded on first use, exactly when BCC does both; tables, attach calls,
event polling and histogram output follow BCC 0.26.
"""
from __future__ import annotations

import atexit
import ctypes as ct
import errno
import functools
import os
import re
import sys
from typing import Any, Callable, Dict, Optional, Tuple

from bccless.errors import BcclessError, VerifierError

from ._consts import (  # noqa: F401  (re-exported BCC names)
    DEBUG_BPF, DEBUG_BPF_REGISTER_STATE, DEBUG_BTF, DEBUG_LLVM_IR, DEBUG_PREPROCESSOR,
    DEBUG_SOURCE, BPFAttachType, BPFProgType, PerfEventSampleFormat, PerfHWConfig, PerfSWConfig,
    PerfType, XDPAction, XDPFlags,
)
from ._discover import DiscoveryMixin
from ._probes import ProbeMixin
from ._syms import SymbolCache, SymbolsMixin
from .table import BPF_MAP_TYPE_QUEUE, BPF_MAP_TYPE_STACK, PerfEventArray, RingBuf, Table  # noqa: F401
from .utils import ArgString, StrcmpRewrite, _assert_is_bytes, get_online_cpus, printb  # noqa: F401
from .version import __version__  # noqa: F401

DEBUGFS = "/sys/kernel/debug"
TRACEFS = os.path.join(DEBUGFS, "tracing")
if not os.path.exists(TRACEFS):
    TRACEFS = "/sys/kernel/tracing"

_default_probe_limit = 1000
_num_open_probes = 0


def _get_num_open_probes() -> int:
    return _num_open_probes


def _to_str(x) -> str:
    if x is None:
        return ""
    return x.decode() if isinstance(x, bytes) else str(x)


def __getattr__(name: str):
    # USDT support pulls in ELF note parsing: import it only for tools that use it.
    if name in ("USDT", "USDTException"):
        from . import usdt
        return getattr(usdt, name)
    raise AttributeError(f"module 'bcc' has no attribute {name!r}")


def _exits_on_epipe(poll: Callable[..., Any]) -> Callable[..., Any]:
    """BCC's callback wrappers turn EPIPE (stdout piped into a closed ``head``) into exit().

    Event callbacks run unwrapped here, so the rule is applied once around
    each poll call instead of once per event.
    """
    @functools.wraps(poll)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return poll(*args, **kwargs)
        except IOError as exc:
            if exc.errno == errno.EPIPE:
                sys.exit()
            raise
    return run


class BPF(ProbeMixin, SymbolsMixin, DiscoveryMixin):
    """A BPF module built from BCC C: maps live, programs loaded on demand."""

    # Program types, aliased on the class as BCC does.
    SOCKET_FILTER = BPFProgType.SOCKET_FILTER
    KPROBE = BPFProgType.KPROBE
    SCHED_CLS = BPFProgType.SCHED_CLS
    SCHED_ACT = BPFProgType.SCHED_ACT
    TRACEPOINT = BPFProgType.TRACEPOINT
    XDP = BPFProgType.XDP
    PERF_EVENT = BPFProgType.PERF_EVENT
    CGROUP_SKB = BPFProgType.CGROUP_SKB
    CGROUP_SOCK = BPFProgType.CGROUP_SOCK
    LWT_IN = BPFProgType.LWT_IN
    LWT_OUT = BPFProgType.LWT_OUT
    LWT_XMIT = BPFProgType.LWT_XMIT
    SOCK_OPS = BPFProgType.SOCK_OPS
    SK_SKB = BPFProgType.SK_SKB
    CGROUP_DEVICE = BPFProgType.CGROUP_DEVICE
    SK_MSG = BPFProgType.SK_MSG
    RAW_TRACEPOINT = BPFProgType.RAW_TRACEPOINT
    CGROUP_SOCK_ADDR = BPFProgType.CGROUP_SOCK_ADDR
    TRACING = BPFProgType.TRACING
    LSM = BPFProgType.LSM

    XDP_ABORTED = XDPAction.XDP_ABORTED
    XDP_DROP = XDPAction.XDP_DROP
    XDP_PASS = XDPAction.XDP_PASS
    XDP_TX = XDPAction.XDP_TX
    XDP_REDIRECT = XDPAction.XDP_REDIRECT
    XDP_FLAGS_UPDATE_IF_NOEXIST = XDPFlags.UPDATE_IF_NOEXIST
    XDP_FLAGS_SKB_MODE = XDPFlags.SKB_MODE
    XDP_FLAGS_DRV_MODE = XDPFlags.DRV_MODE
    XDP_FLAGS_HW_MODE = XDPFlags.HW_MODE
    XDP_FLAGS_REPLACE = XDPFlags.REPLACE

    CLOCK_MONOTONIC = 1
    Table = staticmethod(Table)

    class Function:
        def __init__(self, bpf: "BPF", name, fd: int) -> None:
            self.bpf = bpf
            self.name = name
            self.fd = fd

    def __init__(self, src_file=b"", hdr_file=b"", text=None, debug=0, cflags=None,
                 usdt_contexts=None, allow_rlimit=True, device=None,
                 attach_usdt_ignore_pid=False) -> None:
        from bccless.compile import build
        from bccless.object import BPFObject

        cflags = list(cflags or [])
        usdt_contexts = list(usdt_contexts or [])
        src_file = _assert_is_bytes(src_file)
        text = _assert_is_bytes(text)
        assert not (text and src_file)
        self.debug = debug
        self.funcs: Dict[bytes, "BPF.Function"] = {}
        self.tables: Dict[Any, Any] = {}
        self.kprobe_fds: Dict[bytes, Dict[bytes, Any]] = {}
        self.uprobe_fds: Dict[bytes, Any] = {}
        self.tracepoint_fds: Dict[bytes, Any] = {}
        self.raw_tracepoint_fds: Dict[bytes, Any] = {}
        self.kfunc_entry_fds: Dict[bytes, Any] = {}
        self.kfunc_exit_fds: Dict[bytes, Any] = {}
        self.lsm_fds: Dict[bytes, Any] = {}
        self.perf_buffers: Dict[Any, Any] = {}
        self.open_perf_events: Dict[Any, Dict[int, Any]] = {}
        self._perf_readers: Dict[int, Any] = {}
        self._ringbuf_manager = None
        self._poller = None
        self.tracefile = None
        self._obj = None
        self._closed = False
        atexit.register(self.cleanup)

        name = "<text>"
        if src_file:
            path = src_file.decode()
            if not os.path.isfile(path):
                alt = os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), path)
                if os.path.isfile(alt):
                    path = alt
                else:
                    raise Exception("Could not find file %s" % path)
            with open(path, "rb") as f:
                text = f.read()
            name = path
        source = (text or b"").decode()
        for ctx in usdt_contexts:
            source = ctx.get_text() + source
        cflags = [_to_str(c) for c in cflags]
        if "LINUX_VERSION_CODE" in source and not any(
                c.startswith("-DLINUX_VERSION_CODE") for c in cflags):
            # BCC compiles against the running kernel's headers, whose
            # linux/version.h defines this; as a flag it joins the cache key, so
            # only programs that test the kernel version are built per kernel.
            from bccless.load.kernel import kernel_version_code
            cflags.append("-DLINUX_VERSION_CODE=%d" % kernel_version_code())
        try:
            built = build(source, cflags=cflags, filename=name)
        except BcclessError as exc:
            print(str(exc), file=sys.stderr)
            raise Exception("Failed to compile BPF module %s" % name) from None
        self._meta = built.metadata
        if debug & DEBUG_PREPROCESSOR:
            self._print_translation(source, cflags, name)
        self._obj = BPFObject.open(built.object, name="bcc")
        self._log_level = 2 if debug & DEBUG_BPF_REGISTER_STATE else (1 if debug & DEBUG_BPF else 0)
        try:
            self._obj.load(programs=False)
        except BcclessError as exc:
            raise Exception("Failed to load BPF module %s: %s" % (name, exc)) from None
        self._programs_meta = {p["name"]: p for p in self._meta.get("programs", [])}
        for ctx in usdt_contexts:
            ctx.attach_uprobes(self, attach_usdt_ignore_pid)
        self._trace_autoload()

    @staticmethod
    def _print_translation(source: str, cflags, name: str) -> None:
        """DEBUG_PREPROCESSOR: show the C that was compiled (BCC shows its rewritten C).

        The cache keeps objects, not translated text, so the (cheap, debug-only)
        translation is redone here.
        """
        from bccless.bcc.translate import translate
        print(translate(source, cflags=cflags, filename=name).text, file=sys.stderr)

    @property
    def _btf(self):
        """The object's BTF, parsed only when a table or event type needs it."""
        return self._obj.btf

    # -- programs -----------------------------------------------------------
    def load_func(self, func_name, prog_type, device=None, attach_type=-1) -> "BPF.Function":
        # Keys and messages use the bytes name, as BCC's do ("Unknown program b'x'").
        bname = _assert_is_bytes(func_name)
        if bname in self.funcs:
            return self.funcs[bname]
        name = bname.decode()
        try:
            prog = self._obj.programs[name]
        except KeyError:
            raise Exception("Unknown program %s" % bname) from None
        if prog.prog_type != prog_type or attach_type >= 0:
            prog.set_type(prog_type, attach_type if attach_type >= 0 else 0)
        try:
            prog.load(log_level=self._log_level)
        except VerifierError as exc:
            print(exc.log, file=sys.stderr)
            raise Exception("Failed to load BPF program %s: %s" % (
                bname, os.strerror(exc.errno) if exc.errno else exc)) from None
        except BcclessError as exc:
            if getattr(exc, "errno", 0) == errno.EPERM:
                raise Exception("Need super-user privileges to run") from None
            raise Exception("Failed to load BPF program %s: %s" % (bname, exc)) from None
        if self._log_level and prog.log:
            # BCC shows the verifier's log of a successful load under DEBUG_BPF.
            print(prog.log, file=sys.stderr)
        fn = BPF.Function(self, bname, prog.fd)
        self.funcs[bname] = fn
        return fn

    def load_funcs(self, prog_type=KPROBE):
        return [self.load_func(p["name"], prog_type) for p in self._meta.get("programs", [])]

    def dump_func(self, func_name) -> bytes:
        """The program's instructions with map fds patched in, as the kernel got them.

        bccless relocates at load time, so the program is loaded (with its
        section's type) first; BCC has the same bytes right after compiling.
        """
        bname = _assert_is_bytes(func_name)
        if self._obj is None or bname.decode() not in self._obj.programs:
            raise Exception("Unknown program %s" % bname)
        prog = self._obj.programs[bname.decode()]
        self.load_func(bname, prog.prog_type or BPF.KPROBE)
        return bytes(prog.insns)

    # -- tables -------------------------------------------------------------
    def get_table(self, name, keytype=None, leaftype=None, reducer=None):
        sname = _to_str(name)
        try:
            live = self._obj.maps[sname]
        except KeyError:
            raise KeyError(name) from None
        spec = self._obj.map_spec(sname)
        decl = self._map_decls().get(sname, {})
        if keytype is None and spec.map_type not in (BPF_MAP_TYPE_QUEUE, BPF_MAP_TYPE_STACK):
            keytype = self._table_type(spec.key_type_id, decl.get("key_type"), spec.key_size)
        if leaftype is None:
            leaftype = self._table_type(spec.value_type_id, decl.get("leaf_type"),
                                        spec.value_size)
        kwargs: Dict[str, Any] = {}
        if reducer is not None:
            kwargs["reducer"] = reducer
        event = self._event_type_id(sname)
        if event:
            kwargs["event_type_id"] = event
        return Table(self, live.id, live.fd, keytype, leaftype, name, **kwargs)

    def _map_decls(self) -> Dict[str, dict]:
        return {m["name"]: m for m in self._meta.get("maps", [])}

    def _table_type(self, type_id: int, spelled: Optional[str], size: int):
        """ctypes class of a key or leaf: from the map's BTF type, else from the
        type the BCC declaration spelled (queue, stack and stack-trace maps
        are created without BTF types), else an integer or bytes of its size."""
        from ._ctypes import table_type, type_by_spelling

        if not type_id and spelled:
            type_id = type_by_spelling(self._btf, spelled)
        if type_id:
            return table_type(self._btf, type_id)
        if size in (1, 2, 4, 8):
            return {1: ct.c_ubyte, 2: ct.c_ushort, 4: ct.c_uint, 8: ct.c_ulonglong}[size]
        return ct.c_ubyte * size if size else ct.c_int

    def _event_type_id(self, map_name: str) -> int:
        """BTF id of the struct this output map's submit calls pass (BCC's event())."""
        from ._ctypes import type_by_spelling

        event = self._meta.get("events", {}).get(map_name)
        if not event or not event.get("type"):
            return 0
        return type_by_spelling(self._btf, event["type"])

    def __getitem__(self, key):
        """The table named ``key``, opened on first use.

        Callbacks look their table up per event (``b["events"].event(data)``),
        so an open table costs one dict subscript.
        """
        try:
            return self.tables[key]
        except KeyError:
            pass
        table = self.tables[key] = self.get_table(key)
        return table

    def __setitem__(self, key, leaf) -> None:
        self.tables[key] = leaf

    def __len__(self) -> int:
        return len(self.tables)

    def __delitem__(self, key) -> None:
        del self.tables[key]

    def __iter__(self):
        return self.tables.__iter__()

    # -- output channels ----------------------------------------------------
    def _ring_buffer(self):
        if self._ringbuf_manager is None:
            from bccless.events.ringbuf import RingBuf as _Manager
            self._ringbuf_manager = _Manager()
        return self._ringbuf_manager

    def _perf_poller_stale(self) -> None:
        """A perf buffer was opened or closed: rebuild the shared poller on the next poll."""
        self._poller = None

    def _perf_poller(self) -> Tuple[Dict[int, Callable[[], int]], Any]:
        """(fd -> drain of its ring, poll object over those fds) for every open perf buffer.

        poll(2), as BCC uses, rather than epoll: poll is on a ring's wait
        queue only while we sleep in it, whereas an epoll entry stays there
        and costs the BPF program's CPU a callback on every wakeup, which is
        every event with BCC's default wakeup_events=1.
        """
        import select
        drains: Dict[int, Callable[[], int]] = {}
        for reader in self._perf_readers.values():
            drains.update(reader.drainers())
        poller = select.poll()
        for fd in drains:
            poller.register(fd, select.POLLIN)
        return drains, poller

    @_exits_on_epipe
    def perf_buffer_poll(self, timeout=-1) -> None:
        """Wait for any opened perf buffer, then run the callbacks of ready rings."""
        if not self._perf_readers:
            return
        if self._poller is None:
            self._poller = self._perf_poller()
        drains, poller = self._poller
        try:
            ready = poller.poll(timeout)
        except InterruptedError:
            return
        for fd, _ in ready:
            drains[fd]()

    kprobe_poll = perf_buffer_poll

    @_exits_on_epipe
    def perf_buffer_consume(self) -> None:
        for r in list(self._perf_readers.values()):
            r.consume()

    @_exits_on_epipe
    def ring_buffer_poll(self, timeout=-1) -> None:
        if self._ringbuf_manager is None:
            raise Exception("No ring buffers to poll")
        self._ringbuf_manager.poll(timeout)

    @_exits_on_epipe
    def ring_buffer_consume(self) -> None:
        if self._ringbuf_manager is None:
            raise Exception("No ring buffers to poll")
        self._ringbuf_manager.consume()

    def trace_open(self, nonblocking=False):
        from bccless.events.trace_pipe import TracePipe
        if self.tracefile is None:
            self.tracefile = TracePipe(nonblocking=nonblocking)
        return self.tracefile

    def trace_readline(self, nonblocking=False):
        return self.trace_open(nonblocking).readline()

    def trace_fields(self, nonblocking=False):
        return self.trace_open(nonblocking).fields()

    def trace_print(self, fmt=None) -> None:
        while True:
            if fmt:
                fields = self.trace_fields(nonblocking=False)
                if not fields:
                    continue
                line = fmt.format(*fields)
            else:
                line = self.trace_readline(nonblocking=False)
            print(line)
            sys.stdout.flush()

    # -- discovery ----------------------------------------------------------
    @staticmethod
    def kernel_struct_has_field(struct_name, field_name) -> int:
        from bccless.bcc.kernel import struct_has_field
        return struct_has_field(_to_str(struct_name), _to_str(field_name))

    @staticmethod
    def kernel_enum_has_val(enum_name, value_name) -> int:
        from bccless.bcc.kernel import enum_has_value
        return enum_has_value(_to_str(enum_name), _to_str(value_name))

    @staticmethod
    def tracepoint_exists(category, event) -> bool:
        evt_dir = os.path.join(TRACEFS, "events", _to_str(category), _to_str(event))
        return os.path.isdir(evt_dir)

    @staticmethod
    def get_tracepoints(tp_re):
        results = []
        events_dir = os.path.join(TRACEFS, "events")
        pattern = re.compile(_to_str(tp_re))
        for category in sorted(os.listdir(events_dir)):
            cat_dir = os.path.join(events_dir, category)
            if not os.path.isdir(cat_dir):
                continue
            for event in sorted(os.listdir(cat_dir)):
                if os.path.isdir(os.path.join(cat_dir, event)):
                    tp = "%s:%s" % (category, event)
                    if pattern.match(tp):
                        results.append(tp.encode())
        return results

    @staticmethod
    def support_raw_tracepoint() -> bool:
        from bccless.sys import features, bpf_consts
        return bool(features.has_prog_type(bpf_consts.BPF_PROG_TYPE_RAW_TRACEPOINT))

    @staticmethod
    def support_raw_tracepoint_in_module() -> bool:
        return BPF.support_raw_tracepoint()

    @staticmethod
    def support_kfunc() -> bool:
        from bccless.sys import features
        return bool(features.fentry())

    @staticmethod
    def support_lsm() -> bool:
        from bccless.sys import features
        return bool(features.lsm())

    @staticmethod
    def support_fmod_ret() -> bool:
        return BPF.kernel_enum_has_val("bpf_attach_type", "BPF_MODIFY_RETURN") == 1 \
            and BPF.support_kfunc()

    @classmethod
    def monotonic_time(cls) -> float:
        import time
        return float(time.clock_gettime_ns(time.CLOCK_MONOTONIC))

    @classmethod
    def generate_auto_includes(cls, program_words) -> str:
        headers = {"linux/time.h": ["time"], "linux/fs.h": ["fs", "file"],
                   "linux/blkdev.h": ["bio", "request"], "linux/slab.h": ["alloc"],
                   "linux/netdevice.h": ["sk_buff", "net_device"]}
        out = ""
        for header, keywords in headers.items():
            if any(k in w for k in keywords for w in program_words):
                out += "#include <%s>\n" % header
        return out

    # -- lifetime -----------------------------------------------------------
    def close(self) -> None:
        if self._obj is not None:
            self._obj.close()
            self._obj = None

    def cleanup(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._detach_all()
        for key in list(self.tables):
            table = self.tables.pop(key)
            if isinstance(table, PerfEventArray):
                table.close_perf_buffer()
        for reader in list(self._perf_readers.values()):
            reader.close()
        self._perf_readers.clear()
        self._perf_poller_stale()
        if self.tracefile is not None:
            self.tracefile.close()
            self.tracefile = None
        if self._ringbuf_manager is not None:
            self._ringbuf_manager.close()
            self._ringbuf_manager = None
        self.close()

    def __enter__(self) -> "BPF":
        return self

    def __exit__(self, exc_type, exc_val, exc_tb) -> None:
        self.cleanup()

    @staticmethod
    def donothing() -> None:
        """Registered by BCC after a load failure; kept for scripts that call it."""


__all__ = ["BPF", "USDT", "USDTException", "SymbolCache", "PerfType", "PerfHWConfig",
           "PerfSWConfig", "PerfEventSampleFormat", "BPFProgType", "BPFAttachType", "XDPAction",
           "XDPFlags", "Table", "PerfEventArray", "RingBuf", "BPF_MAP_TYPE_QUEUE",
           "BPF_MAP_TYPE_STACK", "get_online_cpus", "printb", "ArgString", "DEBUGFS", "TRACEFS"]
