"""ctypes classes for map keys, leaves and events, built from the object's BTF.

BCC builds these from JSON its compiler front-end emits; the shapes tools rely
on are reproduced here from BTF instead:

* integers map to the ctypes type BCC picks for the C spelling (``char`` is
  ``c_char`` so ``.value`` is bytes; pointers are ``c_ulonglong``);
* plain structs (no bitfields, no flexible arrays, no unions inside) are
  packed with explicit ``__pad_<index>`` / ``__pad_end`` fields, byte-exact as
  BCC's ``struct_packed`` (histogram code looks for ``__pad_1``);
* other structs use natural alignment with ctypes bitfields;
* anonymous members are named ``__anon0``, ``__anon1``... and listed in
  ``_anonymous_``; the class name is the C tag.

``event_class`` builds the perf/ring event record with natural alignment and
no padding fields, as BCC's ``event()`` does, but it also understands nested
structs, unions and arrays of them, which BCC rejects.
"""
from __future__ import annotations

import ctypes as ct
from typing import Any, Dict, List, Tuple

from bccless.btf import BTF, INT_BOOL, INT_SIGNED, Kind

_INTS = {
    (1, False): ct.c_ubyte, (1, True): ct.c_byte, (2, False): ct.c_ushort,
    (2, True): ct.c_short, (4, False): ct.c_uint, (4, True): ct.c_int,
    (8, False): ct.c_ulonglong, (8, True): ct.c_longlong,
}
_NAMED_INTS = {"char": ct.c_char, "_Bool": ct.c_bool, "unsigned long": ct.c_ulong,
               "long": ct.c_long, "long int": ct.c_long, "long unsigned int": ct.c_ulong}


class _Builder:
    def __init__(self, btf: BTF, packed_plain: bool) -> None:
        self.btf = btf
        self.packed_plain = packed_plain
        self.cache: Dict[int, Any] = {}

    def build(self, type_id: int) -> Any:
        if type_id in self.cache:
            return self.cache[type_id]
        result = self._build(type_id)
        self.cache[type_id] = result
        return result

    def _build(self, type_id: int) -> Any:
        btf = self.btf
        tid = btf.skip_mods_and_typedefs(type_id)
        t = btf[tid]
        kind = t.kind
        if kind == Kind.INT:
            if t.name in _NAMED_INTS:
                return _NAMED_INTS[t.name]
            if t.encoding & INT_BOOL:
                return ct.c_bool
            if t.size == 16:
                return (ct.c_longlong if t.encoding & INT_SIGNED else ct.c_ulonglong) * 2
            return _INTS[(t.size, bool(t.encoding & INT_SIGNED))]
        if kind in (Kind.ENUM, Kind.ENUM64):
            return _INTS[(t.size, t.signed or kind == Kind.ENUM)]
        if kind == Kind.PTR:
            return ct.c_ulonglong
        if kind == Kind.FLOAT:
            return {4: ct.c_float, 8: ct.c_double}.get(t.size, ct.c_ubyte * t.size)
        if kind == Kind.ARRAY:
            return self.build(t.type) * t.nelems
        if kind in (Kind.STRUCT, Kind.UNION):
            return self._record(tid, t)
        if kind == Kind.FWD:
            return type(t.name or "anon", (ct.Structure,), {"_fields_": []})
        raise TypeError(f"BTF type [{tid}] ({kind.name}) cannot be a map key, leaf or event")

    def _plain(self, t) -> bool:
        """BCC packs a struct only when it has no bitfield, flex array or union."""
        if t.kind != Kind.STRUCT:
            return False
        for i, m in enumerate(t.members):
            if m.bitfield_size:
                return False
            mt = self.btf[self.btf.skip_mods_and_typedefs(m.type)]
            if mt.kind == Kind.UNION:
                return False
            if mt.kind == Kind.ARRAY and mt.nelems == 0 and i == len(t.members) - 1:
                return False
        return True

    def _record(self, tid: int, t) -> Any:
        base = ct.Union if t.kind == Kind.UNION else ct.Structure
        # The translator renames user structs that clash with the kernel's
        # (``x___bccless``); the class keeps the name the C source used.
        cls = type((t.name or "").replace("___bccless", ""), (base,), {})
        self.cache[tid] = cls  # allows self-reference through arrays of records
        fields: List[Tuple] = []
        anonymous: List[str] = []
        anon_idx = 0
        packed = self.packed_plain and self._plain(t)
        pos = 0
        for m in t.members:
            name = m.name
            if not name:
                name = f"__anon{anon_idx}"
                anon_idx += 1
                anonymous.append(name)
            ftype = self.build(m.type)
            if packed:
                off = m.bit_offset // 8
                if off > pos:
                    fields.append((f"__pad_{len(fields)}", ct.c_char * (off - pos)))
                fields.append((name, ftype))
                pos = off + ct.sizeof(ftype)
            elif m.bitfield_size:
                fields.append((name, ftype, m.bitfield_size))
            else:
                fields.append((name, ftype))
        if packed:
            if t.size > pos:
                fields.append(("__pad_end", ct.c_char * (t.size - pos)))
            cls._pack_ = 1
        if anonymous:
            cls._anonymous_ = anonymous
        cls._fields_ = fields
        return cls


def table_type(btf: BTF, type_id: int) -> Any:
    """Key/Leaf class of a map, shaped like BCC's."""
    return _Builder(btf, packed_plain=True).build(type_id)


def event_class(btf: BTF, type_id: int) -> Any:
    """The class ``table.event(data)`` casts records to (natural alignment)."""
    return _Builder(btf, packed_plain=False).build(type_id)


def type_by_spelling(btf: BTF, spelled: str) -> int:
    """BTF id of a type named as C spells it (``struct x``, ``u32``, ``int``), or 0."""
    spelled = spelled.strip()
    for prefix, kinds in (("struct ", (Kind.STRUCT,)), ("union ", (Kind.UNION,))):
        if spelled.startswith(prefix):
            name, search = spelled[len(prefix):].strip(), kinds
            break
    else:
        name, search = spelled, (Kind.TYPEDEF, Kind.STRUCT, Kind.UNION, Kind.INT)
    for kind in search:
        ids = btf.find(name, kind)
        if ids:
            return ids[0]
    return 0
