"""Small helpers over libclang cursors of one parsed BCC program.

:class:`Source` ties the libclang translation unit to the user's text: the
parsed file is a generated prologue followed by the user's source, so a cursor
extent maps to user byte offsets by subtracting the prologue length.  Offsets
are bytes (libclang's), and the user text is held decoded as latin-1 so that
Python string indexes equal byte offsets.
"""
from __future__ import annotations

import ctypes
from typing import Iterator, List, Optional, Tuple

from clang import cindex as ci

from ..errors import CompileError

K = ci.CursorKind
_TRANSPARENT = (K.PAREN_EXPR, K.UNEXPOSED_EXPR, K.CSTYLE_CAST_EXPR)


class Source:
    """The user's text plus the parsed translation unit it sits in."""

    def __init__(self, tu: "ci.TranslationUnit", parse_path: str, text: str, base: int,
                 filename: str, vmlinux_path: str) -> None:
        self.tu = tu
        self.parse_path = parse_path
        self.text = text            # user text, latin-1 view of the UTF-8 bytes
        self.base = base            # byte offset of the user text in the parsed file
        self.filename = filename
        self.vmlinux_path = vmlinux_path

    # -- locations ---------------------------------------------------------
    def in_user_text(self, cursor: "ci.Cursor") -> bool:
        loc = cursor.extent.start
        return loc.file is not None and loc.file.name == self.parse_path and loc.offset >= self.base

    def span(self, cursor: "ci.Cursor") -> tuple:
        """(start, end) of a cursor in user-text offsets."""
        ext = cursor.extent
        return ext.start.offset - self.base, ext.end.offset - self.base

    def spelling_span(self, cursor: "ci.Cursor") -> Optional[Tuple[int, int]]:
        """(start, end) where the cursor's tokens are *spelled* in the user's text.

        Differs from :meth:`span` for macro arguments (``ntohs(sk->x)``): the member
        access is spelled in the user's text although it is expanded inside the macro.
        None when the tokens are not in the user's text (macro bodies)."""
        ext = cursor.extent
        start = _spelling_offset(ext.start, self.parse_path)
        end = _spelling_offset(ext.end, self.parse_path)
        if start is None or end is None or start < self.base or end <= start:
            return None
        return start - self.base, end - self.base

    def snippet(self, cursor: "ci.Cursor") -> str:
        start, end = self.span(cursor)
        return self.text[start:end]

    def line_of(self, offset: int) -> int:
        return self.text.count("\n", 0, offset) + 1

    def line_text(self, line: int) -> str:
        lines = self.text.split("\n")
        raw = lines[line - 1] if 0 < line <= len(lines) else ""
        return raw.encode("latin-1").decode("utf-8", "replace")

    def error(self, cursor_or_offset, message: str) -> CompileError:
        """A CompileError naming the user's file, line and source text."""
        offset = cursor_or_offset if isinstance(cursor_or_offset, int) else self.span(cursor_or_offset)[0]
        line = self.line_of(offset)
        return CompileError(f"{self.filename}:{line}: error: {message}\n"
                            f"{line:5d} | {self.line_text(line)}")

    # -- declarations of the user's file --------------------------------------
    def top_level(self) -> Iterator["ci.Cursor"]:
        for cursor in self.tu.cursor.get_children():
            loc = cursor.location
            if loc.file is not None and loc.file.name == self.parse_path and \
                    cursor.extent.start.offset >= self.base:
                yield cursor

    def from_vmlinux(self, decl: "ci.Cursor") -> bool:
        loc = decl.location
        return loc.file is not None and loc.file.name == self.vmlinux_path


def _spelling_offset(loc: "ci.SourceLocation", path: str) -> Optional[int]:
    fobj, line, col, off = ci.c_object_p(), ctypes.c_uint(), ctypes.c_uint(), ctypes.c_uint()
    ci.conf.lib.clang_getSpellingLocation(loc, ctypes.byref(fobj), ctypes.byref(line),
                                          ctypes.byref(col), ctypes.byref(off))
    if not fobj:
        return None
    name = ci.conf.lib.clang_getFileName(ci.File(fobj))
    return off.value if name == path else None


def children(cursor: "ci.Cursor") -> List["ci.Cursor"]:
    return list(cursor.get_children())


def strip(cursor: "ci.Cursor") -> "ci.Cursor":
    """Look through parentheses, implicit conversions and C casts."""
    while cursor.kind in _TRANSPARENT:
        kids = children(cursor)
        if not kids:
            break
        cursor = kids[-1]
    return cursor


def walk(cursor: "ci.Cursor") -> Iterator["ci.Cursor"]:
    """Pre-order traversal of a subtree."""
    stack = [cursor]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(children(node)))


def body_of(func: "ci.Cursor") -> Optional["ci.Cursor"]:
    for child in func.get_children():
        if child.kind == K.COMPOUND_STMT:
            return child
    return None


def unary_operator(src: Source, cursor: "ci.Cursor") -> str:
    """The operator of a UNARY_OPERATOR cursor, read from the user's text."""
    kids = children(cursor)
    if not kids:
        return ""
    start, end = src.span(cursor)
    cstart, cend = src.span(kids[0])
    if cstart > start:
        return src.text[start:cstart].strip()
    return src.text[cend:end].strip()


def binary_operator(src: Source, cursor: "ci.Cursor") -> str:
    """The operator of a (compound) assignment or binary operator cursor."""
    kids = children(cursor)
    if len(kids) != 2:
        return ""
    return src.text[src.span(kids[0])[1]:src.span(kids[1])[0]].strip()


def is_arrow(cursor: "ci.Cursor") -> bool:
    """True for ``base->member`` (base is a pointer), False for ``base.member``."""
    kids = children(cursor)
    return bool(kids) and kids[0].type.get_canonical().kind == ci.TypeKind.POINTER


def is_pointer(ctype: "ci.Type") -> bool:
    return ctype.get_canonical().kind == ci.TypeKind.POINTER


def is_array(ctype: "ci.Type") -> bool:
    return ctype.get_canonical().kind in (ci.TypeKind.CONSTANTARRAY, ci.TypeKind.INCOMPLETEARRAY,
                                          ci.TypeKind.VARIABLEARRAY)
