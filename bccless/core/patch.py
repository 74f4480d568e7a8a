"""Writing a relocation's value into the instruction that carries it.

Only the forms clang emits for CO-RE are patchable (libbpf's
``bpf_core_patch_insn``): ALU/ALU64 with an immediate, LDX/ST/STX offsets
(with load/store resizing), and LD_IMM64.  The original value is checked
first, so a relocation record that does not belong to its instruction is
caught instead of silently corrupting code.  An unresolvable relocation turns
the instruction into ``call 0xbad2310``: harmless if the verifier proves it
dead, and recognisable in the log (see :mod:`bccless.core.logfix`) if not.
"""
from __future__ import annotations

import errno
import struct
from typing import Tuple

from .calc import RelocResult
from .kinds import CoreRelocationError

POISON_IMM = 195896080  # 0xbad2310, "bad relo"

_LE = struct.Struct("<BBhi")
_BE = struct.Struct(">BBhi")
_MASK64 = (1 << 64) - 1

# instruction classes and fields (uapi bpf_common.h / bpf.h)
_LD, _LDX, _ST, _STX, _ALU, _JMP, _ALU64 = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x07
_BPF_K = 0x00
_LD_IMM64 = 0x18  # BPF_LD | BPF_IMM | BPF_DW
_CALL = 0x85      # BPF_JMP | BPF_CALL
_SIZE_BYTES = {0x18: 8, 0x00: 4, 0x08: 2, 0x10: 1}
_BYTES_SIZE = {v: k for k, v in _SIZE_BYTES.items()}


class Insn:
    """A decoded instruction; the smallest thing that lets patching read and
    write fields by name without caring about byte order."""

    __slots__ = ("code", "dst", "src", "off", "imm")

    def __init__(self, code: int, dst: int, src: int, off: int, imm: int) -> None:
        self.code, self.dst, self.src, self.off, self.imm = code, dst, src, off, imm


def read_insn(buf: bytearray, idx: int, big_endian: bool = False) -> Insn:
    code, regs, off, imm = (_BE if big_endian else _LE).unpack_from(buf, idx * 8)
    if big_endian:
        return Insn(code, regs >> 4, regs & 0xF, off, imm)
    return Insn(code, regs & 0xF, regs >> 4, off, imm)


def write_insn(buf: bytearray, idx: int, insn: Insn, big_endian: bool = False) -> None:
    if big_endian:
        regs = (insn.dst << 4) | insn.src
    else:
        regs = (insn.src << 4) | insn.dst
    (_BE if big_endian else _LE).pack_into(buf, idx * 8, insn.code, regs, insn.off, insn.imm)


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def _poison(buf: bytearray, idx: int, big_endian: bool) -> None:
    write_insn(buf, idx, Insn(_CALL, 0, 0, 0, POISON_IMM), big_endian)


def poison_insn(buf: bytearray, idx: int, big_endian: bool = False) -> str:
    """Replace instruction ``idx`` by ``call 0xbad2310``; an LD_IMM64 gets both
    halves replaced so the verifier reports the call, not 'unknown opcode 00'."""
    lines = []
    if read_insn(buf, idx, big_endian).code == _LD_IMM64 and len(buf) >= (idx + 2) * 8:
        _poison(buf, idx + 1, big_endian)
        lines.append(f"substituting insn #{idx + 1} w/ invalid insn")
    _poison(buf, idx, big_endian)
    lines.append(f"substituting insn #{idx} w/ invalid insn")
    return "; ".join(lines)


