"""The C emitter on small hand-made BTF: each case is compiled by clang with
BTF-derived layout asserts, and its text is checked where the spelling
matters (names, attributes, order)."""
from __future__ import annotations

import re

import pytest

from bccless.btf import (
    BTF, FUNC_GLOBAL, INT_SIGNED, Array, Const, DeclTag, Enum, Enum64, EnumValue, Float, Func,
    FuncProto, Fwd, Int, Member, Param, Ptr, Struct, Typedef, TypeTag, Union, Var, Volatile,
)
from bccless.btf.cdump import c_header, c_type_name, type_c_text

from .helpers import check_layout, clang, needs_clang


class Builder:
    """A BTF under construction with the usual base types at hand."""

    def __init__(self) -> None:
        self.btf = BTF.new()
        self.int = self.add(Int("int", 4, INT_SIGNED))
        self.u8 = self.add(Int("unsigned char", 1))
        self.u16 = self.add(Int("short unsigned int", 2))
        self.u32 = self.add(Int("unsigned int", 4))
        self.u64 = self.add(Int("long long unsigned int", 8))
        self.long = self.add(Int("long int", 8, INT_SIGNED))

    def add(self, t) -> int:
        return self.btf.add(t)


def _body(header: str, head: str) -> str:
    """The text of the top-level definition starting with ``head``."""
    start = header.index(head + " {")
    close = header.index("\n}", start)
    return header[start:header.index("\n", close + 1)]


def _compile_ok(btf, tmp_path, extra: str = "") -> str:
    count, problems, bad = check_layout(btf, tmp_path)
    assert problems == [] and bad == []
    if extra:
        (tmp_path / "extra.c").write_text('#include "vmlinux.h"\n' + extra)
        res = clang(["-target", "bpf", "-fsyntax-only", "extra.c"], tmp_path)
        assert res.returncode == 0 and not res.stderr, res.stderr
    return (tmp_path / "vmlinux.h").read_text()


@needs_clang
def test_value_dependency_defined_first_and_pointer_cycle(tmp_path):
    b = Builder()
    a_ptr = b.add(Ptr(0))  # patched below to point at struct a
    outer = b.add(Struct("outer", 16, [Member("in", 0, 0)]))  # member type patched
    inner = b.add(Struct("inner", 16, [Member("x", b.long, 0), Member("back", a_ptr, 64)]))
    b.btf.replace(outer, Struct("outer", 16, [Member("in", inner, 0)]))
    b.btf.replace(a_ptr, Ptr(outer))
    header = _compile_ok(b.btf, tmp_path)
    assert header.index("struct inner {") < header.index("struct outer {")
    assert "struct outer;\n" in header  # inner points back at outer before outer exists
    assert "struct outer *back;" in header


@needs_clang
def test_anonymous_nesting_bitfields_and_padding(tmp_path):
    b = Builder()
    anon_s = b.add(Struct("", 8, [Member("lo", b.u32, 0), Member("hi", b.u32, 32)]))
    anon_u = b.add(Union("", 8, [Member("", anon_s, 0), Member("both", b.u64, 0)]))
    rec = b.add(Struct("bits", 24, [
        Member("a", b.u32, 0, 3),
        Member("b", b.u32, 5, 7),        # 2-bit hole before it
        Member("c", b.u8, 16, 8),
        Member("", anon_u, 64),
        Member("d", b.u16, 128 + 8),      # a byte of hole that is not alignment
    ], kind_flag=True))
    header = _compile_ok(b.btf, tmp_path)
    body = _body(header, "struct bits")
    assert "\tunsigned int a: 3;" in body and "\tunsigned int b: 7;" in body
    assert re.search(r"union \{\n\t\tstruct \{\n\t\t\tunsigned int lo;", body)
    assert "char: 8;" in body or "char: 2;" in body
    assert type_c_text(b.btf, "bits").count("/* 16:0 3 bits */") == 0
    assert rec


