"""User structs that clash with vmlinux.h.

BCC programs built against kernel headers may define a struct the headers do
not expose (``struct mnt_namespace`` in mountsnoop) or a user-space struct
that happens to share a kernel name (``struct req`` in a uprobe).  vmlinux.h
defines every kernel type, so both are redefinitions.  When every field of the
user's definition exists in the kernel's struct, the user meant the kernel type:
the definition body is dropped and vmlinux.h's (CO-RE relocatable) one is used.
Otherwise the user's struct is a different type and its tag is renamed to
``<tag>___bccless`` everywhere in the file (the ``___`` suffix is a CO-RE
flavour, so essential names still match).
"""
from __future__ import annotations

import re
from typing import List, Tuple

from clang import cindex as ci

from .ast_walk import K

_REDEFINITION = re.compile(r"^redefinition of '(?P<name>\w+)'$")
RENAMED_SUFFIX = "___bccless"


def redefined_structs(tu: "ci.TranslationUnit", parse_path: str, base_line: int) -> List[Tuple[str, int]]:
    """(tag, user line) of every struct/union redefinition clang reported in user code."""
    out = []
    for diag in tu.diagnostics:
        m = _REDEFINITION.match(diag.spelling)
        loc = diag.location
        if m and loc.file is not None and loc.file.name == parse_path and loc.line > base_line:
            out.append((m.group("name"), loc.offset))
    return out


def fix_text(tu: "ci.TranslationUnit", parse_path: str, vmlinux_path: str, base: int,
             text: str, tokens: list, clashes: List[Tuple[str, int]]) -> Tuple[str, List[str]]:
    """The user text with each clash resolved (body dropped or tag renamed), plus notes."""
    kernel_fields = _kernel_fields(tu, vmlinux_path, {name for name, _ in clashes})
    user_decls = [c for c in tu.cursor.get_children()
                  if c.kind in (K.STRUCT_DECL, K.UNION_DECL) and c.location.file is not None
                  and c.location.file.name == parse_path]
    chars = list(text)
    notes = []
    renames = set()
    for name, offset in clashes:
        decl = next((c for c in user_decls
                     if c.extent.start.offset <= offset < c.extent.end.offset), None)
        if decl is None:
            continue
        fields = {f.spelling for f in decl.get_children() if f.kind == K.FIELD_DECL}
        start, end = decl.extent.start.offset - base, decl.extent.end.offset - base
        if fields and fields <= kernel_fields.get(name, set()):
            brace = text.find("{", start, end)
            for pos in range(brace, end):
                if chars[pos] != "\n":
                    chars[pos] = " "
            notes.append(f"struct {name}: using the kernel's definition from vmlinux.h")
        else:
            renames.add(name)
            notes.append(f"struct {name}: not the kernel's struct {name}; renamed "
                         f"{name}{RENAMED_SUFFIX}")
    out = "".join(chars)
    if renames:
        pieces, pos = [], 0
        for i, (spelling, _kind, tstart, tend) in enumerate(tokens[:-1]):
            if spelling in ("struct", "union") and tokens[i + 1][0] in renames:
                name_end = tokens[i + 1][3]
                pieces.append(out[pos:name_end] + RENAMED_SUFFIX)
                pos = name_end
        out = "".join(pieces) + out[pos:]
    return out, notes


def _kernel_fields(tu: "ci.TranslationUnit", vmlinux_path: str, names: set) -> dict:
    found: dict = {}
    for cursor in tu.cursor.get_children():
        if cursor.kind in (K.STRUCT_DECL, K.UNION_DECL) and cursor.spelling in names and \
                cursor.is_definition() and cursor.location.file is not None and \
                cursor.location.file.name == vmlinux_path:
            found[cursor.spelling] = _field_names(cursor)
    return found


def _field_names(record: "ci.Cursor") -> set:
    """Field names, looking through anonymous members like C does."""
    names = set()
    for field in record.get_children():
        if field.kind == K.FIELD_DECL:
            if field.spelling and not field.is_anonymous():
                names.add(field.spelling)
            else:
                decl = field.type.get_declaration()
                names |= _field_names(decl)
        elif field.kind in (K.STRUCT_DECL, K.UNION_DECL) and field.is_anonymous():
            names |= _field_names(field)
    return names
