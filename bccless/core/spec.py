"""CO-RE access specs: parsing an access string against the object's BTF,
matching it against a target type, and printing it the way libbpf does.

A spec has two views of the same access.  The *raw* spec is the access string
itself (every level, anonymous members included); the *high-level* spec keeps
only what is meaningful across kernels: the root array index, named members
and array indices.  Matching walks the high-level spec in the target by member
*name*, rebuilding the target's raw spec and bit offset on the way, so a field
that moved into an anonymous union in a newer kernel is still found.
"""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING, List, Optional, Tuple

from ..btf.types import COMPOSITE_KINDS, ENUM_KINDS, Kind, essential_name
from ..errors import BTFError
from .compat import fields_are_compat, types_are_compat, types_match
from .kinds import (CoreRelocationError, RelocKind, is_enumval_based, is_field_based,
                    is_type_based, kind_name)

if TYPE_CHECKING:
    from ..btf.parse import BTF

SPEC_MAX_LEN = 64  # libbpf BPF_CORE_SPEC_MAX_LEN

_KIND_STR = {
    Kind.UNKN: "void", Kind.INT: "int", Kind.PTR: "ptr", Kind.ARRAY: "array",
    Kind.STRUCT: "struct", Kind.UNION: "union", Kind.ENUM: "enum", Kind.FWD: "fwd",
    Kind.TYPEDEF: "typedef", Kind.VOLATILE: "volatile", Kind.CONST: "const",
    Kind.RESTRICT: "restrict", Kind.FUNC: "func", Kind.FUNC_PROTO: "func_proto",
    Kind.VAR: "var", Kind.DATASEC: "datasec", Kind.FLOAT: "float",
    Kind.DECL_TAG: "decl_tag", Kind.TYPE_TAG: "type_tag", Kind.ENUM64: "enum64",
}


def kind_str(kind: int) -> str:
    """The kind word libbpf prints in front of a type name ('struct', 'enum64')."""
    return _KIND_STR.get(kind, "unknown")  # type: ignore[call-overload]


class Accessor:
    """One high-level step: ``name`` is None for an array index (including the
    root index), else the member's name; ``type_id`` is the composite holding
    the member, or the element type for an index."""

    __slots__ = ("type_id", "idx", "name")

    def __init__(self, type_id: int, idx: int, name: Optional[str]) -> None:
        self.type_id = type_id
        self.idx = idx
        self.name = name


class CoreSpec:
    """A parsed (local) or matched (target) access.  ``root_type_id`` is the
    unskipped root id, as libbpf keeps it, so a TYPE_SIZE of a typedef is the
    typedef's resolved size and printing shows the typedef."""

    __slots__ = ("btf", "root_type_id", "kind", "spec", "raw_spec", "bit_offset")

    def __init__(self, btf: "BTF", root_type_id: int, kind: int) -> None:
        self.btf = btf
        self.root_type_id = root_type_id
        self.kind = kind
        self.spec: List[Accessor] = []
        self.raw_spec: List[int] = []
        self.bit_offset = 0

    def __str__(self) -> str:
        return format_spec(self)


def _type(btf: "BTF", type_id: int):
    try:
        return btf[type_id]
    except (IndexError, KeyError, BTFError) as exc:
        raise CoreRelocationError(f"type [{type_id}] not found: {exc}") from None


def _skip(btf: "BTF", type_id: int) -> int:
    try:
        return btf.skip_mods_and_typedefs(type_id)
    except (IndexError, KeyError, BTFError) as exc:
        raise CoreRelocationError(f"type [{type_id}] not found: {exc}") from None


def _size(btf: "BTF", type_id: int) -> int:
    try:
        return btf.resolve_size(type_id)
    except (IndexError, KeyError, BTFError) as exc:
        raise CoreRelocationError(f"can't resolve size of [{type_id}]: {exc}") from None


def _is_flex_arr(btf: "BTF", prev: Accessor, nelems: int) -> bool:
    """A zero-length array that is the last member of its struct may be
    indexed past its (zero) bound; anything else is bounds-checked."""
    if prev.name is None or nelems > 0:
        return False
    return prev.idx == len(btf[prev.type_id].members) - 1


