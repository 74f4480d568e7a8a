"""Values a relocation patches in: computed once from the local spec (what
the compiler assumed, used to validate the instruction) and once from the
target spec (what the kernel has).

A missing target spec (no candidate matched) yields 0 for existence and
type-based kinds and a poison request for everything else, as in libbpf.
"""
from __future__ import annotations

import errno
from typing import Optional

from ..btf.types import ENUM_KINDS, Kind
from .kinds import (CoreRelocationError, RelocKind, is_enumval_based, is_field_based,
                    is_type_based, kind_name)
from .spec import CoreSpec, _size, _skip

_MASK64 = (1 << 64) - 1


class _Poison(Exception):
    """Internal signal (libbpf's -EUCLEAN): the instruction must be poisoned."""


class RelocResult:
    """Outcome of one relocation against one candidate (or none).

    ``orig_val``/``new_val`` are unsigned 64-bit as libbpf keeps them;
    ``orig_sz``/``new_sz`` are the memory access sizes of the field (0 when
    not a plain field offset) used to resize loads and stores.
    """

    __slots__ = ("orig_val", "new_val", "poison", "validate", "fail_memsz_adjust",
                 "orig_sz", "new_sz", "orig_type_id", "new_type_id")

    def __init__(self) -> None:
        self.orig_val = 0
        self.new_val = 0
        self.poison = False
        self.validate = True
        self.fail_memsz_adjust = False
        self.orig_sz = 0
        self.new_sz = 0
        self.orig_type_id = 0
        self.new_type_id = 0


def enum_value_u64(t, idx: int) -> int:
    """An enumerator's value as libbpf reads it into a u64: 32-bit ENUM
    values are sign-extended from s32 whatever the enum's signedness,
    ENUM64 values are taken as the raw 64 bits."""
    v = t.values[idx].value
    if t.kind == Kind.ENUM:
        v &= 0xFFFFFFFF
        if v & 0x80000000:
            v -= 1 << 32
    return v & _MASK64


def _elem_size(btf, type_id: int) -> int:
    """Size of the innermost element when ``type_id`` is a (multi-dim) array,
    else of the type itself: loads and stores touch one element."""
    tid = _skip(btf, type_id)
    t = btf[tid]
    while t.kind == Kind.ARRAY:
        tid = _skip(btf, t.type)
        t = btf[tid]
    return _size(btf, tid)


def _field_value(kind: int, spec: Optional[CoreSpec], res: RelocResult, local: bool,
                 big_endian: bool, where: str) -> None:
    """Compute a field kind's value from ``spec`` into ``res`` (orig_* when
    ``local`` else new_*)."""
    if kind == RelocKind.FIELD_EXISTS:
        val = 1 if spec is not None else 0
        if local:
            res.orig_val = val
        else:
            res.new_val = val
        return
    if spec is None:
        raise _Poison()
    btf = spec.btf
    acc = spec.spec[-1]
    sz = 0
    type_id = 0
    validate = True
    if acc.name is None:
        if kind == RelocKind.FIELD_BYTE_OFFSET:
            val = spec.bit_offset // 8
            sz = _elem_size(btf, acc.type_id)
            type_id = acc.type_id
        elif kind == RelocKind.FIELD_BYTE_SIZE:
            val = _size(btf, acc.type_id)
        else:
            raise CoreRelocationError(
                f"relo {kind} at {where} can't be applied to array access")
    else:
        m = btf[acc.type_id].members[acc.idx]
        field_type_id = _skip(btf, m.type)
        mt = btf[field_type_id]
        bit_off = spec.bit_offset
        bit_sz = m.bitfield_size
        bitfield = bit_sz > 0
        if bitfield:
            byte_sz = mt.size
            byte_off = bit_off // 8 // byte_sz * byte_sz
            # widen the load until the whole bitfield fits in it
            while bit_off + bit_sz - byte_off * 8 > byte_sz * 8:
                if byte_sz >= 8:
                    raise CoreRelocationError(
                        f"relo {kind} at {where} can't be satisfied for bitfield "
                        f"(bits {bit_off}..{bit_off + bit_sz} do not fit an aligned 8-byte load)",
                        errno.E2BIG)
                byte_sz *= 2
                byte_off = bit_off // 8 // byte_sz * byte_sz
        else:
            byte_sz = _size(btf, field_type_id)
            byte_off = bit_off // 8
            bit_sz = byte_sz * 8
        # compiler and libbpf may legitimately disagree on bitfield layout
        validate = not bitfield
        if kind == RelocKind.FIELD_BYTE_OFFSET:
            val = byte_off
            if not bitfield:
                sz = _elem_size(btf, field_type_id)
                type_id = field_type_id
        elif kind == RelocKind.FIELD_BYTE_SIZE:
            val = byte_sz
        elif kind == RelocKind.FIELD_SIGNED:
            val = int((mt.kind in ENUM_KINDS and mt.signed)
                      or (mt.kind == Kind.INT and mt.signed))
            validate = True
        elif kind == RelocKind.FIELD_LSHIFT_U64:
            if big_endian:
                val = (8 - byte_sz) * 8 + (bit_off - byte_off * 8)
            else:
                val = 64 - (bit_off + bit_sz - byte_off * 8)
        else:  # FIELD_RSHIFT_U64
            val = 64 - bit_sz
            validate = True
    if local:
        res.orig_val, res.orig_sz, res.orig_type_id = val & _MASK64, sz, type_id
        res.validate = validate
    else:
        res.new_val, res.new_sz, res.new_type_id = val & _MASK64, sz, type_id


