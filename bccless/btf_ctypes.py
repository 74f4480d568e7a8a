"""BTF types as ctypes types, with BTF's exact layout.

Map keys and values, global data sections and perf/ring buffer events are
described by BTF; turning a type id into a ctypes class gives attribute access
and ``bytes()``/``from_buffer_copy`` for free (BCC's tables work the same way).

Layout is never left to ctypes' own rules: every member is placed at BTF's
offset with explicit padding fields, the tail is padded to BTF's size, and the
result is checked.  A record whose offsets ctypes cannot reproduce naturally
(packed structs) is rebuilt with ``_pack_ = 1``.  Bitfields become ctypes
bitfields when ctypes lays them out identically; otherwise the bits are kept
in an integer storage field and each bitfield member becomes a read/write
property over it.  Pointers are ``c_uint64`` (kernel addresses are not
dereferenceable from user space anyway).

``btf`` is anything with ``btf[type_id]`` returning records from
:mod:`bccless.btf.types` and ``btf.resolve_size(type_id)``.
"""
from __future__ import annotations

import ctypes

from bccless.btf.types import INT_BOOL, INT_CHAR, Kind
from bccless.errors import BTFError

_INTS = {(1, False): ctypes.c_uint8, (1, True): ctypes.c_int8,
         (2, False): ctypes.c_uint16, (2, True): ctypes.c_int16,
         (4, False): ctypes.c_uint32, (4, True): ctypes.c_int32,
         (8, False): ctypes.c_uint64, (8, True): ctypes.c_int64}
_FLOATS = {4: ctypes.c_float, 8: ctypes.c_double}
_SKIP = frozenset({Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG,
                   Kind.VAR})


def _int_type(size: int, signed: bool):
    """ctypes integer of ``size`` bytes; 16-byte ints become byte arrays."""
    try:
        return _INTS[(size, signed)]
    except KeyError:
        return ctypes.c_uint8 * size


