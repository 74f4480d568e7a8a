"""Externs of an object: ``__kconfig`` and ``__ksym`` declarations.

An extern is an undefined ELF symbol whose BTF VAR/FUNC sits in DATASEC
``.kconfig`` or ``.ksyms``.  At open, libbpf (``bpf_object__collect_externs``,
core-semantics.md §1.11) classifies them, lays ``.kconfig`` values out in one
read-only array map, and rewrites both DATASECs so the kernel accepts the
object's BTF (extern VARs are not valid in loaded BTF).  The same happens here,
with libbpf 1.1's ordering and messages, so ``.kconfig`` offsets and map sizes
agree byte for byte with what libbpf would produce.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from ..btf.types import (
    FUNC_EXTERN, FUNC_GLOBAL, INT_BOOL, INT_SIGNED, VAR_GLOBAL_ALLOCATED, VAR_GLOBAL_EXTERN,
    Datasec, Func, FuncProto, Kind, Param, Var, VarSecInfo,
)
from ..errors import BcclessError, ELFError
from ..sys import bpf_consts as C
from .maps import internal_map_name
from .spec import ExternSpec, MapSpec

if TYPE_CHECKING:
    from ..btf.parse import BTF
    from .object import ElfImage

log = logging.getLogger(__name__)

STT_NOTYPE, STB_GLOBAL, STB_WEAK, SHN_UNDEF, SHT_SYMTAB = 0, 1, 2, 0, 2
_KCONFIG, _KSYMS = ".kconfig", ".ksyms"
_PTR_SIZE = 8


def _kcfg_type(btf: "BTF", tid: int) -> Tuple[str, bool]:
    """libbpf's ``find_kcfg_type``: ('bool'|'char'|'int'|'tristate'|'char_arr'|'', signed)."""
    tid = btf.skip_mods_and_typedefs(tid)
    kind = btf.kind(tid)
    if kind == Kind.INT:
        t = btf[tid]
        if t.encoding & INT_BOOL:
            return ("bool" if t.size == 1 else ""), False
        signed = bool(t.encoding & INT_SIGNED)
        if t.size == 1:
            return "char", signed
        if t.size not in (2, 4, 8):
            return "", signed
        return "int", signed
    if kind == Kind.ENUM:
        t = btf[tid]
        return ("tristate" if t.size == 4 and t.name == "libbpf_tristate" else ""), False
    if kind == Kind.ENUM64:
        return ("tristate" if btf.name(tid) == "libbpf_tristate" else ""), False
    if kind == Kind.ARRAY:
        t = btf[tid]
        if t.nelems and _kcfg_type(btf, t.type)[0] == "char":
            return "char_arr", False
    return "", False


def _align_of(btf: "BTF", tid: int) -> int:
    """``btf__align_of`` for the kinds a kconfig extern can have."""
    tid = btf.skip_mods_and_typedefs(tid)
    kind = btf.kind(tid)
    if kind == Kind.ARRAY:
        return _align_of(btf, btf[tid].type)
    if kind == Kind.PTR:
        return _PTR_SIZE
    return min(_PTR_SIZE, btf[tid].size)


def _find_extern_btf_id(btf: "BTF", name: str) -> int:
    """The first VAR/FUNC named ``name``; it must be declared extern."""
    for tid in sorted(btf.find(name)):
        kind = btf.kind(tid)
        if kind == Kind.VAR:
            return tid if btf[tid].linkage == VAR_GLOBAL_EXTERN else -1
        if kind == Kind.FUNC:
            return tid if btf[tid].linkage == FUNC_EXTERN else -1
    return 0


def collect_externs(img: "ElfImage", btf: Optional["BTF"]) -> List[ExternSpec]:
    """Find, classify and lay out the object's externs; rewrite ``.kconfig``
    and ``.ksyms`` in ``btf``.  Kconfig externs come first, ordered by
    alignment (descending), size, then name; ksyms follow by name."""
    syms = [s for s in img.symbols if s.shndx == SHN_UNDEF and s.type == STT_NOTYPE
            and s.bind in (STB_GLOBAL, STB_WEAK) and s.name]
    if not syms:
        return []
    if btf is None:
        raise ELFError(f"{img.path}: failed to find BTF for extern '{syms[0].name}': "
                       f"the object has no .BTF")
    owner: Dict[int, int] = {}
    for tid in btf.ids():
        if btf.kind(tid) == Kind.DATASEC:
            for v in btf[tid].vars:
                owner.setdefault(v.type, tid)
    externs = []
    for s in syms:
        btf_id = _find_extern_btf_id(btf, s.name)
        if btf_id <= 0:
            why = "not declared extern in BTF" if btf_id < 0 else "no BTF VAR or FUNC"
            raise ELFError(f"{img.path}: failed to find BTF for extern '{s.name}': {why}")
        sec_id = owner.get(btf_id)
        if sec_id is None:
            raise ELFError(f"{img.path}: failed to find BTF for extern '{s.name}' [{btf_id}] "
                           f"section")
        sec_name = btf.name(sec_id)
        t = btf[btf_id]
        is_func = t.kind == Kind.FUNC
        ext = ExternSpec(name=t.name, sec=sec_name, btf_id=btf_id, is_func=is_func,
                         weak=s.bind == STB_WEAK)
        if sec_name == _KCONFIG:
            if is_func:
                raise ELFError(f"{img.path}: extern function {t.name} is unsupported under "
                               f"{_KCONFIG} section")
            try:
                ext.kcfg_size = btf.resolve_size(t.type)
            except BcclessError as exc:
                raise ELFError(f"{img.path}: failed to resolve size of extern (kcfg) "
                               f"'{t.name}': {exc}") from None
            ext.kcfg_type, ext.kcfg_signed = _kcfg_type(btf, t.type)
            if not ext.kcfg_type:
                raise ELFError(f"{img.path}: extern (kcfg) '{t.name}': type is unsupported")
            ext.kcfg_align = _align_of(btf, t.type)
            ext.type_id = btf.skip_mods_and_typedefs(t.type)
        elif sec_name == _KSYMS:
            ext.type_id = btf.skip_mods_and_typedefs(t.type)
            ext.typeless = not is_func and ext.type_id == 0
        else:
            raise ELFError(f"{img.path}: unrecognized extern section '{sec_name}'")
        externs.append(ext)
    externs.sort(key=lambda e: (0, -e.kcfg_align, e.kcfg_size, e.name.encode())
                 if e.sec == _KCONFIG else (1, 0, 0, e.name.encode()))
    _layout_kconfig(img, btf, externs)
    _fake_ksyms(img, btf, externs)
    log.debug("collected %d externs total", len(externs))
    return externs


