"""BTF type records as plain Python objects.

This module is the contract between the BTF parser/encoder and everything that
reads types (the C header generator, the CO-RE relocator, the object loader,
the BCC layer).  Records are small mutable ``__slots__`` classes so that an
object's BTF can be fixed up (DATASEC sizes, sanitisation) before it is
encoded again.  Type references are integer BTF ids, never Python objects, so
that a split (module) BTF can point into its base.
"""
from __future__ import annotations

from .smallenum import SmallIntEnum

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: typing costs milliseconds to import
    from typing import List, Optional


class Kind(SmallIntEnum):
    """BTF_KIND_* values from the kernel's uapi btf.h (an int enum without
    :mod:`enum`, whose import alone costs a third of ``bccless btf type``)."""

    UNKN = 0
    INT = 1
    PTR = 2
    ARRAY = 3
    STRUCT = 4
    UNION = 5
    ENUM = 6
    FWD = 7
    TYPEDEF = 8
    VOLATILE = 9
    CONST = 10
    RESTRICT = 11
    FUNC = 12
    FUNC_PROTO = 13
    VAR = 14
    DATASEC = 15
    FLOAT = 16
    DECL_TAG = 17
    TYPE_TAG = 18
    ENUM64 = 19


# BTF_INT_* encoding bits.
INT_SIGNED = 1 << 0
INT_CHAR = 1 << 1
INT_BOOL = 1 << 2

# FUNC linkage (btf_func_linkage) and VAR linkage (btf_var_linkage).
FUNC_STATIC = 0
FUNC_GLOBAL = 1
FUNC_EXTERN = 2
VAR_STATIC = 0
VAR_GLOBAL_ALLOCATED = 1
VAR_GLOBAL_EXTERN = 2

MODIFIER_KINDS = frozenset({Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG})
COMPOSITE_KINDS = frozenset({Kind.STRUCT, Kind.UNION})
ENUM_KINDS = frozenset({Kind.ENUM, Kind.ENUM64})


class Type:
    """Base of all records.  ``kind`` is a class attribute; ``name`` may be ''."""

    __slots__ = ("name",)
    kind: Kind = Kind.UNKN

    def __init__(self, name: str = "") -> None:
        self.name = name

    def __repr__(self) -> str:
        fields = ", ".join(f"{s}={getattr(self, s)!r}" for s in _all_slots(type(self)))
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and all(
            getattr(self, s) == getattr(other, s) for s in _all_slots(type(self)))

    __hash__ = None  # type: ignore[assignment]  # records are mutable


def _all_slots(cls: type) -> List[str]:
    out: List[str] = []
    for c in reversed(cls.__mro__):
        out.extend(getattr(c, "__slots__", ()))
    return out


class Void(Type):
    """Type id 0.  Never stored in the type section."""

    __slots__ = ()
    kind = Kind.UNKN


class Int(Type):
    __slots__ = ("size", "encoding", "offset", "bits")
    kind = Kind.INT

    def __init__(self, name: str, size: int, encoding: int = 0, offset: int = 0,
                 bits: Optional[int] = None) -> None:
        super().__init__(name)
        self.size = size
        self.encoding = encoding  # INT_SIGNED | INT_CHAR | INT_BOOL
        self.offset = offset      # BTF_INT_OFFSET, non-zero only in odd BTF
        self.bits = size * 8 if bits is None else bits

    @property
    def signed(self) -> bool:
        return bool(self.encoding & INT_SIGNED)


class Ptr(Type):
    __slots__ = ("type",)
    kind = Kind.PTR

    def __init__(self, type: int, name: str = "") -> None:
        super().__init__(name)
        self.type = type


class Array(Type):
    __slots__ = ("type", "index_type", "nelems")
    kind = Kind.ARRAY

    def __init__(self, type: int, index_type: int, nelems: int, name: str = "") -> None:
        super().__init__(name)
        self.type = type
        self.index_type = index_type
        self.nelems = nelems