def _parse_indices(access_str: str) -> List[int]:
    if not access_str or access_str[0] == ":":
        raise CoreRelocationError(f"invalid access string '{access_str}'")
    raw: List[int] = []
    for piece in access_str.split(":"):
        if not (piece.isascii() and piece.isdigit()):
            raise CoreRelocationError(f"invalid access string '{access_str}'")
        if len(raw) == SPEC_MAX_LEN:
            raise CoreRelocationError(
                f"access string '{access_str}' deeper than {SPEC_MAX_LEN}", errno.E2BIG)
        raw.append(int(piece))
    return raw


def parse_spec(btf: "BTF", root_id: int, access_str: str, kind: int,
               prog_name: str = "") -> CoreSpec:
    """Turn a relocation's access string into a local spec, validating every
    index against the local BTF (member index < vlen, array index < nelems
    unless flexible) and accumulating the bit offset."""
    if not access_str or access_str[0] == ":":
        raise CoreRelocationError(f"invalid access string '{access_str}'")
    spec = CoreSpec(btf, root_id, kind)
    if is_type_based(kind):
        if access_str != "0":
            raise CoreRelocationError(
                f"type-based relocation needs access string '0', got '{access_str}'")
        return spec
    raw = _parse_indices(access_str)
    spec.raw_spec = raw
    tid = _skip(btf, root_id)
    t = _type(btf, tid)
    first = raw[0]
    if is_enumval_based(kind):
        if t.kind not in ENUM_KINDS or len(raw) > 1 or first >= len(t.values):
            raise CoreRelocationError(
                f"enumerator index '{access_str}' invalid for [{root_id}] {kind_str(t.kind)}")
        spec.spec.append(Accessor(tid, first, t.values[first].name))
        return spec
    if not is_field_based(kind):
        raise CoreRelocationError(f"unrecognized relocation kind {kind}")
    accs = spec.spec
    accs.append(Accessor(tid, first, None))
    bit_offset = first * _size(btf, tid) * 8
    for pos in range(1, len(raw)):
        tid = _skip(btf, tid)
        t = _type(btf, tid)
        idx = raw[pos]
        if t.kind in COMPOSITE_KINDS:
            if idx >= len(t.members):
                raise CoreRelocationError(
                    f"member index {idx} out of range for [{tid}] {kind_str(t.kind)} "
                    f"{t.name or '<anon>'} ({len(t.members)} members)")
            m = t.members[idx]
            bit_offset += m.bit_offset
            if m.name:
                accs.append(Accessor(tid, idx, m.name))
            tid = m.type
        elif t.kind == Kind.ARRAY:
            elem = _skip(btf, t.type)
            if not _is_flex_arr(btf, accs[-1], t.nelems) and idx >= t.nelems:
                raise CoreRelocationError(
                    f"array index {idx} out of range for [{tid}] array of {t.nelems}")
            accs.append(Accessor(elem, idx, None))
            bit_offset += idx * _size(btf, elem) * 8
            tid = elem
        else:
            raise CoreRelocationError(
                f"relo for [{root_id}] {access_str} (at idx {pos}) captures type [{tid}] "
                f"of unexpected kind {kind_str(t.kind)}")
    spec.bit_offset = bit_offset
    return spec


def _match_member(local_btf: "BTF", local_acc: Accessor, targ_btf: "BTF", targ_id: int,
                  spec: CoreSpec) -> Tuple[bool, int]:
    """Find the member named like ``local_acc`` in target composite
    ``targ_id``, descending into anonymous members; on success the target
    raw spec, accessors and bit offset are extended and the member's type id
    is returned with True."""
    targ_id = _skip(targ_btf, targ_id)
    targ_t = targ_btf[targ_id]
    if targ_t.kind not in COMPOSITE_KINDS:
        return False, 0
    local_m = local_btf[local_acc.type_id].members[local_acc.idx]
    local_name = local_m.name
    raw = spec.raw_spec
    for i, m in enumerate(targ_t.members):
        if len(raw) == SPEC_MAX_LEN:
            raise CoreRelocationError("too deep struct/union/array nesting", errno.E2BIG)
        spec.bit_offset += m.bit_offset
        raw.append(i)
        if not m.name:
            found, next_id = _match_member(local_btf, local_acc, targ_btf, m.type, spec)
            if found:
                return True, next_id
        elif m.name == local_name:
            if fields_are_compat(local_btf, local_m.type, targ_btf, m.type):
                spec.spec.append(Accessor(targ_id, i, m.name))
                return True, m.type
            return False, 0
        spec.bit_offset -= m.bit_offset
        raw.pop()
    return False, 0


