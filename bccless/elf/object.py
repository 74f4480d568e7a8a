"""Open a clang-built BPF ELF object into an :class:`ObjectSpec`.

The walk follows libbpf's ``bpf_object__elf_collect`` so that an object means
the same thing here as under libbpf: which sections are programs, which are
global data, which relocation sections matter, what is rejected.  pyelftools
reads the ELF header and section table (and validates them); the symbol and
relocation tables, which are the bulk of the work, are decoded with
``struct.iter_unpack`` straight from the file bytes, since building one
pyelftools object per entry costs far more than the parse itself.
"""
from __future__ import annotations

import hashlib
import logging
import os
import struct
import sys
from typing import Dict, List, NamedTuple, Optional, Union

from ..errors import ELFError
from . import externs as ext_mod, maps as maps_mod
from .btfext import BTFExt, parse_btf_ext
from .sections import SEC_ATTACH_BTF, SEC_SLEEPABLE, match_section
from .spec import ObjectSpec, ProgramSpec, Reloc

log = logging.getLogger(__name__)

SHT_PROGBITS, SHT_SYMTAB, SHT_NOBITS, SHT_REL, SHT_RELA = 1, 2, 8, 9, 4
SHF_EXECINSTR = 0x4
STB_LOCAL = 0
STT_FUNC, STT_SECTION = 2, 3
STV_HIDDEN, STV_INTERNAL = 2, 1
_STT_NAMES = {0: "STT_NOTYPE", 1: "STT_OBJECT", 2: "STT_FUNC", 3: "STT_SECTION", 4: "STT_FILE"}
_STB_NAMES = {0: "STB_LOCAL", 1: "STB_GLOBAL", 2: "STB_WEAK"}
EM_BPF = 247
INSN_SZ = 8
MAX_SECTION_SIZE = 0xFFFFFFFF


class Section(NamedTuple):
    idx: int
    name: str
    type: int
    flags: int
    size: int
    link: int
    info: int
    entsize: int
    data: bytes         # b'' for SHT_NOBITS


class Symbol(NamedTuple):
    idx: int
    name: str           # the section's name for STT_SECTION symbols
    value: int
    size: int
    type: int           # STT_*
    bind: int           # STB_*
    visibility: int     # STV_*
    shndx: int


class ElfImage(NamedTuple):
    """What the rest of the reader needs from the ELF container."""

    path: str
    sections: List[Section]
    symbols: List[Symbol]
    endian: str         # struct prefix: '<' or '>'

    def section(self, name: str) -> Optional[Section]:
        for s in self.sections:
            if s.name == name:
                return s
        return None


def _read_elf(data: bytes, path: str) -> ElfImage:
    """Validate the container and decode section headers and the symbol table."""
    from io import BytesIO

    from elftools.common.exceptions import ELFError as PyELFError
    from elftools.elf.elffile import ELFFile
    from elftools.elf.enums import ENUM_SH_TYPE_BASE

    try:
        elf = ELFFile(BytesIO(data))
        if elf.elfclass != 64:
            raise ELFError(f"{path}: ELF class {elf.elfclass}: BPF objects are 64-bit")
        if elf["e_machine"] != "EM_BPF" and elf["e_machine"] != EM_BPF:
            raise ELFError(f"{path}: not a BPF object (e_machine {elf['e_machine']}, "
                           f"expected EM_BPF={EM_BPF})")
        if elf["e_type"] != "ET_REL":
            raise ELFError(f"{path}: not a relocatable object (e_type {elf['e_type']})")
        headers = [(s.name, s.header) for s in elf.iter_sections()]
    except (PyELFError, OverflowError) as exc:  # OverflowError: absurd offsets in headers
        raise ELFError(f"{path}: malformed ELF: {exc}") from None
    endian = "<" if elf.little_endian else ">"
    if (endian == "<") != (sys.byteorder == "little"):
        raise ELFError(f"{path}: object is {'little' if endian == '<' else 'big'}-endian but this "
                       f"host is {sys.byteorder}-endian; compile with -target bpf (native order)")
    sections = []
    for idx, (name, h) in enumerate(headers):
        stype = h["sh_type"]  # pyelftools names the types it knows; we compare numbers
        stype = ENUM_SH_TYPE_BASE.get(stype, -1) if isinstance(stype, str) else stype
        off, size = h["sh_offset"], h["sh_size"]
        if stype != SHT_NOBITS and off + size > len(data):
            raise ELFError(f"{path}: section '{name}' [{off}, {off + size}) past end of file "
                           f"({len(data)} bytes)")
        if size > MAX_SECTION_SIZE:  # a map value size is a u32; NOBITS sizes are unchecked
            raise ELFError(f"{path}: section '{name}': size {size} is too large")
        body = b"" if stype == SHT_NOBITS else data[off:off + size]
        sections.append(Section(idx, name, stype, h["sh_flags"], size, h["sh_link"],
                                h["sh_info"], h["sh_entsize"], body))
    symtabs = [s for s in sections if s.type == SHT_SYMTAB]
    if not symtabs:
        raise ELFError(f"{path}: couldn't find symbol table, stripped object file?")
    if len(symtabs) > 1:
        raise ELFError(f"{path}: multiple symbol tables")
    return ElfImage(path, sections, _read_symbols(symtabs[0], sections, endian, path), endian)


