"""Generate C (a vmlinux.h) from BTF.

The output is meant to be compiled by clang for BPF CO-RE programs, so the
guarantee that matters is layout: for every struct and union, ``sizeof`` and
every member's ``offsetof`` under clang equal the BTF's.  ``clayout`` plans
the attributes and padding that make that true, ``corder`` the declaration
order, ``cdecl`` the names and declarators; this module prints.

Like bpftool, records are wrapped in ``preserve_access_index`` (so plain
member accesses in BPF C become CO-RE relocations) unless
``BPF_NO_PRESERVE_ACCESS_INDEX`` is defined, and FUNC/VAR/DATASEC/DECL_TAG
are not printed, apart from kfunc prototypes (FUNCs tagged ``bpf_kfunc``)
behind ``BPF_NO_KFUNC_PROTOTYPES``.
"""
from __future__ import annotations


from ..errors import BTFError
from .cdecl import Declarator, Names
from .clayout import Layout
from .corder import FWD, Orderer, embedded_record
from .types import Kind

TYPE_CHECKING = False
if TYPE_CHECKING:   # typing costs milliseconds to import; annotations are strings
    from typing import Callable, Dict, Iterable, List, Optional

_HEADER = """\
#ifndef __VMLINUX_H__
#define __VMLINUX_H__

#ifndef BPF_NO_PRESERVE_ACCESS_INDEX
#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)
#endif

#ifndef __ksym
#define __ksym __attribute__((section(".ksyms")))
#endif

#ifndef __weak
#define __weak __attribute__((weak))
#endif

"""

_FOOTER = """\
#ifndef BPF_NO_PRESERVE_ACCESS_INDEX
#pragma clang attribute pop
#endif

#endif /* __VMLINUX_H__ */
"""

_KFUNC_TAG = "bpf_kfunc"
# Enum sizes other than 4 come from the kernel's own enum attributes or
# C23 fixed underlying types; GCC's and clang's mode() reproduces them.
_ENUM_MODES = {1: "QI", 2: "HI", 8: "DI"}


def _enum_value(value: int, signed: bool, wide: bool) -> str:
    if not wide:
        return str(value)
    if signed:
        if value == -(1 << 63):
            return "-9223372036854775807LL - 1"
        return f"{value}LL"
    return f"{value}ULL"


class _BulkView:
    """The BTF interface the C modules use, with kinds in a list and names
    memoised: a whole-header dump asks for them over a million times, and
    one pass up front is cheaper than decoding them on every call."""

    def __init__(self, btf) -> None:
        self._btf = btf
        self.kind = btf.kinds().__getitem__
        self._names: Dict[int, str] = {}
        self.find = btf.find
        self.find_same_name = btf.find_same_name
        self.ids_of_kind = btf.ids_of_kind
        self.ids = btf.ids
        self.resolve_size = btf.resolve_size
        self.type_count = btf.type_count

    def name(self, tid: int) -> str:
        name = self._names.get(tid)
        if name is None:
            name = self._names[tid] = self._btf.name(tid)
        return name

    def __getitem__(self, tid: int):
        return self._btf[tid]


