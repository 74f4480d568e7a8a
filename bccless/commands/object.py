"""``bccless object``: inspect a BPF object and relocate it offline.

``relocate`` runs the whole linker (CO-RE, subprogram calls, map/data/extern
references) against any kernel's BTF without touching the kernel, so one can
see what a program would become on a kernel one does not have.  Map
references show map indexes where the loader would put fds.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Callable, Dict, List, Optional

if TYPE_CHECKING:
    from ..btf.parse import BTF
    from ..link.linker import LinkedObject


def register(subparsers: "argparse._SubParsersAction") -> None:
    parser = subparsers.add_parser("object", help="inspect or relocate a BPF object file")
    sub = parser.add_subparsers(dest="object_command", metavar="ACTION")
    sub.required = True

    show = sub.add_parser("show", help="list programs, maps and externs of an object")
    show.add_argument("obj", metavar="OBJ.o")
    show.set_defaults(func=_show)

    rel = sub.add_parser("relocate", help="relocate an object for a kernel, offline")
    rel.add_argument("obj", metavar="OBJ.o")
    rel.add_argument("--btf", metavar="TARGET.btf",
                     help="target kernel BTF: raw (.xz ok) or an ELF with .BTF "
                          "(default: the running kernel)")
    rel.add_argument("--kconfig", metavar="FILE",
                     help="Kconfig text for CONFIG_* externs (default: the running kernel's "
                          "config, only when no --btf is given)")
    rel.add_argument("--kernel-version", metavar="X.Y.Z",
                     help="LINUX_KERNEL_VERSION to use (default: the running kernel's)")
    rel.add_argument("--program", action="append", metavar="NAME",
                     help="relocate only this entry program (repeatable)")
    rel.add_argument("--disasm", action="store_true",
                     help="also print every final instruction")
    rel.add_argument("--json", action="store_true", help="machine-readable output")
    rel.set_defaults(func=_relocate)


def _load_btf(path: Optional[str]) -> "BTF":
    from ..btf.parse import BTF

    if path is None:
        from ..btf.sources import load_kernel_btf
        return load_kernel_btf()
    with open(path, "rb") as f:
        magic = f.read(4)
    return BTF.from_elf(path) if magic == b"\x7fELF" else BTF.from_file(path)


def _helper_namer(btf: Optional["BTF"]) -> Callable[[int], Optional[str]]:
    """Helper id -> name from the target's ``enum bpf_func_id``, built lazily."""
    names: Dict[int, str] = {}
    loaded: List[bool] = []

    def lookup(helper_id: int) -> Optional[str]:
        if not loaded and btf is not None:
            from ..btf.types import Kind
            for tid in btf.find("bpf_func_id", Kind.ENUM):
                for v in btf[tid].values:
                    if v.name.startswith("BPF_FUNC_"):
                        names[v.value] = "bpf_" + v.name[len("BPF_FUNC_"):]
            loaded.append(True)
        return names.get(helper_id)
    return lookup


def _show(args: argparse.Namespace) -> int:
    from ..elf.object import open_object_spec

    spec = open_object_spec(args.obj)
    out = sys.stdout
    out.write(f"object '{spec.name}' ({spec.path}), license '{spec.license}'\n")
    out.write("programs:\n")
    for p in spec.programs:
        role = "subprog" if p.is_subprog else ("entry" if p.autoload else "entry, no autoload")
        out.write(f"  {p.name:24} {p.sec_name:40} insns {len(p.insns) // 8:5}  "
                  f"type {p.prog_type} attach {p.expected_attach_type}  ({role})\n")
    out.write("maps:\n")
    for i, m in enumerate(spec.maps):
        kind = m.internal or "user"
        out.write(f"  #{i:<3} {m.name:20} type {m.map_type:3} key {m.key_size:4} value "
                  f"{m.value_size:6} max {m.max_entries:8} flags 0x{m.flags:x}  ({kind}, "
                  f"{m.sec_name})\n")
    if spec.externs:
        out.write("externs:\n")
        for e in spec.externs:
            what = ("kfunc" if e.is_func else "typeless ksym" if e.typeless else
                    f"kconfig {e.kcfg_type}[{e.kcfg_size}] @ {e.data_off}" if e.sec == ".kconfig"
                    else "typed ksym")
            out.write(f"  {e.name:32} {e.sec:9} {what}{' weak' if e.weak else ''}\n")
    return 0


