"""The 13 CO-RE relocation kinds and the error type the engine raises.

Kind numbers are uapi ``enum bpf_core_relo_kind``; the short names are the
ones libbpf prints (``<byte_off>``, ``<type_matches>``...), kept identical so
users can compare our logs with libbpf's line by line.
"""
from __future__ import annotations

import errno as _errno
from enum import IntEnum

from ..errors import RelocationError


class RelocKind(IntEnum):
    """uapi ``enum bpf_core_relo_kind``."""

    FIELD_BYTE_OFFSET = 0
    FIELD_BYTE_SIZE = 1
    FIELD_EXISTS = 2
    FIELD_SIGNED = 3
    FIELD_LSHIFT_U64 = 4
    FIELD_RSHIFT_U64 = 5
    TYPE_ID_LOCAL = 6
    TYPE_ID_TARGET = 7
    TYPE_EXISTS = 8
    TYPE_SIZE = 9
    ENUMVAL_EXISTS = 10
    ENUMVAL_VALUE = 11
    TYPE_MATCHES = 12


KIND_NAMES = {
    RelocKind.FIELD_BYTE_OFFSET: "byte_off",
    RelocKind.FIELD_BYTE_SIZE: "byte_sz",
    RelocKind.FIELD_EXISTS: "field_exists",
    RelocKind.FIELD_SIGNED: "signed",
    RelocKind.FIELD_LSHIFT_U64: "lshift_u64",
    RelocKind.FIELD_RSHIFT_U64: "rshift_u64",
    RelocKind.TYPE_ID_LOCAL: "local_type_id",
    RelocKind.TYPE_ID_TARGET: "target_type_id",
    RelocKind.TYPE_EXISTS: "type_exists",
    RelocKind.TYPE_MATCHES: "type_matches",
    RelocKind.TYPE_SIZE: "type_size",
    RelocKind.ENUMVAL_EXISTS: "enumval_exists",
    RelocKind.ENUMVAL_VALUE: "enumval_value",
}

FIELD_KINDS = frozenset(range(0, 6))
TYPE_KINDS = frozenset({6, 7, 8, 9, 12})
ENUMVAL_KINDS = frozenset({10, 11})


def kind_name(kind: int) -> str:
    """libbpf's short name of a relocation kind; 'unknown' for anything else
    (a newer compiler may emit kinds we do not know; the name still has to
    print)."""
    try:
        return KIND_NAMES[RelocKind(kind)]
    except ValueError:
        return "unknown"


def is_field_based(kind: int) -> bool:
    return kind in FIELD_KINDS


def is_type_based(kind: int) -> bool:
    return kind in TYPE_KINDS


def is_enumval_based(kind: int) -> bool:
    return kind in ENUMVAL_KINDS


class CoreRelocationError(RelocationError):
    """A CO-RE step failed; ``errno`` is the code libbpf would return
    (EINVAL, E2BIG, ERANGE, EOPNOTSUPP), ``reason`` the bare message without
    the program/relocation context that :mod:`bccless.core.relocate` adds."""

    def __init__(self, reason: str, code: int = _errno.EINVAL) -> None:
        super().__init__(reason)
        self.reason = reason
        self.errno = code
