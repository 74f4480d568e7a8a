"""A tiny eBPF assembler for runtime tests: programs without a compiler or loader.

Each function returns one encoded instruction (8 bytes; ld_imm64 is 16).
Only what the tests need is here: ALU64 mov/add, loads/stores, helper calls,
map fd loads, conditional jumps and exit.
"""
from __future__ import annotations

import struct

R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 = range(11)

# helper ids (enum bpf_func_id)
MAP_LOOKUP_ELEM = 1
MAP_UPDATE_ELEM = 2
GET_CURRENT_PID_TGID = 14
PERF_EVENT_OUTPUT = 25
GET_SMP_PROCESSOR_ID = 8
RINGBUF_OUTPUT = 130

BPF_F_CURRENT_CPU = 0xFFFFFFFF
_SIZE = {1: 0x10, 2: 0x08, 4: 0x00, 8: 0x18}


def insn(op: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", op, (src << 4) | dst, off, imm)


def mov64_imm(dst: int, imm: int) -> bytes:
    return insn(0xB7, dst, 0, 0, imm)


def mov64_reg(dst: int, src: int) -> bytes:
    return insn(0xBF, dst, src)


def add64_imm(dst: int, imm: int) -> bytes:
    return insn(0x07, dst, 0, 0, imm)


def rsh64_imm(dst: int, imm: int) -> bytes:
    return insn(0x77, dst, 0, 0, imm)


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def ld_imm64(dst: int, imm: int, src: int = 0) -> bytes:
    return insn(0x18, dst, src, 0, _s32(imm)) + insn(0, 0, 0, 0, _s32(imm >> 32))


def ld_map_fd(dst: int, fd: int) -> bytes:
    """ld_imm64 with BPF_PSEUDO_MAP_FD: the verifier turns the fd into the map pointer."""
    return ld_imm64(dst, fd, src=1)


def stx(size: int, dst: int, src: int, off: int) -> bytes:
    return insn(0x63 | _SIZE[size], dst, src, off)


def st_imm(size: int, dst: int, off: int, imm: int) -> bytes:
    return insn(0x62 | _SIZE[size], dst, 0, off, imm)


def ldx(size: int, dst: int, src: int, off: int) -> bytes:
    return insn(0x61 | _SIZE[size], dst, src, off)


def xadd64(dst: int, src: int, off: int) -> bytes:
    """Atomic *(u64 *)(dst + off) += src."""
    return insn(0xDB, dst, src, off, 0)


def call(helper: int) -> bytes:
    return insn(0x85, 0, 0, 0, helper)


def jeq_imm(dst: int, imm: int, off: int) -> bytes:
    return insn(0x15, dst, 0, off, imm)


def jne_imm(dst: int, imm: int, off: int) -> bytes:
    return insn(0x55, dst, 0, off, imm)


def exit_() -> bytes:
    return insn(0x95)


def prog(*insns: bytes) -> bytes:
    return b"".join(insns)


def count_into_array(map_fd: int, slot: int = 0, ret: int = 0) -> bytes:
    """*array[slot] += 1 (atomically); returns ``ret``.  For "did it fire, how often"."""
    return prog(
        st_imm(4, R10, -4, slot),
        ld_map_fd(R1, map_fd),
        mov64_reg(R2, R10), add64_imm(R2, -4),
        call(MAP_LOOKUP_ELEM),
        jeq_imm(R0, 0, 2),
        mov64_imm(R1, 1),
        xadd64(R0, R1, 0),
        mov64_imm(R0, ret),
        exit_(),
    )


def store_tgid_into_array(map_fd: int, slot: int = 0) -> bytes:
    """array[slot] = bpf_get_current_pid_tgid() >> 32 (the tgid, i.e. os.getpid())."""
    return prog(
        call(GET_CURRENT_PID_TGID),
        rsh64_imm(R0, 32),
        stx(8, R10, R0, -16),
        st_imm(4, R10, -4, slot),
        ld_map_fd(R1, map_fd),
        mov64_reg(R2, R10), add64_imm(R2, -4),
        mov64_reg(R3, R10), add64_imm(R3, -16),
        mov64_imm(R4, 0),
        call(MAP_UPDATE_ELEM),
        mov64_imm(R0, 0),
        exit_(),
    )


def counter_to_buffer(counter_map_fd: int, out_map_fd: int, ringbuf: bool,
                      tgid_filter: int = 0, pad: int = 0) -> bytes:
    """Send {u64 seq, u64 tgid, pad zero bytes} to a ring buffer or perf event array.

    ``seq`` is an atomic per-program counter (array slot 0, value after the
    increment), so the consumer can check order and completeness.  With
    ``tgid_filter`` only that process's events are sent.  Perf output goes to
    the current CPU's ring (BPF_F_CURRENT_CPU).
    """
    size = 16 + pad
    area = (size + 7) & ~7      # stack slots must stay 8-byte aligned
    key_off = -area - 8
    body = [mov64_reg(R9, R1), call(GET_CURRENT_PID_TGID), rsh64_imm(R0, 32), mov64_reg(R6, R0)]
    if tgid_filter:
        body += [jeq_imm(R6, tgid_filter, 2), mov64_imm(R0, 0), exit_()]
    body += [st_imm(8, R10, off, 0) for off in range(-area, 0, 8)]
    body += [
        st_imm(4, R10, key_off, 0),
        ld_map_fd(R1, counter_map_fd),
        mov64_reg(R2, R10), add64_imm(R2, key_off),
        call(MAP_LOOKUP_ELEM),
        jne_imm(R0, 0, 2),
        mov64_imm(R0, 0),
        exit_(),
        mov64_imm(R1, 1),
        insn(0xDB, R0, R1, 0, 0x01),     # r1 = atomic_fetch_add((u64 *)(r0 + 0), r1)
        add64_imm(R1, 1),
        stx(8, R10, R1, -area),           # seq, counting from 1
        stx(8, R10, R6, -area + 8),       # tgid
    ]
    if ringbuf:
        body += [
            ld_map_fd(R1, out_map_fd),
            mov64_reg(R2, R10), add64_imm(R2, -area),
            mov64_imm(R3, size),
            mov64_imm(R4, 0),
            call(RINGBUF_OUTPUT),
        ]
    else:
        body += [
            mov64_reg(R1, R9),
            ld_map_fd(R2, out_map_fd),
            ld_imm64(R3, BPF_F_CURRENT_CPU),
            mov64_reg(R4, R10), add64_imm(R4, -area),
            mov64_imm(R5, size),
            call(PERF_EVENT_OUTPUT),
        ]
    body += [mov64_imm(R0, 0), exit_()]
    return prog(*body)