class CWriter:
    """Prints C declarations of the types of one BTF.

    ``offsets=True`` annotates members with ``/* offset size */`` comments
    (bit offsets and widths for bit-fields), the pahole-like view that is
    handy when writing CO-RE code.
    """

    def __init__(self, btf, offsets: bool = False) -> None:
        self.btf = btf
        self.names = Names(btf)
        self.layout = Layout(btf)
        self.decls = Declarator(btf, self.names)
        self.offsets = offsets

    # -- whole header ---------------------------------------------------------

    def write_header(self, write: Callable[[str], object], kfuncs: bool = True) -> None:
        """Write a complete vmlinux.h through ``write``."""
        order = Orderer(self.btf)
        self.names.index_all()
        write(_HEADER)
        buf: List[str] = []
        for tid in order.top_level_ids():
            for action, dep in order.order(tid):
                buf.append(self.forward(dep) if action == FWD else self.definition(dep))
                if len(buf) >= 512:
                    write("".join(buf))
                    buf.clear()
        write("".join(buf))
        if kfuncs:
            write(self.kfunc_prototypes())
        write(_FOOTER)

    def kfunc_prototypes(self) -> str:
        """``extern`` prototypes of kfuncs ('' when the BTF has none)."""
        btf = self.btf
        funcs = []
        for tid in btf.ids_of_kind(Kind.DECL_TAG):
            tag = btf[tid]
            if tag.name == _KFUNC_TAG and tag.component_idx == -1 \
                    and btf.kind(tag.type) == Kind.FUNC:
                funcs.append(tag.type)
        if not funcs:
            return ""
        lines = ["/* BPF kfuncs */\n#ifndef BPF_NO_KFUNC_PROTOTYPES\n"]
        for fid in sorted(set(funcs)):
            func = btf[fid]
            text = self.decls.decl(func.type, func.name, self._inliner(0))
            lines.append(f"extern {text} __weak __ksym;\n")
        lines.append("#endif\n\n")
        return "".join(lines)

    # -- single declarations --------------------------------------------------

    def forward(self, tid: int) -> str:
        """``struct x;`` for a struct, union or FWD."""
        return f"{self.decls.base_name(tid)};\n\n"

    def definition(self, tid: int) -> str:
        """Top-level definition of a struct/union/enum/typedef."""
        btf = self.btf
        k = btf.kind(tid)
        if k in (Kind.STRUCT, Kind.UNION):
            return self.record(tid, 0) + ";\n\n"
        if k in (Kind.ENUM, Kind.ENUM64):
            return self.enum(tid, 0) + ";\n\n"
        if k == Kind.TYPEDEF:
            name = self.names.typedef(tid)
            return f"typedef {self.decls.decl(btf[tid].type, name, self._inliner(0))};\n\n"
        if k == Kind.FWD:
            return self.forward(tid)
        raise BTFError(f"type [{tid}] of kind {k.name} has no C definition")

    def _inliner(self, level: int, base: int = 0) -> Callable[[int], str]:
        """Prints anonymous types met in a declarator; ``base`` is the bit
        offset of the member being declared, for absolute offset comments."""
        def inline(tid: int) -> str:
            if self.btf.kind(tid) in (Kind.ENUM, Kind.ENUM64):
                return self.enum(tid, level)
            return self.record(tid, level, base=base)
        return inline

    def enum(self, tid: int, level: int) -> str:
        """``enum name { ... } [attrs]`` without the trailing ';'."""
        enum = self.btf[tid]
        head = self.decls.base_name(tid) if enum.name else "enum"
        if not enum.values:
            return head
        wide = self.btf.kind(tid) == Kind.ENUM64
        indent = "\t" * (level + 1)
        lines = [f"{head} {{\n"]
        for i, v in enumerate(enum.values):
            name = self.names.enumerator(tid, i)
            lines.append(f"{indent}{name} = {_enum_value(v.value, enum.signed, wide)},\n")
        lines.append("\t" * level + "}")
        lines.append(self._enum_attrs(enum))
        return "".join(lines)

    @staticmethod
    def _enum_attrs(enum) -> str:
        """mode() attribute when clang's natural enum size differs from BTF's."""
        values = [v.value for v in enum.values]
        lo, hi = min(values), max(values)
        fits32 = (lo >= -(1 << 31) and hi < (1 << 31)) or (lo >= 0 and hi < (1 << 32))
        natural = 4 if fits32 else 8
        if enum.size == natural or enum.size not in _ENUM_MODES:
            return ""
        return f" __attribute__((mode({_ENUM_MODES[enum.size]})))"

    def record(self, tid: int, level: int, anonymous: bool = False, base: int = 0) -> str:
        """``struct name { ... } [attrs]`` without the trailing ';'
        (``anonymous``: print a named record's body as an anonymous one;
        ``base``: bit offset of this record in the outermost one)."""
        btf = self.btf
        rec = btf[tid]
        kw = "union" if btf.kind(tid) == Kind.UNION else "struct"
        head = f"{kw} {self.names.tag(tid)}" if rec.name and not anonymous else kw
        plan = self.layout.plan(tid)
        if not rec.members and not rec.size:
            return f"{head} {{}}" + plan.attributes()
        indent = "\t" * (level + 1)
        lines = [f"{head} {{\n"]
        for i, m in enumerate(rec.members):
            inline = self._inliner(level + 1, base + m.bit_offset)
            for pad in plan.pads.get(i, ()):
                lines.append(f"{indent}{pad};\n")
            embedded = 0 if m.name else embedded_record(btf, m.type)
            if embedded:
                text = self.record(embedded, level + 1, anonymous=True,
                                   base=base + m.bit_offset)
            else:
                text = self.decls.decl(m.type, m.name, inline)
            if m.bitfield_size:
                text += f": {m.bitfield_size}"
            over = plan.member_align.get(i)
            if over:
                text += f" __attribute__((aligned({over})))"
            if self.offsets:
                text += ";" + self._offset_comment(m, base + m.bit_offset)
                lines.append(f"{indent}{text}\n")
            else:
                lines.append(f"{indent}{text};\n")
        if plan.tail:
            if kw == "union":
                pads = "".join(f"{indent}\t{p};\n" for p in plan.tail)
                lines.append(f"{indent}struct {{\n{pads}{indent}}};\n")
            else:
                lines.extend(f"{indent}{p};\n" for p in plan.tail)
        lines.append("\t" * level + "}" + plan.attributes())
        return "".join(lines)

    def _offset_comment(self, m, bit_offset: int) -> str:
        if m.bitfield_size:
            return f"\t/* {bit_offset // 8}:{bit_offset % 8} {m.bitfield_size} bits */"
        return f"\t/* {bit_offset // 8} {self.layout.size(m.type)} */"

    # -- one named type -------------------------------------------------------

    def type_text(self, tid: int) -> str:
        """Definition of ``tid`` preceded by forward declarations of the named
        structs/unions it mentions: readable, not meant to compile alone."""
        btf = self.btf
        order = Orderer(btf)
        fwds = []
        seen = set()
        for action, dep in order.deps(tid):
            if btf.kind(dep) in (Kind.STRUCT, Kind.UNION, Kind.FWD) and dep != tid \
                    and dep not in seen:
                seen.add(dep)
                fwds.append(self.forward(dep).rstrip("\n") + "\n")
        body = self.definition(tid)
        size_note = ""
        if btf.kind(tid) in (Kind.STRUCT, Kind.UNION):
            size_note = f"/* size: {btf[tid].size}, align: {self.layout.align(tid)} */\n"
        return "".join(fwds) + ("\n" if fwds else "") + size_note + body.rstrip("\n") + "\n"


