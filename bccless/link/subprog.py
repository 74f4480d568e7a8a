"""bpf-to-bpf calls: building one entry program out of its callees.

The kernel takes each entry program as a single instruction array that
contains every subprogram it can reach.  As libbpf does
(``bpf_object__reloc_code``), a ``.text`` function is appended to the end of
the entry program the first time a call or callback reference to it is met,
depth-first, so the same subprogram may land at different offsets in
different entry programs (and unused ones are left out).  Once a callee's
position is known, the call's ``imm`` becomes ``callee_pos - caller_pos - 1``.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

from ..asm import insn as I
from ..elf.spec import ProgramSpec
from ..errors import RelocationError
from .data import RELO_CALL, RELO_EXTERN_FUNC, RELO_SUBPROG_ADDR, ProgReloc


@dataclass
class Function:
    """A function's code after CO-RE, with its relocations in its own frame."""

    spec: ProgramSpec
    insns: bytes
    relocs: List[ProgReloc] = field(default_factory=list)
    core: List[Tuple[int, object]] = field(default_factory=list)  # (insn_idx, CoreResult)

    def __post_init__(self) -> None:
        self.relocs.sort(key=lambda r: r.insn_idx)
        self.by_idx: Dict[int, ProgReloc] = {r.insn_idx: r for r in self.relocs}
        buf = self.insns
        # Calls and callback loads are the only instructions that matter
        # here; find them once instead of per entry program.
        self.branch_points = [
            i // I.INSN_SIZE for i in range(0, len(buf), I.INSN_SIZE)
            if (buf[i] == I.OP_CALL and buf[i + 1] >> 4 == I.PSEUDO_CALL)
            or (buf[i] == I.OP_LD_IMM64 and buf[i + 1] >> 4 == I.PSEUDO_FUNC)]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def insn_cnt(self) -> int:
        return len(self.insns) // I.INSN_SIZE


class TextIndex:
    """``.text`` functions by their first instruction, to find a call target."""

    def __init__(self, funcs: Sequence[Function]) -> None:
        self.funcs = sorted(funcs, key=lambda f: f.spec.sec_insn_off)
        self.starts = [f.spec.sec_insn_off for f in self.funcs]

    def find(self, sec_insn_idx: int) -> Function:
        pos = bisect.bisect_right(self.starts, sec_insn_idx) - 1
        if pos >= 0:
            f = self.funcs[pos]
            if sec_insn_idx < f.spec.sec_insn_off + f.insn_cnt:
                return f
        raise KeyError(sec_insn_idx)


@dataclass
class Combined:
    """An entry program with its subprograms appended."""

    insns: bytearray
    relocs: List[ProgReloc]
    layout: List[Tuple[Function, int]]   # each function and where it starts, append order


def combine(main: Function, text: TextIndex) -> Combined:
    """Append every subprogram ``main`` reaches and fix call immediates."""
    out = Combined(bytearray(main.insns), list(main.relocs), [(main, 0)])
    placed: Dict[int, int] = {}   # id(Function) -> start in out.insns
    _reloc_code(out, main, 0, text, placed)
    return out


def _reloc_code(out: Combined, fn: Function, base: int, text: TextIndex,
                placed: Dict[int, int]) -> None:
    insns = out.insns
    for idx in fn.branch_points:
        pos = base + idx
        relo = fn.by_idx.get(idx)
        imm = I.get_imm(insns, pos)
        if relo is not None:
            if relo.type == RELO_EXTERN_FUNC:
                continue    # a kfunc, written with the data references
            if relo.type == RELO_CALL:
                target = relo.sym_off // I.INSN_SIZE + imm + 1
            elif relo.type == RELO_SUBPROG_ADDR:
                target = (relo.sym_off + imm) // I.INSN_SIZE
            else:
                raise RelocationError(f"prog '{fn.name}': unexpected relo for insn #{idx}, "
                                      f"type {relo.type}")
        elif I.code(insns, pos) == I.OP_LD_IMM64:
            raise RelocationError(f"prog '{fn.name}': missing subprog addr relo for insn #{idx}")
        else:
            # A static call inside the same section carries no ELF
            # relocation: imm is already relative to the original position.
            target = fn.spec.sec_insn_off + idx + imm + 1
        try:
            sub = text.find(target)
        except KeyError:
            raise RelocationError(f"prog '{fn.name}': no .text section found yet sub-program "
                                  "call exists") from None
        start = placed.get(id(sub))
        if start is None:
            start = placed[id(sub)] = len(insns) // I.INSN_SIZE
            insns += sub.insns
            out.relocs.extend(r.shifted(start) for r in sub.relocs)
            out.layout.append((sub, start))
            _reloc_code(out, sub, start, text, placed)
        I.set_imm(insns, pos, start - pos - 1)
