"""USDT (SystemTap SDT) probes: reading .note.stapsdt and attaching uprobes to them.

A USDT probe is a nop in the binary plus an ELF note giving its address, an
optional semaphore (a 16-bit counter the program checks before building
expensive arguments) and an assembler-syntax description of where each
argument lives at the nop.  Attaching is a uprobe at the nop's file offset;
when there is a semaphore the kernel bumps it for us through the uprobe's
``ref_ctr_offset`` (the semaphore's file offset), so no writes into the
target's memory are needed.
"""
from __future__ import annotations

import logging
import re
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from ..errors import AttachError
from .elfsym import ElfImage, elf_image, resolve_binary

if TYPE_CHECKING:
    from .link import MultiLink

log = logging.getLogger(__name__)

NT_STAPSDT = 3

ARG_CONST = "const"
ARG_REG = "reg"
ARG_MEM = "mem"

# x86-64 register spellings -> struct pt_regs field (the names vmlinux.h and BCC use).
_X86_REGS: Dict[str, str] = {}
for _field, _names in {
    "ax": ("rax", "eax", "ax", "al", "ah"), "bx": ("rbx", "ebx", "bx", "bl", "bh"),
    "cx": ("rcx", "ecx", "cx", "cl", "ch"), "dx": ("rdx", "edx", "dx", "dl", "dh"),
    "si": ("rsi", "esi", "si", "sil"), "di": ("rdi", "edi", "di", "dil"),
    "bp": ("rbp", "ebp", "bp", "bpl"), "sp": ("rsp", "esp", "sp", "spl"),
    "ip": ("rip", "eip"),
}.items():
    for _n in _names:
        _X86_REGS[_n] = _field
for _i in range(8, 16):
    for _sfx in ("", "d", "w", "b"):
        _X86_REGS[f"r{_i}{_sfx}"] = f"r{_i}"

# Byte offsets of the fields in x86-64 struct pt_regs (uapi ptrace.h layout).
PT_REGS_OFFSET: Dict[str, int] = {name: 8 * i for i, name in enumerate((
    "r15", "r14", "r13", "r12", "bp", "bx", "r11", "r10", "r9", "r8", "ax", "cx", "dx",
    "si", "di", "orig_ax", "ip", "cs", "flags", "sp", "ss"))}

_ARG_RE = re.compile(
    r"""^(?P<size>-?\d+)@(?:
        \$(?P<imm>-?(?:0x[0-9a-fA-F]+|\d+))                             # -4@$5
      | %(?P<reg>\w+)                                                   # 8@%rax
      | (?P<disp>[-+]?(?:0x[0-9a-fA-F]+|\d+))?(?:\+?(?P<ident>[A-Za-z_.][\w.]*))?(?P<disp2>[-+](?:0x[0-9a-fA-F]+|\d+))?
        \(%(?P<base>\w+)(?:,%(?P<index>\w+)(?:,(?P<scale>[1248]))?)?\)  # 8@-8(%rbp), 8@8(%rdx,%rcx,8)
    )$""", re.X)


@dataclass(frozen=True)
class UsdtArg:
    """Where one USDT argument lives when the probe fires.

    ``kind`` is ARG_CONST (value in ``offset``), ARG_REG (value of register
    ``reg``) or ARG_MEM (read ``size`` bytes at reg + index*scale + offset).
    ``reg``/``index`` are pt_regs field names ('di', 'r8', 'ip'); ``reg_offset``
    is ``reg``'s byte offset in struct pt_regs.  ``ident`` names a symbol the
    operand is relative to (``var(%rip)``), '' when none.
    """

    size: int
    signed: bool
    kind: str
    reg: str = ""
    offset: int = 0
    index: str = ""
    scale: int = 1
    ident: str = ""
    spec: str = ""

    @property
    def reg_offset(self) -> int:
        return PT_REGS_OFFSET[self.reg] if self.reg else -1


def parse_arg(spec: str, *, context: str = "") -> UsdtArg:
    """Parse one x86-64 USDT argument spec such as ``-4@%edi`` or ``8@-8(%rbp)``."""
    m = _ARG_RE.match(spec)
    where = f"{context}: " if context else ""
    if not m:
        raise AttachError(f"{where}unsupported USDT argument spec '{spec}'")
    size = int(m["size"])
    signed = size < 0
    size = abs(size)
    if size not in (1, 2, 4, 8):
        raise AttachError(f"{where}USDT argument '{spec}' has invalid size {size}")
    if m["imm"] is not None:
        return UsdtArg(size, signed, ARG_CONST, offset=int(m["imm"], 0), spec=spec)
    if m["reg"] is not None:
        return UsdtArg(size, signed, ARG_REG, reg=_reg(m["reg"], spec, where), spec=spec)
    disp = int(m["disp"], 0) if m["disp"] else 0
    if m["disp2"]:
        disp += int(m["disp2"], 0)
    return UsdtArg(size, signed, ARG_MEM, reg=_reg(m["base"], spec, where), offset=disp,
                   index=_reg(m["index"], spec, where) if m["index"] else "",
                   scale=int(m["scale"]) if m["scale"] else 1,
                   ident=m["ident"] or "", spec=spec)