class Member:
    """A struct/union member.  ``bit_offset`` is always in bits; ``bitfield_size``
    is 0 for a non-bitfield member.  The encoder re-packs these according to the
    owning record's ``kind_flag``."""

    __slots__ = ("name", "type", "bit_offset", "bitfield_size")

    def __init__(self, name: str, type: int, bit_offset: int, bitfield_size: int = 0) -> None:
        self.name = name
        self.type = type
        self.bit_offset = bit_offset
        self.bitfield_size = bitfield_size

    def __repr__(self) -> str:
        return (f"Member({self.name!r}, type={self.type}, bit_offset={self.bit_offset}, "
                f"bitfield_size={self.bitfield_size})")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Member) and (
            self.name, self.type, self.bit_offset, self.bitfield_size) == (
            other.name, other.type, other.bit_offset, other.bitfield_size)

    __hash__ = None  # type: ignore[assignment]


class Composite(Type):
    __slots__ = ("size", "members", "kind_flag")

    def __init__(self, name: str, size: int, members: List[Member],
                 kind_flag: bool = False) -> None:
        super().__init__(name)
        self.size = size
        self.members = members
        self.kind_flag = kind_flag  # members' offsets carry bitfield sizes


class Struct(Composite):
    __slots__ = ()
    kind = Kind.STRUCT


class Union(Composite):
    __slots__ = ()
    kind = Kind.UNION


class EnumValue:
    __slots__ = ("name", "value")

    def __init__(self, name: str, value: int) -> None:
        self.name = name
        self.value = value  # a Python int, already sign-interpreted when signed

    def __repr__(self) -> str:
        return f"EnumValue({self.name!r}, {self.value})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EnumValue) and (self.name, self.value) == (other.name, other.value)

    __hash__ = None  # type: ignore[assignment]


class Enum(Type):
    """ENUM (32-bit values).  ``signed`` is the kind_flag."""

    __slots__ = ("size", "values", "signed")
    kind = Kind.ENUM

    def __init__(self, name: str, size: int, values: List[EnumValue], signed: bool = False) -> None:
        super().__init__(name)
        self.size = size
        self.values = values
        self.signed = signed


class Enum64(Enum):
    __slots__ = ()
    kind = Kind.ENUM64


class Fwd(Type):
    __slots__ = ("is_union",)
    kind = Kind.FWD

    def __init__(self, name: str, is_union: bool = False) -> None:
        super().__init__(name)
        self.is_union = is_union


class Typedef(Type):
    __slots__ = ("type",)
    kind = Kind.TYPEDEF

    def __init__(self, name: str, type: int) -> None:
        super().__init__(name)
        self.type = type


class Modifier(Type):
    __slots__ = ("type",)

    def __init__(self, type: int, name: str = "") -> None:
        super().__init__(name)
        self.type = type


class Volatile(Modifier):
    __slots__ = ()
    kind = Kind.VOLATILE


class Const(Modifier):
    __slots__ = ()
    kind = Kind.CONST


class Restrict(Modifier):
    __slots__ = ()
    kind = Kind.RESTRICT


class TypeTag(Modifier):
    """TYPE_TAG: ``name`` is the tag text (e.g. 'user', 'rcu').

    ``attr`` is the kind flag: the tag is a C type attribute
    (``__attribute__((address_space(1)))``) rather than a ``btf_type_tag``.
    """

    __slots__ = ("attr",)
    kind = Kind.TYPE_TAG

    def __init__(self, name: str, type: int, attr: bool = False) -> None:
        super().__init__(type, name)
        self.attr = attr


class Func(Type):
    __slots__ = ("type", "linkage")
    kind = Kind.FUNC

    def __init__(self, name: str, type: int, linkage: int = FUNC_STATIC) -> None:
        super().__init__(name)
        self.type = type  # a FUNC_PROTO id
        self.linkage = linkage


