"""CO-RE engine on hand-built BTF: every kind, spec parsing and printing,
candidate rules, ambiguity, patching forms, load resizing, poisoning."""
from __future__ import annotations

import logging
import struct

import pytest

from bccless.btf.parse import BTF
from bccless.btf.types import (INT_SIGNED, Array, Const, Enum, Enum64, EnumValue, Fwd,
                               FuncProto, Int, Member, Param, Ptr, Struct, Typedef, Union)
from bccless.core.kinds import RelocKind as K
from bccless.core.kinds import kind_name
from bccless.core.patch import POISON_IMM
from bccless.core.relocate import CoreRelocator
from bccless.core.spec import format_spec, parse_spec
from bccless.elf.records import CoreRelo
from bccless.errors import RelocationError


def ldx(off: int, size: int = 0x00, dst: int = 1, src: int = 2) -> bytes:
    """rDST = *(size *)(rSRC + off); size bits: W=0x00, H=0x08, B=0x10, DW=0x18."""
    return struct.pack("<BBhi", 0x61 | size, (src << 4) | dst, off, 0)


def mov(imm: int, dst: int = 1) -> bytes:
    return struct.pack("<BBhi", 0xB7, dst, 0, imm)


def ld64(val: int, dst: int = 1) -> bytes:
    lo, hi = val & 0xFFFFFFFF, (val >> 32) & 0xFFFFFFFF
    return (struct.pack("<BBhI", 0x18, dst, 0, lo) + struct.pack("<BBhI", 0, 0, 0, hi))


def decode(buf: bytes):
    return [struct.unpack_from("<BBhi", buf, i) for i in range(0, len(buf), 8)]


def one(local: BTF, target: BTF, code: bytes, type_id: int, access: str, kind: int, **kw):
    buf = bytearray(code)
    res = CoreRelocator(local, target, **kw).relocate("p", buf, [CoreRelo(0, type_id, access, kind)])
    return buf, res[0]


def btf_with(*types) -> BTF:
    b = BTF.new()
    for t in types:
        b.add(t)
    return b


# ids: 1 int, 2 unsigned int, 3 long, 4 unsigned long
def ints() -> list:
    return [Int("int", 4, INT_SIGNED), Int("unsigned int", 4), Int("long", 8, INT_SIGNED),
            Int("unsigned long", 8)]


