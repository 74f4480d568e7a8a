"""Tracepoint ``args`` structs from tracefs ``format`` files.

BCC's ``TRACEPOINT_PROBE(cat, evt)`` hands the program a pointer to a struct
whose members are exactly the fields of ``events/<cat>/<evt>/format``: syscall
tracepoints expose ``args->filename`` etc., which vmlinux.h cannot provide (it
only has the generic ``trace_event_raw_sys_enter``).  The struct is generated
at translation time with BCC's naming (``__do_not_use__`` for the common
header, ``__pad_<n>`` for gaps, ``data_loc_<name>`` for ``__data_loc``
fields).  Scalar types are re-spelled by their size in the format file (the
file's C type and its size disagree for syscall arguments: ``int dfd`` of size
8), so member offsets always match the kernel's record layout.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from ..errors import CompileError
from .tpformat import FormatReader, format_digest, read_format  # noqa: F401  (re-exported)

_FIELD = re.compile(r"^\s*field:(?P<decl>.*?);\s*offset:(?P<off>\d+);\s*size:(?P<size>\d+);"
                    r"\s*signed:(?P<signed>-?\d+);")
_ARRAY = re.compile(r"^(?P<type>.*?)\s*(?P<name>[A-Za-z_]\w*)\s*\[(?P<dim>[^\]]*)\]$")
_SCALAR = re.compile(r"^(?P<type>.*?[\s*])(?P<name>[A-Za-z_]\w*)$")
_INT_SIZES = {1: "8", 2: "16", 4: "32", 8: "64"}
_CHAR_TYPES = {"char", "signed char", "unsigned char", "u8", "__u8", "s8", "__s8", "int8_t",
               "uint8_t", "bool", "_Bool"}


@dataclass
class TracepointField:
    """One non-common field of a tracepoint record, as in the format file."""

    name: str
    c_decl: str          # declaration in the generated struct (without ';')
    offset: int
    size: int
    signed: bool
    data_loc: bool = False
    format_type: str = ""  # type as spelled by the format file


@dataclass
class TracepointStruct:
    """A generated ``struct tracepoint__<cat>__<evt>`` and where it came from."""

    category: str
    event: str
    fields: List[TracepointField] = field(default_factory=list)
    format_sha256: str = ""

    @property
    def struct_name(self) -> str:
        return f"tracepoint__{self.category}__{self.event}"

    def c_definition(self) -> str:
        """The C definition (one line per member)."""
        lines = [f"struct {self.struct_name} {{", "\tu64 __do_not_use__;"]
        lines += [f"\t{decl};" for decl in self._members()]
        lines.append("};")
        return "\n".join(lines) + "\n"

    def _members(self) -> List[str]:
        members: List[str] = []
        pos = 8
        for f in self.fields:
            if f.offset < pos:
                raise CompileError(f"tracepoint {self.category}:{self.event}: field {f.name} at "
                                   f"offset {f.offset} overlaps the previous field (ends at {pos})")
            members += [f"char __pad_{n}" for n in range(pos, f.offset)]
            members.append(f.c_decl)
            pos = f.offset + f.size
        return members

    def to_json(self) -> dict:
        return {"category": self.category, "event": self.event, "struct": self.struct_name,
                "format_sha256": self.format_sha256,
                "fields": [{"name": f.name, "offset": f.offset, "size": f.size,
                            "signed": f.signed, "data_loc": f.data_loc,
                            "type": f.format_type} for f in self.fields]}


def parse_format(category: str, event: str, text: str) -> TracepointStruct:
    """Build the args struct of one tracepoint from its format file text."""
    tp = TracepointStruct(category, event, format_sha256=format_digest(text))
    for line in text.splitlines():
        m = _FIELD.match(line)
        if not m:
            continue
        decl = m.group("decl").strip()
        offset, size = int(m.group("off")), int(m.group("size"))
        signed = m.group("signed") == "1"
        if decl.split()[-1].startswith("common_"):
            continue
        tp.fields.append(_field(category, event, decl, offset, size, signed))
    return tp


def _field(category: str, event: str, decl: str, offset: int, size: int,
           signed: bool) -> TracepointField:
    if decl.startswith("__data_loc"):
        name = decl.split()[-1]
        if "[" in name:
            name = name[:name.index("[")]
        return TracepointField(name, f"u32 data_loc_{name}", offset, size, signed, True,
                               decl[len("__data_loc"):].strip().rsplit(" ", 1)[0])
    m = _ARRAY.match(decl)
    if m:
        elem, name, dim = m.group("type").strip(), m.group("name"), m.group("dim").strip()
        if elem in _CHAR_TYPES or "*" in elem:
            count = int(dim) if dim.isdigit() else None
            elem_decl = elem if elem in _CHAR_TYPES else "u64"
            if count is None or elem not in _CHAR_TYPES:
                count = size // (1 if elem in _CHAR_TYPES else 8)
            return TracepointField(name, f"{elem_decl} {name}[{count}]", offset, size, signed,
                                   format_type=decl)
        count = int(dim) if dim.isdigit() and int(dim) > 0 else 0
        elem_size = size // count if count and size % count == 0 else 0
        if elem_size in _INT_SIZES:
            ctype = f"{'s' if signed else 'u'}{_INT_SIZES[elem_size]}"
            return TracepointField(name, f"{ctype} {name}[{count}]", offset, size, signed,
                                   format_type=elem)
        return TracepointField(name, f"u8 {name}[{size}]", offset, size, signed, format_type=elem)
    m = _SCALAR.match(decl)
    if not m:
        raise CompileError(f"tracepoint {category}:{event}: cannot parse field '{decl}'")
    ctype, name = m.group("type").strip(), m.group("name")
    if "*" in ctype and size == 8:
        return TracepointField(name, f"{ctype} {name}", offset, size, signed, format_type=ctype)
    if size in _INT_SIZES:
        return TracepointField(name, f"{'s' if signed else 'u'}{_INT_SIZES[size]} {name}",
                               offset, size, signed, format_type=ctype)
    return TracepointField(name, f"u8 {name}[{size}]", offset, size, signed, format_type=ctype)


def build_structs(names: List[Tuple[str, str]],
                  reader: Optional[FormatReader] = None) -> Dict[Tuple[str, str], TracepointStruct]:
    """Generate the structs of every (category, event) a program uses."""
    reader = reader or read_format
    return {(cat, evt): parse_format(cat, evt, reader(cat, evt)) for cat, evt in names}


def split_struct_name(tag: str) -> Optional[Tuple[str, str]]:
    """``tracepoint__cat__evt`` -> (cat, evt); BCC splits at the first and last ``__``."""
    if not tag.startswith("tracepoint__"):
        return None
    rest = tag[len("tracepoint__"):]
    cut = rest.rfind("__")
    if cut <= 0:
        return None
    return rest[:cut], rest[cut + 2:]