def spec_match(local: CoreSpec, targ_btf: "BTF", targ_id: int) -> Tuple[bool, CoreSpec]:
    """Try one candidate; returns (matched, target spec).  The target spec is
    returned even when not matching because libbpf logs the partial spec."""
    targ = CoreSpec(targ_btf, targ_id, local.kind)
    kind = local.kind
    if is_type_based(kind):
        if kind == RelocKind.TYPE_MATCHES:
            return types_match(local.btf, local.root_type_id, targ_btf, targ_id), targ
        return types_are_compat(local.btf, local.root_type_id, targ_btf, targ_id), targ
    local_accs = local.spec
    if is_enumval_based(kind):
        tid = _skip(targ_btf, targ_id)
        t = targ_btf[tid]
        if t.kind not in ENUM_KINDS:
            return False, targ
        want = essential_name(local_accs[0].name or "")
        for i, v in enumerate(t.values):
            if essential_name(v.name) == want:
                targ.spec.append(Accessor(tid, i, v.name))
                targ.raw_spec.append(i)
                return True, targ
        return False, targ
    if not is_field_based(kind):
        raise CoreRelocationError(f"unrecognized relocation kind {kind}")
    tid = targ_id
    for i, lacc in enumerate(local_accs):
        tid = _skip(targ_btf, tid)
        if lacc.name is not None:
            found, tid = _match_member(local.btf, lacc, targ_btf, tid, targ)
            if not found:
                return False, targ
            continue
        if i > 0:
            t = targ_btf[tid]
            if t.kind != Kind.ARRAY:
                return False, targ
            if not _is_flex_arr(targ_btf, targ.spec[-1], t.nelems) and lacc.idx >= t.nelems:
                return False, targ
            tid = _skip(targ_btf, t.type)
        if len(targ.raw_spec) == SPEC_MAX_LEN:
            raise CoreRelocationError("too deep struct/union/array nesting", errno.E2BIG)
        targ.spec.append(Accessor(tid, lacc.idx, None))
        targ.raw_spec.append(lacc.idx)
        targ.bit_offset += lacc.idx * _size(targ_btf, tid) * 8
    return True, targ


def _enum_value_text(t, idx: int) -> str:
    v = t.values[idx].value
    bits = 64 if t.kind == Kind.ENUM64 else 32
    mask = (1 << bits) - 1
    v &= mask
    if t.signed and v >> (bits - 1):
        v -= 1 << bits
    return str(v)


def spec_path(spec: CoreSpec) -> str:
    """C-like view of the access, e.g. 'struct foo.a.b[3]' or 'enum e::V = 3':
    the part of libbpf's spec text that names what the program touched."""
    btf = spec.btf
    root = btf[spec.root_type_id]
    out = f"{kind_str(root.kind)} {root.name or '<anon>'}"
    if is_type_based(spec.kind):
        return out
    if is_enumval_based(spec.kind):
        if not spec.raw_spec:
            return out
        t = btf[btf.skip_mods_and_typedefs(spec.root_type_id)]
        idx = spec.raw_spec[0]
        return f"{out}::{t.values[idx].name} = {_enum_value_text(t, idx)}"
    parts = [out]
    for i, acc in enumerate(spec.spec):
        if acc.name is not None:
            parts.append("." + acc.name)
        elif i > 0 or acc.idx > 0:
            parts.append(f"[{acc.idx}]")
    return "".join(parts)


def format_spec(spec: CoreSpec) -> str:
    """libbpf's ``bpf_core_format_spec`` text:
    ``<byte_off> [2] struct foo.a.b[3] (0:1:2:3 @ offset 12)``."""
    head = f"<{kind_name(spec.kind)}> [{spec.root_type_id}] {spec_path(spec)}"
    if not is_field_based(spec.kind):
        return head
    raw = ":".join(map(str, spec.raw_spec))
    off = spec.bit_offset
    where = f"{off // 8}.{off % 8}" if off % 8 else f"{off // 8}"
    return f"{head} ({raw} @ offset {where})"


__all__ = ["Accessor", "CoreSpec", "SPEC_MAX_LEN", "format_spec", "kind_str", "parse_spec",
           "spec_match", "spec_path"]
