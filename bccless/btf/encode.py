"""Encoding BTF records and whole blobs.

Exactness first: a parsed blob that nobody changed is returned byte for byte,
and in a changed blob every record that still decodes to what its cached
object holds keeps its original bytes.  Only new, replaced or mutated records
are re-encoded, so odd bits that the record classes do not model survive
sanitisation and fix-ups of unrelated types.  The original string section is
kept as is; new strings are appended after it.
"""
from __future__ import annotations

import struct
from array import array
from typing import TYPE_CHECKING, Dict, List

from ..errors import BTFError
from .types import (
    Array, Composite, Datasec, DeclTag, Enum, Enum64, Float, Func, FuncProto, Fwd, Int, Kind,
    Modifier, Ptr, Type, Typedef, TypeTag, Var,
)
from .parse import HEADER_LEN, NATIVE_ORDER

if TYPE_CHECKING:
    from .parse import BTF

_U32 = 1 << 32
_U64 = 1 << 64


def intern_names(btf: "BTF", t: Type) -> None:
    """Add every name ``t`` carries to ``btf``'s string table."""
    add = btf.add_string
    add(t.name)
    for item in getattr(t, "members", None) or getattr(t, "params", None) or \
            getattr(t, "values", None) or ():
        add(item.name)


def _u32(value: int, what: str, tid: int) -> int:
    if not 0 <= value < _U32:
        raise BTFError(f"type [{tid}]: {what} {value} does not fit in 32 bits")
    return value


def _signed_or_unsigned(value: int, bits: int, what: str, tid: int) -> int:
    """Two's complement bits of ``value``, accepting both signed and unsigned ranges."""
    if not -(1 << (bits - 1)) <= value < (1 << bits):
        raise BTFError(f"type [{tid}]: {what} {value} does not fit in {bits} bits")
    return value & ((1 << bits) - 1)


def encode_words(btf: "BTF", t: Type, tid: int) -> List[int]:
    """The u32 words of record ``t`` (id ``tid``), interning its names in ``btf``."""
    add = btf.add_string
    k = t.kind
    kflag = False
    items: List[int] = []
    vlen = 0
    extra: List[int] = []
    if isinstance(t, Composite):
        members = t.members
        kflag = bool(t.kind_flag) or any(m.bitfield_size for m in members)
        for m in members:
            if kflag:
                if not 0 <= m.bit_offset < 1 << 24 or not 0 <= m.bitfield_size < 256:
                    raise BTFError(f"type [{tid}] '{t.name}': member '{m.name}' bit offset "
                                   f"{m.bit_offset} / bitfield size {m.bitfield_size} do not "
                                   f"fit the 24/8-bit kind_flag encoding")
                off = m.bitfield_size << 24 | m.bit_offset
            else:
                off = _u32(m.bit_offset, f"member '{m.name}' bit offset", tid)
            items += (add(m.name), m.type, off)
        vlen, head = len(members), t.size
    elif isinstance(t, Enum):
        kflag = bool(t.signed)
        if isinstance(t, Enum64):
            for v in t.values:
                raw = _signed_or_unsigned(v.value, 64, f"enumerator '{v.name}' value", tid)
                items += (add(v.name), raw & 0xFFFFFFFF, raw >> 32)
        else:
            for v in t.values:
                items += (add(v.name),
                          _signed_or_unsigned(v.value, 32, f"enumerator '{v.name}' value", tid))
        vlen, head = len(t.values), t.size
    elif isinstance(t, (Typedef, Modifier, Ptr)):
        head = t.type
        if isinstance(t, TypeTag):
            kflag = bool(t.attr)
    elif isinstance(t, FuncProto):
        for p in t.params:
            items += (add(p.name), p.type)
        vlen, head = len(t.params), t.return_type
    elif isinstance(t, Func):
        vlen, head = t.linkage, t.type
    elif isinstance(t, Int):
        head = t.size
        extra = [(t.encoding & 0xF) << 24 | (t.offset & 0xFF) << 16 | (t.bits & 0xFF)]
    elif isinstance(t, Array):
        head, extra = 0, [t.type, t.index_type, t.nelems]
    elif isinstance(t, Fwd):
        head, kflag = 0, bool(t.is_union)
    elif isinstance(t, Var):
        head, extra = t.type, [t.linkage]
    elif isinstance(t, Datasec):
        for v in t.vars:
            items += (v.type, v.offset, v.size)
        vlen, head = len(t.vars), t.size
    elif isinstance(t, Float):
        head = t.size
    elif isinstance(t, DeclTag):
        head, kflag = t.type, bool(t.attr)
        extra = [_signed_or_unsigned(t.component_idx, 32, "component_idx", tid)]
    else:
        raise BTFError(f"type [{tid}]: cannot encode a {type(t).__name__} record")
    if not 0 <= vlen <= 0xFFFF:
        raise BTFError(f"type [{tid}] {Kind(k).name} '{t.name}': vlen {vlen} does not fit "
                       f"in 16 bits")
    info = kflag << 31 | int(k) << 24 | vlen
    return [add(t.name), info, head, *extra, *items]


def _to_bytes(words: List[int], order: str, tid: int) -> bytes:
    try:
        arr = array("I", words)
    except OverflowError:
        bad = next(w for w in words if not 0 <= w < _U32)
        raise BTFError(f"type [{tid}]: field value {bad} does not fit in 32 bits") from None
    if order != NATIVE_ORDER:
        arr.byteswap()
    return arr.tobytes()


def encode_type(btf: "BTF", t: Type, tid: int) -> bytes:
    """Record ``t`` as bytes in ``btf``'s byte order."""
    return _to_bytes(encode_words(btf, t, tid), btf._order, tid)


def _changed_records(btf: "BTF") -> Dict[int, bytes]:
    """New bytes for every cached parsed record that no longer matches its raw bytes."""
    out: Dict[int, bytes] = {}
    start, offs = btf.start_id, btf._offs
    for tid in sorted(btf._cache):
        t = btf._cache[tid]
        if tid in btf._replaced or t != btf._decode(tid, offs[tid - start]):
            out[tid] = encode_type(btf, t, tid)
    return out


def encode_btf(btf: "BTF") -> bytes:
    """The whole blob; for split BTF only its own types and strings (like libbpf)."""
    changed = _changed_records(btf)
    np = len(btf._offs)
    added = [encode_type(btf, t, btf.start_id + np + j) for j, t in enumerate(btf._added)]
    raw = btf._raw
    if raw is not None and not changed and not added and not btf._new_strs:
        return bytes(raw)
    t0 = btf._type_base
    type_len = 4 * len(btf._words)
    pieces: List[bytes] = []
    if raw is not None:
        types = bytes(raw[t0:t0 + type_len])  # type: ignore[index]
        pos = 0
        for tid, data in changed.items():
            i = tid - btf.start_id
            pieces.append(types[pos:4 * btf._offs[i]])
            pieces.append(data)
            pos = 4 * btf._offs[i + 1] if i + 1 < np else type_len
        pieces.append(types[pos:])
    pieces += added
    type_sec = b"".join(pieces)
    str_sec = btf._strs + bytes(btf._new_strs)
    tail = btf._hdr_tail
    if tail.strip(b"\0"):
        raise BTFError(f"cannot re-encode modified BTF: its {HEADER_LEN + len(tail)}-byte "
                       f"header has fields this encoder does not know", source=btf.source)
    order = btf._order
    header = struct.pack(order + "HBBIIIII", 0xEB9F, 1, btf._hdr_flags, HEADER_LEN + len(tail),
                         0, len(type_sec), len(type_sec), len(str_sec))
    return header + tail + type_sec + str_sec
