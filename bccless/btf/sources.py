"""Where BTF comes from: files, ELF objects, the running kernel and its modules.

Kernel BTF is mmapped read-only when the kernel allows it (sysfs supports
mmap of vmlinux BTF since 6.16, with a private read-only mapping), so a tool
that looks at a few types never copies the 5 MB blob.  The ELF reader here is
deliberately tiny (section headers only): importing pyelftools costs more
than parsing the whole kernel BTF.
"""
from __future__ import annotations

import os
import struct

from ..errors import BTFError, ELFError
from .parse import BTF

TYPE_CHECKING = False
if TYPE_CHECKING:   # typing costs milliseconds to import; annotations are strings
    from typing import List, Optional, Tuple, Union

KERNEL_BTF_DIR = "/sys/kernel/btf"
VMLINUX_BTF = KERNEL_BTF_DIR + "/vmlinux"
_XZ_MAGIC = b"\xfd7zXZ\x00"
_ELF_MAGIC = b"\x7fELF"
# Where libbpf looks for a vmlinux ELF with .BTF when sysfs has none (%s = release).
_VMLINUX_FALLBACKS = (
    "/boot/vmlinux-%s",
    "/lib/modules/%s/vmlinux-%s",
    "/lib/modules/%s/build/vmlinux",
    "/usr/lib/modules/%s/kernel/vmlinux",
    "/usr/lib/debug/boot/vmlinux-%s",
    "/usr/lib/debug/boot/vmlinux-%s.debug",
    "/usr/lib/debug/lib/modules/%s/vmlinux",
)
_SHF_COMPRESSED = 0x800
_ELFCOMPRESS_ZLIB = 1


