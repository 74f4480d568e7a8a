"""Translate a BCC program into libbpf-style CO-RE C.

Pipeline (all on libclang, nothing pattern-based on C text):

1. :mod:`prepass` lexes the source: kernel/uapi ``#include`` lines, map macro
   invocations and the tracepoints whose ``args`` struct is needed;
2. the tracepoint structs are generated from tracefs (:mod:`tracepoints`);
3. the program is parsed against vmlinux.h, libbpf's headers, the compat
   header and a stub that gives BCC's map macros a parseable meaning;
4. edits are collected on source ranges: map definitions (:mod:`maps_decl`),
   method calls (:mod:`methods`), sections and register preambles
   (:mod:`probes`), implicit probe reads (:mod:`probe_reads`);
5. the rewritten text is framed by a prologue of includes and an epilogue
   (license, BTF anchors for event types), with ``#line`` so diagnostics and
   BTF line info point at the user's lines.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ..errors import CompileError
from . import COMPAT_HEADER, TRANSLATION_VERSION

log = logging.getLogger(__name__)

EVENT_SECTION = ".bccless.types"
_OUTPUT_INCLUDES = (
    "#include <vmlinux.h>",
    "#include <bpf/bpf_helpers.h>",
    "#include <bpf/bpf_tracing.h>",
    "#include <bpf/bpf_core_read.h>",
    "#include <bpf/bpf_endian.h>",
    "#include <bccless_compat.h>",
)


@dataclass
class Translation:
    """A translated program and everything the Python side needs to know about it."""

    text: str
    filename: str
    prologue_lines: int
    user_lines: int
    maps: List["MapDecl"] = field(default_factory=list)          # noqa: F821
    programs: List["Program"] = field(default_factory=list)      # noqa: F821
    events: Dict[str, "EventType"] = field(default_factory=dict)  # noqa: F821
    tracepoints: List["TracepointStruct"] = field(default_factory=list)  # noqa: F821
    warnings: List[str] = field(default_factory=list)

    @property
    def line_map(self) -> List[Tuple[int, int, int]]:
        """(first translated line, first user line, count) segments."""
        return [(self.prologue_lines + 1, 1, self.user_lines)]

    def user_line(self, translated_line: int) -> Optional[int]:
        """The user's line for a line of :attr:`text`, None for generated lines."""
        for first, user, count in self.line_map:
            if first <= translated_line < first + count:
                return user + translated_line - first
        return None

    def metadata(self) -> dict:
        """JSON-serialisable description stored next to the compiled object."""
        return {
            "translation_version": TRANSLATION_VERSION,
            "filename": self.filename,
            "programs": [p.to_json() for p in self.programs],
            "maps": [m.to_json() for m in self.maps],
            "events": {name: e.to_json() for name, e in self.events.items()},
            "tracepoints": [t.to_json() for t in self.tracepoints],
            "line_map": [list(seg) for seg in self.line_map],
            "warnings": list(self.warnings),
        }


