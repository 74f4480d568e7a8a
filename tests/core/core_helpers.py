"""Helpers for the CO-RE tests: compile BPF C with clang, read an object's
BTF / .BTF.ext / code sections, run our relocator, and ask libbpf (through
ctypes, with ``btf_custom_path``) for its answer on the same object."""
from __future__ import annotations

import ctypes
import ctypes.util
import lzma
import re
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from elftools.elf.elffile import ELFFile

from bccless.btf.parse import BTF
from bccless.core.relocate import CoreRelocator, CoreResult
from bccless.elf.btfext import parse_btf_ext

CLANG = shutil.which("clang-19") or shutil.which("clang")
DATA = Path(__file__).resolve().parent.parent / "data"

PRELUDE = r"""
#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)
#define SEC(n) __attribute__((section(n), used))
#define PAI __attribute__((preserve_access_index))
#define F_OFF(x) __builtin_preserve_field_info(x, 0)
#define F_SZ(x) __builtin_preserve_field_info(x, 1)
#define F_EXISTS(x) __builtin_preserve_field_info(x, 2)
#define F_SIGNED(x) __builtin_preserve_field_info(x, 3)
#define F_LSHIFT(x) __builtin_preserve_field_info(x, 4)
#define F_RSHIFT(x) __builtin_preserve_field_info(x, 5)
#define T_ID_LOCAL(t) __builtin_btf_type_id(*(typeof(t) *)0, 0)
#define T_ID_TARGET(t) __builtin_btf_type_id(*(typeof(t) *)0, 1)
#define T_EXISTS(t) __builtin_preserve_type_info(*(typeof(t) *)0, 0)
#define T_SIZE(t) __builtin_preserve_type_info(*(typeof(t) *)0, 1)
#define T_MATCHES(t) __builtin_preserve_type_info(*(typeof(t) *)0, 2)
#define E_EXISTS(t, v) __builtin_preserve_enum_value(*(typeof(t) *)v, 0)
#define E_VALUE(t, v) __builtin_preserve_enum_value(*(typeof(t) *)v, 1)
char _license[] SEC("license") = "GPL";
"""


def compile_c(tmp: Path, name: str, src: str, prelude: bool = True) -> Path:
    """Compile ``src`` for BPF with BTF; returns the object path.  Without the
    prelude the file is a target-type file: every type it declares is kept
    in BTF, used or not."""
    c = tmp / f"{name}.c"
    o = tmp / f"{name}.o"
    c.write_text(PRELUDE + src + "\n#pragma clang attribute pop\n" if prelude else src)
    extra = [] if prelude else ["-fno-eliminate-unused-debug-types"]
    subprocess.run([CLANG, "-g", "-O2", "-target", "bpf", "-mcpu=v3", *extra, "-c", str(c),
                    "-o", str(o)], check=True, capture_output=True, text=True)
    return o


def _sections(path: Path) -> Dict[str, bytes]:
    with open(path, "rb") as f:
        elf = ELFFile(f)
        return {s.name: s.data() for s in elf.iter_sections() if s.header.sh_type != "SHT_NOBITS"}


def elf_btf(path: Path) -> BTF:
    return BTF.from_bytes(_sections(path)[".BTF"], source=str(path))


def btf_xz(path: Path) -> BTF:
    return BTF.from_bytes(lzma.decompress(path.read_bytes()), source=str(path))


class Obj:
    """A compiled object: its BTF, code sections and CO-RE records."""

    def __init__(self, path: Path) -> None:
        self.path = path
        secs = _sections(path)
        self.btf = BTF.from_bytes(secs[".BTF"], source=str(path))
        ext = parse_btf_ext(secs[".BTF.ext"], self.btf.string, source=str(path))
        self.relos = ext.core_relos
        self.code = {name: secs[name] for name in self.relos}


def relocate(obj: Obj, target: BTF, **kw) -> Tuple[Dict[str, bytearray], List[CoreResult]]:
    """Relocate every section of ``obj`` against ``target``."""
    r = CoreRelocator(obj.btf, target, **kw)
    code: Dict[str, bytearray] = {}
    results: List[CoreResult] = []
    for sec, relos in obj.relos.items():
        buf = bytearray(obj.code[sec])
        results.extend(r.relocate(sec, buf, relos))
        code[sec] = buf
    return code, results


_SPEC = re.compile(r"^<(\w+)> \[\d+\] (.*?)(?: \([\d:]+ @ offset [\d.]+\))?$")


