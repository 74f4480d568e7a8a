"""BPF instruction encoding: opcode constants, field access on raw bytes, and a
small disassembler.

Instructions are kept as raw little-endian bytes (8 per instruction) in
``bytearray`` objects all the way from the ELF file to ``BPF_PROG_LOAD``:
relocation only rewrites a few fields, so decoding every instruction into
Python objects would be wasted work on the load path.  The helpers here read
and write single fields in place.

The disassembler prints the notation of the kernel's ``kernel/bpf/disasm.c``
(what ``bpftool prog dump xlated`` and verifier logs show), because that is
the text users compare against.
"""
from __future__ import annotations

import struct
from typing import Callable, Iterator, Optional, Tuple

INSN_SIZE = 8

# Instruction classes (low 3 bits of the opcode).
CLASS_LD = 0x00
CLASS_LDX = 0x01
CLASS_ST = 0x02
CLASS_STX = 0x03
CLASS_ALU = 0x04
CLASS_JMP = 0x05
CLASS_JMP32 = 0x06
CLASS_ALU64 = 0x07

# Load/store size (bits 3-4) and mode (bits 5-7).
SIZE_W = 0x00
SIZE_H = 0x08
SIZE_B = 0x10
SIZE_DW = 0x18
MODE_IMM = 0x00
MODE_ABS = 0x20
MODE_IND = 0x40
MODE_MEM = 0x60
MODE_MEMSX = 0x80
MODE_ATOMIC = 0xC0

# ALU operations (bits 4-7).
ALU_ADD = 0x00
ALU_SUB = 0x10
ALU_MUL = 0x20
ALU_DIV = 0x30
ALU_OR = 0x40
ALU_AND = 0x50
ALU_LSH = 0x60
ALU_RSH = 0x70
ALU_NEG = 0x80
ALU_MOD = 0x90
ALU_XOR = 0xA0
ALU_MOV = 0xB0
ALU_ARSH = 0xC0
ALU_END = 0xD0

# Jump operations (bits 4-7).
JMP_JA = 0x00
JMP_JEQ = 0x10
JMP_JGT = 0x20
JMP_JGE = 0x30
JMP_JSET = 0x40
JMP_JNE = 0x50
JMP_JSGT = 0x60
JMP_JSGE = 0x70
JMP_CALL = 0x80
JMP_EXIT = 0x90
JMP_JLT = 0xA0
JMP_JLE = 0xB0
JMP_JSLT = 0xC0
JMP_JSLE = 0xD0

# Operand source (bit 3): immediate or register.  For ALU_END it selects the
# byte order instead.
SRC_K = 0x00
SRC_X = 0x08
END_TO_LE = 0x00
END_TO_BE = 0x08

# Atomic operations (imm of MODE_ATOMIC stores).
ATOMIC_FETCH = 0x01
ATOMIC_XCHG = 0xE0 | ATOMIC_FETCH
ATOMIC_CMPXCHG = 0xF0 | ATOMIC_FETCH

# Fused opcodes used by relocation.
OP_LD_IMM64 = CLASS_LD | SIZE_DW | MODE_IMM     # 0x18
OP_CALL = CLASS_JMP | JMP_CALL                   # 0x85
OP_EXIT = CLASS_JMP | JMP_EXIT                   # 0x95

# src_reg values of ld_imm64 (uapi BPF_PSEUDO_*).
PSEUDO_MAP_FD = 1
PSEUDO_MAP_VALUE = 2
PSEUDO_BTF_ID = 3
PSEUDO_FUNC = 4
PSEUDO_MAP_IDX = 5
PSEUDO_MAP_IDX_VALUE = 6
# src_reg values of BPF_CALL.
PSEUDO_CALL = 1
PSEUDO_KFUNC_CALL = 2

# libbpf's poison immediates: a reachable poisoned instruction makes the
# verifier print "invalid func unknown#<imm>", which the loader maps back.
POISON_CORE = 0xBAD2310                 # 195896080, failed CO-RE relocation
POISON_MAP_BASE = 2001000000            # + map index: map not created
POISON_KFUNC_BASE = 2002000000          # + extern index: weak kfunc unresolved

