"""Maps of an object: BTF-defined ``.maps``, global data, and the DATASEC fix-up.

BTF-defined maps carry their attributes purely in BTF (``bpf_helpers.h``):
``__uint(name, N)`` is a pointer to an array of N elements, ``__type(name, T)``
a pointer to T, ``__array(values, T)`` a zero-length array of pointers and
``__ulong(name, N)`` a one-enumerator enum.  Global data sections become
single-entry array maps named by libbpf's ``internal_map_name`` rule, because
users (and bpftool) find those maps by that name.  Error texts are libbpf's,
so a message can be searched for.
"""
from __future__ import annotations

import logging
import os
import struct
from typing import TYPE_CHECKING, Dict, List, NamedTuple, Optional

from ..btf.types import VAR_GLOBAL_ALLOCATED, VAR_STATIC, Datasec, Kind, Var, VarSecInfo
from ..errors import BcclessError, ELFError
from ..sys import bpf_consts as C
from .spec import MapSpec, ProgramSpec

if TYPE_CHECKING:
    from ..btf.parse import BTF
    from .object import ElfImage, Section, Symbol

log = logging.getLogger(__name__)

SHT_PROGBITS, SHT_NOBITS, SHF_EXECINSTR = 1, 8, 0x4
STT_OBJECT, STB_GLOBAL, STB_WEAK = 1, 1, 2
STV_INTERNAL, STV_HIDDEN = 1, 2
BPF_OBJ_NAME_LEN = 16
_LINKAGE = {0: "static", 1: "global", 2: "extern"}
_MAP_IN_MAP = (C.BPF_MAP_TYPE_ARRAY_OF_MAPS, C.BPF_MAP_TYPE_HASH_OF_MAPS)


def kind_str(btf: "BTF", tid: int) -> str:
    """libbpf's ``btf_kind_str`` spelling: 'ptr', 'struct', 'void', ..."""
    kind = btf.kind(tid)
    return "void" if kind == Kind.UNKN else kind.name.lower()


def internal_map_name(obj_name: str, real_name: str) -> str:
    """libbpf's name for the map backing data section ``real_name``.

    A suffix of max(7, len(section)) characters is reserved, the rest of the
    15 is filled from the object name; sections with a second dot
    ('.rodata.foo') use their own name only.  Characters the kernel refuses
    become '_'.
    """
    obj, real = obj_name.encode(), real_name.encode()  # libbpf counts bytes, not characters
    sfx_len = min(max(7, len(real)), BPF_OBJ_NAME_LEN - 1)
    if b"." in real[1:]:
        pfx_len = 0
    else:
        pfx_len = min(BPF_OBJ_NAME_LEN - sfx_len - 1, len(obj))
    name = (obj[:pfx_len] + real[:sfx_len]).decode("latin-1")
    return "".join(c if (c.isascii() and c.isalnum()) or c in "_." else "_" for c in name)


def _datasecs(btf: "BTF") -> Dict[str, int]:
    return {btf.name(tid): tid for tid in btf.ids() if btf.kind(tid) == Kind.DATASEC}