class TestSpec:
    def test_anonymous_members_and_arrays(self):
        # struct sample { int u; struct { int x; int y; int a[7]; }; };  &s->a[3] = "0:1:2:3"
        b = btf_with(*ints(), Array(1, 1, 7),
                     Struct("", 36, [Member("x", 1, 0), Member("y", 1, 32), Member("a", 5, 64)]),
                     Struct("sample", 40, [Member("u", 1, 0), Member("", 6, 32)]))
        spec = parse_spec(b, 7, "0:1:2:3", K.FIELD_BYTE_OFFSET)
        assert spec.bit_offset == (4 + 8 + 12) * 8
        assert spec.raw_spec == [0, 1, 2, 3]
        assert [(a.name, a.idx) for a in spec.spec] == [(None, 0), ("a", 2), (None, 3)]
        assert format_spec(spec) == "<byte_off> [7] struct sample.a[3] (0:1:2:3 @ offset 24)"
        # root index: &s[2].u
        assert format_spec(parse_spec(b, 7, "2:0", K.FIELD_BYTE_OFFSET)) == \
            "<byte_off> [7] struct sample[2].u (2:0 @ offset 80)"

    @pytest.mark.parametrize("access", ["", ":0", "0:", "0::1", "0:x", "0:-1", "0:7", "0:1:2:7"])
    def test_bad_access_strings(self, access):
        b = btf_with(*ints(), Array(1, 1, 7),
                     Struct("", 36, [Member("x", 1, 0), Member("y", 1, 32), Member("a", 5, 64)]),
                     Struct("sample", 40, [Member("u", 1, 0), Member("", 6, 32)]))
        with pytest.raises(RelocationError):
            parse_spec(b, 7, access, K.FIELD_BYTE_OFFSET)

    def test_depth_limit(self):
        b = btf_with(*ints(), Array(1, 1, 100), Struct("s", 400, [Member("a", 5, 0)]))
        with pytest.raises(RelocationError):
            parse_spec(b, 6, ":".join(["0"] * 65), K.FIELD_BYTE_OFFSET)

    def test_flex_array_only_when_last(self):
        flex = Array(1, 1, 0)
        b = btf_with(*ints(), flex, Struct("s", 4, [Member("n", 1, 0), Member("d", 5, 32)]),
                     Struct("t", 4, [Member("d", 5, 0), Member("n", 1, 0)]))
        assert parse_spec(b, 6, "0:1:9", K.FIELD_BYTE_OFFSET).bit_offset == 32 + 9 * 32
        with pytest.raises(RelocationError):
            parse_spec(b, 7, "0:0:9", K.FIELD_BYTE_OFFSET)

    def test_type_and_enum_specs(self):
        b = btf_with(*ints(), Enum("e", 4, [EnumValue("A", -1), EnumValue("B", 7)], signed=True),
                     Enum64("e64", 8, [EnumValue("X", 0x123456789)]))
        assert format_spec(parse_spec(b, 5, "0", K.TYPE_SIZE)) == "<type_size> [5] enum e"
        assert format_spec(parse_spec(b, 5, "0", K.ENUMVAL_VALUE)) == \
            "<enumval_value> [5] enum e::A = -1"
        assert format_spec(parse_spec(b, 6, "0", K.ENUMVAL_EXISTS)) == \
            "<enumval_exists> [6] enum64 e64::X = 4886718345"
        for bad in ("1", "0:0"):
            with pytest.raises(RelocationError):
                parse_spec(b, 5, bad, K.TYPE_SIZE if bad == "1" else K.ENUMVAL_VALUE)
        with pytest.raises(RelocationError):
            parse_spec(b, 5, "2", K.ENUMVAL_VALUE)

    def test_kind_names(self):
        assert [kind_name(k) for k in range(13)] == [
            "byte_off", "byte_sz", "field_exists", "signed", "lshift_u64", "rshift_u64",
            "local_type_id", "target_type_id", "type_exists", "type_size", "enumval_exists",
            "enumval_value", "type_matches"]
        assert kind_name(99) == "unknown"