class Param:
    __slots__ = ("name", "type")

    def __init__(self, name: str, type: int) -> None:
        self.name = name
        self.type = type  # 0 with name '' marks a trailing '...'

    def __repr__(self) -> str:
        return f"Param({self.name!r}, {self.type})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Param) and (self.name, self.type) == (other.name, other.type)

    __hash__ = None  # type: ignore[assignment]


class FuncProto(Type):
    __slots__ = ("return_type", "params")
    kind = Kind.FUNC_PROTO

    def __init__(self, return_type: int, params: List[Param], name: str = "") -> None:
        super().__init__(name)
        self.return_type = return_type
        self.params = params

    @property
    def variadic(self) -> bool:
        return bool(self.params) and self.params[-1].type == 0 and not self.params[-1].name


class Var(Type):
    __slots__ = ("type", "linkage")
    kind = Kind.VAR

    def __init__(self, name: str, type: int, linkage: int = VAR_STATIC) -> None:
        super().__init__(name)
        self.type = type
        self.linkage = linkage


class VarSecInfo:
    __slots__ = ("type", "offset", "size")

    def __init__(self, type: int, offset: int, size: int) -> None:
        self.type = type  # a VAR or FUNC id
        self.offset = offset
        self.size = size

    def __repr__(self) -> str:
        return f"VarSecInfo(type={self.type}, offset={self.offset}, size={self.size})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VarSecInfo) and (self.type, self.offset, self.size) == (
            other.type, other.offset, other.size)

    __hash__ = None  # type: ignore[assignment]


class Datasec(Type):
    __slots__ = ("size", "vars")
    kind = Kind.DATASEC

    def __init__(self, name: str, size: int, vars: List[VarSecInfo]) -> None:
        super().__init__(name)
        self.size = size
        self.vars = vars


class Float(Type):
    __slots__ = ("size",)
    kind = Kind.FLOAT

    def __init__(self, name: str, size: int) -> None:
        super().__init__(name)
        self.size = size


class DeclTag(Type):
    """DECL_TAG: ``component_idx`` is -1 for the whole declaration.

    ``attr`` is the kind flag: the tag is a C declaration attribute
    (``__attribute__((...))``) rather than a ``btf_decl_tag``.
    """

    __slots__ = ("type", "component_idx", "attr")
    kind = Kind.DECL_TAG

    def __init__(self, name: str, type: int, component_idx: int = -1,
                 attr: bool = False) -> None:
        super().__init__(name)
        self.type = type
        self.component_idx = component_idx
        self.attr = attr


KIND_CLASSES = {
    Kind.INT: Int, Kind.PTR: Ptr, Kind.ARRAY: Array, Kind.STRUCT: Struct,
    Kind.UNION: Union, Kind.ENUM: Enum, Kind.FWD: Fwd, Kind.TYPEDEF: Typedef,
    Kind.VOLATILE: Volatile, Kind.CONST: Const, Kind.RESTRICT: Restrict,
    Kind.FUNC: Func, Kind.FUNC_PROTO: FuncProto, Kind.VAR: Var,
    Kind.DATASEC: Datasec, Kind.FLOAT: Float, Kind.DECL_TAG: DeclTag,
    Kind.TYPE_TAG: TypeTag, Kind.ENUM64: Enum64,
}


def essential_name(name: str) -> str:
    """libbpf's flavor rule: cut at the last ``X___Y`` where neither the
    character before nor after the triple underscore is ``_``.

    ``task_struct___new`` -> ``task_struct``; ``a____b`` is left alone.
    """
    # Scan right to left for X___Y with X and Y not underscores, as libbpf does.
    for i in range(len(name) - 4, 0, -1):
        if (name[i] == "_" and name[i + 1] == "_" and name[i + 2] == "_"
                and name[i - 1] != "_" and name[i + 3] != "_"):
            return name[:i]
    return name
