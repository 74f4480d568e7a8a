"""ELF relocations of code sections: what each one refers to (a subprogram,
a map, a global variable, an extern), how ``.ksyms`` externs resolve, and how
data references are written into final instructions.

Map references are written with the map's *index* in ``ObjectSpec.maps`` in
the ``imm`` field and recorded in ``map_refs``: the loader later overwrites
those ``imm`` fields with real map fds.  Offline output keeps the index, which
is also why relocated instructions can be cached independently of fds.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

from ..asm import insn as I
from ..btf.types import MODIFIER_KINDS, Kind, essential_name
from ..elf.spec import ExternSpec, ObjectSpec, ProgramSpec, Reloc
from ..errors import RelocationError

if TYPE_CHECKING:
    from ..btf.parse import BTF

log = logging.getLogger(__name__)

# Kinds of program relocations (libbpf's reloc_type, same meaning).
RELO_LD64 = "ld64"              # ld_imm64 of a .maps map
RELO_CALL = "call"              # bpf-to-bpf call
RELO_DATA = "data"              # ld_imm64 of a global variable's address
RELO_EXTERN_VAR = "extern_var"  # ld_imm64 of a __kconfig / __ksym variable
RELO_EXTERN_FUNC = "extern_func"  # call of a kfunc
RELO_SUBPROG_ADDR = "subprog_addr"  # ld_imm64 of a callback's address

ModuleBTFs = Callable[[], Sequence[Tuple[str, "BTF"]]]


class ProgReloc(NamedTuple):
    """One relocation of a function; ``insn_idx`` is relative to the function
    (or, once appended, to the combined program)."""

    insn_idx: int
    type: str
    sym_off: int = 0        # call/subprog: symbol byte offset; data: variable offset
    map_idx: int = -1
    ext_idx: int = -1
    sym_name: str = ""

    def shifted(self, delta: int) -> "ProgReloc":
        return self._replace(insn_idx=self.insn_idx + delta)


@dataclass
class ExternValue:
    """Resolution of one extern.  ``module`` is '' for vmlinux, else the name
    of the kernel module whose BTF holds ``btf_id`` (the loader turns it into
    a BTF fd); ``fd_array_idx`` is the kfunc call's ``off``."""

    name: str
    sec: str
    is_set: bool = False
    addr: int = 0
    btf_id: int = 0
    module: str = ""
    fd_array_idx: int = 0


class MapIndex:
    """Lookup of the map a relocation's symbol designates."""

    def __init__(self, spec: ObjectSpec) -> None:
        self.by_var: Dict[str, int] = {}
        self.by_data_sec: Dict[str, int] = {}
        self.kconfig = -1
        for idx, m in enumerate(spec.maps):
            if m.internal == "kconfig":
                self.kconfig = idx
            elif m.internal:
                self.by_data_sec.setdefault(m.sec_name, idx)
            else:
                self.by_var.setdefault(m.var_name or m.name, idx)


def classify(spec: ObjectSpec, prog: ProgramSpec, rel: Reloc, section: bytes,
             maps: MapIndex, ext_index: Dict[str, int]) -> ProgReloc:
    """Turn an ELF relocation into a :class:`ProgReloc` (libbpf's
    ``bpf_program__record_reloc``), validating the instruction it sits on."""
    sec_idx = rel.insn_idx
    idx = sec_idx - prog.sec_insn_off
    code = I.code(section, sec_idx)
    where = f"prog '{prog.name}'"
    if code not in (I.OP_CALL, I.OP_LD_IMM64):
        raise RelocationError(f"{where}: invalid relo against '{rel.sym_name}' for "
                              f"insns[{idx}].code 0x{code:x}")
    if rel.sym_section == "" and rel.sym_type == "STT_NOTYPE" and rel.sym_bind in (
            "STB_GLOBAL", "STB_WEAK"):
        ext = ext_index.get(rel.sym_name)
        if ext is None:
            raise RelocationError(f"{where}: extern relo failed to find extern for '{rel.sym_name}'")
        kind = RELO_EXTERN_FUNC if code == I.OP_CALL else RELO_EXTERN_VAR
        return ProgReloc(idx, kind, ext_idx=ext, sym_name=rel.sym_name)
    if code == I.OP_CALL:
        if I.src_reg(section, sec_idx) != I.PSEUDO_CALL:
            raise RelocationError(f"{where}: incorrect bpf_call opcode")
        if rel.sym_section != ".text":
            raise RelocationError(f"{where}: bad call relo against '{rel.sym_name}' in section "
                                  f"'{rel.sym_section}'")
        if rel.sym_value % I.INSN_SIZE:
            raise RelocationError(f"{where}: bad call relo against '{rel.sym_name}' at offset "
                                  f"{rel.sym_value}")
        return ProgReloc(idx, RELO_CALL, rel.sym_value, sym_name=rel.sym_name)
    if not rel.sym_section:
        raise RelocationError(f"{where}: invalid relo against '{rel.sym_name}' in special section; "
                              "forgot to initialize global var?..")
    if rel.sym_section == ".text" and (
            (rel.sym_bind == "STB_LOCAL" and rel.sym_type == "STT_SECTION")
            or (rel.sym_bind == "STB_GLOBAL" and rel.sym_type == "STT_FUNC")):
        imm = I.get_imm(section, sec_idx)
        if rel.sym_value % I.INSN_SIZE or imm % I.INSN_SIZE:
            raise RelocationError(f"{where}: bad subprog addr relo against '{rel.sym_name}' at "
                                  f"offset {rel.sym_value}+{imm}")
        return ProgReloc(idx, RELO_SUBPROG_ADDR, rel.sym_value, sym_name=rel.sym_name)
    if rel.sym_section == ".maps":
        map_idx = maps.by_var.get(rel.sym_name)
        if map_idx is None:
            raise RelocationError(f"{where}: map relo failed to find map for section '.maps', "
                                  f"off {rel.sym_value}")
        return ProgReloc(idx, RELO_LD64, 0, map_idx=map_idx, sym_name=rel.sym_name)
    map_idx = maps.by_data_sec.get(rel.sym_section)
    if map_idx is None:
        raise RelocationError(f"{where}: data relo failed to find map for section "
                              f"'{rel.sym_section}'")
    return ProgReloc(idx, RELO_DATA, rel.sym_value, map_idx=map_idx, sym_name=rel.sym_name)