class TestFields:
    def local(self):
        # struct foo___l { int a; unsigned int b; long c; };  id 5
        return btf_with(*ints(), Struct("foo___l", 16, [Member("a", 1, 0), Member("b", 2, 32),
                                                        Member("c", 3, 64)]))

    def target(self, b_type=4):
        # struct foo { long pad; long c; int a; <b_type> b; }  id 5; b at 24
        return btf_with(*ints(), Struct("foo", 32, [Member("pad", 3, 0), Member("c", 3, 64),
                                                    Member("a", 1, 128),
                                                    Member("b", b_type, 192)]))

    def test_offset_size_exists_signed(self):
        lo, tg = self.local(), self.target()
        buf, r = one(lo, tg, ldx(4), 5, "0:1", K.FIELD_BYTE_OFFSET)
        assert (r.orig_value, r.new_value, r.poisoned) == (4, 24, False)
        # u32 -> u64 unsigned: load widened W -> DW
        assert decode(buf)[0] == (0x61 | 0x18, 0x21, 24, 0)
        assert r.target_spec == "<byte_off> [5] struct foo.b (0:3 @ offset 24)"
        assert "mem_sz 4 -> 8" in r.description
        assert one(lo, tg, mov(4), 5, "0:1", K.FIELD_BYTE_SIZE)[1].new_value == 8
        assert one(lo, tg, mov(1), 5, "0:0", K.FIELD_SIGNED)[1].new_value == 1
        assert one(lo, tg, mov(0), 5, "0:1", K.FIELD_SIGNED)[1].new_value == 0
        assert one(lo, tg, mov(1), 5, "0:2", K.FIELD_EXISTS)[1].new_value == 1
        assert one(lo, tg, mov(0), 5, "0:2", K.FIELD_RSHIFT_U64)[1].new_value == 0
        assert one(lo, tg, mov(32), 5, "0:1", K.FIELD_RSHIFT_U64)[1].new_value == 0
        assert one(lo, tg, mov(32), 5, "0:0", K.FIELD_LSHIFT_U64)[1].new_value == 32

    def test_signed_size_change_poisons(self, caplog):
        lo, tg = self.local(), self.target(b_type=3)  # b becomes signed long
        lo.replace(5, Struct("foo___l", 16, [Member("a", 1, 0), Member("b", 1, 32),
                                             Member("c", 3, 64)]))
        with caplog.at_level(logging.WARNING, "bccless.core"):
            buf, r = one(lo, tg, ldx(4), 5, "0:1", K.FIELD_BYTE_OFFSET)
        assert r.poisoned and decode(buf)[0] == (0x85, 0, 0, POISON_IMM)
        assert "accesses field incorrectly" in caplog.text
        # a plain ALU use of the same offset is not a memory access: patched normally
        buf, r = one(lo, tg, mov(4), 5, "0:1", K.FIELD_BYTE_OFFSET)
        assert not r.poisoned and decode(buf)[0][3] == 24

    def test_missing_field(self):
        lo = self.local()
        tg = btf_with(*ints(), Struct("foo", 4, [Member("a", 1, 0)]))
        buf, r = one(lo, tg, ldx(4), 5, "0:1", K.FIELD_BYTE_OFFSET)
        assert r.poisoned and r.target_spec is None
        assert decode(buf) == [(0x85, 0, 0, POISON_IMM)]
        assert one(lo, tg, mov(1), 5, "0:1", K.FIELD_EXISTS)[1].new_value == 0
        for kind in (K.FIELD_BYTE_SIZE, K.FIELD_SIGNED, K.FIELD_LSHIFT_U64, K.FIELD_RSHIFT_U64):
            assert one(lo, tg, mov(0), 5, "0:1", kind)[1].poisoned

    def test_incompatible_field_type_does_not_match(self):
        lo = self.local()
        tg = btf_with(*ints(), Ptr(1), Struct("foo", 16, [Member("b", 5, 0)]))
        buf, r = one(lo, tg, ldx(4), 5, "0:1", K.FIELD_BYTE_OFFSET)
        assert r.poisoned

    def test_validation_and_erange(self):
        lo, tg = self.local(), self.target()
        with pytest.raises(RelocationError, match=r"unexpected insn #0 \(LDX/ST/STX\) value: "
                                                  r"got 8, exp 4 -> 24"):
            one(lo, tg, ldx(8), 5, "0:1", K.FIELD_BYTE_OFFSET)
        big = btf_with(*ints(), Array(1, 1, 10000),
                       Struct("foo", 40004, [Member("pad", 5, 0), Member("b", 2, 320000)]))
        with pytest.raises(RelocationError, match="value too big: 40000") as ei:
            one(lo, big, ldx(4), 5, "0:1", K.FIELD_BYTE_OFFSET)
        assert "prog 'p': relo #0" in str(ei.value) and "struct foo___l.b" in str(ei.value)
        with pytest.raises(RelocationError, match="unrecognized insn"):
            one(lo, tg, struct.pack("<BBhi", 0x05, 0, 4, 0), 5, "0:1", K.FIELD_BYTE_OFFSET)

    def test_array_access_kinds(self):
        lo = btf_with(*ints(), Array(1, 1, 4), Struct("s", 16, [Member("arr", 5, 0)]))
        tg = btf_with(*ints(), Array(3, 1, 8), Struct("s", 72, [Member("x", 1, 0),
                                                                Member("arr", 5, 64)]))
        buf, r = one(lo, tg, ldx(8), 6, "0:0:2", K.FIELD_BYTE_OFFSET)
        assert r.new_value == 8 + 16
        # element int -> long, both signed: resize refused
        assert r.poisoned
        assert one(lo, tg, mov(4), 6, "0:0:2", K.FIELD_BYTE_SIZE)[1].new_value == 8
        with pytest.raises(RelocationError, match="can't be applied to array access"):
            one(lo, tg, mov(1), 6, "0:0:2", K.FIELD_SIGNED)
        # index beyond the target's bound: no match
        assert one(lo, btf_with(*ints(), Array(1, 1, 2), Struct("s", 8, [Member("arr", 5, 0)])),
                   mov(8), 6, "0:0:2", K.FIELD_BYTE_OFFSET)[1].poisoned

    def test_bitfields(self):
        # local: struct bf { unsigned int x:3; int y:20; }  target: x moved, grows
        lo = btf_with(*ints(), Struct("bf", 4, [Member("x", 2, 0, 3), Member("y", 1, 3, 20)],
                                      kind_flag=True))
        tg = btf_with(*ints(), Struct("bf", 8, [Member("p", 2, 0, 30), Member("x", 2, 30, 5),
                                                Member("y", 1, 35, 20)], kind_flag=True))
        # x spans bits 30..35 of a 4-byte int: needs an 8-byte load at 0
        assert one(lo, tg, mov(0), 5, "0:0", K.FIELD_BYTE_OFFSET)[1].new_value == 0
        assert one(lo, tg, mov(4), 5, "0:0", K.FIELD_BYTE_SIZE)[1].new_value == 8
        assert one(lo, tg, mov(0), 5, "0:0", K.FIELD_LSHIFT_U64)[1].new_value == 64 - 35
        assert one(lo, tg, mov(61), 5, "0:0", K.FIELD_RSHIFT_U64)[1].new_value == 59
        assert one(lo, tg, mov(1), 5, "0:1", K.FIELD_SIGNED)[1].new_value == 1
        # y at 35..55 inside the second u32: 4-byte load at 4, lshift 64-(35+20-32)
        assert one(lo, tg, mov(0), 5, "0:1", K.FIELD_BYTE_OFFSET)[1].new_value == 4
        assert one(lo, tg, mov(0), 5, "0:1", K.FIELD_LSHIFT_U64)[1].new_value == 64 - 23
        # bitfield offsets are not validated (compiler may disagree), rshift is
        assert one(lo, tg, mov(99), 5, "0:1", K.FIELD_BYTE_OFFSET)[1].new_value == 4
        with pytest.raises(RelocationError, match="unexpected insn"):
            one(lo, tg, mov(99), 5, "0:1", K.FIELD_RSHIFT_U64)
        # big endian lshift: (8 - byte_sz) * 8 + (bit_off - byte_off * 8)
        r = one(lo, tg, mov(0), 5, "0:1", K.FIELD_LSHIFT_U64, big_endian=False)[1]
        assert r.new_value == 41
        buf = bytearray(struct.pack(">BBhi", 0xB7, 0x10, 0, 0))
        res = CoreRelocator(lo, tg, big_endian=True).relocate(
            "p", buf, [CoreRelo(0, 5, "0:1", K.FIELD_LSHIFT_U64)])
        assert res[0].new_value == (8 - 4) * 8 + (35 - 32)
        assert struct.unpack(">BBhi", buf) == (0xB7, 0x10, 0, 35)

    def test_bitfield_too_big(self):
        lo = btf_with(*ints(), Struct("bf", 8, [Member("x", 4, 0, 4), Member("y", 4, 4, 60)],
                                      kind_flag=True))
        tg = btf_with(*ints(), Struct("bf", 9, [Member("x", 4, 0, 4), Member("y", 4, 4, 61)],
                                      kind_flag=True))
        assert one(lo, lo, mov(0), 5, "0:1", K.FIELD_BYTE_OFFSET)[1].new_value == 0
        with pytest.raises(RelocationError, match="can't be satisfied for bitfield") as ei:
            one(lo, tg, mov(0), 5, "0:1", K.FIELD_BYTE_OFFSET)
        assert ei.value.errno == 7  # E2BIG