class CTypesBuilder:
    """Converts type ids of one BTF, caching each result (shared sub-types stay identical)."""

    def __init__(self, btf) -> None:
        self.btf = btf
        self._cache: dict = {}

    def __call__(self, type_id: int):
        """The ctypes type for ``type_id``; ``None`` for void."""
        try:
            return self._cache[type_id]
        except KeyError:
            pass
        ct = self._build(type_id)
        self._cache[type_id] = ct
        return ct

    # -- per kind ------------------------------------------------------------------------

    def _build(self, type_id: int):
        if type_id == 0:
            return None
        t = self.btf[type_id]
        k = t.kind
        if k == Kind.INT:
            if t.encoding & INT_BOOL and t.size == 1:
                return ctypes.c_bool
            if t.encoding & INT_CHAR and t.size == 1:
                return ctypes.c_char
            return _int_type(t.size, t.signed)
        if k in (Kind.ENUM, Kind.ENUM64):
            return _int_type(t.size, t.signed)
        if k == Kind.PTR:
            return ctypes.c_uint64
        if k == Kind.FLOAT:
            return _FLOATS.get(t.size) or (ctypes.c_longdouble if t.size == ctypes.sizeof(
                ctypes.c_longdouble) else ctypes.c_uint8 * t.size)
        if k == Kind.ARRAY:
            elem = self(t.type)
            if elem is None:
                raise BTFError(f"type [{type_id}]: array of void")
            return elem * t.nelems
        if k in _SKIP:
            return self(t.type)
        if k in (Kind.STRUCT, Kind.UNION):
            return self._record(type_id, t)
        if k == Kind.DATASEC:
            return self._datasec(type_id, t)
        raise BTFError(f"type [{type_id}] ({k.name} '{t.name}') has no ctypes equivalent "
                       f"(incomplete or not a data type)")

    def _datasec(self, type_id: int, t):
        """A data section (.data, .bss, .rodata) as a struct of its variables."""
        members = []
        for v in t.vars:
            var = self.btf[v.type]
            if var.kind == Kind.VAR:
                members.append((var.name, v.type, v.offset * 8, 0))
        return self._layout(type_id, t.name or f"datasec_{type_id}", False, t.size, members)

    def _record(self, type_id: int, t):
        members = [(m.name, m.type, m.bit_offset, m.bitfield_size) for m in t.members]
        name = t.name or f"anon_{t.kind.name.lower()}_{type_id}"
        return self._layout(type_id, name, t.kind == Kind.UNION, t.size, members)

    # -- layout ----------------------------------------------------------------------------

    def _layout(self, type_id: int, name: str, is_union: bool, size: int, members: list):
        base = ctypes.Union if is_union else ctypes.Structure
        for ctypes_bits in (True, False):
            for pack in (None, 1):
                fields, anonymous, props, checks, bitchecks = self._fields(
                    type_id, is_union, size, members, ctypes_bits)
                if ctypes_bits and not bitchecks:
                    break   # no bitfields: the storage variant would be the same
                ns: dict = {"_fields_": fields}
                if anonymous:
                    ns["_anonymous_"] = anonymous
                if pack:
                    ns["_pack_"] = pack
                cls = type(name, (base,), ns)
                for prop_name, prop in props:
                    setattr(cls, prop_name, prop)
                if ctypes.sizeof(cls) == size and all(
                        getattr(cls, f).offset == off for f, off in checks) and all(
                        _bits_land(cls, *bc) for bc in bitchecks):
                    return cls
        raise BTFError(f"type [{type_id}] '{name}': ctypes cannot reproduce its layout "
                       f"(size {size})")

    def _fields(self, type_id: int, is_union: bool, size: int, members: list,
                ctypes_bits: bool):
        """ctypes fields for ``members`` placed at their BTF offsets.

        Bitfields become ctypes bitfields when ``ctypes_bits``, else properties
        over a byte-array storage field.  Returns (fields, anonymous member
        names, properties, (field, byte offset) pairs and (field, bit, width,
        signed) bitfields to verify).
        """
        fields: list = []
        anonymous: list = []
        props: list = []
        checks: list = []
        bitchecks: list = []
        used: set = set()
        pos = 0   # next free byte (structs only)
        n_pad = 0

        def unique(base: str) -> str:
            n, i = base, 1
            while n in used:
                n, i = f"{base}_{i}", i + 1
            used.add(n)
            return n

        def pad_to(off: int) -> None:
            nonlocal pos, n_pad
            if off > pos:
                fields.append((unique(f"_pad{n_pad}"), ctypes.c_uint8 * (off - pos)))
                n_pad += 1
                pos = off

        i = 0
        while i < len(members):
            mname, mtype, bit_off, bits = members[i]
            if bits or bit_off % 8:
                # a run of bitfields sharing storage units
                j = i
                while j < len(members) and (members[j][3] or members[j][2] % 8):
                    j += 1
                if is_union:
                    raise BTFError(f"type [{type_id}]: bitfields in a union are not supported")
                run = [m for m in members[i:j] if m[0]]   # unnamed bitfields are padding
                if not run:
                    i = j
                    continue
                if ctypes_bits:
                    pos = self._ctypes_bitfields(run, pad_to, unique, fields, bitchecks)
                    i = j
                    continue
                start = bit_off // 8
                end = max((m[2] + (m[3] or 8 * self.btf.resolve_size(m[1]))) for m in
                          members[i:j])
                end_byte = (end + 7) // 8
                pad_to(start)
                store = unique(f"_bits{start}")
                fields.append((store, ctypes.c_uint8 * (end_byte - start)))
                checks.append((store, start))
                for bname, btype, boff, bsize in run:
                    width = bsize or 8 * self.btf.resolve_size(btype)
                    signed = self._is_signed(btype)
                    pname = unique(bname)
                    props.append((pname, _bit_property(store, boff - start * 8, width, signed)))
                    bitchecks.append((pname, boff, width, signed))
                pos = end_byte
                i = j
                continue
            ct = self(mtype)
            if ct is None:
                raise BTFError(f"type [{type_id}]: member '{mname}' has type void")
            off = bit_off // 8
            if not is_union:
                pad_to(off)
            fname = unique(mname or f"_anon{len(anonymous)}")
            if not mname:
                anonymous.append(fname)
            fields.append((fname, ct))
            checks.append((fname, off))
            if not is_union:
                pos = off + ctypes.sizeof(ct)
            i += 1
        if not is_union:
            pad_to(size)
        elif size and not fields:
            fields.append(("_pad0", ctypes.c_uint8 * size))
        return fields, anonymous, props, checks, bitchecks

    def _ctypes_bitfields(self, run: list, pad_to, unique, fields: list,
                          bitchecks: list) -> int:
        """Emit ``run`` as ctypes bitfields in storage units of each member's type size,
        with unnamed gap bitfields for holes; returns the byte after the last unit."""
        unit = self.btf.resolve_size(run[0][1])
        first_bit = run[0][2] // (unit * 8) * unit * 8
        pad_to(first_bit // 8)
        cur = first_bit
        for bname, btype, boff, bsize in run:
            unit = self.btf.resolve_size(btype)
            signed = self._is_signed(btype)
            width = bsize or unit * 8
            if boff > cur:
                fields.append((unique(f"_gap{cur}"), _int_type(unit, False), boff - cur))
            name = unique(bname)
            fields.append((name, _int_type(unit, signed), width))
            bitchecks.append((name, boff, width, signed))
            cur = boff + width
        unit_bits = unit * 8
        return (cur + unit_bits - 1) // unit_bits * unit
    def _is_signed(self, type_id: int) -> bool:
        t = self.btf[type_id]
        while t.kind in _SKIP:
            t = self.btf[t.type]
        return bool(getattr(t, "signed", False))


def _bits_land(cls, name: str, bit: int, width: int, signed: bool) -> bool:
    """Whether setting member ``name`` to all ones sets exactly BTF's bits."""
    obj = cls()
    try:
        setattr(obj, name, -1 if signed else (1 << width) - 1)
    except (TypeError, ValueError):
        return False
    return int.from_bytes(bytes(obj), "little") == ((1 << width) - 1) << bit


def _bit_property(store: str, bit: int, width: int, signed: bool) -> property:
    """A property reading/writing ``width`` bits at ``bit`` of the byte-array field ``store``."""
    mask = (1 << width) - 1

    def get(self) -> int:
        raw = int.from_bytes(bytes(getattr(self, store)), "little")
        v = (raw >> bit) & mask
        if signed and v >> (width - 1):
            v -= 1 << width
        return v

    def set_(self, value: int) -> None:
        arr = getattr(self, store)
        raw = int.from_bytes(bytes(arr), "little")
        raw = (raw & ~(mask << bit)) | ((value & mask) << bit)
        ctypes.memmove(arr, raw.to_bytes(len(arr), "little"), len(arr))

    return property(get, set_, doc=f"bits {bit}..{bit + width - 1} of {store}")


def btf_to_ctypes(btf, type_id: int):
    """One-off conversion; use :class:`CTypesBuilder` to share results across calls."""
    return CTypesBuilder(btf)(type_id)