def fixup_datasecs(img: "ElfImage", btf: "BTF") -> None:
    """libbpf's ``btf_fixup_datasec``: fill what clang leaves out of DATASECs.

    Size 0 is replaced by the ELF section size and then each global VAR's
    offset by its symbol's value; global VARs with hidden or internal
    visibility become static (they are not part of the skeleton, and decide
    whether the map is mmapable).  VARs end sorted by offset.  ``.kconfig``
    and ``.ksyms`` were laid out by the extern pass and are only sorted.
    """
    syms: Dict[str, "Symbol"] = {}
    for s in img.symbols:  # the first matching symbol wins, as in find_elf_var_sym
        if s.type == STT_OBJECT and s.bind in (STB_GLOBAL, STB_WEAK):
            syms.setdefault(s.name, s)
    for sec_name, tid in _datasecs(btf).items():
        ds = btf[tid]
        size = ds.size
        vars_ = [VarSecInfo(v.type, v.offset, v.size) for v in ds.vars]
        if sec_name not in (".kconfig", ".ksyms"):
            fix_offsets = size == 0
            if fix_offsets:
                sec = img.section(sec_name)
                size = sec.size if sec is not None else 0
                if not size:
                    raise ELFError(f"{img.path}: sec '{sec_name}': failed to determine size "
                                   f"from ELF: size 0")
            for vsi in vars_:
                if btf.kind(vsi.type) != Kind.VAR:
                    raise ELFError(f"{img.path}: sec '{sec_name}': unexpected non-VAR type "
                                   f"found")
                var = btf[vsi.type]
                if var.linkage != VAR_GLOBAL_ALLOCATED:
                    continue
                sym = syms.get(var.name)
                if sym is None:
                    raise ELFError(f"{img.path}: sec '{sec_name}': failed to find ELF symbol "
                                   f"for VAR '{var.name}'")
                if fix_offsets:
                    vsi.offset = sym.value
                if sym.visibility in (STV_HIDDEN, STV_INTERNAL):
                    btf.replace(vsi.type, Var(var.name, var.type, VAR_STATIC))
        vars_.sort(key=lambda v: v.offset)
        btf.replace(tid, Datasec(sec_name, size, vars_))


class _Def(NamedTuple):
    map_type: int
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    numa_node: int
    map_extra: int
    pinning: int
    key_type_id: int
    value_type_id: int
    inner: Optional["_Def"]


def _field_int(btf: "BTF", map_name: str, attr: str, tid: int) -> int:
    t = btf.skip_mods_and_typedefs(tid)
    if btf.kind(t) != Kind.PTR:
        raise ELFError(f"map '{map_name}': attr '{attr}': expected PTR, got {kind_str(btf, t)}.")
    arr = btf[t].type
    if btf.kind(arr) != Kind.ARRAY:
        raise ELFError(f"map '{map_name}': attr '{attr}': expected ARRAY, got "
                       f"{kind_str(btf, arr)}.")
    return btf[arr].nelems


def _field_long(btf: "BTF", map_name: str, attr: str, tid: int) -> int:
    """``__ulong`` (an enum with one enumerator) or ``__uint``."""
    t = btf.skip_mods_and_typedefs(tid)
    kind = btf.kind(t)
    if kind == Kind.PTR:
        return _field_int(btf, map_name, attr, tid)
    if kind not in (Kind.ENUM, Kind.ENUM64):
        raise ELFError(f"map '{map_name}': attr '{attr}': expected ENUM or ENUM64, got "
                       f"{kind_str(btf, t)}.")
    values = btf[t].values
    if len(values) != 1:
        raise ELFError(f"map '{map_name}': attr '{attr}': invalid __ulong")
    v = values[0].value
    if kind == Kind.ENUM and v & 0x80000000:  # libbpf widens the s32 with sign extension
        v = (v & 0xFFFFFFFF) - (1 << 32)
    return v & 0xFFFFFFFFFFFFFFFF


def _type_size(btf: "BTF", map_name: str, what: str, tid: int) -> int:
    if btf.kind(tid) != Kind.PTR:
        raise ELFError(f"map '{map_name}': {what} spec is not PTR: {kind_str(btf, tid)}.")
    target = btf[tid].type
    try:
        return btf.resolve_size(target)
    except BcclessError as exc:
        raise ELFError(f"map '{map_name}': can't determine {what} size for type [{target}]: "
                       f"{exc}") from None