class TestCandidates:
    def test_flavors_and_ambiguity(self):
        lo = btf_with(*ints(), Struct("foo___mine", 8, [Member("a", 1, 0), Member("b", 1, 32)]))
        same = btf_with(*ints(), Struct("foo", 8, [Member("a", 1, 0), Member("b", 1, 32)]),
                        Struct("foo___2", 12, [Member("z", 1, 0), Member("b", 1, 32)]))
        assert one(lo, same, ldx(4), 5, "0:1", K.FIELD_BYTE_OFFSET)[1].new_value == 4
        diff = btf_with(*ints(), Struct("foo", 8, [Member("a", 1, 0), Member("b", 1, 32)]),
                        Struct("foo___2", 12, [Member("z", 1, 0), Member("b", 1, 64)]))
        with pytest.raises(RelocationError, match=r"field offset ambiguity: 64 != 32 "
                                                  r"\(struct foo___mine.b, kernel test 1.0\)"):
            one(lo, diff, ldx(4), 5, "0:1", K.FIELD_BYTE_OFFSET, target_desc="test 1.0")
        dsz = btf_with(*ints(), Struct("foo", 8, [Member("a", 1, 0), Member("b", 1, 32)]),
                       Struct("foo___2", 12, [Member("z", 1, 0), Member("b", 3, 32)]))
        with pytest.raises(RelocationError, match="relocation decision ambiguity: "
                                                  "success 8 != success 4"):
            one(lo, dsz, mov(4), 5, "0:1", K.FIELD_BYTE_SIZE)
        # not a flavor: a double underscore is part of the name
        other = btf_with(*ints(), Struct("foo__x", 8, [Member("a", 1, 0), Member("b", 1, 32)]))
        assert one(lo, other, ldx(4), 5, "0:1", K.FIELD_BYTE_OFFSET)[1].poisoned

    def test_pruning_and_cache(self):
        lo = btf_with(*ints(), Struct("foo", 8, [Member("a", 1, 0), Member("b", 1, 32)]))
        tg = btf_with(*ints(), Struct("foo", 8, [Member("x", 1, 0), Member("b", 1, 32)]),
                      Struct("foo___v2", 8, [Member("a", 1, 0), Member("b", 1, 32)]))
        r = CoreRelocator(lo, tg)
        buf = bytearray(ldx(0) + ldx(4))
        r.relocate("p", buf, [CoreRelo(0, 5, "0:0", K.FIELD_BYTE_OFFSET)])
        assert [c.type_id for c in r.candidates(5)] == [6]  # 'foo' has no 'a': pruned
        r.relocate("p", buf, [CoreRelo(8, 5, "0:1", K.FIELD_BYTE_OFFSET)])
        assert [c.type_id for c in r.candidates(5)] == [6]

    def test_modules_only_when_vmlinux_has_none(self):
        lo = btf_with(*ints(), Struct("m", 4, [Member("a", 1, 0)]),
                      Struct("v", 4, [Member("a", 1, 0)]))
        vml = btf_with(*ints(), Struct("v", 8, [Member("z", 1, 0), Member("a", 1, 32)]))
        mod = BTF.new(base=vml)
        mod.add(Struct("m", 8, [Member("z", 1, 0), Member("a", 1, 32)]))
        mod.add(Struct("v", 12, [Member("z", 3, 0), Member("a", 1, 64)]))
        calls = []

        def modules():
            calls.append(1)
            return [mod]
        r = CoreRelocator(lo, vml, modules)
        buf = bytearray(ldx(0) + ldx(0))
        res = r.relocate("p", buf, [CoreRelo(0, 6, "0:0", K.FIELD_BYTE_OFFSET)])
        assert res[0].new_value == 4 and calls == []  # vmlinux 'v' wins; module 'v' unseen
        res = r.relocate("p", buf, [CoreRelo(8, 5, "0:0", K.FIELD_BYTE_OFFSET)])
        assert res[0].new_value == 4 and calls == [1]
        assert [c.type_id for c in r.candidates(5)] == [6]
        # no module loader (custom target BTF): not found
        assert CoreRelocator(lo, vml).relocate(
            "p", bytearray(ldx(0)), [CoreRelo(0, 5, "0:0", K.FIELD_BYTE_OFFSET)])[0].poisoned

    def test_anonymous_local_root(self):
        lo = btf_with(*ints(), Struct("", 4, [Member("a", 1, 0)]))
        with pytest.raises(RelocationError, match="doesn't support anonymous types"):
            one(lo, lo, ldx(0), 5, "0:0", K.FIELD_BYTE_OFFSET)
        buf, r = one(lo, lo, mov(5), 5, "0", K.TYPE_ID_LOCAL)
        assert r.new_value == 5 and decode(buf)[0][3] == 5
        # TYPE_ID_LOCAL is never validated: ids move when objects are linked
        assert one(lo, lo, mov(77), 5, "0", K.TYPE_ID_LOCAL)[1].new_value == 5


