"""Raw BTF records to :mod:`bccless.btf.types` objects.

Kept apart from :mod:`bccless.btf.parse` because it is the only code that
knows every kind's field layout; the container only knows where records
start.  The walk already admitted only known kinds and records that fit, so
decoding checks what the walk cannot: type ids and string offsets in range.
"""
from __future__ import annotations

from .types import (
    Array, Const, Datasec, DeclTag, Enum, Enum64, EnumValue, Float, Func, FuncProto, Fwd, Int,
    Kind, Member, Param, Ptr, Restrict, Struct, TypeTag, Typedef, Union, Var, VarSecInfo,
    Volatile,
)
from ..errors import BTFError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .parse import BTF
    from .types import Type

_KINDS = tuple(Kind(k) for k in range(20))
_SIMPLE_MODS = {Kind.CONST: Const, Kind.VOLATILE: Volatile, Kind.RESTRICT: Restrict}


def decode_record(btf: BTF, tid: int, o: int) -> Type:
    """The record object of type ``tid``, whose raw record is at word ``o``."""
    w = btf._words
    info, st = w[o + 1], w[o + 2]
    k, vlen, kflag = info >> 24 & 31, info & 0xFFFF, bool(info >> 31)
    s = btf._string_for
    name = s(w[o], tid)
    limit = btf.type_count

    def ref(x: int) -> int:
        if x >= limit:
            raise BTFError(f"type [{tid}] {_KINDS[k].name} '{name}' refers to type id {x}, "
                           f"expected < {limit}", offset=btf._type_base + 4 * o,
                           source=btf.source)
        return x

    if k == Kind.STRUCT or k == Kind.UNION:
        members = []
        for j in range(o + 3, o + 3 + 3 * vlen, 3):
            off = w[j + 2]
            if kflag:
                members.append(Member(s(w[j], tid), ref(w[j + 1]), off & 0xFFFFFF, off >> 24))
            else:
                members.append(Member(s(w[j], tid), ref(w[j + 1]), off))
        return (Struct if k == Kind.STRUCT else Union)(name, st, members, kflag)
    if k == Kind.TYPEDEF:
        return Typedef(name, ref(st))
    if k == Kind.PTR:
        return Ptr(ref(st), name)
    if k == Kind.TYPE_TAG:
        return TypeTag(name, ref(st), kflag)
    if k in _SIMPLE_MODS:
        return _SIMPLE_MODS[k](ref(st), name)
    if k == Kind.FUNC_PROTO:
        params = [Param(s(w[j], tid), ref(w[j + 1])) for j in range(o + 3, o + 3 + 2 * vlen, 2)]
        return FuncProto(ref(st), params, name)
    if k == Kind.FUNC:
        return Func(name, ref(st), vlen)
    if k == Kind.INT:
        x = w[o + 3]
        return Int(name, st, x >> 24 & 0xF, x >> 16 & 0xFF, x & 0xFF)
    if k == Kind.ARRAY:
        return Array(ref(w[o + 3]), ref(w[o + 4]), w[o + 5], name)
    if k == Kind.ENUM:
        values = []
        for j in range(o + 3, o + 3 + 2 * vlen, 2):
            v = w[j + 1]
            values.append(EnumValue(s(w[j], tid), v - (1 << 32) if kflag and v >> 31 else v))
        return Enum(name, st, values, kflag)
    if k == Kind.ENUM64:
        values = []
        for j in range(o + 3, o + 3 + 3 * vlen, 3):
            v = w[j + 2] << 32 | w[j + 1]
            values.append(EnumValue(s(w[j], tid), v - (1 << 64) if kflag and v >> 63 else v))
        return Enum64(name, st, values, kflag)
    if k == Kind.FWD:
        return Fwd(name, kflag)
    if k == Kind.VAR:
        return Var(name, ref(st), w[o + 3])
    if k == Kind.DATASEC:
        return Datasec(name, st, [VarSecInfo(ref(w[j]), w[j + 1], w[j + 2])
                                  for j in range(o + 3, o + 3 + 3 * vlen, 3)])
    if k == Kind.FLOAT:
        return Float(name, st)
    # DECL_TAG: the only kind left, the walk admitted no unknown kind.
    idx = w[o + 3]
    return DeclTag(name, ref(st), idx - (1 << 32) if idx >> 31 else idx, kflag)
