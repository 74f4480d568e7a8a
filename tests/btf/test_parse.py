"""Parsing: every kind's fields, lookups, sizes, malformed input, clang objects,
and a whole-kernel cross-check against bpftool's JSON dump."""
from __future__ import annotations

import json
import shutil
import struct
import subprocess

import pytest

from bccless.btf import (
    BTF, FUNC_GLOBAL, FUNC_STATIC, VAR_GLOBAL_ALLOCATED, VAR_STATIC, Int, Kind, Struct, Void,
    essential_name,
)
from bccless.errors import BTFError, ELFError

from .conftest import KERNELS, build_all_kinds
from .rawbtf import RawBTF, members

BPFTOOL = shutil.which("bpftool")


def test_every_kind_decodes_to_expected_record(all_kinds):
    blob, expected = all_kinds
    btf = BTF.from_bytes(blob)
    assert btf.start_id == 1 and btf.type_count == len(expected) + 1 == len(btf)
    assert btf.ids() == range(1, len(expected) + 1)
    assert {btf.kind(t) for t in btf.ids()} == set(Kind) - {Kind.UNKN}
    for tid, exp in expected.items():
        assert btf.kind(tid) == exp.kind, tid
        assert btf.name(tid) == exp.name, tid
        assert btf[tid] == exp, tid
        assert btf[tid] is btf[tid]  # decoded once, then cached


def test_big_endian_blob(all_kinds):
    raw, expected = build_all_kinds()
    be = raw.blob(">")
    assert be[:2] == b"\xeb\x9f"
    btf = BTF.from_bytes(be)
    for tid, exp in expected.items():
        assert btf[tid] == exp, tid
    assert btf.encode() == be
    btf.add(Int("extra", 2))
    out = btf.encode()
    assert out[:2] == b"\xeb\x9f"
    again = BTF.from_bytes(out)
    assert again[len(expected) + 1] == Int("extra", 2)
    assert all(again[t] == e for t, e in expected.items())


def test_void_bad_ids_and_strings(all_kinds):
    btf = BTF.from_bytes(all_kinds[0])
    assert isinstance(btf[0], Void) and btf.kind(0) == Kind.UNKN and btf.name(0) == ""
    for bad in (len(btf), len(btf) + 100, -1):
        with pytest.raises(BTFError):
            btf[bad]
        with pytest.raises(BTFError):
            btf.kind(bad)
    assert btf.string(0) == "" and btf.string(1) == "int"
    assert btf.string(2) == "nt"  # offsets may point inside a string
    with pytest.raises(BTFError, match="string offset"):
        btf.string(10 ** 6)


def test_find_and_flavors(all_kinds):
    btf = BTF.from_bytes(all_kinds[0])
    foo = btf.find("foo")
    assert len(foo) == 1 and btf.name(foo[0]) == "foo"
    assert btf.find("foo", Kind.STRUCT) == foo and btf.find("foo", Kind.UNION) == []
    assert btf.find("missing") == [] and btf.find("fo") == [] and btf.find("oo") == []
    flavors = btf.find_essential("foo")
    assert [btf.name(t) for t in flavors] == ["foo___v1", "foo", "foo___2"]
    assert flavors == sorted(flavors)
    assert btf.find_essential("foo", Kind.UNION) == []
    assert btf.find_essential("a____b") == btf.find("a____b") != []
    assert btf.find_essential("a") == []
    assert essential_name("foo___v1") == "foo"
    anonymous = btf.find("")
    assert anonymous and all(btf.name(t) == "" for t in anonymous)
    assert len(anonymous) == sum(1 for t in btf.ids() if not btf.name(t))


def test_find_mid_string_offsets_duplicates_and_index():
    """name_off may point into the middle of a string; several types may share a
    name; results must not change once the lookup switches to a full index."""
    r = RawBTF(strings=b"\0xfoo\0")
    i = r.rec("INT", "int", 4, extra=[32])
    r.records.append([1, 4 << 24, 4])  # STRUCT named "xfoo" (offset 1)
    r.records.append([2, 4 << 24, 4])  # STRUCT named "foo" (offset 2, inside "xfoo")
    r.next_id += 2
    d1 = r.rec("STRUCT", "dup", 4)
    d2 = r.rec("UNION", "dup", 4)
    d3 = r.rec("TYPEDEF", "dup", i)
    btf = BTF.from_bytes(r.blob())
    for _ in range(40):  # past the number of scans after which an index is built
        assert btf.find("xfoo") == [2] and btf.find("foo") == [3]
        assert btf.find("dup") == [d1, d2, d3]
        assert btf.find("dup", Kind.UNION) == [d2]
        assert btf.find("int") == [i] and btf.find("nothing") == []