def values(results: List[CoreResult]) -> Dict[str, object]:
    """``'<kind> path'`` -> patched value, or 'poison'; e.g.
    ``{'byte_off struct foo.a': 4}``.  A key whose relocations disagree maps
    to a set, which no expected value will equal."""
    out: Dict[str, object] = {}
    for r in results:
        m = _SPEC.match(r.local_spec)
        assert m, r.local_spec
        key = f"{m.group(1)} {m.group(2)}"
        val = "poison" if r.poisoned else r.new_value
        if key in out and out[key] != val:
            prev = out[key]
            out[key] = (prev if isinstance(prev, set) else {prev}) | {val}
        else:
            out[key] = val
    return out


def insns(buf: bytes) -> List[Tuple[int, int, int, int]]:
    return [struct.unpack_from("<BBhi", buf, i) for i in range(0, len(buf), 8)]


# -- libbpf as an oracle ------------------------------------------------------------------

class _OpenOpts(ctypes.Structure):
    """struct bpf_object_open_opts as of libbpf 1.1 (only the prefix we set)."""

    _fields_ = [("sz", ctypes.c_size_t), ("object_name", ctypes.c_char_p),
                ("relaxed_maps", ctypes.c_bool), ("pin_root_path", ctypes.c_char_p),
                ("attach_prog_fd", ctypes.c_uint32), ("kconfig", ctypes.c_char_p),
                ("btf_custom_path", ctypes.c_char_p), ("kernel_log_buf", ctypes.c_char_p),
                ("kernel_log_size", ctypes.c_size_t), ("kernel_log_level", ctypes.c_uint32)]


class Libbpf:
    """libbpf.so.1 driven through ctypes: open an object with a custom target
    BTF, load it (relocation happens first; the kernel may then refuse the
    program, which does not matter) and read back each program's
    instructions and libbpf's CO-RE log lines."""

    _PRINT = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)

    def __init__(self) -> None:
        name = ctypes.util.find_library("bpf") or "libbpf.so.1"
        self.lib = lb = ctypes.CDLL(name, use_errno=True)
        self.libc = ctypes.CDLL(None)
        vp = ctypes.c_void_p
        for fn, res, args in [
                ("bpf_object__open_file", vp, [ctypes.c_char_p, vp]),
                ("bpf_object__load", ctypes.c_int, [vp]),
                ("bpf_object__close", None, [vp]),
                ("bpf_object__next_program", vp, [vp, vp]),
                ("bpf_program__name", ctypes.c_char_p, [vp]),
                ("bpf_program__section_name", ctypes.c_char_p, [vp]),
                ("bpf_program__insns", vp, [vp]),
                ("bpf_program__insn_cnt", ctypes.c_size_t, [vp]),
                ("libbpf_set_print", vp, [self._PRINT])]:
            f = getattr(lb, fn)
            f.restype, f.argtypes = res, args
        self.lines: List[str] = []
        self._cb = self._PRINT(self._print)

    def _print(self, level: int, fmt: bytes, ap: int) -> int:
        buf = ctypes.create_string_buffer(4096)
        self.libc.vsnprintf(buf, ctypes.c_size_t(len(buf)), fmt, ctypes.c_void_p(ap))
        self.lines.append(buf.value.decode(errors="replace"))
        return 0

    def relocate(self, obj: Path, btf_path: Path) -> Tuple[int, Dict[str, bytes], List[str]]:
        """(load error, section name -> instructions, libbpf log lines)."""
        self.lines = []
        old = self.lib.libbpf_set_print(self._cb)
        try:
            opts = _OpenOpts(sz=ctypes.sizeof(_OpenOpts), btf_custom_path=str(btf_path).encode())
            o = self.lib.bpf_object__open_file(str(obj).encode(), ctypes.byref(opts))
            if not o or o > (1 << 64) - 4096:
                raise OSError(f"libbpf could not open {obj}")
            err = self.lib.bpf_object__load(o)
            progs: Dict[str, bytes] = {}
            p = None
            while True:
                p = self.lib.bpf_object__next_program(o, p)
                if not p:
                    break
                n = self.lib.bpf_program__insn_cnt(p)
                raw = ctypes.string_at(self.lib.bpf_program__insns(p), 8 * n) if n else b""
                progs[self.lib.bpf_program__section_name(p).decode()] = raw
            self.lib.bpf_object__close(o)
        finally:
            self.lib.libbpf_set_print(ctypes.cast(old, self._PRINT) if old else self._PRINT())
        return err, progs, self.lines


def libbpf_or_none() -> Optional[Libbpf]:
    try:
        return Libbpf()
    except OSError:
        return None


def write_raw_btf(btf_obj: Path, out: Path) -> Path:
    """libbpf's btf_custom_path accepts an ELF, but a raw blob is what we
    pass for kernels; keep one code path by always writing raw BTF."""
    out.write_bytes(_sections(btf_obj)[".BTF"])
    return out
