"""func_info and line_info of combined programs.

``.BTF.ext`` describes functions and source lines per ELF section in byte
offsets.  The kernel wants them per loaded program, in instruction units,
with the records of every appended subprogram shifted to where its code now
lives, in the order the code was appended (libbpf's
``reloc_prog_func_and_line_info``).  Missing records for the entry program
drop that kind of info for the whole program (with a warning); missing
records for a subprogram after the entry program had some are an error,
because the kernel rejects partial info.
"""
from __future__ import annotations

import logging
from typing import Callable, List, Optional, Sequence, Tuple, TypeVar

from ..asm.insn import INSN_SIZE
from ..elf.records import FuncInfo, LineInfo
from ..errors import RelocationError
from .subprog import Function

log = logging.getLogger(__name__)

R = TypeVar("R", FuncInfo, LineInfo)
FuncInfoRec = Tuple[int, int]              # (insn_idx, type_id)
LineInfoRec = Tuple[int, int, int, int]    # (insn_idx, file_name_off, line_off, line_col)


def _records_of(fn: Function, records: Sequence[R]) -> List[R]:
    lo = fn.spec.sec_insn_off * INSN_SIZE
    hi = lo + len(fn.insns)
    return [r for r in records if lo <= r.insn_off < hi]


def _relocate(layout: Sequence[Tuple[Function, int]], prog_name: str, what: str,
              records_for: Callable[[Function], Sequence[R]],
              convert: Callable[[R, int], tuple]) -> Optional[List[tuple]]:
    out: List[tuple] = []
    for n, (fn, start) in enumerate(layout):
        recs = _records_of(fn, records_for(fn))
        if not recs:
            if n == 0:
                log.warning("prog '%s': missing .BTF.ext %s info for the main program, "
                            "skipping all of .BTF.ext %s info.", prog_name, what, what)
                return None
            raise RelocationError(f"prog '{fn.name}': missing .BTF.ext {what} info.")
        adj = start - fn.spec.sec_insn_off
        out.extend(convert(r, adj) for r in recs)
    return out


def func_and_line_info(layout: Sequence[Tuple[Function, int]], prog_name: str,
                       func_info: Callable[[Function], Sequence[FuncInfo]],
                       line_info: Callable[[Function], Sequence[LineInfo]],
                       ) -> Tuple[List[FuncInfoRec], List[LineInfoRec]]:
    """Records for one combined program; empty lists when the object has none
    for its entry function."""
    funcs = _relocate(layout, prog_name, "function", func_info,
                      lambda r, adj: (r.insn_off // INSN_SIZE + adj, r.type_id))
    lines = _relocate(layout, prog_name, "line", line_info,
                      lambda r, adj: (r.insn_off // INSN_SIZE + adj, r.file_name_off,
                                      r.line_off, (r.line_num << 10) | (r.line_col & 0x3FF)))
    return funcs or [], lines or []  # type: ignore[return-value]