def _cstr(table: bytes, off: int) -> str:
    end = table.find(b"\0", off)
    return table[off:end if end >= 0 else len(table)].decode("utf-8", "replace")


def _read_symbols(symtab: Section, sections: List[Section], endian: str,
                  path: str) -> List[Symbol]:
    if symtab.entsize != 24 or symtab.size % 24:
        raise ELFError(f"{path}: section '{symtab.name}': bad symbol entry size {symtab.entsize}")
    if not 0 < symtab.link < len(sections):
        raise ELFError(f"{path}: symbol strings section missing or invalid")
    strtab = sections[symtab.link].data
    out = []
    for i, (name_off, info, other, shndx, value, size) in enumerate(
            struct.iter_unpack(endian + "IBBHQQ", symtab.data)):
        stype = info & 0xF
        if stype == STT_SECTION and shndx < len(sections):
            name = sections[shndx].name
        else:
            name = _cstr(strtab, name_off) if name_off else ""
        out.append(Symbol(i, name, value, size, stype, info >> 4, other & 3, shndx))
    return out


def _relocations(img: ElfImage, rel: Section, target: Section) -> List[Reloc]:
    """Resolve a ``.rel<sec>`` section's records to their symbols."""
    syms, secs, out = img.symbols, img.sections, []
    for i, (r_offset, r_info) in enumerate(struct.iter_unpack(img.endian + "QQ", rel.data)):
        sym_idx = r_info >> 32
        if sym_idx >= len(syms):
            raise ELFError(f"{img.path}: section '{rel.name}': relo #{i}: symbol {sym_idx} "
                           f"not found")
        if r_offset % INSN_SZ or r_offset >= target.size:
            raise ELFError(f"{img.path}: sec '{target.name}': invalid offset {r_offset:#x} "
                           f"for relo #{i}")
        s = syms[sym_idx]
        sec_name = secs[s.shndx].name if 0 < s.shndx < len(secs) else ""
        out.append(Reloc(r_offset // INSN_SZ, s.name, sec_name, s.value,
                         _STT_NAMES.get(s.type, str(s.type)), _STB_NAMES.get(s.bind, str(s.bind)),
                         r_info & 0xFFFFFFFF))
    return out