def translate(text: str, *, cflags: Sequence[str] = (), filename: str = "<text>",
              tracepoint_formats: Optional[Callable[[str, str], str]] = None,
              vmlinux_h: Optional[str] = None, prelude: Optional["Prelude"] = None) -> Translation:  # noqa: F821
    """Translate BCC C ``text`` into CO-RE C.

    ``tracepoint_formats(category, event)`` returns a tracefs format file's text
    (default: read the mounted tracefs).  ``vmlinux_h`` is the header to parse
    against (default: the running kernel's, generated and cached once).
    ``prelude`` (:class:`bccless.pch.Prelude` of that header) lets libclang read
    the included headers from a PCH in the cache; the output is the same.
    Raises :class:`CompileError` naming the user's file and line.
    """
    from clang import cindex as ci

    from .. import compile as driver
    from . import collisions, maps_decl, prepass, tracepoints
    from .ast_walk import K, Source, walk
    from .edits import Rewriter, replace_with
    from .methods import MethodRewriter
    from .probe_reads import rewrite_reads
    from .probes import force_inline, is_program, rewrite_program

    vmlinux_h = os.path.realpath(vmlinux_h or driver.vmlinux_header())
    parse_dir = os.path.dirname(os.path.abspath(filename)) if os.path.isfile(filename) else os.getcwd()
    parse_path = os.path.join(parse_dir, "__bccless_main__.c")
    index = ci.Index.create()
    args = _parse_args(driver, vmlinux_h, cflags, filename)
    # With the PCH, libclang visits only this file's declarations (excludeDecls).
    pch = _libclang_pch(ci, driver, prelude, filename) if prelude is not None and not cflags else None
    line_directive = f'#line 1 "{_c_string(filename)}"\n'
    warnings: List[str] = []
    tps: Optional[Dict] = None
    pch_failed: Optional[_LibclangPCH] = None
    attempt = 1
    while True:
        utext = text.encode("utf-8").decode("latin-1")
        pre = prepass.scan(index, parse_path, text, utext)
        calls = {call.start: (call, maps_decl.resolve(call.macro, call.args, filename, call.line))
                 for call in pre.map_calls}
        if tps is None:
            tps = tracepoints.build_structs(pre.tracepoints, tracepoint_formats)
        tp_text = "".join(tp.c_definition() for tp in tps.values())
        includes = "" if pch else "\n".join(_OUTPUT_INCLUDES) + "\n"
        parse_prologue = includes + maps_decl.parse_stub() + tp_text + line_directive
        parse_text = parse_prologue + _blank_includes(utext, pre.includes).encode("latin-1").decode("utf-8")
        if pch:
            try:
                tu = pch.index.parse(parse_path, args=pch.args,
                                     unsaved_files=[(parse_path, parse_text)])
                failed = any(d.severity >= 3 for d in tu.diagnostics)
            except ci.TranslationUnitLoadError:
                failed = True
            if failed:
                # A damaged PCH, or an error the plain parse reports best: parse without it.
                log.info("%s: parsing without the precompiled prelude", filename)
                pch_failed, pch = pch, None
                continue
        else:
            tu = index.parse(parse_path, args=args, unsaved_files=[(parse_path, parse_text)])
            if pch_failed is not None and not any(d.severity >= 3 for d in tu.diagnostics):
                pch_failed.discard()    # the same text parses without it: the PCH is bad
            pch_failed = None
        base = len(parse_prologue.encode("utf-8"))
        clashes = collisions.redefined_structs(tu, parse_path, parse_prologue.count("\n"))
        if clashes and pch:
            pch = None      # fix_text needs the kernel's structs among the visited declarations
            continue
        if not clashes or attempt == 2:
            break
        fixed, notes = collisions.fix_text(tu, parse_path, vmlinux_h, base, utext, pre.tokens, clashes)
        text = fixed.encode("latin-1").decode("utf-8")
        warnings += [f"{filename}: {note}" for note in notes]
        attempt = 2
    if pch:
        vmlinux_h = pch.vmlinux_h   # where the PCH's declarations say they come from
    src = Source(tu, parse_path, utext, base, filename, vmlinux_h)
    _raise_parse_errors(tu, src, parse_prologue.count("\n"))

    rw = Rewriter(utext, filename)
    for inc in pre.includes:
        if inc.angled:
            rw.add(replace_with(inc.start, inc.end, ""))
            if inc.header.startswith("bcc/proto.h"):
                warnings.append(f"{filename}: #include <bcc/proto.h>: packet header structs "
                                "are not supported")
    for call, decl in calls.values():
        rw.add(replace_with(call.start, call.end, decl.c_definition()))

    maps: Dict[str, "maps_decl.MapDecl"] = {}
    functions = []
    has_license = False
    for cursor in src.top_level():
        if cursor.kind == K.VAR_DECL:
            start = src.span(cursor)[0]
            if cursor.type.spelling.startswith("struct __bccless_tbl_"):
                if start not in calls:
                    raise src.error(cursor, "map declarations inside macros are not supported")
                maps[calls[start][1].name] = calls[start][1]
            elif cursor.spelling == "_license":
                has_license = True
        elif cursor.kind == K.FUNCTION_DECL and cursor.is_definition():
            functions.append(cursor)
    methods = MethodRewriter(src, rw, maps)
    programs = []
    for func in functions:
        if is_program(func):
            programs.append(rewrite_program(src, rw, func))
            rewrite_reads(src, rw, func)
        else:
            force_inline(src, rw, func)
        for node in walk(func):
            methods.visit(node)
    warnings += methods.warnings

    user_text = rw.render().encode("latin-1").decode("utf-8")
    epilogue = _epilogue(has_license, methods.events.values(), maps.values())
    prologue = "\n".join(_OUTPUT_INCLUDES) + "\n" + tp_text + line_directive
    for warning in warnings:
        log.warning("%s", warning)
    return Translation(text=prologue + user_text + epilogue, filename=filename,
                       prologue_lines=prologue.count("\n"), user_lines=user_text.count("\n") + 1,
                       maps=list(maps.values()), programs=programs, events=dict(methods.events),
                       tracepoints=list(tps.values()), warnings=warnings)


def _blank_includes(text: str, includes) -> str:
    """The user text with kernel header includes turned into spaces (offsets unchanged)."""
    chars = list(text)
    for inc in includes:
        if inc.angled:
            for pos in range(inc.start, inc.end):
                if chars[pos] != "\n":
                    chars[pos] = " "
    return "".join(chars)