_INSN = struct.Struct("<BBhi")


def insn_count(buf: bytes) -> int:
    return len(buf) // INSN_SIZE


def decode(buf: bytes, idx: int) -> Tuple[int, int, int, int, int]:
    """Return ``(code, dst, src, off, imm)`` of instruction ``idx``."""
    code, regs, off, imm = _INSN.unpack_from(buf, idx * INSN_SIZE)
    return code, regs & 0x0F, regs >> 4, off, imm


def encode(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return _INSN.pack(code, (src << 4) | dst, off, imm)


def iter_insns(buf: bytes) -> Iterator[Tuple[int, int, int, int, int]]:
    """Yield ``(code, dst, src, off, imm)`` for every 8-byte slot."""
    for code, regs, off, imm in _INSN.iter_unpack(buf):
        yield code, regs & 0x0F, regs >> 4, off, imm


def code(buf: bytes, idx: int) -> int:
    return buf[idx * INSN_SIZE]


def src_reg(buf: bytes, idx: int) -> int:
    return buf[idx * INSN_SIZE + 1] >> 4


def set_src_reg(buf: bytearray, idx: int, src: int) -> None:
    pos = idx * INSN_SIZE + 1
    buf[pos] = (buf[pos] & 0x0F) | (src << 4)


def get_off(buf: bytes, idx: int) -> int:
    return struct.unpack_from("<h", buf, idx * INSN_SIZE + 2)[0]


def set_off(buf: bytearray, idx: int, off: int) -> None:
    struct.pack_into("<h", buf, idx * INSN_SIZE + 2, off)


def get_imm(buf: bytes, idx: int) -> int:
    return struct.unpack_from("<i", buf, idx * INSN_SIZE + 4)[0]


def set_imm(buf: bytearray, idx: int, imm: int) -> None:
    """Store ``imm`` as a 32-bit field, accepting signed or unsigned values."""
    struct.pack_into("<I", buf, idx * INSN_SIZE + 4, imm & 0xFFFFFFFF)


def set_insn(buf: bytearray, idx: int, raw: bytes) -> None:
    buf[idx * INSN_SIZE:(idx + 1) * INSN_SIZE] = raw


def is_ld_imm64(c: int) -> bool:
    return c == OP_LD_IMM64


def is_call(c: int) -> bool:
    return c == OP_CALL


def is_subprog_call(buf: bytes, idx: int) -> bool:
    return code(buf, idx) == OP_CALL and src_reg(buf, idx) == PSEUDO_CALL


def is_pseudo_func(buf: bytes, idx: int) -> bool:
    return code(buf, idx) == OP_LD_IMM64 and src_reg(buf, idx) == PSEUDO_FUNC


def hex_insns(buf: bytes) -> list:
    """Each instruction as 16 hex digits in file byte order (the JSON form)."""
    return [buf[i:i + INSN_SIZE].hex() for i in range(0, len(buf), INSN_SIZE)]


def class_name(c: int) -> str:
    """Instruction group as libbpf's relocation log names it."""
    cls = c & 0x07
    if cls in (CLASS_ALU, CLASS_ALU64):
        return "ALU/ALU64"
    if cls in (CLASS_LDX, CLASS_ST, CLASS_STX):
        return "LDX/ST/STX"
    if c == OP_LD_IMM64:
        return "LDIMM64"
    return f"code 0x{c:x}"


# ---------------------------------------------------------------- disassembler

_ALU_SYM = {ALU_ADD: "+=", ALU_SUB: "-=", ALU_MUL: "*=", ALU_DIV: "/=", ALU_OR: "|=",
            ALU_AND: "&=", ALU_LSH: "<<=", ALU_RSH: ">>=", ALU_MOD: "%=", ALU_XOR: "^=",
            ALU_MOV: "=", ALU_ARSH: "s>>="}
_JMP_SYM = {JMP_JEQ: "==", JMP_JGT: ">", JMP_JGE: ">=", JMP_JSET: "&", JMP_JNE: "!=",
            JMP_JSGT: "s>", JMP_JSGE: "s>=", JMP_JLT: "<", JMP_JLE: "<=",
            JMP_JSLT: "s<", JMP_JSLE: "s<="}
_SIZE_NAME = {SIZE_B: "u8", SIZE_H: "u16", SIZE_W: "u32", SIZE_DW: "u64"}
_SIGNED_SIZE_NAME = {SIZE_B: "s8", SIZE_H: "s16", SIZE_W: "s32", SIZE_DW: "s64"}
_ATOMIC_OP = {ALU_ADD: "+=", ALU_AND: "&=", ALU_OR: "|=", ALU_XOR: "^="}
_ATOMIC_FETCH_NAME = {ALU_ADD: "add", ALU_AND: "and", ALU_OR: "or", ALU_XOR: "xor"}

HelperNamer = Callable[[int], Optional[str]]


def _mem(size: int, reg: int, off: int, signed: bool = False) -> str:
    names = _SIGNED_SIZE_NAME if signed else _SIZE_NAME
    return f"*({names[size]} *)(r{reg} {off:+d})"


def _alu(c: int, dst: int, src: int, off: int, imm: int) -> str:
    is64 = (c & 0x07) == CLASS_ALU64
    r = "r" if is64 else "w"
    op = c & 0xF0
    if op == ALU_END:
        kind = "be" if c & SRC_X else "le"
        if is64:
            kind = "bswap"
        return f"r{dst} = {kind}{imm} r{dst}"
    if op == ALU_NEG:
        return f"{r}{dst} = -{r}{dst}"
    sym = _ALU_SYM.get(op)
    if sym is None:
        return f"(0x{c:02x}) invalid alu"
    if op == ALU_MOV and c & SRC_X and off in (8, 16, 32):
        return f"{r}{dst} = (s{off}){r}{src}"
    if op in (ALU_DIV, ALU_MOD) and off == 1:
        sym = "s" + sym
    rhs = f"{r}{src}" if c & SRC_X else f"{imm}"
    return f"{r}{dst} {sym} {rhs}"


def _jmp(c: int, dst: int, src: int, off: int, imm: int,
         helper_name: Optional[HelperNamer]) -> str:
    op = c & 0xF0
    is32 = (c & 0x07) == CLASS_JMP32
    if op == JMP_CALL and not is32:
        if src == PSEUDO_CALL:
            return f"call pc{imm:+d}"
        if src == PSEUDO_KFUNC_CALL:
            return f"call kernel-function#{imm}" + (f" (btf fd idx {off})" if off else "")
        name = helper_name(imm) if helper_name else None
        if imm == POISON_CORE:
            return f"call unknown#{imm}  ; poisoned CO-RE relocation"
        return f"call {name}#{imm}" if name else f"call unknown#{imm}"
    if op == JMP_EXIT and not is32:
        return "exit"
    if op == JMP_JA:
        return f"goto pc{(imm if is32 else off):+d}"
    sym = _JMP_SYM.get(op)
    if sym is None:
        return f"(0x{c:02x}) invalid jmp"
    r = "w" if is32 else "r"
    rhs = f"{r}{src}" if c & SRC_X else f"0x{imm & 0xFFFFFFFF:x}"
    return f"if {r}{dst} {sym} {rhs} goto pc{off:+d}"


def _ld_imm64(buf: bytes, idx: int, dst: int, src: int, imm: int) -> str:
    hi = get_imm(buf, idx + 1) if (idx + 1) * INSN_SIZE < len(buf) else 0
    # imm is a map index after linking and an fd once the loader wrote it.
    if src == PSEUDO_MAP_FD:
        return f"r{dst} = map[{imm}]"
    if src == PSEUDO_MAP_VALUE:
        return f"r{dst} = map[{imm}][0]+{hi}"
    if src == PSEUDO_MAP_IDX:
        return f"r{dst} = map[idx:{imm}]"
    if src == PSEUDO_MAP_IDX_VALUE:
        return f"r{dst} = map[idx:{imm}][0]+{hi}"
    if src == PSEUDO_BTF_ID:
        return f"r{dst} = btf_id[{imm}]" + (f" (btf fd {hi})" if hi else "")
    if src == PSEUDO_FUNC:
        return f"r{dst} = subprog[pc{imm:+d}]"
    value = ((hi & 0xFFFFFFFF) << 32) | (imm & 0xFFFFFFFF)
    return f"r{dst} = 0x{value:x} ll"


def _store(c: int, dst: int, src: int, off: int, imm: int) -> str:
    size = c & 0x18
    mode = c & 0xE0
    if (c & 0x07) == CLASS_ST:
        return f"{_mem(size, dst, off)} = {imm}"
    if mode == MODE_ATOMIC:
        r = "r" if size == SIZE_DW else "w"
        op = imm & 0xF0
        if imm == ATOMIC_CMPXCHG:
            return f"r0 = atomic{'64' if size == SIZE_DW else ''}_cmpxchg(({_SIZE_NAME[size]} *)(r{dst} {off:+d}), r0, {r}{src})"
        if imm == ATOMIC_XCHG:
            return f"{r}{src} = atomic{'64' if size == SIZE_DW else ''}_xchg(({_SIZE_NAME[size]} *)(r{dst} {off:+d}), {r}{src})"
        if imm & ATOMIC_FETCH and op in _ATOMIC_FETCH_NAME:
            return (f"{r}{src} = atomic{'64' if size == SIZE_DW else ''}_fetch_"
                    f"{_ATOMIC_FETCH_NAME[op]}(({_SIZE_NAME[size]} *)(r{dst} {off:+d}), {r}{src})")
        if op in _ATOMIC_OP:
            return f"lock {_mem(size, dst, off)} {_ATOMIC_OP[op]} r{src}"
        return f"(0x{c:02x}) invalid atomic 0x{imm:x}"
    return f"{_mem(size, dst, off)} = r{src}"


def disasm_one(buf: bytes, idx: int, helper_name: Optional[HelperNamer] = None) -> str:
    """Disassemble instruction ``idx`` of ``buf`` (one line, no index prefix).

    ``helper_name`` maps a helper id to its name (from the kernel's
    ``enum bpf_func_id``) when the caller has BTF at hand; without it helper
    calls print as ``call unknown#N``.
    """
    c, dst, src, off, imm = decode(buf, idx)
    cls = c & 0x07
    if cls in (CLASS_ALU, CLASS_ALU64):
        return _alu(c, dst, src, off, imm)
    if cls in (CLASS_JMP, CLASS_JMP32):
        return _jmp(c, dst, src, off, imm, helper_name)
    if cls == CLASS_LDX:
        signed = (c & 0xE0) == MODE_MEMSX
        return f"r{dst} = {_mem(c & 0x18, src, off, signed)}"
    if cls in (CLASS_ST, CLASS_STX):
        return _store(c, dst, src, off, imm)
    if c == OP_LD_IMM64:
        return _ld_imm64(buf, idx, dst, src, imm)
    if cls == CLASS_LD and (c & 0xE0) in (MODE_ABS, MODE_IND):
        size = _SIZE_NAME[c & 0x18]
        where = f"r{src} {imm:+d}" if (c & 0xE0) == MODE_IND else f"{imm}"
        return f"r0 = *({size} *)skb[{where}]"
    return f"(0x{c:02x}) unknown opcode"


def disasm(buf: bytes, helper_name: Optional[HelperNamer] = None) -> Iterator[Tuple[int, str]]:
    """Yield ``(idx, text)`` for every instruction, skipping ld_imm64 second halves."""
    n = insn_count(buf)
    idx = 0
    while idx < n:
        yield idx, disasm_one(buf, idx, helper_name)
        idx += 2 if buf[idx * INSN_SIZE] == OP_LD_IMM64 else 1
