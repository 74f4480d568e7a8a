"""Records carried by an object's ``.BTF.ext``: the contract between the ELF
reader (which parses them) and the relocator/linker/loader (which consume them).

All ``insn_off`` values are in **bytes** relative to the start of the ELF code
section they belong to, exactly as in the file; the linker converts them to
instruction units when it builds a program.
"""
from __future__ import annotations

from typing import NamedTuple


class FuncInfo(NamedTuple):
    insn_off: int   # bytes within the section
    type_id: int    # a BTF FUNC id in the object's BTF


class LineInfo(NamedTuple):
    insn_off: int   # bytes within the section
    file_name: str  # resolved from the BTF string table
    line: str       # the source line text ('' when absent)
    line_num: int
    line_col: int
    file_name_off: int = 0  # raw string offsets, kept for re-encoding
    line_off: int = 0


class CoreRelo(NamedTuple):
    insn_off: int    # bytes within the section
    type_id: int     # root type in the object's BTF
    access_str: str  # e.g. "0:1:0:5"
    kind: int        # 0..12, see bccless.core.kinds
    access_str_off: int = 0
