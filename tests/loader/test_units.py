"""Loader pieces on their own: BTF sanitization (checked by the kernel too),
global-data layouts and coding, SEC() auto-attach parsing, plan round trips."""
from __future__ import annotations

import pytest

from bccless.btf.parse import BTF
from bccless.btf.sanitize import BTFFeatures, sanitize
from bccless.btf.types import (
    FUNC_GLOBAL, VAR_GLOBAL_ALLOCATED, Datasec, DeclTag, Enum, Enum64, EnumValue, Float, Func,
    FuncProto, Int, INT_SIGNED, Kind, Param, Ptr, TypeTag, Var, VarSecInfo,
)
from bccless.errors import MapError
from bccless.globals import GlobalData, datasec_layout


def _sample() -> BTF:
    b = BTF.new()
    i = b.add(Int("int", 4, INT_SIGNED))                          # 1
    proto = b.add(FuncProto(i, [Param("a", i), Param("b", i)]))  # 2
    b.add(Func("f", proto, FUNC_GLOBAL))                         # 3
    v = b.add(Var("counter", i, VAR_GLOBAL_ALLOCATED))            # 4
    b.add(Datasec("?.data.x", 8, [VarSecInfo(v, 4, 4)]))          # 5
    b.add(Float("double", 8))                                    # 6
    b.add(DeclTag("tag", v))                                     # 7
    tt = b.add(TypeTag("user", i))                               # 8
    b.add(Ptr(tt))                                               # 9
    b.add(Enum64("big", 8, [EnumValue("A", 1 << 40), EnumValue("B", 2)]))  # 10
    b.add(Enum("neg", 4, [EnumValue("M", -1)], signed=True))     # 11
    return b


def test_sanitize_for_an_old_kernel():
    out = BTF.from_bytes(sanitize(_sample(), BTFFeatures(*([False] * 8))))
    assert [out.kind(t) for t in out.ids()] == [
        Kind.INT, Kind.ENUM, Kind.TYPEDEF, Kind.INT, Kind.STRUCT, Kind.STRUCT, Kind.INT,
        Kind.CONST, Kind.PTR, Kind.UNION, Kind.ENUM, Kind.INT]
    proto = out[2]
    assert [(v.name, v.value) for v in proto.values] == [("a", 1), ("b", 1)] and proto.size == 4
    assert out[4].name == "counter" and out[4].size == 1            # VAR -> 1-byte INT
    sec = out[5]
    assert sec.name == "__data_x" and sec.size == 8                 # only '.' and '?' replaced
    assert [(m.name, m.type, m.bit_offset) for m in sec.members] == [("counter", 4, 32)]
    assert out[6].name == "" and out[6].size == 8 and not out[6].members   # FLOAT
    assert out[7].name == "" and out[7].size == 1                   # DECL_TAG, name dropped
    assert out[8].type == 1                                         # TYPE_TAG -> CONST
    placeholder = out[12]
    assert placeholder.name == "enum64_placeholder" and placeholder.size == 1
    assert [(m.name, m.type) for m in out[10].members] == [("A", 12), ("B", 12)]
    assert not out[11].signed                                       # kflag cleared


def test_sanitize_partial_features_and_kernel_accepts():
    from bccless.sys import bpf

    b = _sample()
    feats = BTFFeatures(datasec=True, qmark_datasec=False, global_func=False)
    out = BTF.from_bytes(sanitize(b, feats))
    assert out[5].name == "_.data.x" and out.kind(5) == Kind.DATASEC
    assert out[3].linkage == 0                                     # global -> static
    assert sanitize(b, BTFFeatures()) == b.encode()                # complete: untouched
    # this kernel accepts both the original and the fully sanitized blob
    for blob in (b.encode(), sanitize(b, BTFFeatures(*([False] * 8)))):
        import os
        os.close(bpf.btf_load(blob))


def test_global_data_layout_and_coding():
    b = BTF.new()
    i = b.add(Int("int", 4, INT_SIGNED))
    u8 = b.add(Int("unsigned char", 1))
    from bccless.btf.types import Array
    arr = b.add(Array(u8, i, 6))
    ptr = b.add(Ptr(i))
    vs = [b.add(Var(n, t, VAR_GLOBAL_ALLOCATED)) for n, t in
          (("n", i), ("name", arr), ("p", ptr))]
    sec = b.add(Datasec(".data", 24, [VarSecInfo(vs[0], 0, 4), VarSecInfo(vs[1], 4, 6),
                                      VarSecInfo(vs[2], 16, 8)]))
    layout = datasec_layout(b, sec)
    assert layout == {"n": (0, 4, "int"), "name": (4, 6, "chars"), "p": (16, 8, "uint")}
    buf = bytearray(24)
    view = GlobalData(".data", b, sec, buf)
    view.n = -2
    view["name"] = "abc"
    view.p = 0xFFFF_0000_0000_0000
    assert buf[:4] == b"\xfe\xff\xff\xff" and buf[4:10] == b"abc\0\0\0"
    assert (view.n, view.name, view.p) == (-2, b"abc", 0xFFFF_0000_0000_0000)
    with pytest.raises(MapError, match="expected 6 bytes"):
        view.name = "toolong!"
    with pytest.raises(MapError, match="expected an int"):
        view.n = "x"
    same = GlobalData.from_layout(".data", layout, buf, read_only=True)
    assert same.n == -2
    with pytest.raises(MapError, match="read-only"):
        same.n = 1


@pytest.mark.parametrize("prefix,target,expected", [
    ("tracepoint+", "syscalls/sys_enter_getppid", "_tracepoint"),
    ("tp_btf+", "sched_switch", "_btf"),
    ("kprobe+", "do_unlinkat", "attach"),
    ("xdp", "", None),
    ("kprobe+", "", None),
    ("socket", "x", None),
])
def test_auto_attach_dispatch(prefix, target, expected):
    from bccless.load.autoattach import _split_offset, auto_attach_fn

    fn = auto_attach_fn(prefix, target)
    assert (fn.__name__ if fn else None) == expected
    assert _split_offset("func+0x10") == ("func", 16)
    assert _split_offset("func") == ("func", 0)


def test_attach_btf_names():
    from bccless.load.kernel import attach_btf_name
    from bccless.sys import bpf_consts as C

    assert attach_btf_name(C.BPF_TRACE_RAW_TP, "sys_enter") == ("btf_trace_sys_enter", "TYPEDEF")
    assert attach_btf_name(C.BPF_TRACE_ITER, "task") == ("bpf_iter_task", "FUNC")
    assert attach_btf_name(C.BPF_LSM_MAC, "file_open") == ("bpf_lsm_file_open", "FUNC")
    assert attach_btf_name(C.BPF_TRACE_FENTRY, "do_unlinkat") == ("do_unlinkat", "FUNC")
