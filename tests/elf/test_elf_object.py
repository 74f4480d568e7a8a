"""open_object_spec on real clang-19 objects: programs, relocations, metadata, errors."""
from __future__ import annotations

import hashlib
import struct
import subprocess

import pytest

from bccless.btf.types import Kind
from bccless.elf.object import object_name, open_object_spec
from bccless.elf.sections import SEC_ATTACHABLE, SEC_EXP_ATTACH_OPT
from bccless.errors import ELFError
from bccless.sys import bpf_consts as C

from elf_build import CLANG, DATA, compile_bpf

R_BPF_64_64, R_BPF_64_32 = 1, 10


@pytest.fixture(scope="module")
def spec(full_obj):
    return open_object_spec(full_obj)


def test_metadata(spec, full_obj):
    assert spec.name == "full"
    assert spec.license == "GPL"
    assert spec.kern_version == 0
    assert spec.path == str(full_obj)
    assert spec.sha256 == hashlib.sha256(full_obj.read_bytes()).hexdigest()
    assert spec.btf is not None


def test_programs_order_and_kinds(spec):
    got = [(p.name, p.sec_name, p.sec_insn_off, p.is_subprog) for p in spec.programs]
    # section index order (.text, xdp, tracepoint, ?raw_tp, socket), then offset
    assert got == [
        ("helper_global", ".text", 0, True),
        ("helper_static", ".text", 5, True),
        ("tail_a", "xdp", 0, False),
        ("xdp_pass", "xdp", 2, False),
        ("tp_getpid", "tracepoint/syscalls/sys_enter_getpid", 0, False),
        ("raw_enter", "?raw_tp/sys_enter", 0, False),
        ("sock_filter", "socket", 0, False),
    ]
    p = spec.program("tp_getpid")
    assert p.prog_type == C.BPF_PROG_TYPE_TRACEPOINT
    assert p.attach_target == "syscalls/sys_enter_getpid"
    assert p.sec_prefix == "tracepoint+"
    x = spec.program("xdp_pass")
    assert (x.prog_type, x.expected_attach_type) == (C.BPF_PROG_TYPE_XDP, C.BPF_XDP)
    assert x.sec_flags == SEC_ATTACHABLE | SEC_EXP_ATTACH_OPT
    assert spec.program("sock_filter").prog_type == C.BPF_PROG_TYPE_SOCKET_FILTER


def test_subprogram_linkage(spec):
    assert spec.program("helper_global").global_func is True
    assert spec.program("helper_static").global_func is False
    for name in ("helper_global", "helper_static"):
        p = spec.program(name)
        assert p.prog_type == 0 and p.sec_prefix == ""


def test_hidden_global_subprogram(write_c):
    obj = write_c("hid", '#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n'
                  '__attribute__((visibility("hidden"))) __noinline int hid(int x)'
                  ' { return x + 1; }\n'
                  '__noinline int vis(int x) { return x + 2; }\n'
                  'SEC("socket") int f(void *c) { return hid(1) + vis(2); }\n')
    s = open_object_spec(obj)
    assert s.program("hid").mark_btf_static and s.program("hid").global_func
    assert not s.program("vis").mark_btf_static
    assert not s.program("f").mark_btf_static


def test_autoload_question_mark(spec):
    p = spec.program("raw_enter")
    assert p.autoload is False
    assert p.sec_name == "?raw_tp/sys_enter"      # the ELF name keys relocs & BTF.ext
    assert p.prog_type == C.BPF_PROG_TYPE_RAW_TRACEPOINT
    assert p.attach_target == "sys_enter"
    assert "?raw_tp/sys_enter" in spec.relocs and "?raw_tp/sys_enter" in spec.func_info


def test_instructions_match_section(spec):
    for p in spec.programs:
        sec = spec.section_insns[p.sec_name]
        start = p.sec_insn_off * 8
        assert p.insns == sec[start:start + len(p.insns)]
        assert len(p.insns) % 8 == 0 and p.insns
    # helper_static: 6 insns at offset 5 of .text (5 + 6 = whole section)
    assert len(spec.section_insns[".text"]) == 11 * 8
    # last insn of every program is exit (0x95)
    for p in spec.programs:
        assert p.insns[-8] == 0x95


def test_relocations(spec):
    text = spec.relocs[".text"]
    assert [(r.insn_idx, r.sym_name, r.sym_section, r.sym_type, r.r_type) for r in text] == [
        (0, "counter", ".data", "STT_OBJECT", R_BPF_64_64),
        (6, ".bss", ".bss", "STT_SECTION", R_BPF_64_64),
    ]
    tp = {r.insn_idx: r for r in spec.relocs["tracepoint/syscalls/sys_enter_getpid"]}
    counts = tp[4]
    assert (counts.sym_name, counts.sym_section, counts.sym_value, counts.sym_bind) == (
        "counts", ".maps", 152, "STB_GLOBAL")
    call_static = tp[12]
    assert (call_static.sym_name, call_static.sym_type, call_static.r_type) == (
        ".text", "STT_SECTION", R_BPF_64_32)
    externs = {r.sym_name: r for r in tp.values() if r.sym_section == ""}
    assert set(externs) == {"CONFIG_HZ_FOO", "CONFIG_HZ", "CONFIG_DEFAULT_HOSTNAME",
                            "CONFIG_CHAR_THING", "bpf_prog_active", "LINUX_KERNEL_VERSION",
                            "CONFIG_BPF_SYSCALL"}
    assert externs["CONFIG_HZ"].sym_bind == "STB_WEAK"
    assert externs["LINUX_KERNEL_VERSION"].sym_bind == "STB_GLOBAL"
    # every relocation lands on an ld_imm64 (0x18) or a call (0x85)
    for sec, relos in spec.relocs.items():
        insns = spec.section_insns[sec]
        for r in relos:
            assert insns[r.insn_idx * 8] in (0x18, 0x85), (sec, r)
    assert "xdp" in spec.relocs and spec.relocs["xdp"][0].sym_name == "jmp"
    assert "socket" not in spec.relocs


