"""BTF-defined maps, initial slots, internal (global data) maps and their names."""
from __future__ import annotations

import pytest

from bccless.btf.types import Kind
from bccless.elf.maps import internal_map_name
from bccless.elf.object import open_object_spec
from bccless.errors import ELFError
from bccless.sys import bpf_consts as C

HDR = "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n"
PROG = 'SEC("socket") int f(void *c) { return 0; }\nchar L[] SEC("license") = "GPL";\n'


@pytest.fixture(scope="module")
def spec(full_obj):
    return open_object_spec(full_obj)


def test_user_map_order_and_shapes(spec):
    names = [m.name for m in spec.maps]
    assert names == ["inner2", "inner1", "outer", "jmp", "counts", "arr", "rb",
                     "full.data", "full.rodata", ".data.custom", ".rodata.tag", "full.bss",
                     "full.kconfig"]
    counts = spec.map("counts")
    assert (counts.map_type, counts.key_size, counts.value_size, counts.max_entries) == (
        C.BPF_MAP_TYPE_HASH, 4, 16, 1024)
    assert counts.pinning == 1
    btf = spec.btf
    assert btf.name(counts.value_type_id) == "val"
    assert btf.kind(counts.value_type_id) == Kind.STRUCT
    assert btf.name(counts.key_type_id) == "__u32"
    arr = spec.map("arr")
    assert (arr.map_type, arr.key_size, arr.value_size, arr.max_entries, arr.flags) == (
        C.BPF_MAP_TYPE_ARRAY, 4, 8, 4, C.BPF_F_RDONLY_PROG)
    assert (arr.key_type_id, arr.value_type_id) == (0, 0)
    assert all(m.sec_name == ".maps" and not m.internal for m in spec.maps[:7])


def test_ringbuf_rounded_to_pages(spec):
    import os
    page = os.sysconf("SC_PAGE_SIZE")
    rb = spec.map("rb")
    assert rb.map_type == C.BPF_MAP_TYPE_RINGBUF
    # 5000 bytes requested: libbpf rounds up to a power-of-2 number of pages
    expected = page
    while expected <= 5000:
        expected *= 2
    assert rb.max_entries == expected


def test_map_in_map_and_slots(spec):
    outer = spec.map("outer")
    assert outer.map_type == C.BPF_MAP_TYPE_ARRAY_OF_MAPS
    assert (outer.key_size, outer.value_size, outer.max_entries) == (4, 4, 3)
    assert outer.inner is not None
    inner = outer.inner
    assert inner.name == "outer.inner"
    assert (inner.map_type, inner.key_size, inner.value_size, inner.max_entries) == (
        C.BPF_MAP_TYPE_ARRAY, 4, 4, 1)
    assert outer.init_slots == {0: "inner2", 2: "inner1"}
    jmp = spec.map("jmp")
    assert jmp.map_type == C.BPF_MAP_TYPE_PROG_ARRAY
    assert jmp.value_size == 4 and jmp.inner is None
    assert jmp.init_slots == {1: "tail_a"}


def test_internal_maps(spec):
    data = spec.map(".data")
    assert data.name == "full.data" and data.internal == "data"
    assert (data.map_type, data.key_size, data.value_size, data.max_entries) == (
        C.BPF_MAP_TYPE_ARRAY, 4, 8, 1)
    assert data.data == (7).to_bytes(4, "little") + (3).to_bytes(4, "little")
    assert data.flags == C.BPF_F_MMAPABLE and data.mmapable
    assert spec.btf.name(data.value_type_id) == ".data"
    ro = spec.map("full.rodata")
    assert ro.flags == C.BPF_F_RDONLY_PROG | C.BPF_F_MMAPABLE
    assert ro.data[:4] == (42).to_bytes(4, "little") and b"hello %d\0" in ro.data
    bss = spec.map(".bss")
    assert bss.data == bytes(36) and bss.value_size == 36
    custom = spec.map(".data.custom")
    assert custom.internal == "data.custom" and custom.data == (9).to_bytes(4, "little")
    tag = spec.map(".rodata.tag")
    assert tag.data == b"abc\0\0\0\0\0" and tag.flags & C.BPF_F_RDONLY_PROG


@pytest.mark.parametrize("obj, sec, expected", [
    ("my_object_name", ".rodata", "my_objec.rodata"),
    ("my_object_name", ".bss", "my_objec.bss"),
    ("my_object_name", ".data", "my_objec.data"),
    ("my_object_name", ".kconfig", "my_obje.kconfig"),
    ("test_core_reloc", ".bss", "test_cor.bss"),
    ("full", ".data", "full.data"),
    ("x", ".rodata.abracadabra", ".rodata.abracad"),
    ("x", ".rodata.str1.1", ".rodata.str1.1"),
    ("x", ".data.custom", ".data.custom"),
    ("ks-yms", ".bss", "ks_yms.bss"),
    ("a+b c", ".data", "a_b_c.data"),
    ("\u00e9t\u00e9_obj", ".bss", "__t___ob.bss"),   # bytes, not characters (libbpf 1.1)
])
def test_internal_map_name(obj, sec, expected):
    assert internal_map_name(obj, sec) == expected


