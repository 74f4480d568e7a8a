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
identifiers (typedef names and enumerators).  Numbering follows id order
within each kind of name rather than libbpf's emission order, so an
enumerator clashing with a typedef (which libbpf may rename either way) is
the one renamed here.
"""
from __future__ import annotations


from .types import Kind

TYPE_CHECKING = False
if TYPE_CHECKING:   # typing costs milliseconds to import; annotations are strings
    from typing import Callable, Dict, List, Optional, Tuple

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
    """Unique C names for the tags, typedefs and enumerators of one BTF.

    Tags are ranked among same-named structs/unions/enums, typedefs among
    same-named typedefs, enumerators among same-named enumerators and after
    any typedef of that name (typedef names are used everywhere, enumerators
    only inside their enum, so the typedef keeps the plain spelling).

    Naming one type only needs the other types of its name
    (``btf.find_same_name``, a name-index lookup), so printing one type costs
    lookups for the types it mentions; a whole header names everything in one
    pass instead (:meth:`index_all`).
    """

    def __init__(self, btf) -> None:
        self._btf = btf
        self._names: Dict[int, str] = {}
        self._indexed = False
        self._enumerators: Optional[Dict[Tuple[int, int], str]] = None

    def tag(self, tid: int) -> str:
        """Tag name of a struct/union/enum/fwd ('' when anonymous)."""
        return self._lookup(tid)

    def typedef(self, tid: int) -> str:
        """Name of a TYPEDEF."""
        return self._lookup(tid)

    def _lookup(self, tid: int) -> str:
        cached = self._names.get(tid)
        if cached is not None:
            return cached
        btf = self._btf
        name = btf.name(tid)
        if not name:
            self._names[tid] = ""
            return ""
        self._name_group(name, btf.find_same_name(tid))
        return self._names[tid]

    def _name_group(self, name: str, same: List[int]) -> None:
        """Spell every tag and typedef among ``same`` (ids named ``name``).

        A FWD names the same C tag as the first definition of its flavor; a
        FWD with no such definition ranks after all definitions."""
        btf = self._btf
        kind = btf.kind
        defs = [i for i in same if kind(i) in _TAG_DEF_KINDS]
        names = self._names
        for rank, tid in enumerate(defs, 1):
            names[tid] = _suffixed(name, rank)
        typedefs = [i for i in same if kind(i) == Kind.TYPEDEF]
        for rank, tid in enumerate(typedefs, 1):
            names[tid] = _suffixed(name, rank)
        rank = len(defs)
        for tid in same:
            if kind(tid) != Kind.FWD:
                continue
            want = Kind.UNION if btf[tid].is_union else Kind.STRUCT
            match = next((d for d in defs if kind(d) == want), 0)
            if match:
                names[tid] = names[match]
            else:
                rank += 1
                names[tid] = _suffixed(name, rank)

    def index_all(self) -> None:
        """Name every tag and typedef in one pass over the BTF.  Names held
        by a single type (nearly all) keep their spelling without ranking."""
        if self._indexed:
            return
        btf = self._btf
        name_of = btf.name
        first: Dict[str, int] = {}
        shared: Dict[str, List[int]] = {}
        for tid in btf.ids_of_kind(*_TAG_DEF_KINDS, Kind.FWD, Kind.TYPEDEF):
            name = name_of(tid)
            other = first.setdefault(name, tid)
            if other != tid:
                shared.setdefault(name, [other]).append(tid)
        names = self._names
        for name, tid in first.items():
            names[tid] = name
        for name, same in shared.items():
            if name:
                self._name_group(name, same)
        self._indexed = True

    def enumerator(self, tid: int, index: int) -> str:
        """Name of value ``index`` of ENUM/ENUM64 ``tid``."""
        if self._enumerators is None:
            self._enumerators = self._enumerator_table()
        return self._enumerators[(tid, index)]

    def _enumerator_table(self) -> Dict[Tuple[int, int], str]:
        """Rank every enumerator once, in type id order.

        Enumerators are not types, so no name index can answer "which other
        enumerator is also called X": one pass over all enums is needed."""
        btf = self._btf
        enums = btf.ids_of_kind(Kind.ENUM, Kind.ENUM64)
        typedef_names = set(map(btf.name, btf.ids_of_kind(Kind.TYPEDEF)))
        seen: Dict[str, int] = {}
        table: Dict[Tuple[int, int], str] = {}
        for tid in enums:
            for idx, value in enumerate(btf[tid].values):
                name = value.name
                rank = seen.get(name)
                if rank is None:
                    rank = 2 if name in typedef_names else 1
                else:
                    rank += 1
                seen[name] = rank
                table[(tid, idx)] = _suffixed(name, rank)
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
