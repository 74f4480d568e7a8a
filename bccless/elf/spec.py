"""The parsed, kernel-independent description of a BPF object.

An :class:`ObjectSpec` is what reading an ELF file yields: programs as raw
section instructions with their relocation records, map definitions, global
data images and externs.  Nothing here holds a file descriptor; the linker
turns a spec plus a target kernel into final instructions and the loader turns
those into live kernel objects.  Keeping the two apart lets relocation run
offline (``bccless object relocate``) and be cached.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, List, Optional

from .records import CoreRelo, FuncInfo, LineInfo

if TYPE_CHECKING:
    from ..btf.parse import BTF


@dataclass
class Reloc:
    """An ELF relocation inside a code section, resolved to its symbol.

    ``insn_idx`` is section-relative, in instructions.  ``sym_section`` is the
    ELF section the symbol lives in ('.maps', '.data', '.text', ...), or ''
    for an undefined symbol (an extern).
    """

    insn_idx: int
    sym_name: str
    sym_section: str
    sym_value: int          # st_value: byte offset of the symbol in its section
    sym_type: str           # 'STT_FUNC' | 'STT_OBJECT' | 'STT_SECTION' | 'STT_NOTYPE'
    sym_bind: str           # 'STB_GLOBAL' | 'STB_LOCAL' | 'STB_WEAK'
    r_type: int             # R_BPF_64_64 (1), R_BPF_64_ABS64, R_BPF_64_32 (10) ...


@dataclass
class ProgramSpec:
    """One function in a code section: an entry program or a .text subprogram."""

    name: str
    sec_name: str           # ELF section name, i.e. the SEC() string, e.g. 'tracepoint/syscalls/sys_enter_getpid'
                            # (a leading '?' is kept: the name keys relocs/func_info/section_insns)
    sec_insn_off: int       # first instruction of this function within its section
    insns: bytes            # this function's raw instructions (8 bytes each)
    prog_type: int = 0      # BPF_PROG_TYPE_* from the SEC() table (0 for .text subprograms)
    expected_attach_type: int = 0
    attach_target: str = ""  # part after the SEC prefix: 'syscalls/sys_enter_getpid', 'do_unlinkat', ''
    sec_prefix: str = ""    # matched SEC() table entry, e.g. 'tracepoint+'
    sleepable: bool = False
    attach_btf: bool = False  # target resolved by BTF id at load (fentry, tp_btf, lsm, iter)
    is_subprog: bool = False  # lives in .text and is only called
    autoload: bool = True   # False for SEC("?...")
    global_func: bool = False  # STB_GLOBAL symbol (matters for .text subprograms)
    sec_flags: int = 0      # SEC_* bits of the matched entry (bccless.elf.sections)
    mark_btf_static: bool = False  # global but hidden: libbpf uploads its BTF FUNC as static


@dataclass
class MapSpec:
    """A map to create: BTF-defined (.maps), internal (global data, .kconfig)."""

    name: str               # kernel-visible name (internal maps follow libbpf's naming)
    map_type: int
    key_size: int
    value_size: int
    max_entries: int
    flags: int = 0
    numa_node: int = 0
    map_extra: int = 0
    pinning: int = 0        # 0 none, 1 LIBBPF_PIN_BY_NAME
    key_type_id: int = 0    # object BTF ids (0: none)
    value_type_id: int = 0
    inner: Optional["MapSpec"] = None   # map-in-map template
    init_slots: Dict[int, str] = field(default_factory=dict)  # slot -> map or program name
    sec_name: str = ".maps"  # '.maps', '.data', '.rodata.str1.1', '.kconfig', ...
    internal: str = ""      # '' for user maps; 'data' | 'rodata' | 'bss' | 'kconfig' | 'data.custom' ...
    data: Optional[bytes] = None  # initial image of an internal map (bss: zeros)
    mmapable: bool = False
    sec_idx: int = -1       # ELF section index backing the map's data/definition
    var_name: str = ""      # C identifier of a .maps variable (== name for user maps);
                            # the ELF section name ('.rodata', '.kconfig') for internal maps


@dataclass
class ExternSpec:
    """An undefined symbol from .kconfig or .ksyms."""

    name: str
    sec: str                # '.kconfig' | '.ksyms'
    btf_id: int             # VAR or FUNC id in the object's BTF
    type_id: int = 0        # declared type past mods/typedefs (FUNC_PROTO for a kfunc; 0 if
                            # typeless), kept because open rewrites .ksyms VARs to int
    is_func: bool = False   # kfunc
    weak: bool = False
    typeless: bool = False  # 'extern const void x __ksym'
    kcfg_type: str = ""     # 'bool' | 'char' | 'int' | 'tristate' | 'char_arr' (kconfig)
    kcfg_size: int = 0
    kcfg_signed: bool = False
    kcfg_align: int = 0
    data_off: int = -1      # offset in the .kconfig map (assigned at open)


@dataclass
class ObjectSpec:
    path: str
    name: str               # object name: file basename cut at its first '.'
    license: str
    kern_version: int
    btf: Optional["BTF"]    # the object's own BTF (DATASEC sizes/offsets fixed up)
    programs: List[ProgramSpec]          # entry programs and subprograms, in section then offset order
    maps: List[MapSpec]                  # user maps in .maps order, then internal maps
    externs: List[ExternSpec]
    relocs: Dict[str, List[Reloc]]       # ELF code section -> its relocations
    func_info: Dict[str, List[FuncInfo]]  # ELF code section -> records (.BTF.ext)
    line_info: Dict[str, List[LineInfo]]
    core_relos: Dict[str, List[CoreRelo]]
    section_insns: Dict[str, bytes]      # ELF code section -> all its instructions
    sha256: str = ""        # hash of the file contents (cache keys)

    def program(self, name: str) -> ProgramSpec:
        for p in self.programs:
            if p.name == name:
                return p
        raise KeyError(name)

    def map(self, name: str) -> MapSpec:
        for m in self.maps:
            if m.name == name or m.var_name == name:
                return m
        raise KeyError(name)
