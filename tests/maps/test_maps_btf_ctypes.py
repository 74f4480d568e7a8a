"""BTF -> ctypes: sizes, offsets and bitfields must equal BTF's layout."""
from __future__ import annotations

import ctypes
import os
import shutil
import subprocess

import pytest

from bccless.btf import (
    BTF, INT_BOOL, INT_CHAR, INT_SIGNED, Array, Const, Datasec, Enum, EnumValue, Float, Fwd,
    Int, Kind, Member, Ptr, Struct, Typedef, Union, Var, VarSecInfo, Volatile,
)
from bccless.btf_ctypes import CTypesBuilder, btf_to_ctypes
from bccless.errors import BTFError


@pytest.fixture
def types():
    """A fresh BTF with common integer types, and their ids by short name."""
    b = BTF.new()
    ids = {
        "u8": b.add(Int("unsigned char", 1)),
        "char": b.add(Int("char", 1, INT_CHAR | INT_SIGNED)),
        "bool": b.add(Int("_Bool", 1, INT_BOOL)),
        "u16": b.add(Int("short unsigned int", 2)),
        "s32": b.add(Int("int", 4, INT_SIGNED)),
        "u32": b.add(Int("unsigned int", 4)),
        "s64": b.add(Int("long long int", 8, INT_SIGNED)),
        "u64": b.add(Int("long long unsigned int", 8)),
        "u128": b.add(Int("__int128 unsigned", 16)),
    }
    return b, ids


def _offsets(ct) -> dict:
    return {name: getattr(ct, name).offset for name, *_ in ct._fields_}


def test_scalars(types):
    btf, i = types
    b = CTypesBuilder(btf)
    assert b(i["u8"]) is ctypes.c_uint8 and b(i["s32"]) is ctypes.c_int32
    assert b(i["char"]) is ctypes.c_char and b(i["bool"]) is ctypes.c_bool
    assert ctypes.sizeof(b(i["u128"])) == 16
    e = btf.add(Enum("e", 2, [EnumValue("A", -1)], signed=True))
    assert b(e) is ctypes.c_int16
    assert b(btf.add(Ptr(i["char"]))) is ctypes.c_uint64
    assert b(btf.add(Float("double", 8))) is ctypes.c_double
    td = btf.add(Typedef("u32_t", btf.add(Const(btf.add(Volatile(i["u32"]))))))
    assert b(td) is ctypes.c_uint32
    assert b(0) is None


def test_struct_offsets_padding_and_anonymous_members(types):
    btf, i = types
    comm = btf.add(Array(i["char"], i["u32"], 16))
    inner = btf.add(Struct("", 8, [Member("x", i["u32"], 0), Member("y", i["s32"], 32)]))
    anon_u = btf.add(Union("", 8, [Member("as_u64", i["u64"], 0), Member("as_u8", i["u8"], 0)]))
    task = btf.add(Struct("task", 64, [
        Member("pid", i["u32"], 0),
        Member("comm", comm, 32),                      # 4..20
        Member("", inner, 192),                        # 24..32 (hole at 20)
        Member("ptr", btf.add(Ptr(0)), 256),
        Member("", anon_u, 320),
        Member("flag", i["u8"], 384),                  # then 15 tail bytes
    ]))
    ct = btf_to_ctypes(btf, task)
    assert ctypes.sizeof(ct) == 64 == btf.resolve_size(task)
    offs = _offsets(ct)
    assert (offs["pid"], offs["comm"], offs["ptr"], offs["flag"]) == (0, 4, 32, 48)
    t = ct(pid=5)
    t.comm = b"python"
    t.x, t.y, t.as_u64 = 1, -2, 0x0102030405060708        # anonymous members flattened
    raw = bytes(t)
    assert raw[0:4] == (5).to_bytes(4, "little") and raw[4:10] == b"python"
    assert raw[24:32] == (1).to_bytes(4, "little") + (-2).to_bytes(4, "little", signed=True)
    assert raw[40:48] == (0x0102030405060708).to_bytes(8, "little") and t.as_u8 == 8
    assert ct.__name__ == "task"


def test_packed_struct(types):
    btf, i = types
    pk = btf.add(Struct("pk", 7, [Member("a", i["u8"], 0), Member("b", i["u32"], 8),
                                  Member("c", i["u16"], 40)]))
    ct = btf_to_ctypes(btf, pk)
    assert ctypes.sizeof(ct) == 7 and _offsets(ct)["b"] == 1 and _offsets(ct)["c"] == 5


def test_gcc_style_bitfields_become_ctypes_bitfields(types):
    btf, i = types
    # struct { unsigned a:3; int b:5; unsigned c:24; unsigned long long d; }
    s = btf.add(Struct("bits", 16, [Member("a", i["u32"], 0, 3), Member("b", i["s32"], 3, 5),
                                    Member("c", i["u32"], 8, 24), Member("d", i["u64"], 64)],
                       kind_flag=True))
    ct = btf_to_ctypes(btf, s)
    assert ctypes.sizeof(ct) == 16
    assert [f[0] for f in ct._fields_ if len(f) == 3] == ["a", "b", "c"]
    v = ct()
    v.a, v.b, v.c, v.d = 5, -3, 0xabcdef, 9
    word = int.from_bytes(bytes(v)[:4], "little")
    assert (word & 7, (word >> 3) & 31, word >> 8) == (5, 32 - 3, 0xabcdef)
    assert (v.a, v.b, v.c) == (5, -3, 0xabcdef)


