"""Type compatibility relations used by CO-RE matching.

Three relations of different strictness, as libbpf defines them:

* :func:`fields_are_compat` -- for a named member found in the target: is the
  member's type usable the same way (any int for any int, any pointer for any
  pointer, any struct for any union...)?
* :func:`types_are_compat` -- for TYPE_EXISTS/TYPE_SIZE/TYPE_ID_TARGET: same
  shape ignoring names below the root.
* :func:`types_match` -- for TYPE_MATCHES: names, sizes, signedness and
  members must agree recursively, so a program can tell two layouts apart.

Depth limits (32) and the points where libbpf reports -EINVAL are kept, as
raising :class:`CoreRelocationError`, because a cyclic or absurdly deep type
must fail the same way in both loaders.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..btf.types import COMPOSITE_KINDS, ENUM_KINDS, Kind, essential_name
from ..errors import BTFError
from .kinds import CoreRelocationError

if TYPE_CHECKING:
    from ..btf.parse import BTF

MAX_DEPTH = 32  # libbpf's recursion limit for both type relations


def kinds_core_compat(k1: int, k2: int) -> bool:
    """Kinds equal, or both enums (ENUM and ENUM64 stand for each other)."""
    return k1 == k2 or (k1 in ENUM_KINDS and k2 in ENUM_KINDS)


def names_match(local_name: str, targ_name: str) -> bool:
    """Flavor-insensitive name equality; an anonymous target only matches an
    anonymous local."""
    return essential_name(local_name) == essential_name(targ_name)


def _skip(btf: "BTF", type_id: int):
    try:
        tid = btf.skip_mods_and_typedefs(type_id)
        return tid, btf[tid]
    except (IndexError, KeyError, BTFError) as exc:
        raise CoreRelocationError(f"type [{type_id}] not found: {exc}") from None


def fields_are_compat(local_btf: "BTF", local_id: int, targ_btf: "BTF", targ_id: int) -> bool:
    """Can a target member of type ``targ_id`` be accessed like the local
    member of type ``local_id``?"""
    while True:
        local_id, lt = _skip(local_btf, local_id)
        targ_id, tt = _skip(targ_btf, targ_id)
        lk, tk = lt.kind, tt.kind
        if lk in COMPOSITE_KINDS and tk in COMPOSITE_KINDS:
            return True
        if not kinds_core_compat(lk, tk):
            return False
        if lk in (Kind.PTR, Kind.FLOAT):
            return True
        if lk == Kind.FWD or lk in ENUM_KINDS:
            ln, tn = essential_name(lt.name), essential_name(tt.name)
            return not ln or not tn or ln == tn
        if lk == Kind.INT:
            # int offsets come only from old bitfield encodings: refuse them
            return lt.offset == 0 and tt.offset == 0
        if lk == Kind.ARRAY:
            local_id, targ_id = lt.type, tt.type
            continue
        return False


def types_are_compat(local_btf: "BTF", local_id: int, targ_btf: "BTF", targ_id: int,
                     level: int = MAX_DEPTH) -> bool:
    """libbpf's ``bpf_core_types_are_compat``: the root names were already
    matched by candidate search; below the root only shapes count."""
    try:
        if not kinds_core_compat(local_btf[local_id].kind, targ_btf[targ_id].kind):
            return False
    except (IndexError, KeyError, BTFError) as exc:
        raise CoreRelocationError(f"type not found: {exc}") from None
    depth = MAX_DEPTH
    while True:
        depth -= 1
        if depth < 0:
            raise CoreRelocationError("type nesting deeper than 32 levels")
        local_id, lt = _skip(local_btf, local_id)
        targ_id, tt = _skip(targ_btf, targ_id)
        lk = lt.kind
        if not kinds_core_compat(lk, tt.kind):
            return False
        if lk in (Kind.UNKN, Kind.STRUCT, Kind.UNION, Kind.FWD) or lk in ENUM_KINDS:
            return True
        if lk == Kind.INT:
            return lt.offset == 0 and tt.offset == 0
        if lk == Kind.PTR:
            local_id, targ_id = lt.type, tt.type
            continue
        if lk == Kind.ARRAY:
            local_id, targ_id = lt.type, tt.type
            continue
        if lk == Kind.FUNC_PROTO:
            if len(lt.params) != len(tt.params):
                return False
            for lp, tp in zip(lt.params, tt.params):
                if level <= 0:
                    raise CoreRelocationError("function prototype nesting too deep")
                lid, _ = _skip(local_btf, lp.type)
                tid, _ = _skip(targ_btf, tp.type)
                if not types_are_compat(local_btf, lid, targ_btf, tid, level - 1):
                    return False
            local_id, targ_id = lt.return_type, tt.return_type
            continue
        return False


def _enums_match(lt, tt) -> bool:
    if lt.size != tt.size or len(lt.values) > len(tt.values):
        return False
    targ_names = {essential_name(v.name) for v in tt.values}
    return all(essential_name(v.name) in targ_names for v in lt.values)


def _composites_match(local_btf: "BTF", lt, targ_btf: "BTF", tt, behind_ptr: bool,
                      level: int) -> bool:
    if len(lt.members) > len(tt.members):
        return False
    for lm in lt.members:
        want = essential_name(lm.name)
        for tm in tt.members:
            if essential_name(tm.name) != want:
                continue
            if types_match(local_btf, lm.type, targ_btf, tm.type, behind_ptr, level - 1):
                break
        else:
            return False
    return True


def types_match(local_btf: "BTF", local_id: int, targ_btf: "BTF", targ_id: int,
                behind_ptr: bool = False, level: int = MAX_DEPTH) -> bool:
    """libbpf's ``__bpf_core_types_match`` (TYPE_MATCHES): names at every
    level, int size and sign, array lengths, enum names, member names and
    types; behind a pointer a composite only needs its name and kind (or a
    FWD of the same struct/union flavour)."""
    if level <= 0:
        raise CoreRelocationError("type nesting deeper than 32 levels")
    depth = MAX_DEPTH
    while True:
        depth -= 1
        if depth < 0:
            raise CoreRelocationError("type nesting deeper than 32 levels")
        local_id, lt = _skip(local_btf, local_id)
        targ_id, tt = _skip(targ_btf, targ_id)
        if not names_match(lt.name, tt.name):
            return False
        lk, tk = lt.kind, tt.kind
        if lk == Kind.UNKN:
            return tk == Kind.UNKN
        if lk == Kind.FWD:
            if tk == Kind.FWD:
                return lt.is_union == tt.is_union
            if not behind_ptr:
                return False
            return (tk == Kind.STRUCT and not lt.is_union) or (tk == Kind.UNION and lt.is_union)
        if lk in ENUM_KINDS:
            return tk in ENUM_KINDS and _enums_match(lt, tt)
        if lk in COMPOSITE_KINDS:
            if behind_ptr:
                if lk == tk:
                    return True
                return tk == Kind.FWD and (lk == Kind.UNION) == tt.is_union
            if lk != tk:
                return False
            return _composites_match(local_btf, lt, targ_btf, tt, behind_ptr, level)
        if lk != tk:
            return False
        if lk == Kind.INT:
            return lt.size == tt.size and lt.signed == tt.signed
        if lk == Kind.PTR:
            behind_ptr = True
            local_id, targ_id = lt.type, tt.type
            continue
        if lk == Kind.ARRAY:
            if lt.nelems != tt.nelems:
                return False
            local_id, targ_id = lt.type, tt.type
            continue
        if lk == Kind.FUNC_PROTO:
            if len(lt.params) != len(tt.params):
                return False
            for lp, tp in zip(lt.params, tt.params):
                if not types_match(local_btf, lp.type, targ_btf, tp.type, behind_ptr, level - 1):
                    return False
            local_id, targ_id = lt.return_type, tt.return_type
            continue
        return False
