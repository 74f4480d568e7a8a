"""BTF feature probes: which BTF kinds the kernel accepts (libbpf's FEAT_BTF_*).

Each loads a minimal blob using the kind; the answers drive BTF sanitisation
(:func:`btf_features` returns them as the sanitizer's ``BTFFeatures``).
"""
from __future__ import annotations

import struct
from functools import lru_cache

from bccless.sys.probing import Probe, btf_int, btf_type, try_btf

# BTF kinds used below (enum btf_kind)
_PTR, _FUNC, _FUNC_PROTO, _VAR, _DATASEC, _FLOAT, _DECL_TAG, _TYPE_TAG, _ENUM64 = \
    2, 12, 13, 14, 15, 16, 17, 18, 19


@lru_cache(maxsize=None)
def btf() -> Probe:
    """Any BTF at all (BPF_BTF_LOAD of one int)."""
    return try_btf(btf_int(1), b"\0int\0", "BTF load")


def _btf_func(linkage: int) -> bytes:
    # int; void (int a); FUNC x with the given linkage (vlen field)
    return (btf_int(1) + btf_type(0, _FUNC_PROTO, 1, 0) + struct.pack("<II", 7, 1)
            + btf_type(5, _FUNC, linkage, 2))


@lru_cache(maxsize=None)
def btf_func() -> Probe:
    """BTF_KIND_FUNC / FUNC_PROTO (5.0)."""
    return try_btf(_btf_func(0), b"\0int\0x\0a\0", "BTF FUNC")


@lru_cache(maxsize=None)
def btf_global_func() -> Probe:
    """FUNC with global linkage (5.6)."""
    return try_btf(_btf_func(1), b"\0int\0x\0a\0", "BTF global FUNC")


def _datasec(strs: bytes, what: str) -> Probe:
    types = (btf_int(0) + btf_type(1, _VAR, 0, 1) + struct.pack("<I", 0)
             + btf_type(3, _DATASEC, 1, 4) + struct.pack("<III", 2, 0, 4))
    return try_btf(types, strs, what)


@lru_cache(maxsize=None)
def btf_datasec() -> Probe:
    """VAR and DATASEC (5.2)."""
    return _datasec(b"\0x\0.data\0", "BTF DATASEC")


@lru_cache(maxsize=None)
def btf_qmark_datasec() -> Probe:
    """DATASEC names starting with '?' (libbpf's optional sections)."""
    return _datasec(b"\0x\0?.data\0", "BTF '?' DATASEC")


@lru_cache(maxsize=None)
def btf_float() -> Probe:
    """BTF_KIND_FLOAT (5.13)."""
    return try_btf(btf_type(1, _FLOAT, 0, 4), b"\0float\0", "BTF FLOAT")


@lru_cache(maxsize=None)
def btf_decl_tag() -> Probe:
    """BTF_KIND_DECL_TAG (5.16)."""
    types = (btf_int(0) + btf_type(1, _VAR, 0, 1) + struct.pack("<I", 0)
             + btf_type(1, _DECL_TAG, 0, 2) + struct.pack("<i", -1))
    return try_btf(types, b"\0tag\0", "BTF DECL_TAG")


@lru_cache(maxsize=None)
def btf_type_tag() -> Probe:
    """BTF_KIND_TYPE_TAG (5.17)."""
    types = btf_int(0) + btf_type(1, _TYPE_TAG, 0, 1) + btf_type(0, _PTR, 0, 2)
    return try_btf(types, b"\0tag\0", "BTF TYPE_TAG")


@lru_cache(maxsize=None)
def btf_enum64() -> Probe:
    """BTF_KIND_ENUM64 (6.0)."""
    return try_btf(btf_type(1, _ENUM64, 0, 8), b"\0enum64\0", "BTF ENUM64")


def btf_features():
    """The probed BTF capabilities as the sanitizer's ``BTFFeatures``."""
    from bccless.btf.sanitize import BTFFeatures

    return BTFFeatures(func=bool(btf_func()), global_func=bool(btf_global_func()),
                       datasec=bool(btf_datasec()), qmark_datasec=bool(btf_qmark_datasec()),
                       float=bool(btf_float()), decl_tag=bool(btf_decl_tag()),
                       type_tag=bool(btf_type_tag()), enum64=bool(btf_enum64()))


