"""Find binaries the way the dynamic linker does, and turn symbols into file offsets.

Uprobes are placed at a *file offset* of an inode, not at a virtual address,
so every user-space attach needs two answers: which file ("c" means
/lib/x86_64-linux-gnu/libc.so.6, "python3" means whatever PATH finds) and where
in that file a symbol's code starts.  The second goes through the PT_LOAD
program headers because that is what maps file bytes to addresses, for
non-PIE executables, PIE executables and shared objects alike.
"""
from __future__ import annotations

import logging
import os
import platform
import re
import struct
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, Iterator, List, Optional, Tuple

from ..errors import AttachError

if TYPE_CHECKING:
    from elftools.elf.elffile import ELFFile

log = logging.getLogger(__name__)

LD_SO_CACHE = "/etc/ld.so.cache"
_NEW_MAGIC = b"glibc-ld.so.cache1.1"
_OLD_MAGIC = b"ld.so-1.7.0"
# struct cache_file_new: magic[17] version[3] nlibs len_strings flags pad[3] ext_off unused[3]
_NEW_HEADER = struct.Struct("<20sIIB3xI12x")
# struct file_entry_new: int32 flags, uint32 key, uint32 value, uint32 osversion, uint64 hwcap
_NEW_ENTRY = struct.Struct("<iIIIQ")
_OLD_ENTRY_SIZE = 12  # struct file_entry: int32 flags, uint32 key, uint32 value

# ld.so.cache flag bits: FLAG_ELF_LIBC6 in the type byte, the ABI in the next byte.
_FLAG_TYPE_MASK = 0x00FF
_FLAG_ELF_LIBC6 = 0x0003
_FLAG_ABI_MASK = 0xFF00
_ARCH_ABI_FLAG = {"x86_64": 0x0300, "aarch64": 0x0A00, "ppc64le": 0x0500, "s390x": 0x0400,
                  "riscv64": 0x1000}
_DEFAULT_LIB_DIRS = ("/lib", "/usr/lib", "/lib64", "/usr/lib64")

STT_FUNC = "STT_FUNC"
STT_GNU_IFUNC = "STT_GNU_IFUNC"
_STT_FUNC = 2
_STT_GNU_IFUNC = 10
_VERSYM_HIDDEN = 0x8000


def parse_ld_so_cache(data: bytes, machine: Optional[str] = None) -> List[Tuple[str, str]]:
    """(soname key, path) pairs of this architecture from an ld.so.cache image, in cache order.

    The new format may follow an old-format table (the "compat" layout), in
    which case its string offsets are still relative to the new header.
    """
    machine = machine or platform.machine()
    start = data.find(_NEW_MAGIC)
    if start < 0:
        if data.startswith(_OLD_MAGIC):
            return _parse_old_cache(data, machine)
        return []
    if len(data) < start + _NEW_HEADER.size:
        return []
    _magic, nlibs, _len_strings, _flags, _ext = _NEW_HEADER.unpack_from(data, start)
    want_abi = _ARCH_ABI_FLAG.get(machine)
    out: List[Tuple[str, str]] = []
    pos = start + _NEW_HEADER.size
    end = pos + nlibs * _NEW_ENTRY.size
    if end > len(data):
        return []
    for flags, key, value, _osv, _hwcap in _NEW_ENTRY.iter_unpack(data[pos:end]):
        if (flags & _FLAG_TYPE_MASK) != _FLAG_ELF_LIBC6:
            continue
        if want_abi is not None and (flags & _FLAG_ABI_MASK) != want_abi:
            continue
        out.append((_cstr(data, start + key), _cstr(data, start + value)))
    return out


def _parse_old_cache(data: bytes, machine: str) -> List[Tuple[str, str]]:
    """The pre-2.32 format: strings are relative to the end of the entry table."""
    (nlibs,) = struct.unpack_from("<I", data, len(_OLD_MAGIC) + 1)
    table = len(_OLD_MAGIC) + 1 + 4
    strings = table + nlibs * _OLD_ENTRY_SIZE
    want_abi = _ARCH_ABI_FLAG.get(machine)
    out = []
    for i in range(nlibs):
        flags, key, value = struct.unpack_from("<iII", data, table + i * _OLD_ENTRY_SIZE)
        if want_abi is not None and (flags & _FLAG_ABI_MASK) != want_abi:
            continue
        out.append((_cstr(data, strings + key), _cstr(data, strings + value)))
    return out


