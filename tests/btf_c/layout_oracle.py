"""Layout expectations taken straight from BTF (never from the emitter).

``static_asserts`` writes ``_Static_assert`` lines for sizeof of every named
struct/union and offsetof of every named non-bit-field member (reached through
anonymous members and inline anonymous types with a ``a.b`` designator).
Bit-fields cannot be offsetof'ed, so ``bitfields`` lists their expected
(bit offset, width), checked against clang's ``-fdump-record-layouts``.
"""
from __future__ import annotations

import re
from typing import Dict, Iterator, List, Tuple

from bccless.btf.types import Kind

_TAG_KINDS = (Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64)


def c_names(btf) -> Dict[int, str]:
    """C spelling of named structs/unions: the Nth distinct tag of one name
    is ``name___N`` (libbpf's rule), counting in type id order."""
    seen: Dict[str, int] = {}
    out: Dict[int, str] = {}
    for tid in btf.ids():
        k = btf.kind(tid)
        if k not in _TAG_KINDS:
            continue
        name = btf.name(tid)
        if not name:
            continue
        rank = seen.get(name, 0) + 1
        seen[name] = rank
        if k in (Kind.STRUCT, Kind.UNION):
            spelled = name if rank == 1 else f"{name}___{rank}"
            out[tid] = f"{'union' if k == Kind.UNION else 'struct'} {spelled}"
    return out


def _strip(btf, tid: int) -> int:
    while btf.kind(tid) in (Kind.TYPEDEF, Kind.CONST, Kind.VOLATILE, Kind.RESTRICT,
                            Kind.TYPE_TAG):
        tid = btf[tid].type
    return tid


def members(btf, tid: int, prefix: str = "", base: int = 0) -> Iterator[Tuple[str, int, int]]:
    """(designator, absolute bit offset, bit-field width) of every named leaf
    member reachable without crossing into another named record type."""
    for m in btf[tid].members:
        off = base + m.bit_offset
        inner = _strip(btf, m.type)
        record = btf.kind(inner) in (Kind.STRUCT, Kind.UNION)
        if m.name:
            path = prefix + m.name
            yield path, off, m.bitfield_size
            if record and not btf.name(inner) and not m.bitfield_size:
                yield from members(btf, inner, path + ".", off)
        elif record:
            # Anonymous member (of an anonymous type, or a named one embedded
            # the -fms-extensions way): its fields belong to the outer record.
            yield from members(btf, inner, prefix, off)


def static_asserts(btf, names: Dict[int, str]) -> Tuple[str, int]:
    """C source of the asserts and their count."""
    lines: List[str] = []
    for tid, cname in names.items():
        rec = btf[tid]
        lines.append(f"_Static_assert(sizeof({cname}) == {rec.size}, \"[{tid}] sizeof\");")
        for path, off, width in members(btf, tid):
            if width or off % 8:
                continue
            lines.append(f"_Static_assert(__builtin_offsetof({cname}, {path}) == {off // 8}, "
                         f"\"[{tid}] {path}\");")
    return "\n".join(lines) + "\n", len(lines)


def bitfields(btf, names: Dict[int, str]) -> Dict[str, Dict[str, Tuple[int, int]]]:
    """{C record name: {member path: (bit offset, width)}} for bit-fields."""
    out: Dict[str, Dict[str, Tuple[int, int]]] = {}
    for tid, cname in names.items():
        fields = {path: (off, width) for path, off, width in members(btf, tid) if width}
        if fields:
            out[cname] = fields
    return out


_ROW = re.compile(r"^\s*(\d+)(?::(\d+)-(\d+))? \|( *)(.*)$")


def clang_bitfields(dump: str, wanted: Dict[str, Dict[str, Tuple[int, int]]]
                    ) -> Dict[str, Dict[str, Tuple[int, int]]]:
    """Parse clang's -fdump-record-layouts into the shape of ``bitfields``
    for the records in ``wanted``."""
    out: Dict[str, Dict[str, Tuple[int, int]]] = {}
    for block in dump.split("*** Dumping AST Record Layout")[1:]:
        rows = block.strip("\n").splitlines()
        head = _ROW.match(rows[0])
        if not head or head.group(5) not in wanted:
            continue
        fields: Dict[str, Tuple[int, int]] = {}
        stack: List[Tuple[int, str]] = []  # (depth, designator prefix)
        for row in rows[1:]:
            m = _ROW.match(row)
            if not m:
                continue
            depth = len(m.group(4)) // 2
            text = m.group(5)
            # Anonymous records print a trailing blank name; named members end
            # in their name after the type.
            name = "" if text.endswith(" ") or text.endswith(")") else text.rsplit(" ", 1)[-1]
            while stack and stack[-1][0] >= depth:
                stack.pop()
            prefix = stack[-1][1] if stack else ""
            path = prefix + name
            if m.group(2) is not None:
                start, end = int(m.group(2)), int(m.group(3))
                fields[path] = (int(m.group(1)) * 8 + start, end - start + 1)
            stack.append((depth, path + "." if name else prefix))
        out[head.group(5)] = fields
    return out
