"""Declaration order for a C header generated from BTF.

C needs a type's complete definition before the type is used by value
(struct member, array element, typedef of an array), but only a declaration
before it is used through a pointer.  Pointer cycles (``struct a`` points to
``struct b`` which points back) are therefore broken with forward
declarations ``struct b;``; by-value cycles cannot exist in valid BTF.
Forward declarations are also what keeps a struct mentioned first inside a
function-pointer parameter list from being scoped to that prototype.

Anonymous structs/unions/enums are printed inline where they are used, so
their dependencies count as their user's.  Named enums are always defined
before any use (C has no forward declaration of enums).
"""
from __future__ import annotations


from .cdecl import BUILTIN_TYPEDEFS
from .types import Kind

TYPE_CHECKING = False
if TYPE_CHECKING:   # typing costs milliseconds to import; annotations are strings
    from typing import Iterator, List, Set, Tuple

FWD = "fwd"   # print ``struct x;`` / ``union x;``
DEF = "def"   # print the definition (struct/union/enum body, typedef)

_WRAPPERS = frozenset({Kind.CONST, Kind.VOLATILE, Kind.RESTRICT, Kind.TYPE_TAG})
_TOP_LEVEL = frozenset({Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64,
                        Kind.TYPEDEF, Kind.FWD})


def embedded_record(btf, tid: int) -> int:
    """The named struct/union an unnamed member embeds (0 if none).

    Kernels built with -fms-extensions (7.x) embed named records without a
    member name (``struct aes_enckey;`` inside a struct).  Plain C ignores
    such a member, so its body is printed inline as an anonymous record:
    same layout, same field names, and CO-RE matches fields by name.
    """
    while btf.kind(tid) in _WRAPPERS or btf.kind(tid) == Kind.TYPEDEF:
        tid = btf[tid].type
    if btf.kind(tid) in (Kind.STRUCT, Kind.UNION) and btf.name(tid):
        return tid
    return 0