def _programs(img: ElfImage, sec: Section) -> List[ProgramSpec]:
    """libbpf's ``bpf_object__add_programs`` for one executable section."""
    is_text = sec.name == ".text"
    autoload = not sec.name.startswith("?")
    match_name = sec.name if autoload else sec.name[1:]
    sdef = None if is_text else match_section(match_name)
    if not is_text and sdef is None:
        log.debug("sec '%s': unrecognized ELF section name, programs keep prog type UNSPEC",
                  sec.name)
    progs = []
    for s in img.symbols:
        if s.shndx != sec.idx or s.type != STT_FUNC:
            continue
        if s.value + s.size > sec.size:
            raise ELFError(f"{img.path}: sec '{sec.name}': program at offset {s.value} crosses "
                           f"section boundary")
        if s.value % INSN_SZ or s.size % INSN_SZ:
            raise ELFError(f"{img.path}: sec '{sec.name}': program '{s.name}' is not aligned "
                           f"to instructions (offset {s.value}, size {s.size})")
        if not is_text and s.bind == STB_LOCAL:
            raise ELFError(f"{img.path}: sec '{sec.name}': program '{s.name}' is static and "
                           f"not supported")
        log.debug("sec '%s': found program '%s' at insn offset %d (%d bytes), code size %d insns",
                  sec.name, s.name, s.value // INSN_SZ, s.value, s.size // INSN_SZ)
        p = ProgramSpec(name=s.name, sec_name=sec.name, sec_insn_off=s.value // INSN_SZ,
                        insns=sec.data[s.value:s.value + s.size], is_subprog=is_text,
                        autoload=autoload, global_func=s.bind != STB_LOCAL,
                        mark_btf_static=s.bind != STB_LOCAL and s.visibility in (
                            STV_HIDDEN, STV_INTERNAL))
        if sdef is not None:
            p.prog_type, p.expected_attach_type = sdef.prog_type, sdef.expected_attach_type
            p.attach_target, p.sec_prefix, p.sec_flags = sdef.attach_target, sdef.prefix, sdef.flags
            p.sleepable = bool(sdef.flags & SEC_SLEEPABLE)
            p.attach_btf = bool(sdef.flags & SEC_ATTACH_BTF)
        progs.append(p)
    progs.sort(key=lambda p: p.sec_insn_off)  # libbpf's order: section, then offset
    return progs


def object_name(path: str) -> str:
    """libbpf's default object name: the basename cut at its first '.'."""
    return os.path.basename(path).split(".", 1)[0]


def open_object_spec(path_or_bytes: Union[str, bytes, "os.PathLike[str]"],
                     name: Optional[str] = None) -> ObjectSpec:
    """Read a BPF ELF object (a path or its bytes) into an :class:`ObjectSpec`.

    ``name`` overrides the object name that prefixes internal map names (as
    skeletons do); an in-memory object without one is named after its hash.
    Raises :class:`ELFError` (bad container or sections), and the BTF
    parser's ``BTFError`` for a malformed ``.BTF``.
    """
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        data = bytes(path_or_bytes)
        digest = hashlib.sha256(data).hexdigest()
        path = f"<memory:{digest[:12]}>"
        obj_name = name or f"obj_{digest[:8]}"
    else:
        path = os.fspath(path_or_bytes)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise ELFError(f"{path}: cannot read BPF object: {exc.strerror}") from None
        digest = hashlib.sha256(data).hexdigest()
        obj_name = name or object_name(path)
    img = _read_elf(data, path)
    return _build(img, obj_name, digest)


def _build(img: ElfImage, obj_name: str, digest: str) -> ObjectSpec:
    license, kern_version = "", 0
    programs: List[ProgramSpec] = []
    section_insns: Dict[str, bytes] = {}
    relocs: Dict[str, List[Reloc]] = {}
    maps_rel: Optional[Section] = None
    btf_sec = ext_sec = None
    secs = img.sections
    for sec in secs[1:]:
        name = sec.name
        if name == "license":
            license = sec.data.split(b"\0", 1)[0][:63].decode("utf-8", "replace")
        elif name == "version":
            if sec.size != 4:
                raise ELFError(f"{img.path}: invalid kver section (size {sec.size})")
            kern_version, = struct.unpack(img.endian + "I", sec.data)
        elif name == "maps":
            raise ELFError(f"{img.path}: legacy map definitions in 'maps' section are not "
                           f"supported by libbpf v1.0+")
        elif name in (".BTF", ".BTF.ext"):
            if sec.type != SHT_PROGBITS:
                raise ELFError(f"{img.path}: section '{name}' has type {sec.type}, "
                               f"expected SHT_PROGBITS")
            if name == ".BTF":
                btf_sec = sec
            else:
                ext_sec = sec
        elif name.lstrip("?") in (".struct_ops", ".struct_ops.link"):
            raise ELFError(f"{img.path}: section '{name}': struct_ops maps are not supported")
        elif sec.type == SHT_PROGBITS and sec.size and sec.flags & SHF_EXECINSTR:
            section_insns[name] = sec.data
            programs.extend(_programs(img, sec))
        elif sec.type in (SHT_REL, SHT_RELA):
            if not 0 < sec.info < len(secs):
                raise ELFError(f"{img.path}: section '{name}': bad target section {sec.info}")
            target = secs[sec.info]
            is_code = target.type == SHT_PROGBITS and bool(target.flags & SHF_EXECINSTR)
            if sec.type == SHT_RELA and (is_code or target.name == ".maps"):
                raise ELFError(f"{img.path}: section '{name}': RELA relocations are not "
                               f"supported for BPF (expected SHT_REL)")
            if (is_code or target.name == ".maps") and (sec.entsize != 16 or sec.size % 16):
                raise ELFError(f"{img.path}: section '{name}': bad relocation entry size "
                               f"{sec.entsize} (section size {sec.size})")
            if is_code:
                relocs[target.name] = _relocations(img, sec, target)
            elif target.name == ".maps":
                maps_rel = sec
            else:
                log.debug("elf: skipping relo section(%d) %s for section(%d) %s",
                          sec.idx, name, target.idx, target.name)
    if not license:
        log.debug("%s: no license section", img.path)

    btf = None
    if btf_sec is not None:
        from ..btf.parse import BTF
        btf = BTF.from_bytes(btf_sec.data, source=f"{img.path}:.BTF")
    ext = (parse_btf_ext(ext_sec.data, btf.string, endian=img.endian, source=img.path)
           if ext_sec is not None and btf is not None else BTFExt({}, {}, {}))

    externs = ext_mod.collect_externs(img, btf)
    if btf is not None:
        maps_mod.fixup_datasecs(img, btf)
    maps = maps_mod.user_maps(img, btf, maps_rel, programs)
    maps.extend(maps_mod.internal_maps(img, btf, obj_name))
    kconfig = ext_mod.kconfig_map(externs, btf, obj_name, img)
    if kconfig is not None:
        maps.append(kconfig)

    return ObjectSpec(path=img.path, name=obj_name, license=license, kern_version=kern_version,
                      btf=btf, programs=programs, maps=maps, externs=externs, relocs=relocs,
                      func_info=ext.func_info, line_info=ext.line_info,
                      core_relos=ext.core_relos, section_insns=section_insns, sha256=digest)