def _type_value(kind: int, spec: Optional[CoreSpec]) -> int:
    if spec is None:
        return 0
    if kind == RelocKind.TYPE_ID_TARGET:
        return spec.root_type_id
    if kind in (RelocKind.TYPE_EXISTS, RelocKind.TYPE_MATCHES):
        return 1
    if kind == RelocKind.TYPE_SIZE:
        return _size(spec.btf, spec.root_type_id)
    raise CoreRelocationError(f"unrecognized CO-RE relocation {kind_name(kind)} ({kind})",
                              errno.EOPNOTSUPP)


def _enumval_value(kind: int, spec: Optional[CoreSpec]) -> int:
    if kind == RelocKind.ENUMVAL_EXISTS:
        return 1 if spec is not None else 0
    if spec is None:
        raise _Poison()
    acc = spec.spec[0]
    return enum_value_u64(spec.btf[acc.type_id], acc.idx)


def _memsz_adjust_ok(res: RelocResult, local: CoreSpec, targ: CoreSpec) -> bool:
    """A load/store may change width only when zero extension keeps the value:
    pointers (32-bit kernels) or unsigned ints on both sides."""
    lt = local.btf[res.orig_type_id]
    tt = targ.btf[res.new_type_id]
    if lt.kind == Kind.PTR and tt.kind == Kind.PTR:
        return True
    # libbpf compares the whole encoding with SIGNED: bool/char ints count as unsigned
    return (lt.kind == Kind.INT and tt.kind == Kind.INT
            and lt.encoding != 1 and tt.encoding != 1)


def calc_relo(kind: int, insn_idx: int, local: CoreSpec, targ: Optional[CoreSpec],
              big_endian: bool = False) -> RelocResult:
    """libbpf's ``bpf_core_calc_relo``: the expected and the new value for
    one relocation; ``targ`` None means no candidate matched."""
    res = RelocResult()
    where = f"insn #{insn_idx}"
    try:
        if is_field_based(kind):
            _field_value(kind, local, res, True, big_endian, where)
            _field_value(kind, targ, res, False, big_endian, where)
            if res.orig_sz != res.new_sz and targ is not None:
                res.fail_memsz_adjust = not _memsz_adjust_ok(res, local, targ)
        elif is_type_based(kind):
            res.orig_val = _type_value(kind, local)
            # type ids shift when objects are linked: nothing to validate
            res.validate = kind != RelocKind.TYPE_ID_TARGET
            res.new_val = _type_value(kind, targ)
        elif is_enumval_based(kind):
            res.orig_val = _enumval_value(kind, local)
            res.new_val = _enumval_value(kind, targ)
        else:
            raise CoreRelocationError(
                f"unrecognized CO-RE relocation {kind_name(kind)} ({kind}) at {where}",
                errno.EOPNOTSUPP)
    except _Poison:
        res.poison = True
    return res