def test_resolve_size_and_skips(all_kinds):
    btf = BTF.from_bytes(all_kinds[0])

    def one(name, kind=None):
        ids = btf.find(name, kind)
        assert len(ids) == 1, (name, ids)
        return ids[0]

    i = one("int")
    arr10 = next(t for t in btf.ids() if btf.kind(t) == Kind.ARRAY and btf[t].nelems == 10)
    ptr = next(t for t in btf.ids() if btf.kind(t) == Kind.PTR)
    cnst = next(t for t in btf.ids() if btf.kind(t) == Kind.CONST and
                btf.kind(btf[t].type) == Kind.TYPEDEF)
    assert btf.resolve_size(i) == 4 and btf.resolve_size(ptr) == 8
    assert btf.resolve_size(arr10) == 40
    assert btf.resolve_size(one("bits")) == 16 and btf.resolve_size(one("u")) == 4
    assert btf.resolve_size(one("myint")) == 4
    assert btf.resolve_size(cnst) == 12  # const arr_t -> myint[3]
    assert btf.resolve_size(one("v")) == 4 and btf.resolve_size(one(".data")) == 4
    assert btf.resolve_size(one("e64")) == 8 and btf.resolve_size(one("double")) == 8
    assert btf.resolve_size(one("tag_a")) == 16
    for bad in (0, one("f"), one("fwd_union"), btf[one("f")].type):
        with pytest.raises(BTFError, match="size"):
            btf.resolve_size(bad)
    arr = btf[one("arr_t")].type
    assert btf.skip_mods_and_typedefs(cnst) == arr
    assert btf.skip_mods(cnst) == one("arr_t")
    assert btf.skip_mods(i) == i and btf.skip_mods_and_typedefs(one("myint")) == i
    user = one("user")
    assert btf.skip_mods(user) == i


def test_modifier_loop_is_an_error():
    r = RawBTF()
    r.rec("CONST", "", 2)
    r.rec("VOLATILE", "", 1)
    btf = BTF.from_bytes(r.blob())
    with pytest.raises(BTFError, match="deeper"):
        btf.skip_mods(1)
    with pytest.raises(BTFError, match="deeper"):
        btf.resolve_size(1)


def _header(blob: bytes, **fields) -> bytes:
    names = ["magic", "version", "flags", "hdr_len", "type_off", "type_len", "str_off", "str_len"]
    values = dict(zip(names, struct.unpack_from("<HBBIIIII", blob)))
    values.update(fields)
    return struct.pack("<HBBIIIII", *(values[n] for n in names)) + blob[24:]


@pytest.mark.parametrize("mutate, offset, message", [
    (lambda b: b[:10], 0, "shorter than"),
    (lambda b: b"\x00\x00" + b[2:], 0, "bad magic"),
    (lambda b: _header(b, version=2), 2, "version 2"),
    (lambda b: _header(b, hdr_len=8), 4, "header length 8"),
    (lambda b: _header(b, hdr_len=1 << 30), 4, "header length"),
    (lambda b: _header(b, type_len=6), 8, "multiple of 4"),
    (lambda b: _header(b, type_off=2), 8, "multiple of 4"),
    (lambda b: _header(b, str_len=1 << 20), 16, "runs past"),
    (lambda b: _header(b, type_len=1 << 20), 8, "runs past"),
    (lambda b: b[:-1], 16, "runs past"),
    (lambda b: b[:-1] + b"x", None, "does not end with a NUL"),
])
def test_malformed_headers(all_kinds, mutate, offset, message):
    with pytest.raises(BTFError, match=message) as info:
        BTF.from_bytes(mutate(all_kinds[0]), source="bad.btf")
    if offset is not None:
        assert info.value.offset == offset
    assert "bad.btf" in str(info.value)