@needs_clang
def test_function_pointers_typedef_chain_and_qualifiers(tmp_path):
    b = Builder()
    fwd = b.add(Fwd("opaque"))
    fwd_ptr = b.add(Ptr(fwd))
    cint = b.add(Const(b.int))
    cint_ptr = b.add(Ptr(cint))
    proto = b.add(FuncProto(b.int, [Param("o", fwd_ptr), Param("p", cint_ptr), Param("", 0)]))
    fn_ptr = b.add(Ptr(proto))
    fn_arr = b.add(Array(fn_ptr, b.int, 4))
    handler_t = b.add(Typedef("handler_t", fn_ptr))
    handler2_t = b.add(Typedef("handler2_t", handler_t))
    vol_u32 = b.add(Volatile(b.u32))
    user_tag = b.add(TypeTag("user", b.u8))
    user_ptr = b.add(Ptr(user_tag))
    const_ptr = b.add(Const(b.add(Ptr(b.u8))))
    b.add(Struct("ops", 64, [
        Member("table", fn_arr, 0), Member("one", handler2_t, 256),
        Member("flag", vol_u32, 320), Member("buf", user_ptr, 384),
        Member("cp", const_ptr, 448)]))
    header = _compile_ok(b.btf, tmp_path)
    body = _body(header, "struct ops")
    assert "\tint (*table[4])(struct opaque *o, const int *p, ...);" in body
    assert "\thandler2_t one;" in body
    assert "\tvolatile unsigned int flag;" in body
    assert 'unsigned char __attribute__((btf_type_tag("user"))) *buf;' in body
    assert "\tunsigned char *const cp;" in body
    assert header.index("typedef handler_t handler2_t;") > header.index("(*handler_t)(struct opaque *o")
    assert "struct opaque;" in header


@needs_clang
def test_duplicate_names_and_enumerator_clashes(tmp_path):
    b = Builder()
    first = b.add(Struct("dup", 4, [Member("a", b.int, 0)]))
    second = b.add(Struct("dup", 8, [Member("a", b.long, 0)]))
    b.add(Enum("colors", 4, [EnumValue("RED", 0), EnumValue("GREEN", 1)]))
    b.add(Enum("", 4, [EnumValue("RED", 5)]))
    b.add(Typedef("u8x", b.u8))
    b.add(Typedef("u8x", b.u16))
    b.add(Struct("user", 16, [Member("p", first, 0), Member("q", second, 64)]))
    header = _compile_ok(b.btf, tmp_path, extra="int x = RED + RED___2 + GREEN;\n")
    assert "struct dup___2 {" in header and "struct dup {" in header
    assert "\tRED___2 = 5," in header
    assert "typedef short unsigned int u8x___2;" in header
    assert c_type_name(b.btf, second) == "struct dup___2"
    assert "struct dup___2 {" in type_c_text(b.btf, "dup___2")


@needs_clang
def test_enum_sizes_and_enum64(tmp_path):
    b = Builder()
    e1 = b.add(Enum("e1", 1, [EnumValue("E1_A", 1), EnumValue("E1_B", 200)]))
    e2 = b.add(Enum("e2", 2, [EnumValue("E2_A", 1)]))
    e8 = b.add(Enum("e8", 8, [EnumValue("E8_A", 1)]))
    big = b.add(Enum64("big", 8, [EnumValue("BIG_A", 1 << 40), EnumValue("BIG_MAX", (1 << 64) - 1)]))
    neg = b.add(Enum64("neg", 8, [EnumValue("NEG_MIN", -(1 << 63)), EnumValue("NEG_ONE", -1)],
                       signed=True))
    b.add(Struct("holder", 32, [
        Member("a", e1, 0), Member("b", e2, 16), Member("c", e8, 64), Member("d", big, 128),
        Member("e", neg, 192)]))
    header = _compile_ok(b.btf, tmp_path, extra=(
        "_Static_assert(sizeof(enum e1) == 1, \"\");\n"
        "_Static_assert(sizeof(enum e2) == 2, \"\");\n"
        "_Static_assert(sizeof(enum e8) == 8, \"\");\n"
        "_Static_assert(BIG_MAX == 18446744073709551615ULL, \"\");\n"
        "_Static_assert(NEG_MIN < 0 && NEG_ONE == -1, \"\");\n"))
    assert "BIG_MAX = 18446744073709551615ULL," in header
    assert "NEG_MIN = -9223372036854775807LL - 1," in header


