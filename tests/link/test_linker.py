"""Linker behaviour checked directly on the corpus (no oracle needed):
subprogram layout and call offsets, data/map/extern references, func/line
info, program selection."""
from __future__ import annotations

import struct

import pytest

from .conftest import KCONFIG

from bccless.asm import insn as I


@pytest.fixture(scope="module")
def calls(compile_obj, host_btf):
    from bccless.elf.object import open_object_spec
    from bccless.link.linker import link

    spec = open_object_spec(compile_obj("calls"))
    return spec, link(spec, host_btf, kconfig=KCONFIG)


def _calls_to(prog):
    """(caller position, target position) of every bpf-to-bpf call / callback."""
    out = []
    for idx in range(prog.insn_cnt):
        c, _, src, _, imm = I.decode(prog.insns, idx)
        if (c == I.OP_CALL and src == I.PSEUDO_CALL) or (c == I.OP_LD_IMM64 and src == I.PSEUDO_FUNC):
            out.append((idx, idx + imm + 1))
    return out


def test_entry_programs_only(calls):
    spec, linked = calls
    names = [p.name for p in linked.programs]
    assert names == ["tail_target", "main_a", "main_b"]   # no .text subprogram, no '?' program
    assert "not_loaded" in [p.name for p in spec.programs]


