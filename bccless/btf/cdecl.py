"""C spellings of BTF types: unique names and declarators.

Two BTF types may share a name (deduplication keeps distinct layouts that
happen to be called the same, e.g. two ``struct hash`` from different
subsystems).  C cannot hold both, so like libbpf the 2nd, 3rd... distinct type
of a name in one C namespace is spelled ``name___2``, ``name___3``; the
``___N`` suffix is also what CO-RE strips as a "flavor", so relocations
against a renamed type still match the kernel's type.  Numbering follows type
id order, which makes the spelling of a type the same whether the whole BTF
or a single type is printed.

C has two relevant namespaces: tags (struct/union/enum) and ordinary
identifiers (typedef names and enumerators).
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple

from .types import Kind

# Kinds whose names live in the C tag namespace.
_TAG_DEF_KINDS = frozenset({Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64})
_QUALIFIERS = {Kind.CONST: "const", Kind.VOLATILE: "volatile", Kind.RESTRICT: "restrict"}

# Typedefs that name compiler built-ins: declaring them again is an error, and
# the built-in may differ from the kernel's (va_list is ``char *`` for target
# bpf, a 24-byte array on x86_64), so their target type is printed instead.
BUILTIN_TYPEDEFS = frozenset({"__builtin_va_list"})


def _suffixed(name: str, rank: int) -> str:
    return name if rank <= 1 else f"{name}___{rank}"


class Names:
    """Unique C names for the tags, typedefs and enumerators of one BTF."""

    def __init__(self, btf) -> None:
        self._btf = btf
        self._tags: Dict[int, str] = {}
        self._idents: Optional[Dict[Tuple[int, int], str]] = None

    def tag(self, tid: int) -> str:
        """Tag name of a struct/union/enum/fwd ('' when anonymous)."""
        cached = self._tags.get(tid)
        if cached is not None:
            return cached
        btf = self._btf
        name = btf.name(tid)
        if not name:
            self._tags[tid] = ""
            return ""
        same = sorted(btf.find(name))
        defs = [i for i in same if btf.kind(i) in _TAG_DEF_KINDS]
        if btf.kind(tid) == Kind.FWD:
            result = self._fwd_name(tid, name, same, defs)
        else:
            result = _suffixed(name, defs.index(tid) + 1)
        self._tags[tid] = result
        return result

    def _fwd_name(self, tid: int, name: str, same: List[int], defs: List[int]) -> str:
        """A FWD names the same C tag as the first definition of its flavor;
        a FWD with no such definition gets a rank after all definitions."""
        btf = self._btf
        want = Kind.UNION if btf[tid].is_union else Kind.STRUCT
        for i in defs:
            if btf.kind(i) == want:
                return self.tag(i)
        lone = [i for i in same if btf.kind(i) == Kind.FWD
                and not any(btf.kind(d) == (Kind.UNION if btf[i].is_union else Kind.STRUCT)
                            for d in defs)]
        return _suffixed(name, len(defs) + lone.index(tid) + 1)

    def index_all(self) -> None:
        """Name every tag in one pass over the BTF.

        For a whole-header dump: one ``find`` per type would rescan the
        string section each time."""
        btf = self._btf
        kind = btf.kind
        groups: Dict[str, List[int]] = {}
        for tid in btf.ids():
            if kind(tid) in _TAG_DEF_KINDS or kind(tid) == Kind.FWD:
                name = btf.name(tid)
                if name:
                    groups.setdefault(name, []).append(tid)
                else:
                    self._tags[tid] = ""
        for name, same in groups.items():
            defs = [i for i in same if kind(i) in _TAG_DEF_KINDS]
            for rank, tid in enumerate(defs, 1):
                self._tags[tid] = _suffixed(name, rank)
            if len(defs) < len(same):
                for tid in same:
                    if kind(tid) == Kind.FWD:
                        self._tags[tid] = self._fwd_name(tid, name, same, defs)

    def typedef(self, tid: int) -> str:
        """Name of a TYPEDEF, unique among typedefs and enumerators."""
        return self._ident_table()[(tid, -1)]

    def enumerator(self, tid: int, index: int) -> str:
        """Name of value ``index`` of ENUM/ENUM64 ``tid``."""
        return self._ident_table()[(tid, index)]

    def _ident_table(self) -> Dict[Tuple[int, int], str]:
        """Rank every typedef and enumerator name once, in type id order.

        Enumerators are not types, so no name index can answer "which earlier
        identifier is also called X": one pass over all enums is needed.
        """
        if self._idents is not None:
            return self._idents
        btf = self._btf
        seen: Dict[str, int] = {}
        table: Dict[Tuple[int, int], str] = {}
        kind = btf.kind
        typedef_k, enum_k, enum64_k = Kind.TYPEDEF, Kind.ENUM, Kind.ENUM64
        for tid in btf.ids():
            k = kind(tid)
            if k == typedef_k:
                name = btf.name(tid)
                rank = seen.get(name, 0) + 1
                seen[name] = rank
                table[(tid, -1)] = _suffixed(name, rank)
            elif k == enum_k or k == enum64_k:
                for idx, value in enumerate(btf[tid].values):
                    name = value.name
                    rank = seen.get(name, 0) + 1
                    seen[name] = rank
                    table[(tid, idx)] = _suffixed(name, rank)
        self._idents = table
        return table


class Declarator:
    """Builds C declarations ``<base> <declarator>`` for BTF type chains.

    ``inline(tid)`` is called for an anonymous struct/union/enum at the bottom
    of a chain and must return its full definition text (the caller knows the
    indentation).  Qualifiers on arrays and function types are dropped, as
    libbpf does: GCC's DWARF repeats element qualifiers on arrays, and they do
    not change layout.
    """

    def __init__(self, btf, names: Names) -> None:
        self._btf = btf
        self._names = names

    def base_name(self, tid: int) -> str:
        """Spelling of a named type used by reference (no definition)."""
        btf = self._btf
        if tid == 0:
            return "void"
        k = btf.kind(tid)
        if k == Kind.STRUCT:
            return "struct " + self._names.tag(tid)
        if k == Kind.UNION:
            return "union " + self._names.tag(tid)
        if k in (Kind.ENUM, Kind.ENUM64):
            return "enum " + self._names.tag(tid)
        if k == Kind.FWD:
            return ("union " if btf[tid].is_union else "struct ") + self._names.tag(tid)
        if k == Kind.TYPEDEF:
            return self._names.typedef(tid)
        return btf.name(tid)

    def decl(self, tid: int, name: str, inline: Callable[[int], str]) -> str:
        """Declaration of ``name`` (may be '') with type ``tid``."""
        btf = self._btf
        quals: List[str] = []
        s = name
        while True:
            k = btf.kind(tid) if tid else Kind.UNKN
            if k in _QUALIFIERS:
                quals.append(_QUALIFIERS[k])
                tid = btf[tid].type
            elif k == Kind.TYPE_TAG:
                tag = btf.name(tid).replace("\\", "\\\\").replace('"', '\\"')
                quals.append(f'__attribute__((btf_type_tag("{tag}")))')
                tid = btf[tid].type
            elif k == Kind.TYPEDEF and btf.name(tid) in BUILTIN_TYPEDEFS:
                tid = btf[tid].type
            elif k == Kind.PTR:
                mods = " ".join(quals)
                s = "*" + (mods + (" " if s else "") if mods else "") + s
                quals = []
                tid = btf[tid].type
            elif k == Kind.ARRAY:
                arr = btf[tid]
                if s.startswith("*"):
                    s = f"({s})"
                s = f"{s}[{arr.nelems}]"
                quals = []
                tid = arr.type
            elif k == Kind.FUNC_PROTO:
                proto = btf[tid]
                if s.startswith("*"):
                    s = f"({s})"
                s = f"{s}({self.params(proto, inline)})"
                quals = []
                tid = proto.return_type
            else:
                break
        if tid and not btf.name(tid) and k in (Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64):
            base = inline(tid)
        else:
            base = self.base_name(tid)
        c_quals = [q for q in quals if not q.startswith("__attribute__")]
        tags = [q for q in quals if q.startswith("__attribute__")]
        text = " ".join(c_quals + [base] + tags)
        return f"{text} {s}" if s else text

    def params(self, proto, inline: Callable[[int], str]) -> str:
        """Parameter list of a FUNC_PROTO, ``void`` when empty."""
        if not proto.params:
            return "void"
        out = []
        for p in proto.params:
            if p.type == 0 and not p.name:
                out.append("...")
            else:
                out.append(self.decl(p.type, p.name, inline))
        return ", ".join(out)