def write_c_header(btf, write: Callable[[str], object], kfuncs: bool = True) -> None:
    """Write a layout-exact vmlinux.h for ``btf`` through ``write``."""
    CWriter(_BulkView(btf)).write_header(write, kfuncs=kfuncs)


def c_header(btf, kfuncs: bool = True) -> str:
    """A layout-exact vmlinux.h for ``btf`` as one string."""
    parts: List[str] = []
    write_c_header(btf, parts.append, kfuncs=kfuncs)
    return "".join(parts)


_KIND_WORDS = {"struct": (Kind.STRUCT, Kind.FWD), "union": (Kind.UNION, Kind.FWD),
               "enum": (Kind.ENUM, Kind.ENUM64), "typedef": (Kind.TYPEDEF,)}
_NAMED_KINDS = (Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64, Kind.TYPEDEF, Kind.FWD)


def find_named_types(btf, query: str) -> List[int]:
    """Ids of the printable types ``query`` names: ``task_struct``,
    ``struct task_struct``, ``enum pid_type``, ``hash___2`` (the C spelling of
    a renamed duplicate).  Raises BTFError with close matches when none."""
    words = query.split()
    kinds: Iterable[Kind] = _NAMED_KINDS
    if len(words) == 2 and words[0] in _KIND_WORDS:
        kinds = _KIND_WORDS[words[0]]
        name = words[1]
    elif len(words) == 1:
        name = words[0]
    else:
        raise BTFError(f"cannot parse type name {query!r}")
    wanted = set(kinds)
    ids = [t for t in btf.find(name) if btf.kind(t) in wanted]
    if not ids:
        base, sep, rank = name.rpartition("___")
        if sep and rank.isdigit():
            names = Names(btf)
            for t in btf.find(base):
                k = btf.kind(t)
                if k not in wanted:
                    continue
                spelled = names.typedef(t) if k == Kind.TYPEDEF else names.tag(t)
                if spelled == name:
                    ids.append(t)
    if not ids:
        raise BTFError(f"no type named {query!r}{_suggest(btf, name, wanted)}")
    # A FWD is only interesting when no definition of that name exists.
    defs = [t for t in ids if btf.kind(t) != Kind.FWD]
    return sorted(defs or ids)


def _suggest(btf, name: str, kinds: set) -> str:
    import difflib  # error path only: keep it off the start-up path

    candidates = set(map(btf.name, btf.ids_of_kind(*kinds)))
    candidates.discard("")
    close = difflib.get_close_matches(name, candidates, n=5, cutoff=0.75)
    lowered = name.lower()
    if len(lowered) >= 3:
        close += sorted(c for c in candidates if lowered in c.lower() and c not in close)[:5]
    return f"; did you mean: {', '.join(close[:8])}?" if close else ""


def type_c_text(btf, query: str, offsets: bool = True) -> str:
    """C text of every type ``query`` names (see ``find_named_types``)."""
    writer = CWriter(btf, offsets=offsets)
    return "\n".join(writer.type_text(t) for t in find_named_types(btf, query))


def c_type_name(btf, tid: int, names: Optional[Names] = None) -> str:
    """The C spelling (``struct foo___2``, ``u32``) of a type in the header."""
    def anonymous(t: int) -> str:
        return {Kind.UNION: "union", Kind.STRUCT: "struct"}.get(btf.kind(t), "enum") + " {...}"
    return Declarator(btf, names or Names(btf)).decl(tid, "", anonymous)