class Orderer:
    """Yields (action, type id) so that each step only uses what came before."""

    def __init__(self, btf) -> None:
        self._btf = btf
        self._declared: Set[int] = set()
        self._state: dict = {}  # tid -> 1 (in progress) / 2 (done)

    def top_level_ids(self) -> Iterator[int]:
        """Types printed on their own in a full header, in id order: named
        records, enums, typedefs and forward declarations, plus anonymous
        enums (their enumerators are constants programs use) that no other
        type refers to (referenced ones are printed inline)."""
        btf = self._btf
        kind = btf.kind
        name = btf.name
        referenced_anon_enums = self._referenced_anon_enums()
        for tid in btf.ids_of_kind(*_TOP_LEVEL):
            k = kind(tid)
            if name(tid):
                if k != Kind.TYPEDEF or name(tid) not in BUILTIN_TYPEDEFS:
                    yield tid
            elif k in (Kind.ENUM, Kind.ENUM64) and tid not in referenced_anon_enums:
                yield tid

    def _referenced_anon_enums(self) -> Set[int]:
        """Anonymous enums that some printed declaration spells inline.

        Only chains hanging off records and typedefs are followed: those are
        decoded for printing anyway, so this costs no extra record decoding.
        """
        btf = self._btf
        kind = btf.kind
        used: Set[int] = set()
        for tid in btf.ids_of_kind(Kind.STRUCT, Kind.UNION, Kind.TYPEDEF):
            k = kind(tid)
            if k in (Kind.STRUCT, Kind.UNION):
                for m in btf[tid].members:
                    self._collect_anon_enum(m.type, used)
            elif k == Kind.TYPEDEF:
                self._collect_anon_enum(btf[tid].type, used)
        return used

    def _collect_anon_enum(self, tid: int, used: Set[int]) -> None:
        btf = self._btf
        while tid:
            k = btf.kind(tid)
            if k in _WRAPPERS or k in (Kind.PTR, Kind.ARRAY, Kind.TYPEDEF):
                if k == Kind.TYPEDEF and btf.name(tid) not in BUILTIN_TYPEDEFS:
                    return
                tid = btf[tid].type
            elif k == Kind.FUNC_PROTO:
                proto = btf[tid]
                for p in proto.params:
                    self._collect_anon_enum(p.type, used)
                tid = proto.return_type
            else:
                if k in (Kind.ENUM, Kind.ENUM64) and not btf.name(tid):
                    used.add(tid)
                return

    def order(self, root: int) -> List[Tuple[str, int]]:
        """Steps needed to define ``root``, itself last (nothing for a type
        already printed).  An explicit stack instead of recursion: kernel
        dependency chains can be thousands of types deep."""
        out: List[Tuple[str, int]] = []
        state = self._state
        if state.get(root) == 2:
            return out
        if self._btf.kind(root) == Kind.FWD:
            self._forward(root, out)
            state[root] = 2
            return out
        state[root] = 1
        stack = [(root, iter(self.deps(root)))]
        while stack:
            tid, it = stack[-1]
            for action, dep in it:
                if action == FWD:
                    self._forward(dep, out)
                    continue
                st = state.get(dep)
                if st == 2:
                    continue
                if st == 1:
                    # By-value cycle: only malformed BTF; declare and move on.
                    self._forward(dep, out)
                    continue
                state[dep] = 1
                stack.append((dep, iter(self.deps(dep))))
                break
            else:
                stack.pop()
                out.append((DEF, tid))
                state[tid] = 2
                self._declared.add(tid)
        return out

    def _forward(self, tid: int, out: List[Tuple[str, int]]) -> None:
        if tid not in self._declared and self._state.get(tid) != 2:
            self._declared.add(tid)
            out.append((FWD, tid))

    # -- dependency discovery -------------------------------------------------

    def deps(self, tid: int) -> List[Tuple[str, int]]:
        """What the definition of ``tid`` needs printed before it."""
        btf = self._btf
        out: List[Tuple[str, int]] = []
        k = btf.kind(tid)
        if k in (Kind.STRUCT, Kind.UNION):
            self._body_deps(tid, out)
        elif k == Kind.TYPEDEF:
            self._ref_deps(btf[tid].type, out)
        return out

    def _body_deps(self, tid: int, out: List[Tuple[str, int]]) -> None:
        for m in self._btf[tid].members:
            embedded = 0 if m.name else embedded_record(self._btf, m.type)
            if embedded:
                self._body_deps(embedded, out)
            else:
                self._value_deps(m.type, out)

    def _value_deps(self, tid: int, out: List[Tuple[str, int]]) -> None:
        """``tid`` is used by value: its complete type must be known."""
        btf = self._btf
        while tid:
            k = btf.kind(tid)
            if k in _WRAPPERS or k == Kind.ARRAY:
                tid = btf[tid].type
            elif k == Kind.TYPEDEF:
                if btf.name(tid) not in BUILTIN_TYPEDEFS:
                    out.append((DEF, tid))
                tid = btf[tid].type
            elif k in (Kind.STRUCT, Kind.UNION):
                if btf.name(tid):
                    out.append((DEF, tid))
                else:
                    self._body_deps(tid, out)
                return
            elif k in (Kind.ENUM, Kind.ENUM64):
                if btf.name(tid):
                    out.append((DEF, tid))
                return
            elif k == Kind.FWD:
                out.append((FWD, tid))
                return
            elif k in (Kind.PTR, Kind.FUNC_PROTO):
                self._ref_deps(tid, out)
                return
            else:
                return

    def _ref_deps(self, tid: int, out: List[Tuple[str, int]]) -> None:
        """``tid`` is only named (behind a pointer, in a prototype, as a
        typedef's target): a declaration suffices, except where the name
        itself needs a complete type (arrays) or is an inline definition."""
        btf = self._btf
        while tid:
            k = btf.kind(tid)
            if k in _WRAPPERS or k == Kind.PTR:
                tid = btf[tid].type
            elif k == Kind.ARRAY:
                self._value_deps(btf[tid].type, out)
                return
            elif k == Kind.TYPEDEF:
                if btf.name(tid) in BUILTIN_TYPEDEFS:
                    tid = btf[tid].type
                    continue
                out.append((DEF, tid))
                return
            elif k in (Kind.STRUCT, Kind.UNION):
                if btf.name(tid):
                    out.append((FWD, tid))
                else:
                    self._body_deps(tid, out)
                return
            elif k in (Kind.ENUM, Kind.ENUM64):
                if btf.name(tid):
                    out.append((DEF, tid))
                return
            elif k == Kind.FWD:
                out.append((FWD, tid))
                return
            elif k == Kind.FUNC_PROTO:
                proto = btf[tid]
                self._ref_deps(proto.return_type, out)
                for p in proto.params:
                    self._ref_deps(p.type, out)
                return
            else:
                return
