"""Address -> symbol resolution for stack traces (``BPF.sym``/``ksym``).

Kernel addresses resolve through /proc/kallsyms; user addresses through the
process's /proc/PID/maps and the ELF symbol tables of the mapped files
(``bccless.attach.elfsym``).  Tables are built once per pid and kept, as BCC
keeps its symbol caches.
"""
from __future__ import annotations

import bisect
import os
from typing import Dict, List, Optional, Tuple

Resolved = Tuple[Optional[bytes], int, Optional[bytes]]  # (name, offset, module)


class _KernelSyms:
    def __init__(self) -> None:
        addrs: List[int] = []
        names: List[Tuple[bytes, bytes]] = []
        try:
            with open("/proc/kallsyms", "rb") as f:
                for line in f:
                    parts = line.split()
                    if len(parts) < 3 or parts[1] not in (b"t", b"T", b"w", b"W"):
                        continue
                    addr = int(parts[0], 16)
                    if addr == 0:
                        continue
                    module = parts[3].strip(b"[]") if len(parts) > 3 else b"kernel"
                    addrs.append(addr)
                    names.append((parts[2], module))
        except OSError:
            pass
        order = sorted(range(len(addrs)), key=addrs.__getitem__)
        self.addrs = [addrs[i] for i in order]
        self.names = [names[i] for i in order]
        self.by_name = {n: a for a, (n, _) in zip(self.addrs, self.names)}

    def resolve(self, addr: int) -> Resolved:
        i = bisect.bisect_right(self.addrs, addr) - 1
        if i < 0:
            return None, 0, None
        name, module = self.names[i]
        return name, addr - self.addrs[i], module


class _Mapping:
    __slots__ = ("start", "end", "offset", "path")

    def __init__(self, start: int, end: int, offset: int, path: str) -> None:
        self.start, self.end, self.offset, self.path = start, end, offset, path


class _UserSyms:
    def __init__(self, pid: int) -> None:
        self.maps: List[_Mapping] = []
        self.tables: Dict[str, Tuple[List[int], List[Tuple[int, str]]]] = {}
        try:
            with open("/proc/%d/maps" % pid) as f:
                for line in f:
                    parts = line.split(None, 5)
                    if len(parts) < 6 or not parts[5].startswith("/"):
                        continue
                    lo, hi = (int(x, 16) for x in parts[0].split("-"))
                    self.maps.append(_Mapping(lo, hi, int(parts[2], 16), parts[5].strip()))
        except OSError:
            pass
        self.root = "/proc/%d/root" % pid

    def _table(self, path: str):
        if path not in self.tables:
            from bccless.attach.elfsym import elf_image
            from bccless.errors import BcclessError
            try:
                full = self.root + path if os.path.exists(self.root + path) else path
                img = elf_image(full)
                syms = sorted((s.value, s.size, s.name) for s in img.symbols.values())
            except (BcclessError, OSError):
                img, syms = None, []
            self.tables[path] = ([s[0] for s in syms], [(s[1], s[2]) for s in syms], img)
        return self.tables[path]

    def resolve(self, addr: int) -> Resolved:
        for m in self.maps:
            if m.start <= addr < m.end:
                starts, info, img = self._table(m.path)
                if img is None:
                    return None, 0, m.path.encode()
                try:
                    vaddr = img.offset_to_vaddr(addr - m.start + m.offset)
                except Exception:
                    return None, 0, m.path.encode()
                i = bisect.bisect_right(starts, vaddr) - 1
                if i >= 0 and (vaddr < starts[i] + max(info[i][0], 1)):
                    return info[i][1].encode(), vaddr - starts[i], m.path.encode()
                return None, 0, m.path.encode()
        return None, 0, None


class SymbolCache:
    """Symbols of one process (pid >= 0) or of the kernel (pid < 0)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._impl = _kernel() if pid < 0 else _UserSyms(pid)

    def resolve(self, addr: int, demangle: bool = True) -> Resolved:
        return self._impl.resolve(addr)

    def resolve_name(self, module, name) -> int:
        if isinstance(name, str):
            name = name.encode()
        if self.pid < 0:
            return self._impl.by_name.get(name, -1)
        return -1


_KERNEL: Optional[_KernelSyms] = None


def _kernel() -> _KernelSyms:
    global _KERNEL
    if _KERNEL is None:
        _KERNEL = _KernelSyms()
    return _KERNEL


class SymbolsMixin:
    _sym_caches: Dict[int, SymbolCache] = {}

    @staticmethod
    def _sym_cache(pid: int) -> SymbolCache:
        if pid < 0 and pid != -1:
            pid = -1
        cache = SymbolsMixin._sym_caches.get(pid)
        if cache is None:
            cache = SymbolsMixin._sym_caches[pid] = SymbolCache(pid)
        return cache

    @staticmethod
    def sym(addr, pid, show_module=False, show_offset=False, demangle=True) -> bytes:
        name, offset, module = SymbolsMixin._sym_cache(pid).resolve(addr, demangle)
        if name is None:
            out = b"[unknown]"
        else:
            out = name
            if show_offset:
                out += b"+0x%x" % offset
        if show_module and module:
            out += b" [" + os.path.basename(module) + b"]"
        return out

    @staticmethod
    def ksym(addr, show_module=False, show_offset=False) -> bytes:
        return SymbolsMixin.sym(addr, -1, show_module, show_offset, False)

    @staticmethod
    def ksymname(name) -> int:
        return SymbolsMixin._sym_cache(-1).resolve_name(None, name)

    @staticmethod
    def add_module(modname) -> None:
        """Build-id symbolization is not cached separately; kept for API compatibility."""

    @staticmethod
    def free_bcc_memory() -> int:
        SymbolsMixin._sym_caches.clear()
        return 0
