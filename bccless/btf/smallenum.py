"""A minimal ``IntEnum`` for :class:`bccless.btf.types.Kind`.

``import enum`` costs ~3 ms (it pulls functools, collections, types...), a
third of what ``bccless btf type`` may spend on top of the interpreter's own
start-up, and BTF kinds need none of enum's machinery.  Members defined with
:class:`SmallIntEnum` behave as Python 3.11's ``IntEnum`` members do where
bccless uses them: they are ints, ``Kind(4)`` and ``Kind["STRUCT"]`` return
the one member (ValueError / KeyError otherwise), members have ``name`` and
``value``, the class iterates in definition order, ``str()``/``format()`` give
the number and ``repr()`` gives ``<Kind.STRUCT: 4>``.
"""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:   # typing costs milliseconds to import; annotations are strings
    from typing import Dict, Iterator, List


class _SmallIntEnumMeta(type):
    """Turns the int class attributes of a subclass into its members."""

    def __new__(mcs, name: str, bases: tuple, namespace: dict) -> "_SmallIntEnumMeta":
        cls = super().__new__(mcs, name, bases, namespace)
        members: List[SmallIntEnum] = []
        by_value: Dict[int, SmallIntEnum] = {}
        for attr, value in namespace.items():
            if attr.startswith("_") or type(value) is not int:
                continue
            member = int.__new__(cls, value)
            member._name = attr
            by_value.setdefault(value, member)
            members.append(member)
            type.__setattr__(cls, attr, member)
        cls._members = members
        cls._by_value = by_value
        return cls

    def __call__(cls, value: int) -> "SmallIntEnum":
        try:
            return cls._by_value[value]
        except (KeyError, TypeError):
            raise ValueError(f"{value!r} is not a valid {cls.__name__}") from None

    def __getitem__(cls, name: str) -> "SmallIntEnum":
        member = cls.__dict__.get(name)
        if not isinstance(member, cls):
            raise KeyError(name)
        return member

    def __iter__(cls) -> "Iterator[SmallIntEnum]":
        return iter(cls._members)

    def __len__(cls) -> int:
        return len(cls._members)

    def __contains__(cls, member: object) -> bool:
        return isinstance(member, cls) and member in cls._members

    def __setattr__(cls, name: str, value: object) -> None:
        if isinstance(cls.__dict__.get(name), cls):
            raise AttributeError(f"cannot reassign member {name!r}")
        super().__setattr__(name, value)


class SmallIntEnum(int, metaclass=_SmallIntEnumMeta):
    """Base of int enumerations whose members are their class's int attributes."""

    _name: str

    @property
    def name(self) -> str:
        return self._name

    @property
    def value(self) -> int:
        return int(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}.{self._name}: {int(self)}>"

    __str__ = int.__repr__   # as IntEnum since 3.11: str() and format() give the number

    def __reduce__(self) -> tuple:
        return type(self), (int(self),)

    def __copy__(self) -> "SmallIntEnum":
        return self

    def __deepcopy__(self, memo: dict) -> "SmallIntEnum":
        return self