# ------------------------------------------------------------------ externs

def read_kallsyms(names: Iterable[str], path: str = "/proc/kallsyms") -> Dict[str, int]:
    """Addresses of ``names`` in ``/proc/kallsyms``; a name listed twice with
    different addresses is ambiguous, as in libbpf."""
    wanted = set(names)
    found: Dict[str, int] = {}
    with open(path, encoding="ascii", errors="replace") as f:
        for line in f:
            parts = line.split(None, 3)
            if len(parts) < 3 or parts[2] not in wanted:
                continue
            addr = int(parts[0], 16)
            prev = found.get(parts[2])
            if prev is not None and prev != addr:
                raise RelocationError(f"extern (ksym) '{parts[2]}': resolution is ambiguous: "
                                      f"0x{prev:x} or 0x{addr:x}")
            found[parts[2]] = addr
    return found


def _skip_mods(btf: "BTF", type_id: int) -> int:
    while type_id:
        t = btf[type_id]
        if t.kind not in MODIFIER_KINDS and t.kind != Kind.TYPEDEF:
            break
        type_id = t.type
    return type_id


def _find(btf: "BTF", name: str, kind: Kind) -> int:
    """First id of that name and kind (libbpf's ``btf__find_by_name_kind``), 0 if none."""
    found = btf.find(name, kind)
    return found[0] if found else 0


def _find_ksym(name: str, kind: Kind, target_btf: "BTF",
               module_btfs: ModuleBTFs) -> Tuple[int, str, Optional["BTF"]]:
    """libbpf's ``find_ksym_btf_id``: vmlinux first, then each module."""
    found = _find(target_btf, name, kind)
    if found:
        return found, "", target_btf
    for mod_name, mod_btf in module_btfs():
        found = _find(mod_btf, name, kind)
        if found:
            return found, mod_name, mod_btf
    return 0, "", None