def test_malformed_records():
    r = RawBTF()
    r.rec("INT", "int", 4, extra=[32])
    r.records.append([0, 25 << 24, 0])  # unknown kind 25
    with pytest.raises(BTFError, match="unknown BTF kind 25") as info:
        BTF.from_bytes(r.blob())
    assert info.value.offset == 24 + 16 + 4  # the info word of the second record

    r = RawBTF()
    r.rec("STRUCT", "s", 4, vlen=1000, extra=[0, 0, 0])  # vlen runs past the section
    with pytest.raises(BTFError, match="vlen 1000") as info:
        BTF.from_bytes(r.blob())
    assert info.value.offset == 24

    r = RawBTF()
    r.rec("PTR", "", 7)  # refers to a type that does not exist
    r.records.append([1 << 20, 1 << 24, 4, 32])  # INT whose name is out of range
    btf = BTF.from_bytes(r.blob())
    with pytest.raises(BTFError, match="refers to type id 7") as info:
        btf[1]
    assert info.value.offset == 24
    with pytest.raises(BTFError, match="string offset") as info:
        btf.name(2)
    assert info.value.offset == 24 + 12


def test_larger_header_keeps_unknown_fields(all_kinds):
    blob, expected = all_kinds
    raw, _ = build_all_kinds()
    for tail in (b"\0" * 8, b"\1\0\0\0\2\0\0\0"):
        big = raw.blob(hdr_tail=tail)
        btf = BTF.from_bytes(big)
        assert all(btf[t] == e for t, e in expected.items())
        assert btf.encode() == big
        btf.add(Int("extra", 2))
        if tail.strip(b"\0"):
            with pytest.raises(BTFError, match="header"):
                btf.encode()
        else:
            out = btf.encode()
            assert struct.unpack_from("<I", out, 4)[0] == 32 and out[24:32] == tail
            assert BTF.from_bytes(out)[len(expected) + 1] == Int("extra", 2)


def test_clang_object(kinds_object):
    btf = BTF.from_elf(str(kinds_object))
    assert BTF.from_elf(kinds_object.read_bytes()).encode() == btf.encode()

    def one(name, kind):
        ids = btf.find(name, kind)
        assert len(ids) == 1, (name, ids)
        return ids[0]

    bits = btf[one("bits", Kind.STRUCT)]
    assert bits.kind_flag and bits.size == 24
    assert [(m.name, m.bit_offset, m.bitfield_size) for m in bits.members] == [
        ("a", 0, 3), ("b", 3, 13), ("c", 16, 0), ("d", 24, 40), ("arr", 64, 0)]
    small, usmall = btf[one("small", Kind.ENUM)], btf[one("usmall", Kind.ENUM)]
    assert small.signed and [(v.name, v.value) for v in small.values] == [
        ("SMALL_NEG", -3), ("SMALL_POS", 4)]
    assert not usmall.signed and usmall.values[0].value == 0xFFFFFFFF
    big, sbig = btf[one("big", Kind.ENUM64)], btf[one("sbig", Kind.ENUM64)]
    assert not big.signed and [v.value for v in big.values] == [0x123456789, 1]
    assert sbig.signed and [v.value for v in sbig.values] == [-0x100000000, 2]
    tagged = one("tagged", Kind.STRUCT)
    tags = {btf[t].name: btf[t] for t in btf.ids() if btf.kind(t) == Kind.DECL_TAG}
    assert (tags["struct_tag"].type, tags["struct_tag"].component_idx) == (tagged, -1)
    assert (tags["field_tag"].type, tags["field_tag"].component_idx) == (tagged, 0)
    helper = one("helper_fn", Kind.FUNC)
    assert tags["helper_tag"].type == helper and not tags["helper_tag"].attr
    assert btf[helper].linkage == FUNC_STATIC and btf[one("prog", Kind.FUNC)].linkage == FUNC_GLOBAL
    p = btf[btf[tagged].members[1].type]
    assert p.kind == Kind.PTR and btf.kind(p.type) == Kind.TYPE_TAG and btf.name(p.type) == "user"
    assert btf.skip_mods(p.type) == one("int", Kind.INT)
    proto = btf[btf[btf[one("vfn_t", Kind.TYPEDEF)].type].type]
    assert proto.kind == Kind.FUNC_PROTO and proto.variadic and len(proto.params) == 2
    bss = btf[one(".bss", Kind.DATASEC)]
    assert [(btf.name(v.type), v.offset, v.size) for v in bss.vars] == [
        ("global_holder", 0, 248), ("static_counter", 248, 4)]
    assert btf[one("global_counter", Kind.VAR)].linkage == VAR_GLOBAL_ALLOCATED
    assert btf[one("static_counter", Kind.VAR)].linkage == VAR_STATIC
    holder = btf[one("holder", Kind.STRUCT)]
    assert btf.resolve_size(one("holder", Kind.STRUCT)) == 248
    matrix = holder.members[-1]
    assert (matrix.name, matrix.bit_offset, btf.resolve_size(matrix.type)) == ("matrix", 832, 144)
    cvb = btf[holder.members[9].type]
    assert btf.skip_mods_and_typedefs(cvb.type) == one("bits", Kind.STRUCT)
    assert not btf[one("fwd_only", Kind.FWD)].is_union