def test_subprograms_appended_depth_first(calls):
    spec, linked = calls
    main_a, main_b = linked.program("main_a"), linked.program("main_b")
    size = {p.name: len(p.insns) // 8 for p in spec.programs}
    # main_a calls mid (which calls leaf), then global_helper, then the loop callback.
    assert [n for n, _ in main_a.layout] == ["main_a", "mid", "leaf", "global_helper", "loop_cb"]
    assert [n for n, _ in main_b.layout] == ["main_b", "leaf", "global_helper", "mid"]
    for prog in (main_a, main_b):
        pos = 0
        for name, start in prog.layout:
            assert start == pos
            pos += size[name]
        assert pos == prog.insn_cnt
    # every call lands on the first instruction of a function of the layout
    starts = {start: name for name, start in main_a.layout}
    targets = {starts[t] for _, t in _calls_to(main_a)}
    assert targets == {"mid", "leaf", "global_helper", "loop_cb"}
    # the callback of bpf_loop is an ld_imm64 src=PSEUDO_FUNC to loop_cb
    cb = [(i, t) for i, t in _calls_to(main_a) if I.code(main_a.insns, i) == I.OP_LD_IMM64]
    assert [starts[t] for _, t in cb] == ["loop_cb"]
    # the same subprogram sits elsewhere in main_b, with its own call offsets
    assert dict(main_a.layout)["leaf"] != dict(main_b.layout)["leaf"]


def test_data_and_map_references(calls):
    spec, linked = calls
    maps = {m.name: i for i, m in enumerate(spec.maps)}
    prog = linked.program("main_b")
    refs = dict(prog.map_refs)
    for idx, map_idx in prog.map_refs:
        c, _, src, _, imm = I.decode(prog.insns, idx)
        assert c == I.OP_LD_IMM64 and imm == map_idx
        assert src in (I.PSEUDO_MAP_FD, I.PSEUDO_MAP_VALUE)
    # data_b = acc: .data at offset 8 (data_a is at 0)
    data_idx = maps[f"{spec.name}.data"]
    stores = [i for i, m in refs.items() if m == data_idx]
    assert stores and all(I.src_reg(prog.insns, i) == I.PSEUDO_MAP_VALUE for i in stores)
    assert 8 in {I.get_imm(prog.insns, i + 1) for i in stores}
    # main_a looks up 'counts' (through mid) and 'outer', and tail-calls through jmp_table
    a = linked.program("main_a")
    fd_maps = {m for i, m in a.map_refs if I.src_reg(a.insns, i) == I.PSEUDO_MAP_FD}
    assert fd_maps == {maps["counts"], maps["outer"], maps["jmp_table"]}


def test_kconfig_references(calls):
    spec, linked = calls
    prog = linked.program("main_a")
    by_name = {e.name: e for e in spec.externs}
    offs = {I.get_imm(prog.insns, i + 1) for i, m in prog.map_refs if m == linked.kconfig_map}
    for name in ("CONFIG_BPF_SYSCALL", "LINUX_KERNEL_VERSION", "CONFIG_NO_SUCH_OPTION",
                 "LINUX_HAS_SYSCALL_WRAPPER", "CONFIG_DEFAULT_HOSTNAME", "LINUX_HAS_BPF_COOKIE"):
        assert by_name[name].data_off in offs, name
    image = linked.kconfig_data
    hz = by_name["CONFIG_HZ"]
    assert struct.unpack_from("<i", image, hz.data_off)[0] == 250
    assert image[by_name["CONFIG_BPF_SYSCALL"].data_off] == 1
    assert struct.unpack_from("<I", image, by_name["CONFIG_NO_SUCH_OPTION"].data_off)[0] == 0


def test_func_and_line_info(calls):
    spec, linked = calls
    prog = linked.program("main_a")
    assert [(idx, spec.btf[tid].name) for idx, tid in prog.func_info] == [
        (start, name) for name, start in prog.layout]
    idxs = [r[0] for r in prog.line_info]
    assert idxs[0] == 0 and idxs == sorted(idxs) and idxs[-1] < prog.insn_cnt
    for name, start in prog.layout:       # every function starts with a line record
        assert start in idxs, name
    for _, file_off, line_off, packed in prog.line_info:
        assert spec.btf.string(file_off).endswith("calls.bpf.c")
        assert packed >> 10 > 0


def test_program_selection(compile_obj, host_btf):
    from bccless.elf.object import open_object_spec
    from bccless.errors import RelocationError
    from bccless.link.linker import link

    spec = open_object_spec(compile_obj("calls"))
    linked = link(spec, host_btf, kconfig=KCONFIG, programs=["main_b", "not_loaded"])
    assert [p.name for p in linked.programs] == ["main_b", "not_loaded"]
    nl = linked.program("not_loaded")
    assert [n for n, _ in nl.layout] == ["not_loaded", "leaf"]
    assert nl.core_results, "the selected '?' program gets CO-RE relocations"
    with pytest.raises(RelocationError, match="no program named nope"):
        link(spec, host_btf, programs=["nope"])


def test_ksyms(compile_obj, host_btf):
    from bccless.btf.types import Kind
    from bccless.elf.object import open_object_spec
    from bccless.link.linker import link

    spec = open_object_spec(compile_obj("ksyms"))
    linked = link(spec, host_btf, kallsyms=lambda names: {n: 0xFFFFFFFF81234567 for n in names
                                                          if n == "bpf_prog_put"})
    prog = linked.program("ksyms")
    kf = [I.decode(prog.insns, i) for i in range(prog.insn_cnt)
          if I.decode(prog.insns, i)[2] == I.PSEUDO_KFUNC_CALL and I.code(prog.insns, i) == I.OP_CALL]
    ids = {imm for *_, imm in kf}
    assert host_btf.find("bpf_task_from_pid", Kind.FUNC)[0] in ids
    assert host_btf.find("bpf_task_release", Kind.FUNC)[0] in ids
    assert 0 in ids                                # the weak, missing kfunc
    btf_ids = [I.get_imm(prog.insns, i) for i in range(prog.insn_cnt)
               if I.code(prog.insns, i) == I.OP_LD_IMM64 and I.src_reg(prog.insns, i) == I.PSEUDO_BTF_ID]
    assert btf_ids == [host_btf.find("bpf_prog_active", Kind.VAR)[0],
                       host_btf.find("runqueues", Kind.VAR)[0]]
    addrs = [(I.get_imm(prog.insns, i) & 0xFFFFFFFF) | ((I.get_imm(prog.insns, i + 1) & 0xFFFFFFFF) << 32)
             for i in range(prog.insn_cnt)
             if I.code(prog.insns, i) == I.OP_LD_IMM64 and I.src_reg(prog.insns, i) == 0]
    assert 0xFFFFFFFF81234567 in addrs and addrs.count(0) >= 2   # two weak, unresolved
    assert linked.externs["bpf_prog_put"].addr == 0xFFFFFFFF81234567
    assert not linked.externs["no_such_symbol_xyz"].is_set


def test_strong_missing_ksym_fails(compile_obj, host_btf):
    from bccless.elf.object import open_object_spec
    from bccless.errors import RelocationError
    from bccless.link.linker import link

    spec = open_object_spec(compile_obj("ksyms"))
    with pytest.raises(RelocationError, match="extern 'bpf_prog_put' \\(strong\\): not resolved"):
        link(spec, host_btf, kallsyms=lambda names: {})


def test_virtual_extern_facts_from_target_btf(kernel_btf_paths, load_btf):
    """LINUX_HAS_BPF_COOKIE / LINUX_HAS_SYSCALL_WRAPPER describe the target
    kernel: bpf_get_attach_cookie arrived in 5.15, x86-64 wraps syscalls."""
    import os

    from bccless.link.kconfig import KernelFacts
    from bccless.link.linker import probe_facts

    if os.uname().machine != "x86_64":
        pytest.skip("the BTF fixtures are x86-64 kernels")
    for label, path in kernel_btf_paths.items():
        facts = probe_facts(load_btf(path), KernelFacts(kernel_version=1))
        assert facts.has_syscall_wrapper is True, label
        assert facts.has_bpf_cookie is ("5.10" not in label), label
    given = probe_facts(load_btf(kernel_btf_paths[next(iter(kernel_btf_paths))]),
                        KernelFacts(kernel_version=7, has_bpf_cookie=True, has_syscall_wrapper=False))
    assert (given.kernel_version, given.has_bpf_cookie, given.has_syscall_wrapper) == (7, True, False)
