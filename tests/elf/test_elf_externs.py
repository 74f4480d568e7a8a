"""__kconfig / __ksym externs: classification, .kconfig layout, BTF rewrites."""
from __future__ import annotations

import pytest

from bccless.btf.types import FUNC_GLOBAL, VAR_GLOBAL_ALLOCATED, Kind
from bccless.elf.object import open_object_spec
from bccless.errors import ELFError
from bccless.sys import bpf_consts as C

HDR = "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n"


@pytest.fixture(scope="module")
def spec(full_obj):
    return open_object_spec(full_obj)


def _datasec(btf, name):
    ids = [i for i in btf.find(name) if btf.kind(i) == Kind.DATASEC]
    assert len(ids) == 1
    return btf[ids[0]]


def test_kconfig_layout(spec):
    kcfg = [e for e in spec.externs if e.sec == ".kconfig"]
    # alignment descending, then size, then name (libbpf 1.1 cmp_externs)
    assert [(e.name, e.kcfg_type, e.kcfg_size, e.kcfg_align, e.data_off) for e in kcfg] == [
        ("CONFIG_HZ", "int", 8, 8, 0),
        ("CONFIG_HZ_FOO", "tristate", 4, 4, 8),
        ("LINUX_KERNEL_VERSION", "int", 4, 4, 12),
        ("CONFIG_BPF_SYSCALL", "bool", 1, 1, 16),
        ("CONFIG_CHAR_THING", "char", 1, 1, 17),
        ("CONFIG_DEFAULT_HOSTNAME", "char_arr", 16, 1, 18),
    ]
    flags = {e.name: (e.weak, e.kcfg_signed) for e in kcfg}
    assert flags["LINUX_KERNEL_VERSION"] == (False, True)
    assert flags["CONFIG_HZ"] == (True, False)
    assert flags["CONFIG_BPF_SYSCALL"] == (False, False)
    m = spec.map(".kconfig")
    assert (m.name, m.value_size, m.max_entries, m.key_size) == ("full.kconfig", 34, 1, 4)
    assert m.flags == C.BPF_F_RDONLY_PROG | C.BPF_F_MMAPABLE
    assert m.data == bytes(34) and m.internal == "kconfig"
    ds = _datasec(spec.btf, ".kconfig")
    assert ds.size == 34
    by_name = {spec.btf.name(v.type): v for v in ds.vars}
    for e in kcfg:
        assert by_name[e.name].offset == e.data_off
        assert spec.btf[e.btf_id].linkage == VAR_GLOBAL_ALLOCATED
    assert [v.offset for v in ds.vars] == sorted(v.offset for v in ds.vars)


def test_ksyms_typeless(spec):
    (ks,) = [e for e in spec.externs if e.sec == ".ksyms"]
    assert (ks.name, ks.typeless, ks.weak, ks.is_func, ks.type_id) == (
        "bpf_prog_active", True, True, False, 0)
    assert spec.externs[-1] is ks      # ksyms sort after kconfig


def test_ksyms_rewrite(build):
    s = open_object_spec(build("ksyms.bpf.c", name="ks-yms.bpf.o"))
    btf = s.btf
    got = [(e.name, e.is_func, e.weak, e.typeless) for e in s.externs]
    assert got == [("bpf_prog_active", False, False, False),
                   ("bpf_rcu_read_lock", True, False, False),
                   ("bpf_task_acquire", True, True, False),
                   ("bpf_task_release", True, True, False),
                   ("init_task", False, False, True)]
    ext = {e.name: e for e in s.externs}
    assert btf.kind(ext["bpf_task_acquire"].type_id) == Kind.FUNC_PROTO
    assert btf.kind(ext["bpf_prog_active"].type_id) == Kind.INT   # const int, mods skipped
    # .ksyms: every entry a 4-byte allocated var; functions stand in as dummy_ksym
    ds = _datasec(btf, ".ksyms")
    assert ds.size == 4 * len(ds.vars) == 20
    assert [v.offset for v in ds.vars] == [0, 4, 8, 12, 16]
    (dummy,) = [i for i in btf.find("dummy_ksym") if btf.kind(i) == Kind.VAR]
    assert dummy == len(btf) - 1              # appended
    assert btf[dummy].linkage == VAR_GLOBAL_ALLOCATED
    assert btf[btf[dummy].type].bits == 32
    for v in ds.vars:
        assert v.size == 4
        assert btf.kind(v.type) == Kind.VAR
    assert sum(v.type == dummy for v in ds.vars) == 3
    var = btf[ext["bpf_prog_active"].btf_id]
    assert var.linkage == VAR_GLOBAL_ALLOCATED and btf[var.type].bits == 32
    rel = btf[ext["bpf_task_release"].btf_id]
    assert rel.linkage == FUNC_GLOBAL
    # its unnamed parameter borrows the dummy's name so the kernel accepts the proto
    assert [p.name for p in btf[rel.type].params] == ["dummy_ksym"]
    for e in s.externs:
        if e.is_func:
            assert all(p.name for p in btf[e.type_id].params if p.type)
    assert [m.name for m in s.maps] == ["ks_yms.bss", "ks_yms.rodata"]


@pytest.mark.parametrize("decl, message", [
    ("extern int *CONFIG_PTR __kconfig;", "extern (kcfg) 'CONFIG_PTR': type is unsupported"),
    ("extern struct { int a; } CONFIG_S __kconfig;",
     "extern (kcfg) 'CONFIG_S': type is unsupported"),
    ("extern enum { A, B } CONFIG_E __kconfig;", "extern (kcfg) 'CONFIG_E': type is unsupported"),
    ("extern int CONFIG_F(void) __kconfig;",
     "extern function CONFIG_F is unsupported under .kconfig section"),
])
def test_kconfig_errors(write_c, decl, message):
    use = "CONFIG_F()" if "CONFIG_F" in decl else ("(long)&" + decl.split()[-2].lstrip("*"))
    obj = write_c("kc", HDR + decl + "\nlong out;\n"
                  f'SEC("socket") int f(void *c) {{ out = {use}; return 0; }}\n')
    with pytest.raises(ELFError) as exc:
        open_object_spec(obj)
    assert str(exc.value) == f"{obj}: {message}"


def test_no_externs(write_c):
    obj = write_c("none", HDR + 'SEC("socket") int f(void *c) { return 0; }\n')
    s = open_object_spec(obj)
    assert s.externs == [] and s.maps == []