def test_elf_errors(tmp_path):
    with pytest.raises(ELFError):
        BTF.from_elf(b"not an elf file at all, not at all, no it is not, really not....")
    obj = tmp_path / "nobtf.o"
    if shutil.which("clang-19") is None:
        pytest.skip("clang-19 is not installed: cannot build an object without .BTF")
    src = tmp_path / "x.c"
    src.write_text("int x = 1;\n")
    subprocess.run(["clang-19", "-O2", "-target", "bpf", "-c", str(src), "-o", str(obj)],
                   check=True)
    with pytest.raises(BTFError, match="no .BTF section"):
        BTF.from_elf(str(obj))


_INT_ENC = {0: "(none)", 1: "SIGNED", 2: "CHAR", 4: "BOOL"}
_LINKAGE = {0: "static", 1: "global", 2: "extern"}


def _check_against_bpftool(btf: BTF, path: str) -> int:
    """Compare every type with bpftool's JSON dump; returns the number checked."""
    dump = subprocess.run([BPFTOOL, "-j", "btf", "dump", "file", path], check=True,
                          capture_output=True).stdout
    types = json.loads(dump)["types"]
    assert len(types) == len(btf) - 1
    for j in types:
        tid = j["id"]
        t = btf[tid]
        k = t.kind
        assert (k.name, t.name or "(anon)") == (j["kind"], j["name"]), tid
        if k == Kind.INT:
            assert (t.size, t.offset, t.bits, _INT_ENC[t.encoding]) == (
                j["size"], j["bits_offset"], j["nr_bits"], j["encoding"]), tid
        elif k in (Kind.PTR, Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT,
                   Kind.TYPE_TAG):
            assert t.type == j["type_id"], tid
        elif k == Kind.ARRAY:
            assert (t.type, t.index_type, t.nelems) == (
                j["type_id"], j["index_type_id"], j["nr_elems"]), tid
        elif k in (Kind.STRUCT, Kind.UNION):
            assert t.size == j["size"]
            assert [(m.name or "(anon)", m.type, m.bit_offset, m.bitfield_size)
                    for m in t.members] == [
                (m["name"], m["type_id"], m["bits_offset"], m.get("bitfield_size", 0))
                for m in j["members"]], tid
        elif k in (Kind.ENUM, Kind.ENUM64):
            assert (t.size, "SIGNED" if t.signed else "UNSIGNED") == (j["size"], j["encoding"])
            # bpftool sign-extends 32-bit values of unsigned enums (btf_enum.val is
            # __s32), so compare ENUM values modulo 2**32 and check the range apart.
            mask = (1 << 64) - 1 if k == Kind.ENUM64 else 0xFFFFFFFF
            assert [(v.name, v.value & mask) for v in t.values] == [
                (v["name"], v["val"] & mask) for v in j["values"]], tid
            low = -(1 << (t.size * 8 - 1)) if t.signed else 0
            assert all(low <= v.value < (1 << (64 if k == Kind.ENUM64 else 32)) for v in t.values)
        elif k == Kind.FWD:
            assert ("union" if t.is_union else "struct") == j["fwd_kind"], tid
        elif k == Kind.FUNC:
            assert (t.type, _LINKAGE[t.linkage]) == (j["type_id"], j["linkage"]), tid
        elif k == Kind.FUNC_PROTO:
            assert t.return_type == j["ret_type_id"], tid
            assert [(p.name or "(anon)", p.type) for p in t.params] == [
                (p["name"], p["type_id"]) for p in j["params"]], tid
        elif k == Kind.VAR:
            assert (t.type, _LINKAGE[t.linkage]) == (j["type_id"], j["linkage"]), tid
        elif k == Kind.DATASEC:
            assert t.size == j["size"]
            assert [(v.type, v.offset, v.size) for v in t.vars] == [
                (v["type_id"], v["offset"], v["size"]) for v in j["vars"]], tid
        elif k == Kind.FLOAT:
            assert t.size == j["size"], tid
        elif k == Kind.DECL_TAG:
            assert (t.type, t.component_idx) == (j["type_id"], j["component_idx"]), tid
    return len(types)