def _datasec_id(btf: "BTF", name: str) -> int:
    ids = [tid for tid in btf.find(name) if btf.kind(tid) == Kind.DATASEC]
    return ids[0] if ids else 0


def _layout_kconfig(img: "ElfImage", btf: "BTF", externs: List[ExternSpec]) -> None:
    """Give each kconfig extern its offset in the ``.kconfig`` map and make
    the DATASEC describe that layout with allocated VARs."""
    off = 0
    by_name = {}
    for e in externs:
        if e.sec != _KCONFIG:
            continue
        e.data_off = -(-off // e.kcfg_align) * e.kcfg_align
        off = e.data_off + e.kcfg_size
        by_name[e.name] = e
    if not by_name:
        return
    sec_id = _datasec_id(btf, _KCONFIG)
    vars_ = []
    for v in btf[sec_id].vars:
        var = btf[v.type]
        e = by_name.get(var.name)
        if e is None:
            raise ELFError(f"{img.path}: failed to find extern definition for BTF var "
                           f"'{var.name}'")
        btf.replace(v.type, Var(var.name, var.type, VAR_GLOBAL_ALLOCATED))
        vars_.append(VarSecInfo(v.type, e.data_off, v.size))
    vars_.sort(key=lambda v: v.offset)
    btf.replace(sec_id, Datasec(_KCONFIG, off, vars_))


def _fake_ksyms(img: "ElfImage", btf: "BTF", externs: List[ExternSpec]) -> None:
    """Turn ``.ksyms`` into 4-byte allocated int VARs, as libbpf does, so the
    kernel accepts the BTF; kfuncs are represented by one ``dummy_ksym`` VAR."""
    sec_id = _datasec_id(btf, _KSYMS)
    if not sec_id:
        return
    sec = btf[sec_id]
    int_id = next((tid for tid in btf.ids() if btf.kind(tid) == Kind.INT
                   and btf[tid].bits == 32), 0)
    dummy_id = 0
    if any(btf.kind(v.type) == Kind.FUNC for v in sec.vars):
        dummy_id = btf.add(Var("dummy_ksym", int_id, VAR_GLOBAL_ALLOCATED))
    names = {e.name for e in externs if e.sec == _KSYMS}
    vars_ = []
    for i, v in enumerate(sec.vars):
        t = btf[v.type]
        if t.name not in names:
            raise ELFError(f"{img.path}: failed to find extern definition for BTF "
                           f"{t.kind.name.lower()} '{t.name}'")
        if t.kind == Kind.FUNC:
            proto = btf[t.type]
            if any(p.type and not p.name for p in proto.params):
                btf.replace(t.type, FuncProto(proto.return_type, [
                    Param(p.name or ("dummy_ksym" if p.type else ""), p.type)
                    for p in proto.params]))
            btf.replace(v.type, Func(t.name, t.type, FUNC_GLOBAL))
            vars_.append(VarSecInfo(dummy_id, 4 * i, 4))
        else:
            btf.replace(v.type, Var(t.name, int_id, VAR_GLOBAL_ALLOCATED))
            vars_.append(VarSecInfo(v.type, 4 * i, 4))
    btf.replace(sec_id, Datasec(_KSYMS, 4 * len(vars_), vars_))


def kconfig_map(externs: List[ExternSpec], btf: Optional["BTF"], obj_name: str,
                img: "ElfImage") -> Optional[MapSpec]:
    """The ``.kconfig`` internal map, sized to the laid-out externs."""
    kcfg = [e for e in externs if e.sec == _KCONFIG]
    if not kcfg or btf is None:
        return None
    size = kcfg[-1].data_off + kcfg[-1].kcfg_size
    sec_id = _datasec_id(btf, _KCONFIG)
    # after the layout every VAR is allocated, so the map is mmapable
    flags = C.BPF_F_RDONLY_PROG | C.BPF_F_MMAPABLE
    symtab = next(s.idx for s in img.sections if s.type == SHT_SYMTAB)
    return MapSpec(name=internal_map_name(obj_name, _KCONFIG), map_type=C.BPF_MAP_TYPE_ARRAY,
                   key_size=4, value_size=size, max_entries=1, flags=flags,
                   value_type_id=sec_id, sec_name=_KCONFIG, internal="kconfig",
                   data=bytes(size), mmapable=True, sec_idx=symtab, var_name=_KCONFIG)