def _cstr(data: bytes, off: int) -> str:
    end = data.find(b"\0", off)
    return os.fsdecode(data[off:end if end >= 0 else len(data)])


_cache_entries: Optional[Tuple[float, List[Tuple[str, str]]]] = None


def _ld_cache() -> List[Tuple[str, str]]:
    """The parsed system cache, re-read only when the file changes."""
    global _cache_entries
    try:
        mtime = os.stat(LD_SO_CACHE).st_mtime
    except OSError:
        return []
    if _cache_entries is None or _cache_entries[0] != mtime:
        with open(LD_SO_CACHE, "rb") as f:
            _cache_entries = (mtime, parse_ld_so_cache(f.read()))
    return _cache_entries[1]


def _lib_file_names(name: str) -> Tuple[str, ...]:
    """Accept BCC's short names ("c", "pthread") and real sonames ("libc.so.6")."""
    if ".so" in name:
        return (name,)
    base = name if name.startswith("lib") else "lib" + name
    return (base + ".so",)


def find_library(name: str, pid: Optional[int] = None) -> Optional[str]:
    """Absolute path of a shared library, or None.

    Search order follows ld.so: the mappings of ``pid`` (what that process
    really loaded), LD_LIBRARY_PATH, /etc/ld.so.cache, then the default dirs.
    A short name matches any soname with that prefix (``c`` -> ``libc.so.6``).
    """
    if "/" in name:
        return os.path.abspath(name) if os.path.isfile(name) else None
    prefixes = _lib_file_names(name)

    def matches(base: str) -> bool:
        return any(base == p or base.startswith(p + ".") for p in prefixes)

    if pid is not None and pid > 0:
        for path in _mapped_files(pid):
            if matches(os.path.basename(path)):
                return f"/proc/{pid}/root{path}" if _other_mount_ns(pid) else path
    for d in filter(None, os.environ.get("LD_LIBRARY_PATH", "").split(":")):
        hit = _scan_dir(d, matches)
        if hit:
            return hit
    for key, path in _ld_cache():
        if matches(key) and os.path.isfile(path):
            return path
    multiarch = [f"/lib/{platform.machine()}-linux-gnu", f"/usr/lib/{platform.machine()}-linux-gnu"]
    for d in (*multiarch, *_DEFAULT_LIB_DIRS):
        hit = _scan_dir(d, matches)
        if hit:
            return hit
    return None


def _scan_dir(d: str, matches) -> Optional[str]:
    try:
        names = sorted(os.listdir(d))
    except OSError:
        return None
    for n in names:
        if matches(n) and os.path.isfile(os.path.join(d, n)):
            return os.path.join(d, n)
    return None


def _mapped_files(pid: int) -> List[str]:
    """Distinct file-backed paths in /proc/<pid>/maps, in mapping order."""
    seen: Dict[str, None] = {}
    try:
        with open(f"/proc/{pid}/maps") as f:
            for line in f:
                parts = line.split(None, 5)
                if len(parts) == 6 and parts[5].startswith("/"):
                    seen.setdefault(parts[5].rstrip("\n"), None)
    except OSError:
        return []
    return list(seen)


def _other_mount_ns(pid: int) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
    except OSError:
        return False


