"""One-line-per-type listing of BTF, in ``bpftool btf dump`` raw format.

Keeping bpftool's exact spelling means the two tools' listings can be diffed
when a parser or encoder bug is suspected.
"""
from __future__ import annotations

from typing import Callable, Iterable, List, Optional

from .types import Kind

_INT_ENCODINGS = {0: "(none)", 1: "SIGNED", 2: "CHAR", 4: "BOOL"}
_FUNC_LINKAGE = {0: "static", 1: "global", 2: "extern"}
_VAR_LINKAGE = {0: "static", 1: "global", 2: "extern"}


def _q(name: str) -> str:
    return f"'{name or '(anon)'}'"


def raw_lines(btf, tid: int) -> str:
    """The raw listing of one type (several lines for members/values)."""
    t = btf[tid]
    k = t.kind
    head = f"[{tid}] {k.name} {_q(t.name)}"
    if k == Kind.INT:
        enc = _INT_ENCODINGS.get(t.encoding, "UNKN")
        return f"{head} size={t.size} bits_offset={t.offset} nr_bits={t.bits} encoding={enc}"
    if k in (Kind.PTR, Kind.CONST, Kind.VOLATILE, Kind.RESTRICT, Kind.TYPEDEF, Kind.TYPE_TAG):
        return f"{head} type_id={t.type}"
    if k == Kind.ARRAY:
        return f"{head} type_id={t.type} index_type_id={t.index_type} nr_elems={t.nelems}"
    if k in (Kind.STRUCT, Kind.UNION):
        lines = [f"{head} size={t.size} vlen={len(t.members)}"]
        for m in t.members:
            line = f"\t{_q(m.name)} type_id={m.type} bits_offset={m.bit_offset}"
            if m.bitfield_size:
                line += f" bitfield_size={m.bitfield_size}"
            lines.append(line)
        return "\n".join(lines)
    if k in (Kind.ENUM, Kind.ENUM64):
        enc = "SIGNED" if t.signed else "UNSIGNED"
        lines = [f"{head} encoding={enc} size={t.size} vlen={len(t.values)}"]
        suffix = ("LL" if t.signed else "ULL") if k == Kind.ENUM64 else ""
        lines.extend(f"\t{_q(v.name)} val={v.value}{suffix}" for v in t.values)
        return "\n".join(lines)
    if k == Kind.FWD:
        return f"{head} fwd_kind={'union' if t.is_union else 'struct'}"
    if k == Kind.FUNC:
        return f"{head} type_id={t.type} linkage={_FUNC_LINKAGE.get(t.linkage, '(unknown)')}"
    if k == Kind.FUNC_PROTO:
        lines = [f"{head} ret_type_id={t.return_type} vlen={len(t.params)}"]
        lines.extend(f"\t{_q(p.name)} type_id={p.type}" for p in t.params)
        return "\n".join(lines)
    if k == Kind.VAR:
        return f"{head} type_id={t.type}, linkage={_VAR_LINKAGE.get(t.linkage, '(unknown)')}"
    if k == Kind.DATASEC:
        lines = [f"{head} size={t.size} vlen={len(t.vars)}"]
        for v in t.vars:
            line = f"\ttype_id={v.type} offset={v.offset} size={v.size}"
            if v.type < btf.type_count:
                line += f" ({btf.kind(v.type).name} {_q(btf.name(v.type))})"
            lines.append(line)
        return "\n".join(lines)
    if k == Kind.FLOAT:
        return f"{head} size={t.size}"
    if k == Kind.DECL_TAG:
        return f"{head} type_id={t.type} component_idx={t.component_idx}"
    return head


def write_raw(btf, write: Callable[[str], object], ids: Optional[Iterable[int]] = None) -> None:
    """Write the listing of ``ids`` (default: every type of ``btf``)."""
    buf: List[str] = []
    for tid in btf.ids() if ids is None else ids:
        buf.append(raw_lines(btf, tid))
        if len(buf) >= 1024:
            write("\n".join(buf) + "\n")
            buf.clear()
    if buf:
        write("\n".join(buf) + "\n")