def resolve_ksyms(spec: ObjectSpec, target_btf: Optional["BTF"], module_btfs: ModuleBTFs,
                  kallsyms: Optional[Callable[[Iterable[str]], Dict[str, int]]] = None
                  ) -> Tuple[Dict[str, ExternValue], List[str]]:
    """Resolve every ``.ksyms`` extern.  Returns the values by name and the
    module names that fill the program's ``fd_array`` from index 1 (index 0
    is reserved, kfunc ``off`` 0 means vmlinux)."""
    from ..core.compat import types_are_compat

    values: Dict[str, ExternValue] = {}
    fd_array: List[str] = []
    ksyms = [e for e in spec.externs if e.sec == ".ksyms"]
    typeless = [e.name for e in ksyms if e.typeless and not e.is_func]
    addrs = (kallsyms or read_kallsyms)(typeless) if typeless else {}
    for ext in ksyms:
        val = values[ext.name] = ExternValue(ext.name, ext.sec)
        if ext.typeless and not ext.is_func:
            if ext.name in addrs:
                val.is_set, val.addr = True, addrs[ext.name]
                log.debug("extern (ksym) '%s': set to 0x%x", ext.name, val.addr)
            continue
        if target_btf is None or spec.btf is None:
            raise RelocationError(f"extern '{ext.name}': typed ksyms need kernel BTF")
        local = spec.btf[ext.btf_id]
        kind = Kind.FUNC if ext.is_func else Kind.VAR
        what = "func ksym" if ext.is_func else "var ksym"
        lookup = essential_name(ext.name) if ext.is_func else ext.name
        targ_id, module, btf = _find_ksym(lookup, kind, target_btf, module_btfs)
        if not targ_id:
            if ext.weak:
                continue
            where = "kernel or module BTFs" if ext.is_func else "kernel BTF"
            raise RelocationError(f"extern ({what}) '{ext.name}': not found in {where}")
        assert btf is not None
        targ = btf[targ_id]
        if ext.is_func:
            local_t, targ_t = local.type, targ.type
        else:
            # Opening rewrote .ksyms VARs to int (as libbpf does for the kernel's
            # sake); the declared type survives in ext.type_id.
            local_t = ext.type_id or _skip_mods(spec.btf, local.type)
            targ_t = _skip_mods(btf, targ.type)
        if not types_are_compat(spec.btf, local_t, btf, targ_t):
            raise RelocationError(f"extern ({what}) '{ext.name}': incompatible types, expected "
                                  f"[{local_t}] but kernel has [{targ_t}]")
        val.is_set, val.btf_id, val.module = True, targ_id, module
        if ext.is_func and module:
            if module not in fd_array:
                fd_array.append(module)
            val.fd_array_idx = fd_array.index(module) + 1
        log.debug("extern (%s) '%s': resolved to [%d]%s", what, ext.name, targ_id,
                  f" in module {module}" if module else "")
    for ext in ksyms:
        if not values[ext.name].is_set:
            if not ext.weak:
                raise RelocationError(f"extern '{ext.name}' (strong): not resolved")
            log.debug("extern '%s' (weak): not resolved, defaulting to zero", ext.name)
    return values, fd_array


# ------------------------------------------------------------- application

def apply_data_relocs(prog_name: str, insns: bytearray, relocs: List[ProgReloc],
                      externs: List[ExternSpec], values: Dict[str, ExternValue],
                      kconfig_map: int) -> Tuple[List[Tuple[int, int]], List[Tuple[int, str]]]:
    """Write map, global data and extern references into ``insns``
    (libbpf's ``bpf_object__relocate_data``).

    Returns ``map_refs`` ``(insn_idx, map_idx)`` whose ``imm`` the loader
    replaces by the map fd, and ``btf_obj_refs`` ``(insn_idx, module)`` whose
    second-half ``imm`` must become that module's BTF fd.
    """
    map_refs: List[Tuple[int, int]] = []
    btf_obj_refs: List[Tuple[int, str]] = []
    for r in relocs:
        i = r.insn_idx
        if r.type == RELO_LD64:
            I.set_src_reg(insns, i, I.PSEUDO_MAP_FD)
            I.set_imm(insns, i, r.map_idx)
            map_refs.append((i, r.map_idx))
        elif r.type == RELO_DATA:
            I.set_imm(insns, i + 1, I.get_imm(insns, i) + r.sym_off)
            I.set_src_reg(insns, i, I.PSEUDO_MAP_VALUE)
            I.set_imm(insns, i, r.map_idx)
            map_refs.append((i, r.map_idx))
        elif r.type == RELO_EXTERN_VAR:
            ext = externs[r.ext_idx]
            if ext.sec == ".kconfig":
                I.set_src_reg(insns, i, I.PSEUDO_MAP_VALUE)
                I.set_imm(insns, i, kconfig_map)
                I.set_imm(insns, i + 1, ext.data_off)
                map_refs.append((i, kconfig_map))
                continue
            val = values[ext.name]
            if val.btf_id and val.is_set:
                I.set_src_reg(insns, i, I.PSEUDO_BTF_ID)
                I.set_imm(insns, i, val.btf_id)
                I.set_imm(insns, i + 1, 0)
                if val.module:
                    btf_obj_refs.append((i, val.module))
            else:
                I.set_imm(insns, i, val.addr & 0xFFFFFFFF)
                I.set_imm(insns, i + 1, val.addr >> 32)
        elif r.type == RELO_EXTERN_FUNC:
            val = values[externs[r.ext_idx].name]
            I.set_src_reg(insns, i, I.PSEUDO_KFUNC_CALL)
            # libbpf 1.1 leaves an unresolved weak kfunc as a call of btf id
            # 0, which the verifier accepts only as dead code.
            I.set_imm(insns, i, val.btf_id if val.is_set else 0)
            I.set_off(insns, i, val.fd_array_idx if val.is_set else 0)
        elif r.type == RELO_SUBPROG_ADDR:
            if I.src_reg(insns, i) != I.PSEUDO_FUNC:
                raise RelocationError(f"prog '{prog_name}': relo for insn #{i}: bad insn")
    return map_refs, btf_obj_refs