def parse_map_def(btf: "BTF", map_name: str, def_id: int, is_inner: bool = False) -> _Def:
    """libbpf's ``parse_btf_map_def`` in strict mode (unknown fields are errors)."""
    f = dict(map_type=0, key_size=0, value_size=0, max_entries=0, flags=0, numa_node=0,
             map_extra=0, pinning=0, key_type_id=0, value_type_id=0, inner=None)
    members = btf[def_id].members
    for i, m in enumerate(members):
        name = m.name
        if name == "type":
            f["map_type"] = _field_int(btf, map_name, name, m.type)
        elif name in ("max_entries", "numa_node"):
            f[name] = _field_int(btf, map_name, name, m.type)
        elif name == "map_flags":
            f["flags"] = _field_int(btf, map_name, name, m.type)
        elif name in ("key_size", "value_size", "key", "value"):
            what = name.split("_")[0]
            sz = (_field_int(btf, map_name, name, m.type) if name.endswith("_size")
                  else _type_size(btf, map_name, what, m.type))
            cur = f[what + "_size"]
            if cur and cur != sz:
                raise ELFError(f"map '{map_name}': conflicting {what} size {cur} != {sz}.")
            f[what + "_size"] = sz
            if not name.endswith("_size"):
                f[what + "_type_id"] = btf[m.type].type
        elif name == "values":
            f["inner"] = _parse_values(btf, map_name, f, m.type, i, len(members), is_inner)
        elif name == "pinning":
            if is_inner:
                raise ELFError(f"map '{map_name}': inner def can't be pinned.")
            val = _field_int(btf, map_name, name, m.type)
            if val not in (0, 1):
                raise ELFError(f"map '{map_name}': invalid pinning value {val}.")
            f["pinning"] = val
        elif name == "map_extra":
            f["map_extra"] = _field_long(btf, map_name, name, m.type)
        elif not name:
            raise ELFError(f"map '{map_name}': invalid field #{i}.")
        else:
            raise ELFError(f"map '{map_name}': unknown field '{name}'.")
    if f["map_type"] == C.BPF_MAP_TYPE_UNSPEC:
        raise ELFError(f"map '{map_name}': map type isn't specified.")
    return _Def(**f)


def _parse_values(btf: "BTF", map_name: str, f: dict, tid: int, i: int, n: int,
                  is_inner: bool) -> Optional[_Def]:
    """The ``__array(values, ...)`` member: inner map template or prog-array."""
    is_mim = f["map_type"] in _MAP_IN_MAP
    is_prog_array = f["map_type"] == C.BPF_MAP_TYPE_PROG_ARRAY
    desc = "map-in-map inner" if is_mim else "prog-array value"
    if is_inner:
        raise ELFError(f"map '{map_name}': multi-level inner maps not supported.")
    if i != n - 1:
        raise ELFError(f"map '{map_name}': 'values' member should be last.")
    if not is_mim and not is_prog_array:
        raise ELFError(f"map '{map_name}': should be map-in-map or prog-array.")
    if f["value_size"] and f["value_size"] != 4:
        raise ELFError(f"map '{map_name}': conflicting value size {f['value_size']} != 4.")
    f["value_size"] = 4
    if btf.kind(tid) != Kind.ARRAY or btf[tid].nelems:
        raise ELFError(f"map '{map_name}': {desc} spec is not a zero-sized array.")
    t = btf.skip_mods_and_typedefs(btf[tid].type)
    if btf.kind(t) != Kind.PTR:
        raise ELFError(f"map '{map_name}': {desc} def is of unexpected kind {kind_str(btf, t)}.")
    t = btf.skip_mods_and_typedefs(btf[t].type)
    if is_prog_array:
        if btf.kind(t) != Kind.FUNC_PROTO:
            raise ELFError(f"map '{map_name}': prog-array value def is of unexpected kind "
                           f"{kind_str(btf, t)}.")
        return None
    if btf.kind(t) != Kind.STRUCT:
        raise ELFError(f"map '{map_name}': map-in-map inner def is of unexpected kind "
                       f"{kind_str(btf, t)}.")
    return parse_map_def(btf, f"{map_name}.inner", t, is_inner=True)


