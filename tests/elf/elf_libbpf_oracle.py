"""libbpf 1.1 (libbpf.so.1) driven through ctypes: what libbpf makes of an
object at *open* time, for comparison with :func:`open_object_spec`.

Only ``bpf_object__open_file`` is used, never load, so nothing touches the
kernel; the answers are libbpf's own parse (programs, maps, BTF after its
DATASEC/extern fix-ups).
"""
from __future__ import annotations

import ctypes
import ctypes.util
from typing import Dict, List, Optional

_vp = ctypes.c_void_p


class _OpenOpts(ctypes.Structure):
    # struct bpf_object_open_opts as of libbpf 1.1 (prefix is all we set)
    _fields_ = [("sz", ctypes.c_size_t), ("object_name", ctypes.c_char_p),
                ("relaxed_maps", ctypes.c_bool), ("pin_root_path", ctypes.c_char_p)]


_SIGS = [
    ("bpf_object__open_file", _vp, [ctypes.c_char_p, _vp]),
    ("libbpf_get_error", ctypes.c_long, [_vp]),
    ("bpf_object__close", None, [_vp]),
    ("bpf_object__next_program", _vp, [_vp, _vp]),
    ("bpf_object__next_map", _vp, [_vp, _vp]),
    ("bpf_object__btf", _vp, [_vp]),
    ("btf__raw_data", _vp, [_vp, ctypes.POINTER(ctypes.c_uint32)]),
    ("bpf_program__name", ctypes.c_char_p, [_vp]),
    ("bpf_program__section_name", ctypes.c_char_p, [_vp]),
    ("bpf_program__type", ctypes.c_int, [_vp]),
    ("bpf_program__expected_attach_type", ctypes.c_int, [_vp]),
    ("bpf_program__autoload", ctypes.c_bool, [_vp]),
    ("bpf_program__insn_cnt", ctypes.c_size_t, [_vp]),
    ("bpf_map__name", ctypes.c_char_p, [_vp]),
    ("bpf_map__type", ctypes.c_int, [_vp]),
    ("bpf_map__key_size", ctypes.c_uint32, [_vp]),
    ("bpf_map__value_size", ctypes.c_uint32, [_vp]),
    ("bpf_map__max_entries", ctypes.c_uint32, [_vp]),
    ("bpf_map__map_flags", ctypes.c_uint32, [_vp]),
    ("bpf_map__btf_value_type_id", ctypes.c_uint32, [_vp]),
    ("bpf_map__btf_key_type_id", ctypes.c_uint32, [_vp]),
    ("bpf_map__initial_value", _vp, [_vp, ctypes.POINTER(ctypes.c_size_t)]),
    ("bpf_map__get_pin_path", ctypes.c_char_p, [_vp]),
]


def _lib() -> Optional[ctypes.CDLL]:
    try:
        lib = ctypes.CDLL("libbpf.so.1", use_errno=True)
    except OSError:
        return None
    for name, res, args in _SIGS:
        f = getattr(lib, name)
        f.restype, f.argtypes = res, args
    return lib


LIB = _lib()


def open_with_libbpf(path: str, name: Optional[str] = None) -> Dict[str, object]:
    """Open ``path`` with libbpf and describe it; {'error': errno} on failure."""
    lib = LIB
    assert lib is not None
    opts = _OpenOpts(sz=ctypes.sizeof(_OpenOpts), object_name=name.encode() if name else None)
    obj = lib.bpf_object__open_file(path.encode(), ctypes.byref(opts))
    err = lib.libbpf_get_error(obj)
    if err:
        return {"error": -err}
    try:
        progs: List[dict] = []
        p = None
        while True:
            p = lib.bpf_object__next_program(obj, p)
            if not p:
                break
            progs.append(dict(name=lib.bpf_program__name(p).decode(),
                              sec=lib.bpf_program__section_name(p).decode(),
                              type=lib.bpf_program__type(p),
                              eat=lib.bpf_program__expected_attach_type(p),
                              autoload=lib.bpf_program__autoload(p),
                              insns=lib.bpf_program__insn_cnt(p)))
        maps: List[dict] = []
        m = None
        while True:
            m = lib.bpf_object__next_map(obj, m)
            if not m:
                break
            sz = ctypes.c_size_t(0)
            ptr = lib.bpf_map__initial_value(m, ctypes.byref(sz))
            pin = lib.bpf_map__get_pin_path(m)
            maps.append(dict(name=lib.bpf_map__name(m).decode(), type=lib.bpf_map__type(m),
                             key_size=lib.bpf_map__key_size(m),
                             value_size=lib.bpf_map__value_size(m),
                             max_entries=lib.bpf_map__max_entries(m),
                             flags=lib.bpf_map__map_flags(m),
                             key_type_id=lib.bpf_map__btf_key_type_id(m),
                             value_type_id=lib.bpf_map__btf_value_type_id(m),
                             data=ctypes.string_at(ptr, sz.value) if ptr else None,
                             pinned=bool(pin)))
        btf = lib.bpf_object__btf(obj)
        raw = b""
        if btf:
            n = ctypes.c_uint32(0)
            ptr = lib.btf__raw_data(btf, ctypes.byref(n))
            raw = ctypes.string_at(ptr, n.value)
        return {"programs": progs, "maps": maps, "btf": raw}
    finally:
        lib.bpf_object__close(obj)
