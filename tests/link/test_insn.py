"""Instruction field access and the disassembler's notation."""
from __future__ import annotations

from bccless.asm import insn as I


def prog(*raw):
    return bytearray(b"".join(raw))


def test_fields_roundtrip():
    buf = prog(I.encode(0x61, 1, 2, 8, 0), I.encode(I.OP_LD_IMM64, 3, 0, 0, -1), I.encode(0))
    assert I.decode(buf, 0) == (0x61, 1, 2, 8, 0)
    I.set_off(buf, 0, -24)
    I.set_src_reg(buf, 1, I.PSEUDO_MAP_VALUE)
    I.set_imm(buf, 2, 0xFFFFFFFF)
    assert I.get_off(buf, 0) == -24 and I.src_reg(buf, 1) == 2 and I.get_imm(buf, 2) == -1
    assert buf[9] & 0x0F == 3            # dst kept when src changes
    assert I.hex_insns(buf)[0] == "6121e8ff00000000"


def test_disasm_notation():
    cases = [
        (I.encode(0x61, 1, 2, 8), "r1 = *(u32 *)(r2 +8)"),
        (I.encode(0x7B, 10, 1, -8), "*(u64 *)(r10 -8) = r1"),
        (I.encode(0x62, 10, 0, -4, 7), "*(u32 *)(r10 -4) = 7"),
        (I.encode(0xB7, 0, 0, 0, 0), "r0 = 0"),
        (I.encode(0x07, 1, 0, 0, 2404), "r1 += 2404"),
        (I.encode(0xBC, 1, 2), "w1 = w2"),
        (I.encode(0x25, 1, 0, 3, 5), "if r1 > 0x5 goto pc+3"),
        (I.encode(0x85, 0, 0, 0, 14), "call bpf_get_current_pid_tgid#14"),
        (I.encode(0x85, 0, 1, 0, 5), "call pc+5"),
        (I.encode(0x85, 0, 0, 0, I.POISON_CORE), "call unknown#195896080  ; poisoned CO-RE relocation"),
        (I.encode(0x95), "exit"),
        (I.encode(0x05, 0, 0, -2), "goto pc-2"),
        (I.encode(0xDB, 1, 2, 0, 0), "lock *(u64 *)(r1 +0) += r2"),
        (I.encode(0xDC, 1, 0, 0, 16), "r1 = be16 r1"),
        (I.encode(0x87, 3), "r3 = -r3"),
    ]
    names = {14: "bpf_get_current_pid_tgid"}.get
    for raw, text in cases:
        assert I.disasm_one(raw, 0, names) == text


def test_disasm_ld_imm64_forms():
    buf = prog(I.encode(0x18, 1, 1, 0, 3), I.encode(0),
               I.encode(0x18, 2, 2, 0, 4), I.encode(0, 0, 0, 0, 16),
               I.encode(0x18, 3, 0, 0, -1), I.encode(0, 0, 0, 0, 0x7F),
               I.encode(0x18, 4, 4, 0, 5), I.encode(0))
    assert list(I.disasm(buf)) == [(0, "r1 = map[3]"), (2, "r2 = map[4][0]+16"),
                                   (4, "r3 = 0x7fffffffff ll"), (6, "r4 = subprog[pc+5]")]