def test_string_literal_section(write_c):
    obj = write_c("str", HDR + 'SEC("socket") int f(void *c)\n'
                  '{ bpf_trace_printk("literal %d\\n", 12, 1); return 0; }\n')
    s = open_object_spec(obj)
    m = s.map(".rodata.str1.1")
    # libbpf 1.1 makes a map of it too; no DATASEC, so no BTF value type and not mmapable
    assert (m.name, m.value_size, m.flags, m.value_type_id) == (
        ".rodata.str1.1", 12, C.BPF_F_RDONLY_PROG, 0)
    assert m.data == b"literal %d\n\0"


def test_static_only_data_not_mmapable(write_c):
    obj = write_c("stat", HDR + "static volatile int x = 1;\n"
                  'SEC("socket") int f(void *c) { return x; }\n')
    m = open_object_spec(obj).map(".data")
    assert m.flags == 0 and not m.mmapable


def test_map_extra_ulong_and_numa(write_c):
    obj = write_c("bloom", HDR + "struct { __uint(type, BPF_MAP_TYPE_BLOOM_FILTER);\n"
                  "  __uint(max_entries, 16); __type(value, __u32);\n"
                  "  __uint(map_extra, 3); __uint(numa_node, 1); } bf SEC(\".maps\");\n"
                  "struct { __uint(type, BPF_MAP_TYPE_BLOOM_FILTER);\n"
                  "  __uint(max_entries, 16); __type(value, __u32);\n"
                  "  enum { X64 = 0xffffffffffULL } map_extra; } bf2 SEC(\".maps\");\n"
                  "struct { __uint(type, BPF_MAP_TYPE_BLOOM_FILTER);\n"
                  "  __uint(max_entries, 16); __type(value, __u32);\n"
                  "  enum { X32 = 5 } map_extra; } bf3 SEC(\".maps\");\n" + PROG)
    s = open_object_spec(obj)
    bf = s.map("bf")
    assert (bf.map_type, bf.map_extra, bf.numa_node, bf.value_size) == (
        C.BPF_MAP_TYPE_BLOOM_FILTER, 3, 1, 4)
    # __ulong: a one-enumerator enum member, ENUM64 when the value needs it
    assert s.map("bf2").map_extra == 0xFFFFFFFFFF
    assert s.map("bf3").map_extra == 5


@pytest.mark.parametrize("body, message", [
    ("__uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 1); __type(key, int);"
     "__type(value, int); __uint(bogus, 1);",
     "map 'm': unknown field 'bogus'."),
    ("__uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 1); __uint(key_size, 8);"
     "__type(key, int); __type(value, int);",
     "map 'm': conflicting key size 8 != 4."),
    ("__uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 1); __type(key, int);"
     "__type(value, long); __uint(value_size, 4);",
     "map 'm': conflicting value size 8 != 4."),
    ("__uint(max_entries, 1); __type(key, int); __type(value, int);",
     "map 'm': map type isn't specified."),
    ("__uint(type, BPF_MAP_TYPE_HASH); int max_entries;",
     "map 'm': attr 'max_entries': expected PTR, got int."),
    ("__uint(type, BPF_MAP_TYPE_HASH); __uint(pinning, 2);",
     "map 'm': invalid pinning value 2."),
    ("__uint(type, BPF_MAP_TYPE_HASH); __array(values, int (void *));",
     "map 'm': should be map-in-map or prog-array."),
    ("__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS); __array(values, struct { "
     "__uint(type, BPF_MAP_TYPE_ARRAY); __uint(pinning, 1); });",
     "map 'm.inner': inner def can't be pinned."),
    ("__uint(type, BPF_MAP_TYPE_PROG_ARRAY); int (*values[0])(void *); "
     "__uint(max_entries, 1);",
     "map 'm': 'values' member should be last."),
])
def test_map_def_errors(write_c, body, message):
    obj = write_c("bad", HDR + "struct { " + body + ' } m SEC(".maps");\n' + PROG)
    with pytest.raises(ELFError) as exc:
        open_object_spec(obj)
    assert str(exc.value) == f"{obj}: {message}"


def test_hash_of_maps_slot_needs_int_key(write_c):
    obj = write_c("hom", HDR + "struct inner { __uint(type, BPF_MAP_TYPE_ARRAY);"
                  " __uint(max_entries, 1); __type(key, int); __type(value, int); } i1"
                  ' SEC(".maps");\n'
                  "struct { __uint(type, BPF_MAP_TYPE_HASH_OF_MAPS); __uint(max_entries, 2);"
                  " __type(key, long); __array(values, struct inner); } o SEC(\".maps\") ="
                  " { .values = { &i1 } };\n" + PROG)
    with pytest.raises(ELFError, match=r"\.maps relo #0: hash-of-maps 'o' should have key "
                                       r"size 4\."):
        open_object_spec(obj)


def test_prog_array_slot_must_be_entry_program(write_c):
    obj = write_c("pa", HDR + "__attribute__((noinline)) int sub(void *c) { return 1; }\n"
                  "struct { __uint(type, BPF_MAP_TYPE_PROG_ARRAY); __uint(max_entries, 2);"
                  " __type(key, int); __array(values, int (void *)); } j SEC(\".maps\") ="
                  " { .values = { [1] = (void *)&sub } };\n" + PROG)
    with pytest.raises(ELFError, match=r"\.maps relo #0: 'sub' isn't a valid program "
                                       r"reference"):
        open_object_spec(obj)