def read_blob(path: str) -> Union[bytes, "mmap.mmap"]:  # noqa: F821
    """The bytes of ``path``: decompressed if xz, mmapped if possible, else read."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise BTFError(f"cannot open: {exc.strerror}", source=path) from None
    try:
        head = os.pread(fd, 6, 0)
        if head == _XZ_MAGIC:
            import lzma
            with os.fdopen(os.dup(fd), "rb") as f:
                try:
                    return lzma.decompress(f.read())
                except lzma.LZMAError as exc:
                    raise BTFError(f"bad xz data: {exc}", source=path) from None
        mapped = _mmap(fd)
        if mapped is not None:
            return mapped
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 22)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    except OSError as exc:
        raise BTFError(f"cannot read: {exc.strerror}", source=path) from None
    finally:
        os.close(fd)


def _mmap(fd: int):
    """A private read-only mapping of ``fd``, or None where mmap is refused.

    MAP_PRIVATE + PROT_READ is what sysfs accepts for vmlinux BTF (a shared
    mapping is refused with EACCES); other sysfs files and pipes refuse mmap
    entirely, and empty files cannot be mapped."""
    import mmap
    try:
        if os.fstat(fd).st_size == 0:
            return None
        return mmap.mmap(fd, 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
    except (OSError, ValueError):
        return None


def elf_btf_section(path_or_data, name: str = ".BTF",
                    source: str = "<elf>") -> Tuple[memoryview, str]:
    """The contents of section ``name`` of an ELF file (path or bytes) and a label."""
    if isinstance(path_or_data, (str, os.PathLike)):
        source = os.fspath(path_or_data)
        data = read_blob(source)
    else:
        data = path_or_data
    mv = memoryview(data).cast("B")
    label = f"{source}:{name}"
    if bytes(mv[:4]) != _ELF_MAGIC or len(mv) < 52:
        raise ELFError(f"{source}: not an ELF file")
    is64 = mv[4] == 2
    order = "<" if mv[5] == 1 else ">"
    try:
        if is64:
            shoff, = struct.unpack_from(order + "Q", mv, 0x28)
            shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", mv, 0x3A)
            shdr = struct.Struct(order + "IIQQQQIIQQ")
        else:
            shoff, = struct.unpack_from(order + "I", mv, 0x20)
            shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", mv, 0x2E)
            shdr = struct.Struct(order + "IIIIIIIIII")
        if shoff == 0 or shoff >= len(mv):
            raise ELFError(f"{source}: section header offset {shoff} is not within the "
                           f"file ({len(mv)} bytes)")
        if shentsize < shdr.size:
            raise ELFError(f"{source}: section header size {shentsize} < {shdr.size}")
        sec0 = shdr.unpack_from(mv, shoff)
        if shnum == 0:          # extended numbering: the count lives in section 0
            shnum = sec0[5]
        if shstrndx == 0xFFFF:  # SHN_XINDEX
            shstrndx = sec0[6]
        if shoff + shnum * shentsize > len(mv):
            raise ELFError(f"{source}: {shnum} section headers at {shoff} run past the end "
                           f"of the file ({len(mv)} bytes)")
        sections = [shdr.unpack_from(mv, shoff + i * shentsize) for i in range(shnum)]
        strtab = sections[shstrndx]
        names = bytes(mv[strtab[4]:strtab[4] + strtab[5]])
        for sh_name, _type, flags, _addr, off, size, *_ in sections:
            end = names.find(b"\0", sh_name)
            if names[sh_name:end].decode("utf-8", "replace") != name:
                continue
            if off + size > len(mv):
                raise ELFError(f"{source}: section {name} [{off}, {off + size}) runs past "
                               f"the end of the file ({len(mv)} bytes)")
            body = mv[off:off + size]
            if flags & _SHF_COMPRESSED:
                return memoryview(_decompress(body, is64, order, label)), label
            return body, label
    except (struct.error, IndexError, OverflowError) as exc:
        raise ELFError(f"{source}: truncated or corrupt ELF section headers ({exc})") from None
    raise BTFError(f"no {name} section (was it compiled with -g?)", source=source)


def _decompress(body: memoryview, is64: bool, order: str, label: str) -> bytes:
    chdr = struct.Struct(order + ("IIQQ" if is64 else "III"))
    ch_type = chdr.unpack_from(body, 0)[0]
    if ch_type != _ELFCOMPRESS_ZLIB:
        raise BTFError(f"compressed section type {ch_type} is not supported (only zlib)",
                       source=label)
    import zlib
    try:
        return zlib.decompress(body[chdr.size:])
    except zlib.error as exc:
        raise BTFError(f"bad zlib data: {exc}", source=label) from None


def load_kernel_btf(path: str = VMLINUX_BTF) -> BTF:
    """The running kernel's BTF (mmapped read-only), or a raw/ELF file given as ``path``.

    With the default path, the record index is cached on disk per kernel
    (:mod:`bccless.btf.indexcache`), and the vmlinux ELF locations libbpf
    knows are tried when sysfs has no BTF."""
    if os.path.exists(path):
        if path == VMLINUX_BTF:
            from .indexcache import index_path
            return _load_any(path, index_path(path))
        return _load_any(path)
    if path == VMLINUX_BTF:
        release = os.uname().release
        for pattern in _VMLINUX_FALLBACKS:
            candidate = pattern.replace("%s", release)
            if os.path.exists(candidate):
                try:
                    return _load_any(candidate)
                except (BTFError, ELFError) as exc:
                    import logging  # only here: keep logging off the import path
                    logging.getLogger(__name__).debug("skipping %s: %s", candidate, exc)
    raise BTFError(f"kernel BTF is missing at '{path}', was CONFIG_DEBUG_INFO_BTF enabled?")


def _load_any(path: str, index_file: Optional[str] = None) -> BTF:
    data = read_blob(path)
    if bytes(data[:4]) == _ELF_MAGIC:
        section, label = elf_btf_section(data, source=path)
        return BTF.from_bytes(section, source=label)
    return BTF.from_bytes(data, source=path, index_file=index_file)


def list_module_btfs(directory: str = KERNEL_BTF_DIR) -> List[str]:
    """Names of the kernel modules that expose split BTF (sysfs files other than vmlinux)."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return sorted(n for n in names if n != "vmlinux")


def load_module_btf(name: str, base: BTF, directory: Optional[str] = None) -> BTF:
    """The split BTF of kernel module ``name`` on top of ``base`` (vmlinux BTF)."""
    if not name or "/" in name or name in (".", ".."):
        raise BTFError(f"invalid kernel module name {name!r}")
    path = os.path.join(directory or KERNEL_BTF_DIR, name)
    if not os.path.exists(path):
        raise BTFError(f"module '{name}' has no BTF at {path} (not loaded, or built "
                       f"without CONFIG_DEBUG_INFO_BTF_MODULES?)")
    return BTF.from_bytes(read_blob(path), base=base, source=path)