def patch_insn(buf: bytearray, idx: int, res: RelocResult,
               big_endian: bool = False) -> Tuple[bool, str]:
    """Apply ``res`` to instruction ``idx`` of ``buf`` (in place).

    Returns (poisoned, libbpf-style description).  Raises
    :class:`CoreRelocationError` when the instruction does not have the form
    or the original value the relocation expects.
    """
    if res.poison:
        return True, poison_insn(buf, idx, big_endian)
    insn = read_insn(buf, idx, big_endian)
    cls = insn.code & 0x07
    orig, new = res.orig_val, res.new_val
    if cls in (_ALU, _ALU64):
        if insn.code & 0x08 != _BPF_K:
            raise CoreRelocationError(
                f"insn #{idx} (ALU/ALU64) takes a register operand, not an immediate")
        got = insn.imm & _MASK64
        if res.validate and got != orig:
            raise CoreRelocationError(
                f"unexpected insn #{idx} (ALU/ALU64) value: got {insn.imm}, exp {orig} -> {new}")
        insn.imm = _s32(new)
        write_insn(buf, idx, insn, big_endian)
        return False, f"patched insn #{idx} (ALU/ALU64) imm {got} -> {new}"
    if cls in (_LDX, _ST, _STX):
        if res.validate and insn.off & _MASK64 != orig:
            raise CoreRelocationError(
                f"unexpected insn #{idx} (LDX/ST/STX) value: got {insn.off}, exp {orig} -> {new}")
        if new > 32767:
            raise CoreRelocationError(
                f"insn #{idx} (LDX/ST/STX) value too big: {new}", errno.ERANGE)
        if res.fail_memsz_adjust:
            warning = (f"insn #{idx} (LDX/ST/STX) accesses field incorrectly. Make sure you are "
                       "accessing pointers, unsigned integers, or fields of matching type and "
                       "size.")
            return True, warning + "; " + poison_insn(buf, idx, big_endian)
        old_off = insn.off & _MASK64
        insn.off = new
        text = f"patched insn #{idx} (LDX/ST/STX) off {old_off} -> {new}"
        if res.new_sz != res.orig_sz:
            cur = _SIZE_BYTES.get(insn.code & 0x18, -1)
            if cur != res.orig_sz:
                raise CoreRelocationError(
                    f"insn #{idx} (LDX/ST/STX) unexpected mem size: got {cur}, exp {res.orig_sz}")
            if res.new_sz not in _BYTES_SIZE:
                raise CoreRelocationError(
                    f"insn #{idx} (LDX/ST/STX) invalid new mem size: {res.new_sz}")
            insn.code = (insn.code & ~0x18 & 0xFF) | _BYTES_SIZE[res.new_sz]
            text += f"; patched insn #{idx} (LDX/ST/STX) mem_sz {res.orig_sz} -> {res.new_sz}"
        write_insn(buf, idx, insn, big_endian)
        return False, text
    if cls == _LD:
        if (insn.code != _LD_IMM64 or insn.src != 0 or insn.off != 0
                or len(buf) < (idx + 2) * 8):
            raise CoreRelocationError(f"insn #{idx} (LDIMM64) has unexpected form")
        hi = read_insn(buf, idx + 1, big_endian)
        if hi.code or hi.dst or hi.src or hi.off:
            raise CoreRelocationError(f"insn #{idx} (LDIMM64) has unexpected form")
        imm = (insn.imm & 0xFFFFFFFF) | ((hi.imm & 0xFFFFFFFF) << 32)
        if res.validate and imm != orig:
            raise CoreRelocationError(
                f"unexpected insn #{idx} (LDIMM64) value: got {imm}, exp {orig} -> {new}")
        insn.imm = _s32(new)
        hi.imm = _s32(new >> 32)
        write_insn(buf, idx, insn, big_endian)
        write_insn(buf, idx + 1, hi, big_endian)
        return False, f"patched insn #{idx} (LDIMM64) imm64 {imm} -> {new}"
    raise CoreRelocationError(
        f"trying to relocate unrecognized insn #{idx}, code:{insn.code:#x}, src:{insn.src:#x}, "
        f"dst:{insn.dst:#x}, off:{insn.off & 0xFFFF:#x}, imm:{insn.imm & 0xFFFFFFFF:#x}")