def find_executable(name: str) -> Optional[str]:
    """A path as given when it has a slash, else the first executable in PATH."""
    if "/" in name:
        return os.path.abspath(name) if os.path.isfile(name) else None
    for d in os.environ.get("PATH", os.defpath).split(":"):
        p = os.path.join(d or ".", name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def resolve_binary(name: str, pid: Optional[int] = None) -> str:
    """The file a uprobe/USDT target names: a path, a library, or an executable in PATH."""
    path = find_library(name, pid) if "/" not in name else None
    path = path or find_executable(name)
    if not path:
        raise AttachError(f"could not find binary or library '{name}'"
                          + (f" (pid {pid})" if pid else ""))
    return os.path.realpath(path) if not path.startswith("/proc/") else path


@dataclass(frozen=True)
class Segment:
    """A PT_LOAD program header: the bridge between addresses and file offsets."""

    vaddr: int
    memsz: int
    offset: int
    filesz: int
    executable: bool


@dataclass(frozen=True)
class Symbol:
    name: str
    value: int      # st_value: a virtual address in the file's own address space
    size: int
    type: str       # STT_FUNC or STT_GNU_IFUNC


class ElfImage:
    """Load segments (read at once) and code symbols (read on first use) of one ELF file.

    Symbols are lazy because USDT note parsing needs only the segments and a
    large binary's symbol tables cost hundreds of milliseconds in pyelftools.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._symbols: Optional[Dict[str, Symbol]] = None
        with self._open() as elf:
            self.elf_type = elf["e_type"]
            self.segments = [
                Segment(s["p_vaddr"], s["p_memsz"], s["p_offset"], s["p_filesz"],
                        bool(s["p_flags"] & 1))
                for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]

    @contextmanager
    def _open(self) -> Iterator["ELFFile"]:
        from elftools.elf.elffile import ELFFile

        try:
            with open(self.path, "rb") as f:
                yield ELFFile(f)
        except OSError as exc:
            raise AttachError(f"{self.path}: cannot read: {exc.strerror}") from exc
        except AttachError:
            raise
        except Exception as exc:  # pyelftools raises its own ELFError and struct errors
            raise AttachError(f"{self.path}: not a readable ELF file: {exc}") from exc

    @property
    def symbols(self) -> Dict[str, Symbol]:
        """Defined FUNC/IFUNC symbols from .dynsym then .symtab, by name."""
        if self._symbols is None:
            self._symbols = self._read_symbols()
        return self._symbols

    def _read_symbols(self) -> Dict[str, Symbol]:
        """Raw struct scan of the symbol tables: pyelftools' per-symbol objects are ~20x slower.

        A stripped file's local functions (libc's __libc_start_call_main, ...)
        live in its separate debug file; its .symtab fills in what the file's
        own tables lack, as BCC's symbol walk does."""
        symbols: Dict[str, Symbol] = {}
        with self._open() as elf:
            _scan_symbols(elf, self.path, symbols, (".dynsym", ".symtab"))
            debug = None if elf.get_section_by_name(".symtab") else _debug_file(elf, self.path)
        if debug:
            from elftools.elf.elffile import ELFFile
            try:
                with open(debug, "rb") as f:
                    _scan_symbols(ELFFile(f), debug, symbols, (".symtab",))
            except Exception as exc:  # a broken debug file only costs its symbols
                log.debug("%s: debug symbols from %s not read: %s", self.path, debug, exc)
        return symbols

    def vaddr_to_offset(self, addr: int) -> int:
        """The file offset whose bytes are mapped at ``addr`` (libbpf's elf seg lookup)."""
        for seg in self.segments:
            if seg.vaddr <= addr < seg.vaddr + max(seg.memsz, 1):
                return addr - seg.vaddr + seg.offset
        raise AttachError(f"{self.path}: address 0x{addr:x} is in no PT_LOAD segment")

    def offset_to_vaddr(self, off: int) -> int:
        for seg in self.segments:
            if seg.offset <= off < seg.offset + max(seg.filesz, 1):
                return off - seg.offset + seg.vaddr
        raise AttachError(f"{self.path}: file offset 0x{off:x} is in no PT_LOAD segment")