def _c_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _parse_args(driver, vmlinux_h: str, cflags: Sequence[str], filename: str,
                language: str = "c") -> List[str]:
    # The compiler's warning switches too: what clang accepts when it builds
    # the object (e.g. -Wno-int-conversion) must not stop the parse first.
    warnings = [f for f in driver.CLANG_FLAGS if f.startswith("-Wno-")]
    args = ["-x", language, "-target", "bpf", f"-D__TARGET_ARCH_{driver.target_arch()}",
            "-D__BPF_TRACING__", "-nostdinc", *warnings,
            "-I", os.path.dirname(vmlinux_h), "-I", os.path.dirname(COMPAT_HEADER),
            "-I", driver.libbpf_include_dir()]
    if os.path.isfile(filename):
        args += ["-I", os.path.dirname(os.path.abspath(filename))]
    return args + list(cflags)


@dataclass
class _LibclangPCH:
    """How to parse against libclang's PCH of the prelude."""

    index: object
    args: List[str]
    vmlinux_h: str
    path: str

    def discard(self) -> None:
        """Remove a PCH that failed where the plain parse succeeded (e.g. stale)."""
        from ..pch import discard
        discard(self.path)


def precompile_prelude(prelude: "Prelude") -> Optional[str]:  # noqa: F821
    """Path of libclang's PCH of ``prelude``, built now if the cache lacks it (None: cannot)."""
    from clang import cindex as ci

    from .. import compile as driver
    pch = _libclang_pch(ci, driver, prelude, "<text>")
    return pch.path if pch is not None else None


def _libclang_pch(ci, driver, prelude, filename: str) -> Optional[_LibclangPCH]:
    """libclang's PCH of ``prelude`` (built and cached on first use), None if unavailable.

    vmlinux.h is given to libclang as an in-memory file at a virtual path, so the
    PCH holds its text and stays valid wherever the cache is copied."""
    version_fn = ci.conf.lib["clang_getClangVersion"]
    version_fn.restype = ci._CXString
    version = ci._CXString.from_result(version_fn())
    build_args = _parse_args(driver, prelude.virtual_vmlinux_h, (), "<text>", "c-header")
    path = prelude.path("libclang", version, build_args)
    if not prelude.usable(path) and not _precompile(ci, prelude, build_args, path):
        return None
    args = _parse_args(driver, prelude.virtual_vmlinux_h, (), filename) + ["-include-pch", path]
    return _LibclangPCH(ci.Index.create(excludeDecls=True), args, prelude.virtual_vmlinux_h, path)


def _precompile(ci, prelude, build_args: List[str], path: str) -> bool:
    """Parse the prelude once and save it as libclang's PCH at ``path``."""
    from ..pch import PRELUDE_TEXT
    tmp = prelude.temporary(path)
    if tmp is None:
        return False
    header = os.path.join(os.path.dirname(tmp), "bccless_prelude.h")
    try:
        tu = ci.Index.create().parse(
            header, args=build_args, options=ci.TranslationUnit.PARSE_INCOMPLETE,
            unsaved_files=[(header, PRELUDE_TEXT), (prelude.virtual_vmlinux_h, prelude.vmlinux_text)])
        errors = [d.spelling for d in tu.diagnostics if d.severity >= 3]
        if not errors:
            tu.save(tmp)
            prelude.install(tmp, path)
            return True
        log.info("libclang could not precompile the prelude: %s", "; ".join(errors[:3]))
    except (ci.TranslationUnitLoadError, ci.TranslationUnitSaveError, OSError) as exc:
        log.info("libclang could not precompile the prelude: %s", exc)
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    return False


def _raise_parse_errors(tu, src, prologue_lines: int) -> None:
    """Report the first parse errors with the user's line numbers and text."""
    messages = []
    for diag in tu.diagnostics:
        if diag.severity < 3:
            continue
        loc = diag.location
        text = diag.spelling
        if "in 'struct __bccless_tbl_" in text and text.startswith("no member named '"):
            text = "invalid bpf_table operation " + text.split("'")[1]
        if loc.file is not None and loc.file.name == src.parse_path and loc.line > prologue_lines:
            line = loc.line - prologue_lines
            messages.append(f"{src.filename}:{line}:{loc.column}: error: {text}\n"
                            f"{line:5d} | {src.line_text(line)}")
        elif loc.file is not None:
            messages.append(f"{loc.file.name}:{loc.line}:{loc.column}: error: {text}")
        else:
            messages.append(f"error: {text}")
        if len(messages) >= 10:
            break
    if messages:
        raise CompileError("\n".join(messages))


def _epilogue(has_license: bool, events, maps) -> str:
    lines = ["", '#line 1 "<bccless epilogue>"']
    if not has_license:
        lines.append('char _license[] SEC("license") = __bccless_xstr(BPF_LICENSE);')
    anchors = []
    for ev in events:
        if ev.file_scope:
            anchors.append((f"__bccless_event_{ev.map}", ev.type_name))
    for decl in maps:
        if decl.kind in ("queue", "stack"):
            anchors.append((f"__bccless_leaf_{decl.name}", decl.leaf_type))
    for name, ctype in anchors:
        lines.append(f'{ctype} *{name} __attribute__((section("{EVENT_SECTION}"), used));')
    return "\n".join(lines) + "\n"
