"""Shared fixtures of the BTF tests: kernel BTF fixtures, a hand-built blob
holding every kind, and a clang-compiled object with every kind clang emits."""
from __future__ import annotations

import functools
import lzma
import shutil
import subprocess
from pathlib import Path
from typing import Callable, Dict, Tuple

import pytest

from bccless.btf import (
    FUNC_GLOBAL, INT_BOOL, INT_CHAR, INT_SIGNED, VAR_GLOBAL_ALLOCATED, Array, Const, Datasec,
    DeclTag, Enum, Enum64, EnumValue, Float, Func, FuncProto, Fwd, Int, Member, Param, Ptr,
    Restrict, Struct, Type, Typedef, TypeTag, Union, Var, VarSecInfo, Volatile,
)

from .rawbtf import RawBTF, members

DATA = Path(__file__).resolve().parent.parent / "data" / "btf"
KERNELS = sorted(p.name[:-len(".btf.xz")] for p in DATA.glob("*.btf.xz"))
CLANG = shutil.which("clang-19")


@functools.lru_cache(maxsize=None)
def kernel_blob(name: str) -> bytes:
    """Decompressed BTF of one of the kernels in tests/data/btf (cached per session)."""
    return lzma.decompress((DATA / f"{name}.btf.xz").read_bytes())


def build_all_kinds() -> Tuple[RawBTF, Dict[int, Type]]:
    """A blob with all 19 kinds, kind flags, bitfields and linkage, and the records
    a correct parser must produce for it."""
    r = RawBTF()
    exp: Dict[int, Type] = {}

    def add(t: Type, *args, **kw) -> int:
        tid = r.rec(*args, **kw)
        exp[tid] = t
        return tid

    i = add(Int("int", 4, INT_SIGNED, 0, 32), "INT", "int", 4, extra=[INT_SIGNED << 24 | 32])
    uc = add(Int("unsigned char", 1, INT_CHAR, 0, 8), "INT", "unsigned char", 1,
             extra=[INT_CHAR << 24 | 8])
    add(Int("_Bool", 1, INT_BOOL, 0, 1), "INT", "_Bool", 1, extra=[INT_BOOL << 24 | 1])
    add(Int("odd", 4, 0, 3, 5), "INT", "odd", 4, extra=[3 << 16 | 5])
    p = add(Ptr(i), "PTR", "", i)
    add(Array(i, i, 10), "ARRAY", "", 0, extra=[i, i, 10])
    bits = add(Struct("bits", 16, [Member("a", i, 0, 3), Member("b", i, 3, 13),
                                   Member("c", uc, 32, 0), Member("d", p, 64, 0)], True),
               "STRUCT", "bits", 16, vlen=4, kflag=1,
               extra=members(r, [("a", i, 3 << 24 | 0), ("b", i, 13 << 24 | 3),
                                 ("c", uc, 32), ("d", p, 64)]))
    add(Union("u", 4, [Member("x", i, 0), Member("y", uc, 0)]), "UNION", "u", 4, vlen=2,
        extra=members(r, [("x", i, 0), ("y", uc, 0)]))
    add(Enum("e_signed", 4, [EnumValue("NEG", -5), EnumValue("POS", 7)], True), "ENUM",
        "e_signed", 4, vlen=2, kflag=1, extra=[r.s("NEG"), -5, r.s("POS"), 7])
    add(Enum("e_unsigned", 4, [EnumValue("BIG", 0xFFFFFFFF)]), "ENUM", "e_unsigned", 4,
        vlen=1, extra=[r.s("BIG"), 0xFFFFFFFF])
    add(Fwd("fwd_union", True), "FWD", "fwd_union", 0, kflag=1)
    myint = add(Typedef("myint", i), "TYPEDEF", "myint", i)
    vol = add(Volatile(i), "VOLATILE", "", i)
    add(Const(vol), "CONST", "", vol)
    add(Restrict(p), "RESTRICT", "", p)
    proto = add(FuncProto(i, [Param("a", i), Param("b", p), Param("", 0)]), "FUNC_PROTO", "",
                i, vlen=3, extra=[r.s("a"), i, r.s("b"), p, 0, 0])
    func = add(Func("f", proto, FUNC_GLOBAL), "FUNC", "f", proto, vlen=FUNC_GLOBAL)
    var = add(Var("v", i, VAR_GLOBAL_ALLOCATED), "VAR", "v", i, extra=[VAR_GLOBAL_ALLOCATED])
    add(Datasec(".data", 4, [VarSecInfo(var, 0, 4)]), "DATASEC", ".data", 4, vlen=1,
        extra=[var, 0, 4])
    add(Float("double", 8), "FLOAT", "double", 8)
    add(DeclTag("tag_a", bits, 1), "DECL_TAG", "tag_a", bits, extra=[1])
    add(DeclTag("tag_b", func, -1, True), "DECL_TAG", "tag_b", func, kflag=1, extra=[-1])
    user = add(TypeTag("user", i), "TYPE_TAG", "user", i)
    add(TypeTag("address_space(1)", i, True), "TYPE_TAG", "address_space(1)", i, kflag=1)
    add(Enum64("e64", 8, [EnumValue("M1", -1), EnumValue("BIG", 0x123456789)], True),
        "ENUM64", "e64", 8, vlen=2, kflag=1,
        extra=[r.s("M1"), 0xFFFFFFFF, 0xFFFFFFFF, r.s("BIG"), 0x23456789, 0x1])
    add(Enum64("u64e", 8, [EnumValue("U", 0xFEDCBA9876543210)]), "ENUM64", "u64e", 8, vlen=1,
        extra=[r.s("U"), 0x76543210, 0xFEDCBA98])
    add(Ptr(user), "PTR", "", user)
    for flavor in ("foo___v1", "foo", "foo___2", "foo_bar"):
        add(Struct(flavor, 4, [Member("x", i, 0)]), "STRUCT", flavor, 4, vlen=1,
            extra=members(r, [("x", i, 0)]))
    add(Typedef("a____b", i), "TYPEDEF", "a____b", i)
    arr = add(Array(myint, i, 3), "ARRAY", "", 0, extra=[myint, i, 3])
    arr_t = add(Typedef("arr_t", arr), "TYPEDEF", "arr_t", arr)
    add(Const(arr_t), "CONST", "", arr_t)
    add(FuncProto(0, []), "FUNC_PROTO", "", 0)
    add(Fwd("fwd_struct"), "FWD", "fwd_struct", 0)
    return r, exp


@pytest.fixture(scope="session")
def all_kinds() -> Tuple[bytes, Dict[int, Type]]:
    raw, expected = build_all_kinds()
    return raw.blob(), expected


@pytest.fixture(scope="session")
def kinds_object(tmp_path_factory) -> Path:
    """tests/data/btf/kinds.c compiled by clang-19 -g -O2 -target bpf."""
    if CLANG is None:
        pytest.skip("clang-19 is not installed: cannot compile the BTF test object")
    out = tmp_path_factory.mktemp("btf") / "kinds.o"
    subprocess.run([CLANG, "-g", "-O2", "-target", "bpf", "-c", str(DATA / "kinds.c"),
                    "-o", str(out)], check=True, capture_output=True)
    return out


@pytest.fixture(scope="session")
def kernel() -> Callable[[str], bytes]:
    return kernel_blob
