"""Turn an :class:`ObjectSpec` plus a target kernel's BTF into final
per-program instructions, the way libbpf 1.1's ``bpf_object__relocate`` does.

Order matters and follows libbpf: CO-RE relocations are applied to each code
section first (so subprogram copies inherit them), then every entry program
gets its subprograms appended and its calls fixed, then map/global
data/extern references are written, then func_info/line_info are carried
over.  Nothing here touches the kernel: map references hold map *indexes*
(recorded in ``map_refs``) that the loader swaps for fds, which also makes a
:class:`LinkedObject` cacheable per (object, kernel).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable, Dict, Iterable, List, NamedTuple, Optional, Tuple

from ..btf.types import Kind
from ..elf.spec import ObjectSpec, ProgramSpec
from ..errors import RelocationError
from ..asm import insn as I
from .data import RELO_SUBPROG_ADDR, ExternValue, MapIndex, ModuleBTFs, ProgReloc, \
    apply_data_relocs, classify, resolve_ksyms
from .extinfo import FuncInfoRec, LineInfoRec, func_and_line_info
from .kconfig import KernelFacts, build_kconfig_image, running_kernel_version
from .subprog import Function, TextIndex, combine

if TYPE_CHECKING:
    from ..btf.parse import BTF
    from ..core.relocate import CoreResult

log = logging.getLogger(__name__)


class CoreRecord(NamedTuple):
    """One CO-RE outcome in file order, located the way libbpf logs it."""

    section: str
    relo_idx: int       # number within the section's records
    function: str       # the function the instruction belongs to
    insn_idx: int       # instruction index within that function
    result: "CoreResult"


@dataclass
class LinkedProgram:
    """One entry program ready for ``BPF_PROG_LOAD`` once fds are written.

    ``map_refs`` are ``(insn_idx, map_idx)``: the ``imm`` of that ld_imm64
    first half holds ``map_idx`` and must become the fd of
    ``ObjectSpec.maps[map_idx]``.  ``btf_obj_refs`` are ``(insn_idx, module)``
    typed-ksym loads whose second half must hold that module's BTF fd.
    ``core_results`` map final instruction indexes to CO-RE outcomes, used to
    explain verifier failures on poisoned instructions.
    """

    name: str
    sec_name: str
    prog_type: int
    expected_attach_type: int
    attach_target: str
    insns: bytearray
    map_refs: List[Tuple[int, int]] = field(default_factory=list)
    btf_obj_refs: List[Tuple[int, str]] = field(default_factory=list)
    func_info: List[FuncInfoRec] = field(default_factory=list)
    line_info: List[LineInfoRec] = field(default_factory=list)
    core_results: List[Tuple[int, "CoreResult"]] = field(default_factory=list)
    layout: List[Tuple[str, int]] = field(default_factory=list)  # (function, first insn)
    spec: Optional[ProgramSpec] = None

    @property
    def insn_cnt(self) -> int:
        return len(self.insns) // 8


@dataclass
class LinkedObject:
    spec: ObjectSpec
    programs: List[LinkedProgram]
    kconfig_map: int = -1                 # index in spec.maps, -1 without .kconfig
    kconfig_data: Optional[bytes] = None  # initial value of that map
    externs: Dict[str, ExternValue] = field(default_factory=dict)
    fd_array_modules: List[str] = field(default_factory=list)  # fd_array[1:] module BTFs
    core_results: List[CoreRecord] = field(default_factory=list)  # every outcome, file order

    def program(self, name: str) -> LinkedProgram:
        for p in self.programs:
            if p.name == name:
                return p
        raise KeyError(name)


_SYSCALL_PREFIX = {"x86_64": "x64", "i386": "ia32", "i686": "ia32", "aarch64": "arm64",
                   "arm64": "arm64", "s390x": "s390", "ppc64le": "powerpc",
                   "riscv64": "riscv", "armv7l": "arm"}


def probe_facts(target_btf: Optional["BTF"], facts: Optional[KernelFacts]) -> KernelFacts:
    """Fill the unknowns of ``facts`` from the target BTF.

    libbpf probes the running kernel (a kprobe on ``__<arch>_sys_bpf``, a
    program calling ``bpf_get_attach_cookie``); the same answers are in the
    target's BTF, which also works offline for a foreign kernel: the wrapper
    is a FUNC there, and the helper id is an enumerator of ``bpf_func_id``.
    """
    facts = KernelFacts(**vars(facts)) if facts else KernelFacts()
    if facts.kernel_version is None:
        facts.kernel_version = running_kernel_version()
    if target_btf is not None and facts.has_syscall_wrapper is None:
        prefix = _SYSCALL_PREFIX.get(os.uname().machine)
        facts.has_syscall_wrapper = bool(prefix) and _has(target_btf, f"__{prefix}_sys_bpf", Kind.FUNC)
    if target_btf is not None and facts.has_bpf_cookie is None:
        facts.has_bpf_cookie = _has_enumerator(target_btf, "bpf_func_id", "BPF_FUNC_get_attach_cookie")
    return facts


def _has(btf: "BTF", name: str, kind: Kind) -> bool:
    return bool(btf.find(name, kind))


def _has_enumerator(btf: "BTF", enum_name: str, value_name: str) -> bool:
    return any(v.name == value_name for tid in btf.find(enum_name, Kind.ENUM)
               for v in btf[tid].values)


def _section_key(spec: ObjectSpec, prog: ProgramSpec) -> str:
    """The ELF section holding ``prog`` (``SEC("?x")`` lives in section ``?x``)."""
    if prog.sec_name in spec.section_insns:
        return prog.sec_name
    if "?" + prog.sec_name in spec.section_insns:
        return "?" + prog.sec_name
    raise RelocationError(f"prog '{prog.name}': code section '{prog.sec_name}' not found")


def _run_core(spec: ObjectSpec, target_btf: Optional["BTF"], module_btfs: ModuleBTFs,
              target_desc: str, sections: Dict[str, bytearray],
              by_sec: Dict[str, List[ProgramSpec]]
              ) -> Tuple[List[CoreRecord], Dict[str, List[Tuple[int, "CoreResult"]]]]:
    """Apply CO-RE to the section copies; returns results in file order and,
    per function name, (function-relative insn, result)."""
    ordered: List[CoreRecord] = []
    per_func: Dict[str, List[Tuple[int, "CoreResult"]]] = {}
    if not any(spec.core_relos.values()):
        return ordered, per_func
    if target_btf is None or spec.btf is None:
        raise RelocationError(f"{spec.path}: CO-RE relocations need the object's and a target BTF")
    from ..core.relocate import CoreRelocator

    relocator = CoreRelocator(spec.btf, target_btf,
                              module_btfs=lambda: [btf for _, btf in module_btfs()],
                              target_desc=target_desc)
    for sec, relos in spec.core_relos.items():
        if sec not in sections:
            raise RelocationError(f"{spec.path}: CO-RE relocations for unknown section '{sec}'")
        progs = by_sec.get(sec, [])
        groups: Dict[str, List[Tuple[int, object]]] = {}
        owners: Dict[str, ProgramSpec] = {}
        for n, relo in enumerate(relos):
            if relo.insn_off % 8:
                raise RelocationError(f"sec '{sec}': CO-RE relocation #{n} at unaligned "
                                      f"offset {relo.insn_off}")
            idx = relo.insn_off // 8
            prog = next((p for p in progs
                         if p.sec_insn_off <= idx < p.sec_insn_off + len(p.insns) // 8), None)
            if prog is None:
                log.debug("sec '%s': skipping CO-RE relocation #%d for insn #%d belonging to "
                          "eliminated weak subprogram", sec, n, idx)
                continue
            if not prog.autoload:
                continue    # libbpf 1.1 does not relocate programs it won't load
            groups.setdefault(prog.name, []).append((n, relo))
            owners[prog.name] = prog
        for name, items in groups.items():
            prog = owners[name]
            for run in _runs(items):
                results = relocator.relocate(name, sections[sec], [r for _, r in run],
                                             first_relo_idx=run[0][0])
                for (n, relo), res in zip(run, results):
                    idx = relo.insn_off // 8 - prog.sec_insn_off
                    ordered.append(CoreRecord(sec, n, name, idx, res))
                    per_func.setdefault(name, []).append((idx, res))
    sec_order = {sec: i for i, sec in enumerate(spec.core_relos)}
    ordered.sort(key=lambda r: (sec_order[r.section], r.relo_idx))
    return ordered, per_func


def _runs(items: List[Tuple[int, object]]) -> List[List[Tuple[int, object]]]:
    """Split numbered relocations into runs of consecutive numbers, so each
    relocator call can number its messages like libbpf (per section)."""
    runs: List[List[Tuple[int, object]]] = []
    for item in items:
        if runs and runs[-1][-1][0] + 1 == item[0]:
            runs[-1].append(item)
        else:
            runs.append([item])
    return runs


def link(spec: ObjectSpec, target_btf: Optional["BTF"], *,
         module_btfs: ModuleBTFs = lambda: [],
         kconfig: Optional[str] = None,
         kernel_facts: Optional[KernelFacts] = None,
         read_system_kconfig: bool = True,
         kallsyms: Optional[Callable[[Iterable[str]], Dict[str, int]]] = None,
         ksym_btf: Optional["BTF"] = None,
         target_desc: str = "vmlinux",
         programs: Optional[Iterable[str]] = None) -> LinkedObject:
    """Relocate every autoloaded entry program of ``spec`` for ``target_btf``.

    ``kconfig`` is extra Kconfig text (takes precedence over the system's);
    ``read_system_kconfig`` False keeps ``/boot`` and ``/proc`` out of offline
    relocation.  ``ksym_btf`` resolves ``__ksym`` externs when it must differ
    from ``target_btf`` (libbpf resolves them against the running kernel even
    with a custom CO-RE target).  ``programs`` limits which entry programs are
    built, as if their autoload flag were set and every other one cleared.
    """
    wanted = set(programs) if programs is not None else None
    if wanted is not None:
        unknown = wanted - {p.name for p in spec.programs}
        if unknown:
            raise RelocationError(f"{spec.path}: no program named {', '.join(sorted(unknown))}")
        spec_progs = [p if p.is_subprog or p.autoload == (p.name in wanted)
                      else replace(p, autoload=p.name in wanted) for p in spec.programs]
    else:
        spec_progs = list(spec.programs)

    by_sec: Dict[str, List[ProgramSpec]] = {}
    for p in spec_progs:
        by_sec.setdefault(_section_key(spec, p), []).append(p)
    sections = {sec: bytearray(raw) for sec, raw in spec.section_insns.items()}
    ordered, per_func = _run_core(spec, target_btf, module_btfs, target_desc, sections, by_sec)

    maps = MapIndex(spec)
    kconfig_data = None
    if any(e.sec == ".kconfig" for e in spec.externs):
        if maps.kconfig < 0:
            raise RelocationError(f"{spec.path}: .kconfig externs without a .kconfig map")
        kconfig_data = bytes(build_kconfig_image(
            spec.externs, spec.maps[maps.kconfig].value_size,
            probe_facts(target_btf, kernel_facts), kconfig, read_system=read_system_kconfig))
    values, fd_modules = resolve_ksyms(spec, ksym_btf or target_btf, module_btfs, kallsyms)

    ext_index = {e.name: i for i, e in enumerate(spec.externs)}
    funcs: Dict[str, List[Function]] = {}
    for sec, progs in by_sec.items():
        original = spec.section_insns[sec]
        relocs_of: Dict[str, List[ProgReloc]] = {p.name: [] for p in progs}
        for rel in spec.relocs.get(sec, []):
            owner = next((p for p in progs
                          if p.sec_insn_off <= rel.insn_idx < p.sec_insn_off + len(p.insns) // 8),
                         None)
            if owner is None:
                log.debug("sec '%s': relo at insn #%d: no program, probably an overridden weak "
                          "function, skipping", sec, rel.insn_idx)
                continue
            relocs_of[owner.name].append(classify(spec, owner, rel, original, maps, ext_index))
        buf = sections[sec]
        for p in progs:
            code = bytearray(buf[p.sec_insn_off * 8:p.sec_insn_off * 8 + len(p.insns)])
            for r in relocs_of[p.name]:
                if r.type == RELO_SUBPROG_ADDR:   # so the call pass recognises it
                    I.set_src_reg(code, r.insn_idx, I.PSEUDO_FUNC)
            funcs.setdefault(sec, []).append(
                Function(p, bytes(code), relocs_of[p.name], per_func.get(p.name, [])))
    text = TextIndex([f for fs in funcs.values() for f in fs if f.spec.is_subprog])

    linked: List[LinkedProgram] = []
    for sec, fs in funcs.items():
        for fn in fs:
            p = fn.spec
            if p.is_subprog or not p.autoload:
                continue
            comb = combine(fn, text)
            map_refs, btf_refs = apply_data_relocs(p.name, comb.insns, comb.relocs,
                                                   spec.externs, values, maps.kconfig)
            fi, li = func_and_line_info(
                comb.layout, p.name,
                lambda f: spec.func_info.get(_section_key(spec, f.spec), []),
                lambda f: spec.line_info.get(_section_key(spec, f.spec), []))
            core = [(start + idx, res) for f, start in comb.layout for idx, res in f.core]
            linked.append(LinkedProgram(
                name=p.name, sec_name=p.sec_name, prog_type=p.prog_type,
                expected_attach_type=p.expected_attach_type, attach_target=p.attach_target,
                insns=comb.insns, map_refs=map_refs, btf_obj_refs=btf_refs,
                func_info=fi, line_info=li, core_results=core,
                layout=[(f.name, start) for f, start in comb.layout], spec=p))
    order = {p.name: i for i, p in enumerate(spec.programs)}
    linked.sort(key=lambda lp: order[lp.name])
    return LinkedObject(spec=spec, programs=linked, kconfig_map=maps.kconfig,
                        kconfig_data=kconfig_data, externs=values,
                        fd_array_modules=fd_modules, core_results=ordered)