def _reg(name: str, spec: str, where: str) -> str:
    try:
        return _X86_REGS[name]
    except KeyError:
        raise AttachError(f"{where}unknown register '%{name}' in USDT argument '{spec}'") from None


def parse_args(args: str, *, context: str = "") -> List[UsdtArg]:
    """Split a note's argument string (space separated) and parse each operand."""
    return [parse_arg(a, context=context) for a in args.split()]


@dataclass
class UsdtProbe:
    """One probe site from .note.stapsdt, already adjusted for prelinking.

    ``pc``/``semaphore`` are virtual addresses in the file's own address space;
    ``offset``/``semaphore_offset`` are the file offsets the kernel wants.
    """

    path: str
    provider: str
    name: str
    pc: int
    base: int
    semaphore: int
    args_str: str
    offset: int = 0
    semaphore_offset: int = 0
    args: List[UsdtArg] = field(default_factory=list)
    args_error: str = ""    # why ``args`` is empty although args_str is not

    @property
    def full_name(self) -> str:
        return f"{self.provider}:{self.name}"


def parse_notes(path: str) -> List[UsdtProbe]:
    """Every USDT probe site in an ELF file, in note order."""
    from elftools.elf.elffile import ELFFile

    img = elf_image(path)
    with open(path, "rb") as f:
        elf = ELFFile(f)
        note = elf.get_section_by_name(".note.stapsdt")
        if note is None:
            return []
        data = note.data()
        base_sec = elf.get_section_by_name(".stapsdt.base")
        actual_base = base_sec["sh_addr"] if base_sec is not None else None
        ptr = 8 if elf.elfclass == 64 else 4
        little = elf.little_endian
    return _parse_note_data(path, img, data, actual_base, ptr, little)


def _parse_note_data(path: str, img: ElfImage, data: bytes, actual_base: Optional[int],
                     ptr: int, little: bool) -> List[UsdtProbe]:
    end = "<" if little else ">"
    hdr = struct.Struct(end + "III")
    addrs = struct.Struct(end + ("QQQ" if ptr == 8 else "III"))
    probes = []
    pos = 0
    while pos + hdr.size <= len(data):
        namesz, descsz, ntype = hdr.unpack_from(data, pos)
        name_off = pos + hdr.size
        desc_off = name_off + _align4(namesz)
        pos = desc_off + _align4(descsz)
        owner = data[name_off:name_off + namesz].rstrip(b"\0")
        if ntype != NT_STAPSDT or owner != b"stapsdt" or descsz < addrs.size:
            continue
        pc, base, sema = addrs.unpack_from(data, desc_off)
        strs = data[desc_off + addrs.size:desc_off + descsz].split(b"\0")
        if len(strs) < 3:
            raise AttachError(f"{path}: truncated USDT note at offset {name_off - hdr.size}")
        provider, name, args = (s.decode("utf-8", "replace") for s in strs[:3])
        if actual_base is not None and base:
            # Prelink moved the file's addresses: shift by how far .stapsdt.base moved.
            pc += actual_base - base
            if sema:
                sema += actual_base - base
        probe = UsdtProbe(path, provider, name, pc, base, sema, args)
        probe.offset = img.vaddr_to_offset(pc)
        probe.semaphore_offset = img.vaddr_to_offset(sema) if sema else 0
        try:
            probe.args = parse_args(args, context=f"{path}: {provider}:{name}")
        except AttachError as exc:
            # The site can still be attached; only reading its arguments is impossible.
            probe.args_error = str(exc)
            log.debug("%s", exc)
        probes.append(probe)
    return probes


def _align4(n: int) -> int:
    return (n + 3) & ~3


def find_probes(binary: str, provider: Optional[str], name: str,
                pid: Optional[int] = None) -> Tuple[str, List[UsdtProbe]]:
    """(resolved path, sites) of probe ``provider:name`` (provider None: any) in a binary."""
    path = resolve_binary(binary, pid)
    sites = [p for p in parse_notes(path)
             if p.name == name and (provider is None or p.provider == provider)]
    if not sites:
        what = f"{provider}:{name}" if provider else name
        raise AttachError(f"{path}: no USDT probe {what}")
    return path, sites


def attach_usdt(prog_fd: int, binary: str, provider: Optional[str], name: str, *,
                pid: Optional[int] = None, bpf_cookie: int = 0, prog_name: str = "") -> "MultiLink":
    """Attach a program to every site of a USDT probe (one uprobe link per site).

    ``pid`` None attaches binary-wide (every process running the file); a
    pid limits the uprobe, and the semaphore count, to that process.
    """
    from .link import MultiLink
    from .uprobe import attach_uprobe_offset

    path, sites = find_probes(binary, provider, name, pid)
    links = []
    try:
        for site in sites:
            links.append(attach_uprobe_offset(
                prog_fd, path, site.offset, pid=pid, ref_ctr_offset=site.semaphore_offset,
                bpf_cookie=bpf_cookie, prog_name=prog_name,
                what=f"usdt {site.full_name} in {path} at 0x{site.offset:x}"))
    except BaseException:
        for link in links:
            link.close()
        raise
    log.debug("attached %s to %d site(s) of %s:%s in %s", prog_name or prog_fd, len(links),
              provider, name, path)
    return MultiLink(links)