def test_datasec_fixup(spec):
    btf = spec.btf
    secs = {btf.name(i): btf[i] for i in btf.ids() if btf.kind(i) == Kind.DATASEC}
    data = secs[".data"]
    assert data.size == 8
    assert [(btf.name(v.type), v.offset, v.size) for v in data.vars] == [
        ("counter", 0, 4), ("hidden_global", 4, 4)]
    # hidden visibility demotes the VAR to static; the visible one stays global
    assert btf[data.vars[1].type].linkage == 0
    assert btf[data.vars[0].type].linkage == 1
    bss = secs[".bss"]
    assert bss.size == 36
    assert [v.offset for v in bss.vars] == sorted(v.offset for v in bss.vars)
    maps = secs[".maps"]
    assert [(btf.name(v.type), v.offset) for v in maps.vars] == [
        ("inner2", 0), ("inner1", 32), ("outer", 64), ("jmp", 112), ("counts", 152),
        ("arr", 192), ("rb", 232)]


def test_bytes_input_and_name_override(full_obj):
    data = full_obj.read_bytes()
    s = open_object_spec(data, name="my_object_name")
    assert s.name == "my_object_name"
    assert s.sha256 == hashlib.sha256(data).hexdigest()
    assert s.path.startswith("<memory:")
    assert s.map(".rodata").name == "my_objec.rodata"
    anon = open_object_spec(data)
    assert anon.name == "obj_" + s.sha256[:8]


def test_object_name():
    assert object_name("/x/y/foo.bpf.o") == "foo"
    assert object_name("bar.o") == "bar"
    assert object_name("baz") == "baz"


def test_version_section(write_c):
    obj = write_c("ver", '#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n'
                  'unsigned int _version SEC("version") = 0x050a00;\n'
                  'SEC("socket") int f(void *c) { return 0; }\n')
    s = open_object_spec(obj)
    assert s.kern_version == 0x050A00
    assert s.license == ""        # no license section: allowed, like libbpf


# ---- errors ------------------------------------------------------------------------------

def test_not_elf(tmp_path):
    p = tmp_path / "junk.o"
    p.write_bytes(b"\x7fELF" + b"\x02\x01\x01" + b"\0" * 9 + b"garbage")
    with pytest.raises(ELFError, match="junk.o"):
        open_object_spec(p)
    with pytest.raises(ELFError, match="cannot read"):
        open_object_spec(tmp_path / "missing.o")


def test_wrong_machine(tmp_path):
    if CLANG is None:
        pytest.skip("clang-19 is not installed: cannot build the x86 object")
    src = tmp_path / "x86.c"
    src.write_text("int f(void) { return 1; }\n")
    out = tmp_path / "x86.o"
    subprocess.run([CLANG, "-c", "-target", "x86_64-linux-gnu", str(src), "-o", str(out)],
                   check=True)
    with pytest.raises(ELFError, match=r"x86\.o: not a BPF object.*EM_BPF=247"):
        open_object_spec(out)


def test_big_endian_rejected(tmp_path):
    out = compile_bpf(DATA / "core.bpf.c", tmp_path / "be.o", ["-target", "bpfeb"])
    with pytest.raises(ELFError, match="big-endian"):
        open_object_spec(out)


def test_legacy_maps_section(write_c):
    obj = write_c("legacy", '#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n'
                  'struct def { unsigned int type, key_size, value_size, max_entries; };\n'
                  'struct def m SEC("maps") = { BPF_MAP_TYPE_ARRAY, 4, 4, 1 };\n'
                  'SEC("socket") int f(void *c) { return 0; }\n')
    with pytest.raises(ELFError, match=r"legacy\.bpf\.o: legacy map definitions in 'maps' "
                                       r"section are not supported by libbpf v1\.0\+"):
        open_object_spec(obj)


def test_static_entry_program(write_c):
    obj = write_c("static", '#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n'
                  'SEC("socket") static int f(void *c) { return 0; }\n'
                  'SEC("socket") int g(void *c) { return f(c); }\n')
    with pytest.raises(ELFError, match="sec 'socket': program 'f' is static and not supported"):
        open_object_spec(obj)


def test_section_past_end_of_file(full_obj, tmp_path):
    data = bytearray(full_obj.read_bytes())
    shoff, = struct.unpack_from("<Q", data, 0x28)
    struct.pack_into("<Q", data, shoff + 2 * 64 + 24, len(data) + 4096)  # .text sh_offset
    p = tmp_path / "trunc.o"
    p.write_bytes(bytes(data))
    with pytest.raises(ELFError, match=r"trunc\.o: section '\.text' .* past end of file"):
        open_object_spec(p)


def test_corrupted_objects_raise_only_bccless_errors(full_obj):
    """Random byte flips must end in a BcclessError (or a spec), never a crash."""
    import random

    from bccless.errors import BcclessError

    data = full_obj.read_bytes()
    rnd = random.Random(7)
    for _ in range(300):
        d = bytearray(data)
        for _ in range(rnd.randrange(1, 8)):
            d[rnd.randrange(len(d))] = rnd.randrange(256)
        try:
            open_object_spec(bytes(d))
        except BcclessError:
            pass
    for n in range(0, len(data), 211):
        with pytest.raises(BcclessError):
            open_object_spec(data[:n])
