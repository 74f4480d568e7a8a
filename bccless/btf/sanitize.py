"""Rewrite an object's BTF so an older kernel accepts it.

The kernel rejects a whole BTF blob when it contains a kind it does not know,
so before upload every record the running kernel cannot parse is replaced by
the nearest thing it can (libbpf's table, core-semantics.md §1.13).  Only the
uploaded copy is rewritten: CO-RE relocation keeps using the original, and
type ids never change (replacements are in place, additions go at the end).
"""
from __future__ import annotations

from dataclasses import dataclass

from .parse import BTF
from .types import (
    FUNC_STATIC, Const, Datasec, Enum, EnumValue, Func, Int, Kind, Member, Struct,
    Typedef, Union,
)


@dataclass(frozen=True)
class BTFFeatures:
    """Which BTF kinds and flavours the target kernel accepts."""

    func: bool = True
    global_func: bool = True
    datasec: bool = True
    qmark_datasec: bool = True
    float: bool = True
    decl_tag: bool = True
    type_tag: bool = True
    enum64: bool = True

    def complete(self) -> bool:
        return all(vars(self).values())


def _struct_name(datasec_name: str) -> str:
    """libbpf renames a DATASEC turned STRUCT by replacing only '.' and '?'."""
    return datasec_name.replace(".", "_").replace("?", "_")


def sanitize(btf: BTF, feats: BTFFeatures) -> bytes:
    """Return the encoded BTF with unsupported records rewritten for ``feats``."""
    if feats.complete():
        return btf.encode()
    out = BTF.from_bytes(btf.encode(), source=btf.source)
    placeholder = 0
    for tid in out.ids():
        t = out[tid]
        kind = t.kind
        if kind == Kind.FUNC_PROTO and not feats.func:
            # An enum with one entry per parameter keeps the record's shape.
            out.replace(tid, Enum("", 4, [EnumValue(p.name, p.type) for p in t.params]))
        elif kind == Kind.FUNC:
            if not feats.func:
                out.replace(tid, Typedef(t.name, t.type))
            elif not feats.global_func and t.linkage != FUNC_STATIC:
                out.replace(tid, Func(t.name, t.type, FUNC_STATIC))
        elif kind == Kind.VAR and not feats.datasec:
            out.replace(tid, Int(t.name, 1, 0))
        elif kind == Kind.DATASEC:
            if not feats.datasec:
                # Members keep the variable names and point at the VARs, which
                # this same pass turns into 1-byte INTs.
                members = [Member(out.name(v.type), v.type, v.offset * 8) for v in t.vars]
                out.replace(tid, Struct(_struct_name(t.name), t.size, members))
            elif not feats.qmark_datasec and t.name.startswith("?"):
                out.replace(tid, Datasec("_" + t.name[1:], t.size, list(t.vars)))
        elif kind == Kind.FLOAT and not feats.float:
            out.replace(tid, Struct("", t.size, []))
        elif kind == Kind.DECL_TAG and not feats.decl_tag:
            out.replace(tid, Int("", 1, 0))     # libbpf drops the tag's name too
        elif kind == Kind.TYPE_TAG and not feats.type_tag:
            out.replace(tid, Const(t.type))
        elif kind == Kind.ENUM and not feats.enum64 and t.signed:
            out.replace(tid, Enum(t.name, t.size, list(t.values), False))
        elif kind == Kind.ENUM64 and not feats.enum64:
            if not placeholder:
                placeholder = out.add(Int("enum64_placeholder", 1, 0))
            members = [Member(v.name, placeholder, 0) for v in t.values]
            out.replace(tid, Union(t.name, t.size, members))
    return out.encode()