def test_unrepresentable_bitfields_use_storage_properties(types):
    btf, i = types
    # a byte member between bitfields of one int unit: ctypes would start a new unit
    s = btf.add(Struct("mixed", 4, [Member("a", i["u32"], 0, 4), Member("m", i["u8"], 8),
                                    Member("b", i["s32"], 16, 12)], kind_flag=True))
    ct = btf_to_ctypes(btf, s)
    assert ctypes.sizeof(ct) == 4 and _offsets(ct)["m"] == 1
    v = ct()
    v.a, v.m, v.b = 9, 0x7f, -100
    word = int.from_bytes(bytes(v), "little")
    assert word & 0xf == 9 and (word >> 8) & 0xff == 0x7f
    assert ((word >> 16) & 0xfff) == (-100) & 0xfff
    assert (v.a, v.m, v.b) == (9, 0x7f, -100)


def test_datasec_and_var(types):
    btf, i = types
    v1 = btf.add(Var("counter", i["u64"]))
    v2 = btf.add(Var("enabled", i["bool"]))
    sec = btf.add(Datasec(".bss", 16, [VarSecInfo(v1, 0, 8), VarSecInfo(v2, 12, 1)]))
    ct = btf_to_ctypes(btf, sec)
    assert ctypes.sizeof(ct) == 16
    assert _offsets(ct)["counter"] == 0 and _offsets(ct)["enabled"] == 12
    assert btf_to_ctypes(btf, v1) is ctypes.c_uint64


def test_results_are_cached_and_names_unique(types):
    btf, i = types
    inner = btf.add(Struct("in", 4, [Member("v", i["u32"], 0)]))
    outer = btf.add(Struct("out", 12, [Member("x", inner, 0), Member("y", inner, 32),
                                       Member("", btf.add(Struct("", 4, [
                                           Member("z", i["u32"], 0)])), 64)]))
    b = CTypesBuilder(btf)
    ct = b(outer)
    assert dict(ct._fields_)["x"] is dict(ct._fields_)["y"] is b(inner)
    names = [f[0] for f in ct._fields_]
    assert len(names) == len(set(names))


def test_incomplete_types_are_errors(types):
    btf, _ = types
    with pytest.raises(BTFError, match="no ctypes equivalent"):
        btf_to_ctypes(btf, btf.add(Fwd("opaque")))


C_SOURCE = r"""
struct inner { char tag; short s; };
struct sample {
    unsigned int pid;
    unsigned long long ts;
    char comm[16];
    struct inner in[3];
    union { int i; unsigned char b[6]; } u;
    unsigned int flags:3, mode:7;
    int level:12;
    unsigned char tail;
    struct { long long x; } __attribute__((packed)) nested;
    unsigned long long last:40;
} __attribute__((aligned(8)));
struct __attribute__((packed)) wire { unsigned char kind; unsigned int len; unsigned short port; };
struct sample s_var;
struct wire w_var;
"""


def test_layouts_compiled_by_clang(tmp_path):
    clang = shutil.which("clang-19") or shutil.which("clang")
    if clang is None:
        pytest.skip("no clang to produce BTF from C")
    src = tmp_path / "s.c"
    src.write_text(C_SOURCE)
    obj = tmp_path / "s.o"
    subprocess.run([clang, "-target", "bpf", "-g", "-O2", "-c", str(src), "-o", str(obj)],
                   check=True, capture_output=True)
    btf = BTF.from_elf(str(obj))
    b = CTypesBuilder(btf)
    for name in ("sample", "wire", "inner"):
        (tid,) = btf.find(name, Kind.STRUCT)
        ct = b(tid)
        assert ctypes.sizeof(ct) == btf.resolve_size(tid), name
        for m in btf[tid].members:
            if m.name and not m.bitfield_size:
                assert getattr(ct, m.name).offset == m.bit_offset // 8, (name, m.name)
    (tid,) = btf.find("sample", Kind.STRUCT)
    v = b(tid)()
    v.flags, v.mode, v.level, v.last = 5, 100, -7, (1 << 40) - 1
    assert (v.flags, v.mode, v.level, v.last) == (5, 100, -7, (1 << 40) - 1)


def test_kernel_structs():
    path = "/sys/kernel/btf/vmlinux"
    if not os.path.exists(path):
        pytest.skip("kernel has no BTF at /sys/kernel/btf/vmlinux")
    from bccless.btf import load_kernel_btf

    kbtf = load_kernel_btf()
    b = CTypesBuilder(kbtf)
    for name in ("task_struct", "sk_buff", "trace_event_raw_sys_enter", "bpf_map",
                 "inode", "sock", "page"):
        (tid,) = kbtf.find(name, Kind.STRUCT)[:1]
        ct = b(tid)
        assert ctypes.sizeof(ct) == kbtf.resolve_size(tid), name
        for m in kbtf[tid].members:
            if m.name and not m.bitfield_size:
                assert getattr(ct, m.name).offset == m.bit_offset // 8, (name, m.name)
