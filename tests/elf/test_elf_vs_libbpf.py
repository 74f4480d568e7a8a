"""The same objects opened by libbpf 1.1 (libbpf.so.1 via ctypes, open only):
programs, maps (names, shapes, flags, BTF ids, initial images) and the object's
BTF after libbpf's fix-ups must agree with open_object_spec, record for record."""
from __future__ import annotations

import pytest

from bccless.btf.parse import BTF
from bccless.elf.object import open_object_spec

from elf_libbpf_oracle import LIB, open_with_libbpf

pytestmark = pytest.mark.skipif(LIB is None, reason="libbpf.so.1 not loadable: no oracle")

CASES = [
    ("full.bpf.c", "full.bpf.o", None),
    ("full.bpf.c", "full.bpf.o", "my_object_name"),
    ("full.bpf.c", "full.bpf.o", "\u00e9t\u00e9-obj"),   # multi-byte and refused characters
    ("ksyms.bpf.c", "ks-yms.bpf.o", None),
    ("core.bpf.c", "core.bpf.o", None),
]


@pytest.mark.parametrize("src, out, name", CASES)
def test_same_as_libbpf(build, src, out, name):
    path = build(src, name=out)
    ref = open_with_libbpf(str(path), name)
    assert "error" not in ref, ref
    spec = open_object_spec(path, name=name)

    ours = [dict(name=p.name, sec=p.sec_name.lstrip("?"), type=p.prog_type,
                 eat=p.expected_attach_type, autoload=p.autoload, insns=len(p.insns) // 8)
            for p in spec.programs if not p.is_subprog]
    assert ours == ref["programs"]

    ours_maps = [dict(name=m.name, type=m.map_type, key_size=m.key_size,
                      value_size=m.value_size, max_entries=m.max_entries, flags=m.flags,
                      key_type_id=m.key_type_id, value_type_id=m.value_type_id,
                      data=m.data if m.internal else None, pinned=m.pinning == 1)
                 for m in spec.maps]
    assert ours_maps == ref["maps"]

    theirs = BTF.from_bytes(ref["btf"], source="libbpf")
    assert len(theirs) == len(spec.btf)
    for tid in theirs.ids():
        assert spec.btf[tid] == theirs[tid], tid


def test_string_literal_maps_like_libbpf(write_c):
    obj = write_c("lit", "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n"
                  "const volatile int k = 3; int g; static int s;\n"
                  'SEC("tp/syscalls/sys_enter_getpid") int a(void *c)\n'
                  '{ bpf_trace_printk("literal %d\\n", 12, k + g + s); return 0; }\n'
                  'char L[] SEC("license") = "GPL";\n')
    ref = open_with_libbpf(str(obj))
    spec = open_object_spec(obj)
    assert [(m.name, m.value_size, m.flags, m.data) for m in spec.maps] == [
        (m["name"], m["value_size"], m["flags"], m["data"]) for m in ref["maps"]]
    assert [m.name for m in spec.maps] == ["lit.rodata", ".rodata.str1.1", "lit.bss"]
