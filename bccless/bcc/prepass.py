"""Token-level scan of the user's source, before the full parse.

Three things must be known before libclang can parse the program against
vmlinux.h: which ``#include`` lines to drop (kernel and uapi headers are
replaced by vmlinux.h + the compat header), which map macros are invoked and
with what arguments (their source text becomes the libbpf definition), and
which tracepoints need an ``args`` struct (it must exist before the code that
uses ``args->field`` is parsed).  The scan uses libclang's lexer on the raw
text, never regular expressions over C.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from clang import cindex as ci

from .maps_decl import MACROS, UNSUPPORTED_MACROS
from .tracepoints import split_struct_name


@dataclass
class Include:
    start: int
    end: int            # end of the directive line (exclusive, before the newline)
    header: str
    angled: bool


@dataclass
class MacroCall:
    macro: str
    start: int
    end: int            # just past the closing parenthesis
    args: List[str]
    line: int


@dataclass
class PrePass:
    includes: List[Include] = field(default_factory=list)
    map_calls: List[MacroCall] = field(default_factory=list)
    tracepoints: List[Tuple[str, str]] = field(default_factory=list)
    tokens: List[Tuple[str, "ci.TokenKind", int, int]] = field(default_factory=list)


def _line_end(text: str, start: int) -> int:
    """End of a preprocessor line, following backslash continuations."""
    pos = start
    while True:
        nl = text.find("\n", pos)
        if nl < 0:
            return len(text)
        if nl > 0 and text[nl - 1] == "\\":
            pos = nl + 1
            continue
        return nl


def scan(index: "ci.Index", path: str, utf8_text: str, text: str) -> PrePass:
    """Lex ``text`` (latin-1 view of the UTF-8 source at ``path``) and collect what the
    full parse needs."""
    tu = index.parse(path, args=["-x", "c", "-nostdinc"], unsaved_files=[(path, utf8_text)],
                     options=ci.TranslationUnit.PARSE_SKIP_FUNCTION_BODIES |
                     ci.TranslationUnit.PARSE_INCOMPLETE)
    fobj = tu.get_file(path)
    extent = ci.SourceRange.from_locations(ci.SourceLocation.from_offset(tu, fobj, 0),
                                           ci.SourceLocation.from_offset(tu, fobj, len(text)))
    toks = [(t.spelling, t.kind, t.extent.start.offset, t.extent.end.offset)
            for t in tu.get_tokens(extent=extent)]
    result = PrePass(tokens=toks)
    seen_tp = set()
    i, n = 0, len(toks)
    while i < n:
        spelling, kind, start, end = toks[i]
        if spelling == "#" and not text[text.rfind("\n", 0, start) + 1:start].strip():
            stop = _line_end(text, start)
            if i + 1 < n and toks[i + 1][0] == "include" and i + 2 < n:
                header_tok = toks[i + 2]
                angled = header_tok[0] == "<"
                close = text.find(">", header_tok[2]) if angled else header_tok[3] - 1
                header = text[header_tok[2] + 1:close]
                result.includes.append(Include(start, stop, header, angled))
            while i < n and toks[i][2] < stop:
                i += 1
            continue
        if kind == ci.TokenKind.IDENTIFIER:
            if (spelling in MACROS or spelling in UNSUPPORTED_MACROS) and i + 1 < n and toks[i + 1][0] == "(":
                call, i = _macro_call(toks, i, text)
                result.map_calls.append(call)
                continue
            tp = _tracepoint_name(toks, i)
            if tp and tp not in seen_tp:
                seen_tp.add(tp)
                result.tracepoints.append(tp)
        i += 1
    return result


def _macro_call(toks: list, i: int, text: str) -> Tuple[MacroCall, int]:
    macro, _, start, _ = toks[i]
    depth = 0
    args: List[str] = []
    arg_start: Optional[int] = None
    arg_end = 0
    j = i + 1
    while j < len(toks):
        spelling, _, tstart, tend = toks[j]
        if spelling in ("(", "[", "{"):
            depth += 1
            if depth == 1:
                j += 1
                continue
        elif spelling in (")", "]", "}"):
            depth -= 1
            if depth == 0:
                if arg_start is not None:
                    args.append(text[arg_start:arg_end])
                return MacroCall(macro, start, tend, args, text.count("\n", 0, start) + 1), j + 1
        elif spelling == "," and depth == 1:
            args.append(text[arg_start:arg_end] if arg_start is not None else "")
            arg_start = None
            j += 1
            continue
        if arg_start is None:
            arg_start = tstart
        arg_end = tend
        j += 1
    return MacroCall(macro, start, len(text), args, text.count("\n", 0, start) + 1), j


def _tracepoint_name(toks: list, i: int) -> Optional[Tuple[str, str]]:
    spelling = toks[i][0]
    if spelling == "TRACEPOINT_PROBE" and i + 5 < len(toks) and toks[i + 1][0] == "(" and \
            toks[i + 3][0] == "," and toks[i + 5][0] == ")":
        return toks[i + 2][0], toks[i + 4][0]
    if spelling.startswith("tracepoint__"):
        return split_struct_name(spelling)
    return None
