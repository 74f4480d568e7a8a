"""BCC's attach/detach methods, on top of :mod:`bccless.attach`.

Event names and the ``kprobe_fds``/``uprobe_fds``/``tracepoint_fds`` keys
follow BCC so that tools that detach by name or count open probes keep
working; the attachment itself is a :class:`bccless.attach.link.Link`, which
the clean-up registry also releases at exit and on SIGINT/SIGTERM.
"""
from __future__ import annotations

import os
import re
from typing import List

from bccless.errors import AttachError, BcclessError

_probe_repl = re.compile(b"[^a-zA-Z0-9_]")
_syscall_prefixes = [b"sys_", b"__x64_sys_", b"__x32_compat_sys_", b"__ia32_compat_sys_",
                     b"__arm64_sys_", b"__s390x_sys_", b"__s390_sys_", b"__riscv_sys_"]


def _b(x) -> bytes:
    if x is None:
        return b""
    return x if isinstance(x, bytes) else str(x).encode()


def _s(x) -> str:
    return x.decode() if isinstance(x, bytes) else ("" if x is None else str(x))


def _probe_limit() -> int:
    env = os.environ.get("BCC_PROBE_LIMIT", "")
    return int(env) if env.isdigit() else 1000


class ProbeMixin:
    """Attach methods of ``bcc.BPF``; needs ``load_func`` and the fd dicts."""

    # -- quota --------------------------------------------------------------
    def _check_probe_quota(self, num_new_probes: int) -> None:
        import bcc
        if bcc._num_open_probes + num_new_probes > _probe_limit():
            raise Exception("Number of open probes would exceed global quota")

    @staticmethod
    def _add_probe(n: int) -> None:
        import bcc
        bcc._num_open_probes += n

    # -- kprobes ------------------------------------------------------------
    def attach_kprobe(self, event=b"", event_off=0, fn_name=b"", event_re=b""):
        event, fn_name, event_re = _b(event), _b(fn_name), _b(event_re)
        if event_re:
            matches = self.get_kprobe_functions(event_re)
            self._check_probe_quota(len(matches))
            failed = 0
            for line in matches:
                try:
                    self.attach_kprobe(event=line, fn_name=fn_name)
                except Exception:
                    failed += 1
            if matches and failed == len(matches):
                raise Exception("Failed to attach BPF program %s to kprobe %s" %
                                (_s(fn_name), _s(event_re)))
            return None
        self._check_probe_quota(1)
        fn = self.load_func(fn_name, self.KPROBE)
        ev_name = b"p_" + event.replace(b"+", b"_").replace(b".", b"_")
        from bccless.attach.kprobe import attach_kprobe
        try:
            link = attach_kprobe(fn.fd, _s(event), event_off, prog_name=_s(fn_name))
        except (AttachError, OSError) as exc:
            raise Exception("Failed to attach BPF program %s to kprobe %s: %s" %
                            (_s(fn_name), _s(event), exc)) from None
        self.kprobe_fds.setdefault(ev_name, {})[fn_name] = link
        self._add_probe(1)
        return self

    def attach_kretprobe(self, event=b"", fn_name=b"", event_re=b"", maxactive=0):
        event, fn_name, event_re = _b(event), _b(fn_name), _b(event_re)
        if event_re:
            for line in self.get_kprobe_functions(event_re):
                try:
                    self.attach_kretprobe(event=line, fn_name=fn_name, maxactive=maxactive)
                except Exception:
                    pass
            return None
        self._check_probe_quota(1)
        fn = self.load_func(fn_name, self.KPROBE)
        ev_name = b"r_" + event.replace(b"+", b"_").replace(b".", b"_")
        from bccless.attach.kprobe import attach_kprobe
        try:
            link = attach_kprobe(fn.fd, _s(event), 0, retprobe=True, maxactive=maxactive,
                                 prog_name=_s(fn_name))
        except (AttachError, OSError) as exc:
            raise Exception("Failed to attach BPF program %s to kretprobe %s: %s" %
                            (_s(fn_name), _s(event), exc)) from None
        self.kprobe_fds.setdefault(ev_name, {})[fn_name] = link
        self._add_probe(1)
        return self

    def _detach_kprobe_ev(self, ev_name: bytes, fn_name) -> None:
        if ev_name not in self.kprobe_fds:
            raise Exception("Kprobe %s is not attached" % _s(ev_name))
        progs = self.kprobe_fds[ev_name]
        names = [_b(fn_name)] if fn_name else list(progs)
        for name in names:
            link = progs.pop(name, None)
            if link is not None:
                link.close()
                self._add_probe(-1)
        if not progs:
            del self.kprobe_fds[ev_name]

    def detach_kprobe_event(self, ev_name) -> None:
        self._detach_kprobe_ev(_b(ev_name), None)

    def detach_kprobe_event_by_fn(self, ev_name, fn_name) -> None:
        self._detach_kprobe_ev(_b(ev_name), fn_name)

    def detach_kprobe(self, event, fn_name=None) -> None:
        ev_name = b"p_" + _b(event).replace(b"+", b"_").replace(b".", b"_")
        self._detach_kprobe_ev(ev_name, fn_name)

    def detach_kretprobe(self, event, fn_name=None) -> None:
        ev_name = b"r_" + _b(event).replace(b"+", b"_").replace(b".", b"_")
        self._detach_kprobe_ev(ev_name, fn_name)

    @staticmethod
    def get_kprobe_functions(event_re) -> List[bytes]:
        """Traceable kernel functions matching ``event_re``; none without kprobe support."""
        from bccless.attach.kprobe import kprobe_support
        if not kprobe_support():
            return []
        pattern = re.compile(_b(event_re))
        from bccless.attach.tracefs import tracefs_root
        try:
            with open(os.path.join(tracefs_root(), "available_filter_functions"), "rb") as f:
                avail = {line.split()[0] for line in f if line.strip()}
        except OSError:
            return []
        blacklist = set()
        try:
            with open("/sys/kernel/debug/kprobes/blacklist", "rb") as f:
                blacklist = {line.split()[1] for line in f if len(line.split()) > 1}
        except OSError:
            pass
        return sorted(fn for fn in avail if pattern.fullmatch(fn) and fn not in blacklist)

    # -- syscalls -------------------------------------------------------------
    def get_syscall_prefix(self) -> bytes:
        for prefix in _syscall_prefixes:
            if self.ksymname(prefix + b"bpf") != -1:
                return prefix
        return _syscall_prefixes[0]

    def get_syscall_fnname(self, name) -> bytes:
        return self.get_syscall_prefix() + _b(name)

    def fix_syscall_fnname(self, name) -> bytes:
        name = _b(name)
        for prefix in _syscall_prefixes:
            if name.startswith(prefix):
                return self.get_syscall_fnname(name[len(prefix):])
        return name

    @staticmethod
    def add_prefix(prefix, name):
        return name if name.startswith(prefix) else prefix + name

    # -- tracepoints ----------------------------------------------------------
    def attach_tracepoint(self, tp=b"", tp_re=b"", fn_name=b""):
        tp, tp_re, fn_name = _b(tp), _b(tp_re), _b(fn_name)
        if tp_re:
            for t in self.get_tracepoints(tp_re):
                self.attach_tracepoint(tp=t, fn_name=fn_name)
            return None
        fn = self.load_func(fn_name, self.TRACEPOINT)
        from bccless.attach.tracepoint import attach_tracepoint
        try:
            link = attach_tracepoint(fn.fd, _s(tp), prog_name=_s(fn_name))
        except (AttachError, OSError) as exc:
            raise Exception("Failed to attach BPF program %s to tracepoint %s: %s" %
                            (_s(fn_name), _s(tp), exc)) from None
        self.tracepoint_fds[tp] = link
        return self

    def detach_tracepoint(self, tp=b"") -> None:
        tp = _b(tp)
        if tp not in self.tracepoint_fds:
            raise Exception("Tracepoint %s is not attached" % _s(tp))
        self.tracepoint_fds.pop(tp).close()

    def attach_raw_tracepoint(self, tp=b"", fn_name=b""):
        tp, fn_name = _b(tp), _b(fn_name)
        if tp in self.raw_tracepoint_fds:
            raise Exception("Raw tracepoint %s has been attached" % _s(tp))
        fn = self.load_func(fn_name, self.RAW_TRACEPOINT)
        from bccless.attach.tracepoint import attach_raw_tracepoint
        try:
            link = attach_raw_tracepoint(fn.fd, _s(tp), prog_name=_s(fn_name))
        except (AttachError, OSError) as exc:
            raise Exception("Failed to attach BPF to raw tracepoint %s: %s" % (_s(tp), exc)) \
                from None
        self.raw_tracepoint_fds[tp] = link
        return self

    def detach_raw_tracepoint(self, tp=b"") -> None:
        tp = _b(tp)
        if tp not in self.raw_tracepoint_fds:
            raise Exception("Raw tracepoint %s is not attached" % _s(tp))
        self.raw_tracepoint_fds.pop(tp).close()

    # -- BTF-attached tracing (fentry/fexit/LSM) -------------------------------
    def _attach_btf_prog(self, fn_name, prefix: bytes, table: dict, what: str):
        fn_name = _b(fn_name)
        if not fn_name.startswith(prefix):
            fn_name = prefix + fn_name
        if fn_name in table:
            raise Exception("%s %s has been attached" % (what, _s(fn_name)))
        prog_type = self.LSM if prefix == b"lsm__" else self.TRACING
        fn = self.load_func(fn_name, prog_type)
        from bccless.attach.tracepoint import attach_btf
        prog = self._obj.programs[_s(fn_name)]
        try:
            link = attach_btf(fn.fd, prog.expected_attach_type, prog_name=_s(fn_name))
        except (AttachError, OSError) as exc:
            raise Exception("Failed to attach BPF to %s %s: %s" % (what, _s(fn_name), exc)) \
                from None
        table[fn_name] = link
        return self

    def attach_kfunc(self, fn_name=b""):
        return self._attach_btf_prog(fn_name, b"kfunc__", self.kfunc_entry_fds, "entry kfunc")

    def attach_kretfunc(self, fn_name=b""):
        return self._attach_btf_prog(fn_name, b"kretfunc__", self.kfunc_exit_fds, "exit kfunc")

    def attach_lsm(self, fn_name=b""):
        return self._attach_btf_prog(fn_name, b"lsm__", self.lsm_fds, "LSM")

    def _detach_btf_prog(self, fn_name, prefix: bytes, table: dict) -> None:
        fn_name = _b(fn_name)
        if not fn_name.startswith(prefix):
            fn_name = prefix + fn_name
        if fn_name not in table:
            raise Exception("%s is not attached" % _s(fn_name))
        table.pop(fn_name).close()

    def detach_kfunc(self, fn_name=b"") -> None:
        self._detach_btf_prog(fn_name, b"kfunc__", self.kfunc_entry_fds)

    def detach_kretfunc(self, fn_name=b"") -> None:
        self._detach_btf_prog(fn_name, b"kretfunc__", self.kfunc_exit_fds)

    def detach_lsm(self, fn_name=b"") -> None:
        self._detach_btf_prog(fn_name, b"lsm__", self.lsm_fds)

    # -- uprobes ----------------------------------------------------------------
    def _uprobe_ev_name(self, prefix: bytes, path: bytes, addr: int, pid: int) -> bytes:
        name = b"%s_%s_0x%x" % (prefix, _probe_repl.sub(b"_", path), addr)
        if pid != -1:
            name += b"_%d" % pid
        return name

    def attach_uprobe(self, name=b"", sym=b"", sym_re=b"", addr=None, fn_name=b"", pid=-1,
                      sym_off=0):
        return self._attach_uprobe(False, name, sym, sym_re, addr, fn_name, pid, sym_off)

    def attach_uretprobe(self, name=b"", sym=b"", sym_re=b"", addr=None, fn_name=b"", pid=-1):
        return self._attach_uprobe(True, name, sym, sym_re, addr, fn_name, pid, 0)

    def _attach_uprobe(self, ret: bool, name, sym, sym_re, addr, fn_name, pid, sym_off):
        from bccless.attach import elfsym

        name, sym, sym_re, fn_name = _b(name), _b(sym), _b(sym_re), _b(fn_name)
        if addr is not None and sym_off:
            raise Exception("sym_off is not allowed with addr")
        if sym_off < 0:
            raise Exception("sym_off must be >= 0")
        try:
            path = elfsym.resolve_binary(_s(name), pid if pid and pid > 0 else None)
        except BcclessError as exc:
            raise Exception(str(exc)) from None
        if sym_re:
            # Every address once, as BCC's get_user_addresses deduplicates aliases.
            offsets = sorted({off for _, off in elfsym.find_symbols(path, _s(sym_re))})
            self._check_probe_quota(len(offsets))
            for off in offsets:
                self._attach_uprobe_at(ret, path, off, fn_name, pid)
            return None
        self._check_probe_quota(1)
        try:
            if addr is not None:
                offset = elfsym.address_offset(path, addr)
            else:
                offset = elfsym.symbol_offset(path, _s(sym), sym_off)
        except BcclessError:
            raise Exception("could not determine address of symbol %s in %s" %
                            (_s(sym), path)) from None
        return self._attach_uprobe_at(ret, path, offset, fn_name, pid)

    def _attach_uprobe_at(self, ret: bool, path: str, offset: int, fn_name: bytes, pid):
        from bccless.attach import uprobe

        fn = self.load_func(fn_name, self.KPROBE)
        ev_name = self._uprobe_ev_name(b"r" if ret else b"p", path.encode(), offset, pid)
        try:
            link = uprobe.attach_uprobe_offset(fn.fd, path, offset, retprobe=ret,
                                               pid=pid if pid != -1 else None,
                                               prog_name=_s(fn_name))
        except (AttachError, OSError) as exc:
            raise Exception("Failed to attach BPF to %s: %s" % (
                "uretprobe" if ret else "uprobe", exc)) from None
        self.uprobe_fds[ev_name] = link
        self._add_probe(1)
        return self

    def _detach_uprobe_common(self, prefix: bytes, name, sym, addr, pid, sym_off) -> None:
        from bccless.attach import elfsym
        path = elfsym.resolve_binary(_s(name), pid if pid and pid > 0 else None)
        if addr is not None:
            offset = elfsym.address_offset(path, addr)
        else:
            offset = elfsym.symbol_offset(path, _s(sym), sym_off)
        self.detach_uprobe_event(self._uprobe_ev_name(prefix, path.encode(), offset, pid))

    def detach_uprobe_event(self, ev_name) -> None:
        ev_name = _b(ev_name)
        if ev_name not in self.uprobe_fds:
            raise Exception("Uprobe %s is not attached" % _s(ev_name))
        self.uprobe_fds.pop(ev_name).close()
        self._add_probe(-1)

    def detach_uprobe(self, name=b"", sym=b"", addr=None, pid=-1, sym_off=0) -> None:
        self._detach_uprobe_common(b"p", name, sym, addr, pid, sym_off)

    def detach_uretprobe(self, name=b"", sym=b"", addr=None, pid=-1) -> None:
        self._detach_uprobe_common(b"r", name, sym, addr, pid, 0)

    # -- perf events --------------------------------------------------------------
    def attach_perf_event(self, ev_type=-1, ev_config=-1, fn_name=b"", sample_period=0,
                          sample_freq=0, pid=-1, cpu=-1, group_fd=-1) -> None:
        fn = self.load_func(_b(fn_name), self.PERF_EVENT)
        from bccless.attach.perf_event import attach_perf_event
        try:
            link = attach_perf_event(fn.fd, ev_type, ev_config, sample_period=sample_period,
                                     sample_freq=sample_freq, pid=pid if pid > 0 else None,
                                     cpus=[cpu] if cpu >= 0 else None,
                                     prog_name=_s(fn_name))
        except (AttachError, OSError) as exc:
            raise Exception("Failed to attach BPF program %s to perf event: %s" %
                            (_s(fn_name), exc)) from None
        self.open_perf_events.setdefault((ev_type, ev_config), {})[cpu] = link

    def detach_perf_event(self, ev_type=-1, ev_config=-1) -> None:
        links = self.open_perf_events.pop((ev_type, ev_config), None)
        if links is None:
            raise Exception("Perf event type {} config {} not attached".format(
                ev_type, ev_config))
        for link in links.values():
            link.close()

    # -- networking ---------------------------------------------------------------
    @staticmethod
    def attach_xdp(dev, fn, flags=0) -> None:
        from bccless.attach.net import attach_xdp
        try:
            link = attach_xdp(fn.fd, _s(dev), flags, prog_name=_s(fn.name))
        except (AttachError, OSError) as exc:
            raise Exception("Failed to attach BPF to device %s: %s" % (_s(dev), exc)) from None
        _XDP_LINKS[_s(dev)] = link

    @staticmethod
    def remove_xdp(dev, flags=0) -> None:
        link = _XDP_LINKS.pop(_s(dev), None)
        if link is not None:
            link.close()
            return
        from bccless.attach import netlink
        netlink.request(netlink.xdp_set_message(netlink.ifindex(_s(dev)), -1, flags),
                        "remove XDP program from %s" % _s(dev))

    @staticmethod
    def attach_raw_socket(fn, dev) -> None:
        import socket
        from bccless.attach.net import attach_socket_filter
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_NONBLOCK |
                             socket.SOCK_CLOEXEC, socket.htons(0x0003))
        if dev:
            sock.bind((_s(dev), 0))
        attach_socket_filter(fn.fd, sock, prog_name=_s(fn.name))
        fn.sock = sock.detach()

    @staticmethod
    def attach_func(fn, attachable_fd, attach_type, flags=0) -> None:
        from bccless.sys import bpf
        try:
            bpf.prog_attach(fn.fd, attachable_fd, attach_type, flags)
        except OSError as exc:
            raise Exception("Failed to attach BPF function with attach_type %d: %s" %
                            (attach_type, exc.strerror)) from None

    @staticmethod
    def detach_func(fn, attachable_fd, attach_type) -> None:
        from bccless.sys import bpf
        try:
            bpf.prog_detach(attachable_fd, attach_type, fn.fd)
        except OSError as exc:
            raise Exception("Failed to detach BPF function with attach_type %d: %s" %
                            (attach_type, exc.strerror)) from None

    # -- counts and auto-attach --------------------------------------------------
    def num_open_kprobes(self) -> int:
        return len(self.kprobe_fds)

    def num_open_uprobes(self) -> int:
        return len(self.uprobe_fds)

    def num_open_tracepoints(self) -> int:
        return len(self.tracepoint_fds)

    def _trace_autoload(self) -> None:
        for prog in self._meta.get("programs", []):
            name = prog["name"]
            bname = name.encode()
            if name.startswith("kprobe__"):
                self.attach_kprobe(event=self.fix_syscall_fnname(bname[8:]), fn_name=bname)
            elif name.startswith("kretprobe__"):
                self.attach_kretprobe(event=self.fix_syscall_fnname(bname[11:]), fn_name=bname)
            elif name.startswith("tracepoint__"):
                tp = bname[len(b"tracepoint__"):].replace(b"__", b":")
                self.attach_tracepoint(tp=tp, fn_name=bname)
            elif name.startswith("raw_tracepoint__"):
                self.attach_raw_tracepoint(tp=bname[len(b"raw_tracepoint__"):], fn_name=bname)
            elif name.startswith("kfunc__"):
                self.attach_kfunc(fn_name=bname)
            elif name.startswith("kretfunc__"):
                self.attach_kretfunc(fn_name=bname)
            elif name.startswith("lsm__"):
                self.attach_lsm(fn_name=bname)

    def _detach_all(self) -> None:
        for ev_name in list(self.kprobe_fds):
            self._detach_kprobe_ev(ev_name, None)
        for ev_name in list(self.uprobe_fds):
            self.detach_uprobe_event(ev_name)
        for table in (self.tracepoint_fds, self.raw_tracepoint_fds, self.kfunc_entry_fds,
                      self.kfunc_exit_fds, self.lsm_fds):
            for key in list(table):
                table.pop(key).close()
        for key in list(self.open_perf_events):
            self.detach_perf_event(*key)


_XDP_LINKS: dict = {}
