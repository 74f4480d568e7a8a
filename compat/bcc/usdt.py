"""``bcc.usdt``: USDT probes for BCC programs.

BCC generates one argument reader per (function, argument) and has its C
rewriter rename ``bpf_usdt_readarg`` calls to them.  bccless needs no
rewriting: every probe site is attached with a BPF cookie naming its
argument layout, and a single generated reader switches on
``bpf_get_attach_cookie(ctx)``, the way libbpf's USDT support works.  The same
program text therefore works for any number of sites and binaries.
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Tuple

from bccless.attach import usdt as _usdt
from bccless.errors import BcclessError


class USDTException(Exception):
    pass


class USDTProbeArgument:
    def __init__(self, arg: "_usdt.UsdtArg") -> None:
        self._arg = arg
        self.signed = arg.signed
        self.size = arg.size
        self.valid = True
        if arg.kind == _usdt.ARG_CONST:
            self.constant = arg.offset
        self.deref_offset = arg.offset if arg.kind == _usdt.ARG_MEM else None
        self.deref_ident = arg.ident or None
        self.base_register_name = arg.reg or None
        self.index_register_name = arg.index or None
        self.scale = arg.scale if arg.index else None

    def _operand(self) -> str:
        a = self._arg
        if a.kind == _usdt.ARG_CONST:
            return "%d" % a.offset
        if a.kind == _usdt.ARG_REG:
            return a.reg
        sign = "+" if a.offset >= 0 else "-"
        base = "&%s" % a.ident if a.ident else a.reg
        idx = " + %s * %d" % (a.index, a.scale) if a.index else ""
        return "*(%s %s %d%s)" % (base, sign, abs(a.offset), idx)

    def __str__(self) -> str:
        return "%d %s bytes @ %s" % (self.size, "signed" if self.signed else "unsigned",
                                     self._operand())


class USDTProbeLocation:
    def __init__(self, probe: "USDTProbe", site: "_usdt.UsdtProbe") -> None:
        self.probe = probe
        self.address = site.pc
        self.bin_path = site.path
        self._site = site

    def get_argument(self, index: int) -> USDTProbeArgument:
        return USDTProbeArgument(self._site.args[index])

    def __str__(self) -> str:
        return "%s 0x%x" % (self.bin_path, self.address)


class USDTProbe:
    def __init__(self, sites: List["_usdt.UsdtProbe"]) -> None:
        first = sites[0]
        self.provider = first.provider.encode()
        self.name = first.name.encode()
        self.bin_path = first.path.encode()
        self.semaphore = first.semaphore
        self.num_locations = len(sites)
        self.num_arguments = len(first.args)
        self._sites = sites

    def short_name(self) -> bytes:
        return self.provider + b":" + self.name

    def get_location(self, idx: int) -> USDTProbeLocation:
        return USDTProbeLocation(self, self._sites[idx])

    def __str__(self) -> str:
        return "%s:%s [sema 0x%x]" % (self.provider.decode(), self.name.decode(), self.semaphore)


_READ_TYPES = {(1, False): "u8", (1, True): "s8", (2, False): "u16", (2, True): "s16",
               (4, False): "u32", (4, True): "s32", (8, False): "u64", (8, True): "s64"}


class USDT:
    """USDT probes of one process (``pid``) or one binary (``path``)."""

    def __init__(self, pid: Optional[int] = None, path: Optional[str] = None) -> None:
        if isinstance(path, bytes):
            path = path.decode()
        if pid is not None and pid != -1:
            self.pid: Optional[int] = int(pid)
            exe = path or os.readlink("/proc/%d/exe" % self.pid)
        elif path:
            self.pid = None
            exe = path
        else:
            raise USDTException("either a pid or a binary path must be specified")
        try:
            from bccless.attach.elfsym import resolve_binary
            self.path = resolve_binary(exe, self.pid)
            self._sites = _usdt.parse_notes(self.path)
        except (BcclessError, OSError) as exc:
            what = "PID %d" % self.pid if self.pid is not None else "path %s" % exe
            raise USDTException("USDT failed to instrument %s: %s" % (what, exc)) from None
        self._enabled: List[Tuple[str, str, str]] = []  # (provider, name, fn_name)
        self._specs: List[Tuple[str, "_usdt.UsdtProbe"]] = []  # cookie -> (fn, site)

    def _match(self, probe: str) -> List["_usdt.UsdtProbe"]:
        provider, _, name = probe.rpartition(":")
        return [s for s in self._sites
                if s.name == name and (not provider or s.provider == provider)]

    def enable_probe(self, probe, fn_name) -> None:
        probe = probe.decode() if isinstance(probe, bytes) else probe
        fn_name = fn_name.decode() if isinstance(fn_name, bytes) else fn_name
        sites = self._match(probe)
        if not sites:
            raise USDTException(
                "Failed to enable USDT probe '%s':\nthe provided pid or binary does not "
                "have a probe of that name (list them with `bccless usdt list` or "
                "`readelf -n %s`)" % (probe, self.path))
        for site in sites:
            if site.args_error:
                raise USDTException("USDT probe %s: %s" % (probe, site.args_error))
            self._specs.append((fn_name, site))
        self._enabled.append((sites[0].provider, sites[0].name, fn_name))

    def enable_probe_or_bail(self, probe, fn_name) -> None:
        try:
            self.enable_probe(probe, fn_name)
        except USDTException as exc:
            import sys
            print(exc, file=sys.stderr)
            sys.exit(1)

    def get_context(self) -> "USDT":
        return self

    def get_probe_arg_ctype(self, probe_name, arg_index: int) -> str:
        sites = self._match(probe_name.decode() if isinstance(probe_name, bytes) else probe_name)
        if not sites:
            raise USDTException("no probe %s" % probe_name)
        arg = sites[0].args[arg_index]
        return {1: "int8_t", 2: "int16_t", 4: "int32_t", 8: "int64_t"}[arg.size].replace(
            "int", "int" if arg.signed else "uint")

    def enumerate_probes(self) -> List[USDTProbe]:
        groups: Dict[Tuple[str, str], List] = {}
        for s in self._sites:
            groups.setdefault((s.provider, s.name), []).append(s)
        return [USDTProbe(sites) for sites in groups.values()]

    def enumerate_active_probes(self):
        return [(site.path.encode(), fn.encode(), site.pc, self.pid or -1)
                for fn, site in self._specs]

    def get_text(self) -> str:
        """C text prepended to the program: the cookie-dispatched argument reader."""
        cases = []
        for cookie, (fn, site) in enumerate(self._specs):
            arms = []
            for n, arg in enumerate(site.args, 1):
                arms.append("\t\tcase %d: %s break;" % (n, _read_arg(arg)))
            cases.append("\tcase %d: /* %s:%s for %s */\n\t\tswitch (n) {\n%s\n\t\tdefault: "
                         "return -1;\n\t\t}\n\t\tbreak;" % (
                             cookie, site.provider, site.name, fn, "\n".join(arms)))
        return _READER_TEMPLATE % "\n".join(cases)

    def attach_uprobes(self, bpf, attach_usdt_ignore_pid: bool) -> None:
        from bccless.attach.uprobe import attach_uprobe_offset
        pid = None if attach_usdt_ignore_pid else self.pid
        for cookie, (fn, site) in enumerate(self._specs):
            f = bpf.load_func(fn.encode(), bpf.KPROBE)
            try:
                link = attach_uprobe_offset(f.fd, site.path, site.offset, pid=pid,
                                            ref_ctr_offset=site.semaphore_offset,
                                            bpf_cookie=cookie, prog_name=fn,
                                            what="usdt %s:%s" % (site.provider, site.name))
            except BcclessError as exc:
                raise USDTException("Failed to attach USDT probe %s:%s to %s: %s" % (
                    site.provider, site.name, fn, exc)) from None
            ev_name = b"usdt_%s_0x%x_%d" % (site.path.encode(), site.offset, cookie)
            bpf.uprobe_fds[ev_name] = link


def _read_arg(arg: "_usdt.UsdtArg") -> str:
    ctype = _READ_TYPES[(arg.size, arg.signed)]
    if arg.kind == _usdt.ARG_CONST:
        return "v = (%s)%dLL;" % (ctype, arg.offset)
    if arg.kind == _usdt.ARG_REG:
        return "v = (%s)ctx->%s;" % (ctype, arg.reg)
    if arg.ident:
        raise USDTException("USDT argument '%s' is relative to symbol %s, which bccless "
                            "cannot resolve" % (arg.spec, arg.ident))
    addr = "ctx->%s + (%d)" % (arg.reg, arg.offset)
    if arg.index:
        addr += " + ctx->%s * %d" % (arg.index, arg.scale)
    return ("{ %s t = 0; bpf_probe_read_user(&t, sizeof(t), (void *)(%s)); v = t; }" %
            (ctype, addr))


_READER_TEMPLATE = """#include <uapi/linux/ptrace.h>
static __always_inline int _bccless_usdt_readarg(struct pt_regs *ctx, int n, void *dest,
                                                 unsigned long len)
{
\tlong long v = 0;
\tswitch (bpf_get_attach_cookie(ctx)) {
%s
\tdefault:
\t\treturn -1;
\t}
\tif (len == 1) *(u8 *)dest = v;
\telse if (len == 2) *(u16 *)dest = v;
\telse if (len == 4) *(u32 *)dest = v;
\telse if (len == 8) *(u64 *)dest = v;
\telse return -1;
\treturn 0;
}
#define bpf_usdt_readarg(n, ctx, addr) _bccless_usdt_readarg(ctx, n, addr, sizeof(*(addr)))
#define bpf_usdt_readarg_p(n, ctx, buf, len) ({ u64 __p = 0; \\
\t_bccless_usdt_readarg(ctx, n, &__p, sizeof(__p)); \\
\tbpf_probe_read_user(buf, len, (void *)__p); })
"""
