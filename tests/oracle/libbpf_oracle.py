"""libbpf 1.1 (the system libbpf.so.1) as the reference for relocation results.

``relocate(obj, btf)`` opens an object with ``btf_custom_path`` so that CO-RE
targets the given kernel BTF, runs ``bpf_object__load`` (which relocates every
program before loading any; loading into the host kernel may then fail for a
foreign BTF, which does not matter) and returns the final instructions of
every program, plus libbpf's relocation log lines.  Needs root (libbpf creates
maps on the host before relocating); check ``relo_lines`` to be sure
relocation actually ran.
"""
from __future__ import annotations

import ctypes
import struct
from typing import Dict, List, NamedTuple, Optional

_lb = ctypes.CDLL("libbpf.so.1", use_errno=True)
_libc = ctypes.CDLL(None)
_vp = ctypes.c_void_p
_PRINT_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, _vp)
_log: List[str] = []


@_PRINT_FN
def _print(level, fmt, ap):  # x86-64: a va_list argument decays to a pointer
    buf = ctypes.create_string_buffer(4096)
    _libc.vsnprintf(buf, ctypes.c_size_t(len(buf)), fmt, _vp(ap))
    _log.append(buf.value.decode(errors="replace"))
    return 0


class _OpenOpts(ctypes.Structure):
    """struct bpf_object_open_opts of libbpf 1.1."""

    _fields_ = [("sz", ctypes.c_size_t), ("object_name", ctypes.c_char_p),
                ("relaxed_maps", ctypes.c_bool), ("pin_root_path", ctypes.c_char_p),
                ("attach_prog_fd", ctypes.c_uint32), ("kconfig", ctypes.c_char_p),
                ("btf_custom_path", ctypes.c_char_p), ("kernel_log_buf", ctypes.c_char_p),
                ("kernel_log_size", ctypes.c_size_t), ("kernel_log_level", ctypes.c_uint32)]


for _name, _res, _args in [
        ("libbpf_set_print", _vp, [_PRINT_FN]),
        ("bpf_object__open_file", _vp, [ctypes.c_char_p, _vp]),
        ("bpf_object__load", ctypes.c_int, [_vp]),
        ("bpf_object__close", None, [_vp]),
        ("bpf_object__next_program", _vp, [_vp, _vp]),
        ("bpf_program__name", ctypes.c_char_p, [_vp]),
        ("bpf_program__insns", _vp, [_vp]),
        ("bpf_program__insn_cnt", ctypes.c_size_t, [_vp]),
        ("bpf_program__autoload", ctypes.c_bool, [_vp]),
        ("bpf_object__next_map", _vp, [_vp, _vp]),
        ("bpf_map__name", ctypes.c_char_p, [_vp]),
        ("bpf_map__initial_value", _vp, [_vp, ctypes.POINTER(ctypes.c_size_t)]),
        ("libbpf_get_error", ctypes.c_long, [_vp])]:
    _f = getattr(_lb, _name)
    _f.restype, _f.argtypes = _res, _args


class OracleResult(NamedTuple):
    load_err: int
    programs: Dict[str, bytes]     # autoloaded programs' final instructions
    map_images: Dict[str, bytes]   # internal maps' initial values (.data, .kconfig, ...)
    relo_lines: List[str]          # "prog 'x': relo #N: ..." lines
    log: List[str]


def relocate(obj_path: str, btf_path: str, kconfig: Optional[str] = None) -> OracleResult:
    del _log[:]
    _lb.libbpf_set_print(_print)
    opts = _OpenOpts(sz=ctypes.sizeof(_OpenOpts), btf_custom_path=btf_path.encode(),
                     kconfig=kconfig.encode() if kconfig is not None else None)
    obj = _lb.bpf_object__open_file(obj_path.encode(), ctypes.byref(opts))
    if not obj or _lb.libbpf_get_error(obj):
        raise RuntimeError(f"libbpf cannot open {obj_path}:\n" + "".join(_log))
    try:
        err = _lb.bpf_object__load(obj)
        progs: Dict[str, bytes] = {}
        p = None
        while True:
            p = _lb.bpf_object__next_program(obj, p)
            if not p:
                break
            if not _lb.bpf_program__autoload(p):
                continue
            n = _lb.bpf_program__insn_cnt(p)
            progs[_lb.bpf_program__name(p).decode()] = ctypes.string_at(
                _lb.bpf_program__insns(p), 8 * n)
        images: Dict[str, bytes] = {}
        m = None
        while True:
            m = _lb.bpf_object__next_map(obj, m)
            if not m:
                break
            size = ctypes.c_size_t(0)
            addr = _lb.bpf_map__initial_value(m, ctypes.byref(size))
            if addr:
                images[_lb.bpf_map__name(m).decode()] = ctypes.string_at(addr, size.value)
    finally:
        _lb.bpf_object__close(obj)
    lines = [line.rstrip() for line in _log]
    return OracleResult(err, progs, images, [line for line in lines if ": relo #" in line], lines)


def mask_map_imms(insns: bytes) -> bytes:
    """Zero the imm of ld_imm64 map references (fds in libbpf, indexes in
    bccless) so that instruction streams compare."""
    out = bytearray(insns)
    for i in range(0, len(out) - 8, 8):
        if out[i] == 0x18 and (out[i + 1] >> 4) in (1, 2):
            struct.pack_into("<i", out, i + 4, 0)
    return bytes(out)