@pytest.mark.skipif(BPFTOOL is None, reason="bpftool is not installed: no independent oracle")
@pytest.mark.parametrize("name", KERNELS)
def test_kernel_matches_bpftool(name, kernel, tmp_path):
    blob = kernel(name)
    path = tmp_path / "k.btf"
    path.write_bytes(blob)
    btf = BTF.from_file(str(path))
    assert _check_against_bpftool(btf, str(path)) > 80000
    ts = btf.find("task_struct", Kind.STRUCT)
    assert len(ts) == 1 and btf.find_essential("task_struct", Kind.STRUCT) == ts
    assert btf.resolve_size(ts[0]) == btf[ts[0]].size > 1000


@pytest.mark.skipif(BPFTOOL is None, reason="bpftool is not installed: no independent oracle")
def test_clang_object_matches_bpftool(kinds_object):
    btf = BTF.from_elf(str(kinds_object))
    assert _check_against_bpftool(btf, str(kinds_object)) == 48


def test_ids_of_kind(all_kinds):
    blob, expected = all_kinds
    btf = BTF.from_bytes(blob)
    for k in Kind:
        assert btf.ids_of_kind(k) == [t for t, e in expected.items() if e.kind == k], k
    both = btf.ids_of_kind(Kind.STRUCT, Kind.TYPEDEF)
    assert both == sorted(t for t, e in expected.items() if e.kind in (Kind.STRUCT, Kind.TYPEDEF))
    first_int = btf.ids_of_kind(Kind.INT)[0]
    btf.replace(first_int, Struct("was_int", 4, []))
    added = btf.add(Int("new_int", 4))
    assert first_int not in btf.ids_of_kind(Kind.INT) and added in btf.ids_of_kind(Kind.INT)
    assert first_int in btf.ids_of_kind(Kind.STRUCT)
    assert btf.find("was_int", Kind.STRUCT) == [first_int] and btf.find("int") == []


@pytest.mark.parametrize("name", [k for k in KERNELS if "7.2" in k])
def test_indexed_lookups_match_scans(name, kernel):
    """The first lookups scan, later ones use the index: both must agree."""
    scanned = BTF.from_bytes(kernel(name))
    indexed = BTF.from_bytes(kernel(name))
    indexed._scans = 10 ** 6  # force the index on the first lookup
    probes = ["task_struct", "int", "list_head", "", "nonexistent_xyz", "sk_buff", "file",
              "pid_type", "__u32", "bpf_map", "nf_conn", "rust_helper", "class"]
    for probe in probes:
        assert scanned.find(probe) == indexed.find(probe), probe
        assert scanned.find_essential(probe) == indexed.find_essential(probe), probe
    flavored = next(t for t in indexed.ids() if "___" in indexed.name(t)
                    and essential_name(indexed.name(t)) != indexed.name(t))
    ess = essential_name(indexed.name(flavored))
    assert flavored in indexed.find_essential(ess)
    assert scanned.find_essential(ess) == indexed.find_essential(ess)
    assert len(indexed.find_essential("rust_helper")) > 5


def test_indexed_flavors(all_kinds):
    btf = BTF.from_bytes(all_kinds[0])
    btf._scans = 10 ** 6  # force the index on the first lookup
    assert [btf.name(t) for t in btf.find_essential("foo")] == ["foo___v1", "foo", "foo___2"]
    assert btf.find_essential("a____b") == btf.find("a____b") != []
    assert btf.find_essential("foo___v1") == [] and btf.find("foo___v1") != []