def _scan_symbols(elf: "ELFFile", path: str, symbols: Dict[str, Symbol], sections) -> None:
    """Add the defined FUNC/IFUNC symbols of ``sections`` not yet in ``symbols``."""
    if elf.elfclass != 64:
        raise AttachError(f"{path}: only 64-bit ELF files can be probed")
    sym_st = struct.Struct("<IBBHQQ" if elf.little_endian else ">IBBHQQ")
    versym_sec = elf.get_section_by_name(".gnu.version")
    versym = versym_sec.data() if versym_sec is not None else b""
    vfmt = "<%dH" if elf.little_endian else ">%dH"
    for secname in sections:
        sec = elf.get_section_by_name(secname)
        if sec is None or sec["sh_type"] == "SHT_NOBITS":
            continue
        strtab = elf.get_section(sec["sh_link"]).data()
        vers = struct.unpack(vfmt % (len(versym) // 2), versym) \
            if secname == ".dynsym" and versym else ()
        for i, (st_name, info, _other, shndx, value, size) in enumerate(
                sym_st.iter_unpack(sec.data())):
            st_type = info & 0xF
            if shndx == 0 or not st_name or st_type not in (_STT_FUNC, _STT_GNU_IFUNC):
                continue
            # A name may exist in several versions (memcpy@GLIBC_2.2.5 and
            # memcpy@@GLIBC_2.14); like ld.so, an unversioned lookup wants the
            # default one, so hidden (non-default) versions never win.
            if i < len(vers) and vers[i] & _VERSYM_HIDDEN:
                continue
            name = _cstr(strtab, st_name)
            if name not in symbols:
                symbols[name] = Symbol(name, value, size,
                                       STT_FUNC if st_type == _STT_FUNC else STT_GNU_IFUNC)


DEBUG_ROOT = "/usr/lib/debug"


def _debug_file(elf: "ELFFile", path: str) -> Optional[str]:
    """The separate debug file of ``path``: by build id, then by .gnu_debuglink name
    (gdb's search order), or None."""
    note = elf.get_section_by_name(".note.gnu.build-id")
    if note is not None:
        data = note.data()
        if len(data) > 16:
            namesz, descsz = struct.unpack_from("<II" if elf.little_endian else ">II", data)
            build_id = data[12 + ((namesz + 3) & ~3):][:descsz].hex()
            candidate = os.path.join(DEBUG_ROOT, ".build-id", build_id[:2],
                                     build_id[2:] + ".debug")
            if len(build_id) > 2 and os.path.isfile(candidate):
                return candidate
    link = elf.get_section_by_name(".gnu_debuglink")
    if link is not None:
        name = _cstr(link.data(), 0)
        real = os.path.dirname(os.path.realpath(path))
        for d in (real, os.path.join(real, ".debug"), DEBUG_ROOT + real):
            candidate = os.path.join(d, name)
            if name and os.path.isfile(candidate) and candidate != os.path.realpath(path):
                return candidate
    return None


_images: Dict[Tuple[str, int, int], ElfImage] = {}


def elf_image(path: str) -> ElfImage:
    st = os.stat(path)
    key = (path, st.st_ino, st.st_mtime_ns)
    img = _images.get(key)
    if img is None:
        img = _images[key] = ElfImage(path)
    return img


def symbol_offset(path: str, sym: str, sym_off: int = 0, *, resolve_ifunc: bool = True) -> int:
    """File offset of ``sym`` (+``sym_off``) in ``path``, ready for a uprobe.

    For an STT_GNU_IFUNC symbol the resolver runs only at relocation time, so
    probing it would catch nothing; like BCC we ask the dynamic linker which
    implementation it picks here and probe that instead.
    """
    if sym_off < 0:
        raise AttachError(f"negative symbol offset {sym_off} for {sym} in {path}")
    img = elf_image(path)
    s = img.symbols.get(sym)
    if s is None:
        raise AttachError(f"could not determine address of symbol {sym} in {path}")
    value = s.value
    if s.type != STT_FUNC and resolve_ifunc:
        value = _ifunc_target(img, sym) or value
    if s.size and sym_off >= s.size:
        log.warning("%s: offset %d is past the end of %s (size %d)", path, sym_off, sym, s.size)
    return img.vaddr_to_offset(value + sym_off)


def find_symbols(path: str, pattern: str) -> List[Tuple[str, int]]:
    """(name, file offset) of every code symbol whose name ``re.match``es pattern (BCC sym_re)."""
    rx = re.compile(pattern)
    img = elf_image(path)
    out = []
    for name, s in sorted(img.symbols.items(), key=lambda kv: kv[1].value):
        if rx.match(name):
            out.append((name, img.vaddr_to_offset(s.value)))
    return out


def address_offset(path: str, addr: int) -> int:
    """A raw virtual address in the file (BCC's ``addr=``) as a file offset."""
    return elf_image(path).vaddr_to_offset(addr)


def _ifunc_target(img: ElfImage, sym: str) -> Optional[int]:
    """The file vaddr of the implementation an IFUNC resolves to in this process, or None."""
    import ctypes

    try:
        lib = ctypes.CDLL(img.path)
        addr = ctypes.cast(getattr(lib, sym), ctypes.c_void_p).value
    except (OSError, AttributeError) as exc:
        log.warning("%s: cannot resolve IFUNC %s (%s); probing its resolver", img.path, sym, exc)
        return None
    if addr is None:
        return None
    real = os.path.realpath(img.path)
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) == 6 and os.path.realpath(parts[5].rstrip("\n")) == real:
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                if lo <= addr < hi:
                    file_off = int(parts[2], 16) + (addr - lo)
                    return img.offset_to_vaddr(file_off)
    log.warning("%s: IFUNC %s resolved outside the library; probing its resolver", img.path, sym)
    return None


def normalize_pid(pid: Optional[int]) -> int:
    """Normalise a BCC-style pid argument (None/-1/0 mean every process) for perf_event_open."""
    if pid is None or pid in (-1, 0):
        return -1
    if pid < 0:
        raise AttachError(f"invalid pid {pid}")
    return pid