def _ringbuf_size(sz: int) -> int:
    """The kernel wants a ring buffer of a power-of-2 number of pages; libbpf
    rounds a user's size up at open, and so do we."""
    page = os.sysconf("SC_PAGE_SIZE")
    if sz == 0 or (sz % page == 0 and ((sz // page) & (sz // page - 1)) == 0):
        return sz
    mul = 1
    while mul * page <= 0xFFFFFFFF:
        if mul * page > sz:
            return mul * page
        mul <<= 1
    return sz


def _to_spec(d: _Def, name: str, sec_idx: int) -> MapSpec:
    max_entries = d.max_entries
    if d.map_type in (C.BPF_MAP_TYPE_RINGBUF, C.BPF_MAP_TYPE_USER_RINGBUF):
        max_entries = _ringbuf_size(max_entries)
    return MapSpec(name=name, map_type=d.map_type, key_size=d.key_size,
                   value_size=d.value_size, max_entries=max_entries, flags=d.flags,
                   numa_node=d.numa_node, map_extra=d.map_extra, pinning=d.pinning,
                   key_type_id=d.key_type_id, value_type_id=d.value_type_id,
                   inner=_to_spec(d.inner, f"{name}.inner", sec_idx) if d.inner else None,
                   sec_name=".maps", sec_idx=sec_idx, var_name=name)


def user_maps(img: "ElfImage", btf: Optional["BTF"], maps_rel: Optional["Section"],
              programs: List[ProgramSpec]) -> List[MapSpec]:
    """The maps declared in ``.maps``, in DATASEC (offset) order, with their
    initial slots from ``.rel.maps``."""
    sec = img.section(".maps")
    if sec is None:
        return []
    if btf is None:
        raise ELFError(f"{img.path}: section '.maps' needs BTF, but the object has no .BTF")
    ds_id = _datasecs(btf).get(".maps")
    if ds_id is None:
        raise ELFError(f"{img.path}: DATASEC '.maps' not found.")
    out: List[MapSpec] = []
    spans = []
    for idx, vi in enumerate(btf[ds_id].vars):
        var_name = btf.name(vi.type)
        if not var_name:
            raise ELFError(f"{img.path}: map #{idx}: empty name.")
        if vi.offset + vi.size > sec.size:
            raise ELFError(f"{img.path}: map '{var_name}' BTF data is corrupted.")
        if btf.kind(vi.type) != Kind.VAR:
            raise ELFError(f"{img.path}: map '{var_name}': unexpected var kind "
                           f"{kind_str(btf, vi.type)}.")
        var = btf[vi.type]
        if var.linkage != VAR_GLOBAL_ALLOCATED:
            raise ELFError(f"{img.path}: map '{var_name}': unsupported map linkage "
                           f"{_LINKAGE.get(var.linkage, 'unknown')}.")
        def_id = btf.skip_mods_and_typedefs(var.type)
        if btf.kind(def_id) != Kind.STRUCT:
            raise ELFError(f"{img.path}: map '{var_name}': unexpected def kind "
                           f"{kind_str(btf, def_id)}.")
        if btf[def_id].size > vi.size:
            raise ELFError(f"{img.path}: map '{var_name}': invalid def size.")
        try:
            m = _to_spec(parse_map_def(btf, var_name, def_id), var_name, sec.idx)
        except ELFError as exc:
            raise ELFError(f"{img.path}: {exc}") from None
        log.debug("map '%s': at sec_idx %d, offset %d.", var_name, sec.idx, vi.offset)
        out.append(m)
        spans.append((vi.offset, vi.offset + vi.size, def_id))
    if maps_rel is not None:
        _init_slots(img, btf, maps_rel, out, spans, programs)
    return out


def _init_slots(img: "ElfImage", btf: "BTF", rel: "Section", maps: List[MapSpec],
                spans: List[tuple], programs: List[ProgramSpec]) -> None:
    """libbpf's ``bpf_object__collect_map_relos``: ``.rel.maps`` entries point
    into a map's ``values`` array and name the map or program of a slot."""
    by_name = {m.name: m for m in maps}
    entry_progs = {p.name: p for p in programs if not p.is_subprog}
    for i, (r_offset, r_info) in enumerate(struct.iter_unpack(img.endian + "QQ", rel.data)):
        sym_idx = r_info >> 32
        if sym_idx >= len(img.symbols):
            raise ELFError(f"{img.path}: .maps relo #{i}: symbol {sym_idx:x} not found")
        sym = img.symbols[sym_idx]
        for m, (start, end, def_id) in zip(maps, spans):
            if start <= r_offset and r_offset + 8 <= end:
                break
        else:
            raise ELFError(f"{img.path}: .maps relo #{i}: cannot find map '{sym.name}' at "
                           f"rel->r_offset {r_offset}")
        if m.map_type in _MAP_IN_MAP:
            if sym.shndx != m.sec_idx:
                raise ELFError(f"{img.path}: .maps relo #{i}: '{sym.name}' isn't a BTF-defined "
                               f"map")
            if m.map_type == C.BPF_MAP_TYPE_HASH_OF_MAPS and m.key_size != 4:
                raise ELFError(f"{img.path}: .maps relo #{i}: hash-of-maps '{m.name}' should "
                               f"have key size 4.")
            if sym.name not in by_name:
                raise ELFError(f"{img.path}: .maps relo #{i}: '{sym.name}' isn't a valid map "
                               f"reference")
        elif m.map_type == C.BPF_MAP_TYPE_PROG_ARRAY:
            prog = entry_progs.get(sym.name)
            if prog is None:
                raise ELFError(f"{img.path}: .maps relo #{i}: '{sym.name}' isn't a valid "
                               f"program reference")
            if (img.sections[sym.shndx].name != prog.sec_name
                    or prog.sec_insn_off * 8 != sym.value):
                raise ELFError(f"{img.path}: .maps relo #{i}: '{sym.name}' isn't an "
                               f"entry-point program")
        else:
            raise ELFError(f"{img.path}: .maps relo #{i}: map '{m.name}' has initial values "
                           f"but is neither map-in-map nor prog-array")
        last = btf[def_id].members[-1]
        moff = r_offset - start - last.bit_offset // 8
        if last.name != "values" or moff < 0 or moff % 8:
            raise ELFError(f"{img.path}: .maps relo #{i}: offset {r_offset} is not a slot of "
                           f"map '{m.name}' 'values'")
        m.init_slots[moff // 8] = sym.name


def internal_maps(img: "ElfImage", btf: Optional["BTF"], obj_name: str) -> List[MapSpec]:
    """One single-entry ARRAY per non-empty data section, in section order."""
    datasecs = _datasecs(btf) if btf is not None else {}
    out = []
    for sec in img.sections:
        name = sec.name
        if not sec.size:
            continue
        if sec.type == SHT_PROGBITS and not sec.flags & SHF_EXECINSTR:
            if name == ".data" or name.startswith(".data."):
                rodata = False
            elif name == ".rodata" or name.startswith(".rodata."):
                rodata = True
            else:
                continue
            data = sec.data
        elif sec.type == SHT_NOBITS and (name == ".bss" or name.startswith(".bss.")):
            rodata, data = False, bytes(sec.size)
        else:
            continue
        value_type_id = datasecs.get(name, 0)
        mmapable = bool(value_type_id) and any(
            btf.kind(v.type) == Kind.VAR and btf[v.type].linkage != VAR_STATIC
            for v in btf[value_type_id].vars)
        flags = (C.BPF_F_RDONLY_PROG if rodata else 0) | (C.BPF_F_MMAPABLE if mmapable else 0)
        m = MapSpec(name=internal_map_name(obj_name, name), map_type=C.BPF_MAP_TYPE_ARRAY,
                    key_size=4, value_size=sec.size, max_entries=1, flags=flags,
                    value_type_id=value_type_id, sec_name=name, internal=name[1:], data=data,
                    mmapable=mmapable, sec_idx=sec.idx, var_name=name)
        log.debug("map '%s' (global data): at sec_idx %d, flags %x.", m.name, sec.idx, flags)
        out.append(m)
    return out