def _relocate(args: argparse.Namespace) -> int:
    from ..elf.object import open_object_spec
    from ..link.kconfig import KernelFacts, kernel_version_code
    from ..link.linker import link

    spec = open_object_spec(args.obj)
    btf = _load_btf(args.btf)
    kconfig = None
    if args.kconfig:
        with open(args.kconfig, encoding="utf-8", errors="replace") as f:
            kconfig = f.read()
    facts = KernelFacts()
    if args.kernel_version:
        parts = (args.kernel_version.split(".") + ["0", "0"])[:3]
        facts.kernel_version = kernel_version_code(*(int(x) for x in parts))
    linked = link(spec, btf, kconfig=kconfig, kernel_facts=facts,
                  read_system_kconfig=args.btf is None,
                  target_desc=args.btf or "vmlinux", programs=args.program)
    if args.json:
        json.dump(_as_json(linked), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        _print_text(linked, _helper_namer(btf), args.disasm)
    return 0


def _as_json(linked: "LinkedObject") -> dict:
    from ..asm.insn import hex_insns

    return {
        "programs": [{"name": p.name, "section": p.sec_name, "insns": hex_insns(p.insns),
                      "map_refs": [list(r) for r in p.map_refs],
                      "layout": [list(x) for x in p.layout]} for p in linked.programs],
        "relocations": [{"program": r.function, "section": r.section, "relo": r.relo_idx,
                         "insn": r.insn_idx, "kind": r.result.kind_name,
                         "spec": r.result.local_spec, "target": r.result.target_spec,
                         "from": r.result.orig_value, "to": r.result.new_value,
                         "poisoned": r.result.poisoned} for r in linked.core_results],
        "maps": [m.name for m in linked.spec.maps],
    }


def _strip_kind(spec_text: str) -> str:
    """'<byte_off> [2] struct x.y (...)' -> '[2] struct x.y (...)'."""
    if spec_text.startswith("<"):
        end = spec_text.find("> ")
        if end > 0:
            return spec_text[end + 2:]
    return spec_text


def _print_text(linked: "LinkedObject", helper_name: Callable[[int], Optional[str]],
                disasm_all: bool) -> None:
    from ..asm.insn import disasm, disasm_one

    out = sys.stdout
    finals = {p.name: p for p in linked.programs}
    for r in linked.core_results:
        res = r.result
        head = f"prog '{r.function}': relo #{r.relo_idx}:"
        out.write(f"{head} kind <{res.kind_name}> ({res.relo.kind}), spec is "
                  f"{_strip_kind(res.local_spec)}\n")
        if res.target_spec is not None:
            out.write(f"{head} matched target {_strip_kind(res.target_spec)}\n")
        else:
            out.write(f"{head} no matching targets found\n")
        desc = res.description.split(": ", 1)[1] if res.description.startswith("relo #") \
            else res.description
        out.write(f"{head} {desc}\n")
        shown = _final_insns(linked, r.function, finals)
        if shown is not None:
            buf, base = shown
            out.write(f"    {r.insn_idx}: {disasm_one(buf, base + r.insn_idx, helper_name)}\n")
    for p in linked.programs:
        if disasm_all:
            out.write(f"\nprog '{p.name}' ({p.sec_name}), {p.insn_cnt} insns:\n")
            for idx, text in disasm(p.insns, helper_name):
                out.write(f"  {idx:5}: {text}\n")
    if not linked.core_results:
        out.write("no CO-RE relocations\n")
    summary: List[str] = [f"{p.name}: {p.insn_cnt} insns" for p in linked.programs]
    out.write("programs: " + ", ".join(summary) + "\n")


def _final_insns(linked: "LinkedObject", function: str, finals: dict):
    """Where a function's instructions ended up: its own entry program, or
    the first entry program it was appended to (None if none uses it)."""
    if function in finals:
        return finals[function].insns, 0
    for p in linked.programs:
        for name, start in p.layout:
            if name == function:
                return p.insns, start
    return None