class TestTypes:
    def test_type_exists_size_id(self):
        lo = btf_with(*ints(), Struct("s", 4, [Member("a", 1, 0)]), Typedef("s_t", 5))
        tg = btf_with(*ints(), Int("x", 1), Struct("s", 16, [Member("q", 3, 0)]),
                      Typedef("s_t", 6))
        assert one(lo, tg, mov(1), 5, "0", K.TYPE_EXISTS)[1].new_value == 1
        assert one(lo, tg, mov(4), 6, "0", K.TYPE_SIZE)[1].new_value == 16
        # target id is not validated
        assert one(lo, tg, mov(123), 5, "0", K.TYPE_ID_TARGET)[1].new_value == 6
        with pytest.raises(RelocationError, match=r"unexpected insn #0 \(ALU/ALU64\)"):
            one(lo, tg, mov(5), 6, "0", K.TYPE_SIZE)
        empty = btf_with(*ints())
        for kind in (K.TYPE_EXISTS, K.TYPE_SIZE, K.TYPE_ID_TARGET, K.TYPE_MATCHES):
            local_val = {K.TYPE_SIZE: 4, K.TYPE_ID_TARGET: 0}.get(kind, 1)
            buf, r = one(lo, empty, mov(local_val), 5, "0", kind)
            assert (r.new_value, r.poisoned) == (0, False)  # 0, never poison
        # struct vs union of the same name: not type-compatible
        un = btf_with(*ints(), Union("s", 4, [Member("a", 1, 0)]))
        assert one(lo, un, mov(1), 5, "0", K.TYPE_EXISTS)[1].new_value == 0

    def test_types_are_compat_func_proto(self):
        lo = btf_with(*ints(), FuncProto(1, [Param("a", 3)]), Ptr(5), Typedef("fn_t", 6))
        ok = btf_with(*ints(), FuncProto(2, [Param("b", 4)]), Ptr(5), Typedef("fn_t", 6))
        bad = btf_with(*ints(), FuncProto(2, [Param("b", 4), Param("c", 4)]), Ptr(5),
                       Typedef("fn_t", 6))
        assert one(lo, ok, mov(1), 7, "0", K.TYPE_EXISTS)[1].new_value == 1
        assert one(lo, bad, mov(1), 7, "0", K.TYPE_EXISTS)[1].new_value == 0
        # TYPE_MATCHES needs same int sizes and signedness in the prototype
        assert one(lo, ok, mov(1), 7, "0", K.TYPE_MATCHES)[1].new_value == 0
        assert one(lo, lo, mov(1), 7, "0", K.TYPE_MATCHES)[1].new_value == 1

    def test_type_matches(self):
        # struct s { int a; struct o *p; enum e k; unsigned int arr[2]; }
        def build(a_int, arr_n, extra_member=False, ptr_fwd=False, enum_vals=("X", "Y")):
            b = btf_with(*ints())
            e = b.add(Enum("e", 4, [EnumValue(n, i) for i, n in enumerate(enum_vals)]))
            o = b.add(Fwd("o") if ptr_fwd else Struct("o", 4, [Member("q", 1, 0)]))
            p = b.add(Ptr(o))
            arr = b.add(Array(2, 1, arr_n))
            c = b.add(Const(a_int))
            members = [Member("a", c, 0), Member("p", p, 64), Member("k", e, 128),
                       Member("arr", arr, 160)]
            if extra_member:
                members.insert(0, Member("new", 3, 0))
            return b, b.add(Struct("s", 32, members))
        lo, sid = build(1, 2)
        assert one(lo, build(1, 2, extra_member=True)[0], mov(1), sid, "0",
                   K.TYPE_MATCHES)[1].new_value == 1
        # behind a pointer a struct matches a forward declaration
        assert one(lo, build(1, 2, ptr_fwd=True)[0], mov(1), sid, "0",
                   K.TYPE_MATCHES)[1].new_value == 1
        # enum names: extra target enumerators fine, missing local one not
        assert one(lo, build(1, 2, enum_vals=("Y", "X", "Z"))[0], mov(1), sid, "0",
                   K.TYPE_MATCHES)[1].new_value == 1
        assert one(lo, build(1, 2, enum_vals=("X",))[0], mov(1), sid, "0",
                   K.TYPE_MATCHES)[1].new_value == 0
        assert one(lo, build(2, 2)[0], mov(1), sid, "0", K.TYPE_MATCHES)[1].new_value == 0
        assert one(lo, build(1, 3)[0], mov(1), sid, "0", K.TYPE_MATCHES)[1].new_value == 0
        # but the same targets are all type-compatible (TYPE_EXISTS)
        assert one(lo, build(2, 3)[0], mov(1), sid, "0", K.TYPE_EXISTS)[1].new_value == 1