@needs_clang
def test_packed_and_aligned_records(tmp_path):
    b = Builder()
    packed = b.add(Struct("packed", 5, [Member("a", b.u8, 0), Member("b", b.u32, 8)]))
    cacheline = b.add(Struct("cacheline", 128, [Member("a", b.u32, 0),
                                                Member("hot", b.u64, 64 * 8)]))
    tail = b.add(Struct("tail_aligned", 64, [Member("a", b.u32, 0)]))
    pk_al = b.add(Struct("packed_aligned", 12, [Member("a", b.u32, 0), Member("b", b.u64, 32)]))
    b.add(Struct("host", 256, [
        Member("c", b.u8, 0), Member("p", packed, 8), Member("t", tail, 64 * 8),
        Member("q", pk_al, 128 * 8)]))
    header = _compile_ok(b.btf, tmp_path, extra=(
        "_Static_assert(_Alignof(struct packed) == 1, \"\");\n"
        "_Static_assert(_Alignof(struct cacheline) == 64, \"\");\n"
        "_Static_assert(_Alignof(struct tail_aligned) == 64, \"\");\n"))
    assert _body(header, "struct packed").endswith("} __attribute__((packed));")
    assert "\tlong long unsigned int hot __attribute__((aligned(64)));" in header
    assert _body(header, "struct tail_aligned").endswith("} __attribute__((aligned(64)));")
    assert (packed, cacheline) and pk_al


@needs_clang
def test_union_tail_padding_and_embedded_named_record(tmp_path):
    b = Builder()
    u = b.add(Union("odd", 5, [Member("a", b.u8, 0), Member("b", b.u16, 0, 12)], kind_flag=True))
    base = b.add(Struct("base", 8, [Member("x", b.u32, 0), Member("y", b.u32, 32)]))
    b.add(Struct("derived", 16, [Member("", base, 0), Member("z", b.u64, 64)]))
    b.add(Struct("uses_odd", 6, [Member("c", b.u8, 0), Member("o", u, 8)]))
    header = _compile_ok(b.btf, tmp_path, extra=(
        "int f(struct derived *d) { return d->x + d->y; }\n"))
    assert re.search(r"struct derived \{\n\tstruct \{\n\t\tunsigned int x;", header)


@needs_clang
def test_float_kfuncs_and_skipped_kinds(tmp_path):
    b = Builder()
    dbl = b.add(Float("double", 8))
    b.add(Struct("has_float", 16, [Member("d", dbl, 0), Member("i", b.int, 64)]))
    proto = b.add(FuncProto(b.int, [Param("x", b.u32)]))
    func = b.add(Func("bpf_do_thing", proto, FUNC_GLOBAL))
    b.add(DeclTag("bpf_kfunc", func))
    b.add(Var("some_var", b.int))
    header = _compile_ok(b.btf, tmp_path)
    assert "extern int bpf_do_thing(unsigned int x) __weak __ksym;" in header
    assert "#ifndef BPF_NO_KFUNC_PROTOTYPES" in header
    assert "some_var" not in header
    assert header.startswith("#ifndef __VMLINUX_H__\n#define __VMLINUX_H__\n")
    assert "#pragma clang attribute push (__attribute__((preserve_access_index)), " \
           "apply_to = record)" in header


def test_type_text_forward_declares_dependencies_and_shows_offsets():
    b = Builder()
    other = b.add(Struct("other", 8, [Member("v", b.long, 0)]))
    b.add(Struct("thing", 16, [Member("o", b.add(Ptr(other)), 0), Member("n", b.u32, 64),
                               Member("f", b.u32, 96, 4)], kind_flag=True))
    text = type_c_text(b.btf, "struct thing")
    assert text.startswith("struct other;\n")
    assert "/* size: 16, align: 8 */" in text
    assert "unsigned int n;\t/* 8 4 */" in text
    assert "unsigned int f: 4;\t/* 12:0 4 bits */" in text


def test_unknown_type_suggests_close_names():
    from bccless.errors import BTFError

    b = Builder()
    b.add(Struct("task_struct", 4, [Member("pid", b.int, 0)]))
    with pytest.raises(BTFError, match="did you mean: task_struct"):
        type_c_text(b.btf, "task_strct")
    with pytest.raises(BTFError):
        type_c_text(b.btf, "union task_struct")
    assert c_header(b.btf).count("struct task_struct {") == 1
