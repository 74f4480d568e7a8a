"""Program discovery, ELF sections and BCC's extra-parameter -> register mapping.

BCC treats every non-static function with a body in the main file as a
program; its kind is decided only when Python loads or attaches it.  bccless
compiles once, so every program gets its own section now:

* auto-attach names get the libbpf section their prefix implies
  (``kprobe__X`` -> ``kprobe/X``, ``tracepoint__A__B`` -> ``tracepoint/A/B``,
  ``raw_tracepoint__X`` -> ``raw_tracepoint/X``, ``kfunc__vmlinux__X`` ->
  ``fentry/X``, ...);
* any other program goes to ``bccless/<function>``: a section no libbpf prefix
  claims, so the loader must take the program type from the Python call
  (``load_func(name, BPF.KPROBE)``, ``attach_uprobe(fn_name=...)``) exactly as
  BCC does.  ``ctx_type`` in the metadata (the first parameter's type) lets
  the Python layer pick a sensible default.

Extra parameters of a program (``int kprobe__f(struct pt_regs *ctx, struct
sock *sk)``) are removed from the signature and re-declared at the top of the
body from the argument registers; ``syscall__*`` and ``kprobe____x64_sys_*``
programs read them from the pt_regs the x86-64 syscall wrapper receives.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from clang import cindex as ci

from .ast_walk import Source, body_of
from .edits import Rewriter, insert_at, replace_with
from .tracepoints import split_struct_name

MAX_EXTRA_PARAMS = 6

# name prefix -> (kind, section prefix, auto-attached by BPF())
_PREFIXES = (
    ("kprobe__", "kprobe", "kprobe/", True),
    ("kretprobe__", "kretprobe", "kretprobe/", True),
    ("raw_tracepoint__", "raw_tracepoint", "raw_tracepoint/", True),
    ("kfunc__vmlinux__", "kfunc", "fentry/", True),
    ("kretfunc__vmlinux__", "kretfunc", "fexit/", True),
    ("lsm__", "lsm", "lsm/", True),
    ("kmod_ret__", "kmod_ret", "fmod_ret/", False),
    ("bpf_iter__", "iter", "iter/", False),
)


@dataclass
class Program:
    """One program function and how the Python layer should treat it."""

    name: str
    section: str
    kind: str                 # kprobe, kretprobe, tracepoint, raw_tracepoint, kfunc, ... or ''
    target: str = ""          # function, 'cat:evt' or raw tracepoint name ('' for manual programs)
    auto_attach: bool = False
    ctx_type: str = ""
    line: int = 0
    params: List[str] = field(default_factory=list)  # extra parameters mapped to registers

    def to_json(self) -> dict:
        return {"name": self.name, "section": self.section, "kind": self.kind,
                "target": self.target, "auto_attach": self.auto_attach,
                "ctx_type": self.ctx_type, "line": self.line, "params": self.params}


def classify(name: str) -> Program:
    """Section and attach hints implied by a program's name (BCC's prefixes)."""
    if name.startswith("tracepoint__"):
        split = split_struct_name(name)
        if split:
            cat, evt = split
            return Program(name, f"tracepoint/{cat}/{evt}", "tracepoint", f"{cat}:{evt}", True)
    for prefix, kind, sec, auto in _PREFIXES:
        if name.startswith(prefix) and len(name) > len(prefix):
            target = name[len(prefix):]
            return Program(name, sec + target, kind, target, auto)
    if name.startswith("syscall__"):
        return Program(name, f"bccless/{name}", "syscall", name[len("syscall__"):], False)
    return Program(name, f"bccless/{name}", "", "", False)


def user_section(src: Source, func: "ci.Cursor") -> Optional[str]:
    """The section the user already gave the function (SEC()/section attribute), if any."""
    start, _ = src.span(func)
    name_at = func.location.offset - src.base
    if not 0 <= start <= name_at:
        return None
    head = [t for t in func.get_tokens() if t.extent.start.offset - src.base < name_at]
    for i, tok in enumerate(head):
        if tok.spelling in ("SEC", "section", "BCC_SEC"):
            for nxt in head[i + 1:i + 4]:
                if nxt.kind == ci.TokenKind.LITERAL and nxt.spelling.startswith('"'):
                    return nxt.spelling[1:-1]
    return None


def is_spelled_here(src: Source, func: "ci.Cursor") -> bool:
    """True when the function's name is written in the user's text (not a macro expansion)."""
    off = func.location.offset - src.base
    name = func.spelling
    return 0 <= off and src.text[off:off + len(name)] == name


def rewrite_program(src: Source, rw: Rewriter, func: "ci.Cursor") -> Program:
    """Add the section and the register preamble of one program function."""
    prog = classify(func.spelling)
    start, _ = src.span(func)
    prog.line = src.line_of(start)
    params = list(func.get_arguments())
    if params:
        prog.ctx_type = params[0].type.spelling
    given = user_section(src, func)
    if given is not None:
        prog.section = given
    else:
        rw.add(insert_at(start, f'SEC("{prog.section}") '))
    extra = params[1:]
    if not extra or not is_spelled_here(src, func):
        return prog
    if len(extra) > MAX_EXTRA_PARAMS:
        raise src.error(func, "too many arguments, bcc only supports in-register parameters")
    ctx_name = params[0].spelling
    if not ctx_name or any(not p.spelling for p in extra):
        raise src.error(func, "arguments to BPF program definition must be named")
    body = body_of(func)
    if body is None:
        return prog
    syscall = func.spelling.startswith(("syscall__", "kprobe____x64_sys_"))
    decls = []
    for i, param in enumerate(extra, start=1):
        reg = f"__bccless_syscall_arg{i}({ctx_name})" if syscall else f"PT_REGS_PARM{i}({ctx_name})"
        decls.append(f"{src.snippet(param)} = ({param.type.spelling}){reg};")
        prog.params.append(param.spelling)
    first_end = src.span(params[0])[1]
    last_end = src.span(extra[-1])[1]
    rw.add(replace_with(first_end, last_end, ""))
    rw.add(insert_at(src.span(body)[0] + 1, " " + " ".join(decls)))
    return prog


def force_inline(src: Source, rw: Rewriter, func: "ci.Cursor") -> None:
    """BCC inlines every static function (no BPF-to-BPF calls); keep that behaviour."""
    if is_spelled_here(src, func):
        rw.add(insert_at(src.span(func)[0], "__attribute__((always_inline)) "))


def is_program(func: "ci.Cursor") -> bool:
    return func.storage_class != ci.StorageClass.STATIC