class TestEnums:
    def test_enumval_and_enum64(self):
        lo = btf_with(*ints(), Enum("e", 4, [EnumValue("A", 1), EnumValue("B", 2),
                                             EnumValue("C___x", 3)]))
        tg = btf_with(*ints(), Enum64("e", 8, [EnumValue("B", 0x1_2345_6789),
                                               EnumValue("C", -5)], signed=True),
                      Enum("e___2", 4, [EnumValue("A", 7)]))
        # 'A' exists only in the flavor e___2
        assert one(lo, tg, mov(1), 5, "0", K.ENUMVAL_EXISTS)[1].new_value == 1
        assert one(lo, tg, mov(1), 5, "0", K.ENUMVAL_VALUE)[1].new_value == 7
        # ENUM64 value above 32 bits lands in both halves of LD_IMM64
        buf, r = one(lo, tg, ld64(2), 5, "1", K.ENUMVAL_VALUE)
        assert r.new_value == 0x1_2345_6789
        assert decode(buf) == [(0x18, 1, 0, 0x23456789), (0, 0, 0, 1)]
        assert "imm64 2 -> 4886718345" in r.description
        # flavored enumerator name; negative value sign-extended to 64 bits
        buf, r = one(lo, tg, ld64(3), 5, "2", K.ENUMVAL_VALUE)
        assert r.new_value == (1 << 64) - 5
        assert decode(buf) == [(0x18, 1, 0, -5), (0, 0, 0, -1)]

    def test_missing_enumval_poisons_both_halves(self):
        lo = btf_with(*ints(), Enum("e", 4, [EnumValue("A", 1)]))
        tg = btf_with(*ints(), Enum("e", 4, [EnumValue("Z", 1)]))
        buf, r = one(lo, tg, ld64(1) + mov(0, 0), 5, "0", K.ENUMVAL_VALUE)
        assert r.poisoned
        call = (0x85, 0, 0, POISON_IMM)
        assert decode(buf) == [call, call, (0xB7, 0, 0, 0)]

    def test_ldimm64_form_checked(self):
        lo = btf_with(*ints(), Enum("e", 4, [EnumValue("A", 1)]))
        bad = bytearray(ld64(1))
        bad[9] = 0x01  # second half with a register
        with pytest.raises(RelocationError, match="has unexpected form"):
            one(lo, lo, bytes(bad), 5, "0", K.ENUMVAL_VALUE)
        with pytest.raises(RelocationError, match="unexpected insn #0 \\(LDIMM64\\) value"):
            one(lo, lo, ld64(2), 5, "0", K.ENUMVAL_VALUE)
