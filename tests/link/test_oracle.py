"""The linker's final instructions must equal libbpf 1.1's, program by
program, for every kernel BTF fixture (map fd/index immediates masked)."""
from __future__ import annotations

import os
import re

import pytest

from .conftest import KCONFIG, kernel_btf_labels, libbpf_can_relocate

OK, WHY = libbpf_can_relocate()
pytestmark = pytest.mark.skipif(not OK, reason=WHY)

CORE_OBJECTS = ["core_kinds", "calls", "ksyms"]
POISON_RE = re.compile(r"prog '([^']+)': relo #(\d+): substituting insn #\d+ w/ invalid insn")


def _link(compile_obj, load_btf, host_btf, obj: str, btf_path: str):
    from bccless.elf.object import open_object_spec
    from bccless.link.linker import link

    spec = open_object_spec(compile_obj(obj))
    # libbpf resolves __ksym externs against the running kernel even when a
    # custom CO-RE target is given; do the same for a like-for-like check.
    return link(spec, load_btf(btf_path), kconfig=KCONFIG, ksym_btf=host_btf,
                read_system_kconfig=True, target_desc=btf_path)


@pytest.mark.parametrize("kernel", kernel_btf_labels())
@pytest.mark.parametrize("obj", CORE_OBJECTS)
def test_instructions_match_libbpf(obj, kernel, compile_obj, kernel_btf_paths, load_btf,
                                   host_btf):
    from oracle.libbpf_oracle import mask_map_imms, relocate

    btf_path = kernel_btf_paths[kernel]
    ref = relocate(compile_obj(obj), btf_path, kconfig=KCONFIG)
    linked = _link(compile_obj, load_btf, host_btf, obj, btf_path)
    if linked.core_results:
        assert ref.relo_lines, "libbpf did not relocate: oracle run is meaningless"
    mine = {p.name: bytes(p.insns) for p in linked.programs}
    assert sorted(mine) == sorted(ref.programs)
    for name, insns in ref.programs.items():
        a, b = mask_map_imms(mine[name]), mask_map_imms(insns)
        assert len(a) == len(b), name
        diffs = [i for i in range(len(a) // 8) if a[i * 8:i * 8 + 8] != b[i * 8:i * 8 + 8]]
        assert not diffs, f"{name}: instructions {diffs[:8]} differ from libbpf's"
    poisoned_ref = {(m.group(1), int(m.group(2))) for line in ref.relo_lines
                    for m in [POISON_RE.search(line)] if m}
    poisoned = {(r.function, r.relo_idx) for r in linked.core_results if r.result.poisoned}
    assert poisoned == poisoned_ref


def test_poisoning_differs_across_kernels(compile_obj, kernel_btf_paths, load_btf, host_btf):
    """The corpus really exercises kernel differences: task_struct.__state is
    poisoned on 5.10 only, the made-up flavor everywhere."""
    poisoned = {}
    for label, path in kernel_btf_paths.items():
        linked = _link(compile_obj, load_btf, host_btf, "core_kinds", path)
        poisoned[label] = {(r.function, r.result.local_spec.split(" ", 1)[1])
                           for r in linked.core_results if r.result.poisoned}
    five = next(v for k, v in poisoned.items() if "5.10" in k)
    assert any("task_struct.__state" in s for _, s in five)
    for label, specs in poisoned.items():
        assert any("task_struct___fake.no_such_field" in s for _, s in specs), label
        if "5.10" not in label:
            assert not any("task_struct.__state" in s for _, s in specs), label


def test_kconfig_image_matches_libbpf(compile_obj, host_btf):
    from bccless.elf.object import open_object_spec
    from bccless.link.kconfig import KernelFacts
    from bccless.link.linker import link
    from oracle.libbpf_oracle import relocate

    obj = compile_obj("calls")
    ref = relocate(obj, "/sys/kernel/btf/vmlinux", kconfig=KCONFIG)
    # libbpf 1.1 decides LINUX_HAS_SYSCALL_WRAPPER by creating a kprobe; on a
    # kernel without kprobes it answers no, whatever the BTF says.
    kprobes = (os.path.exists("/sys/bus/event_source/devices/kprobe/type")
               or os.path.exists("/sys/kernel/tracing/kprobe_events"))
    facts = KernelFacts(has_syscall_wrapper=None if kprobes else False)
    linked = link(open_object_spec(obj), host_btf, kconfig=KCONFIG, kernel_facts=facts)
    name = linked.spec.maps[linked.kconfig_map].name
    assert linked.kconfig_data == ref.map_images[name]
    assert linked.kconfig_data[:4] == (250).to_bytes(4, "little")   # CONFIG_HZ from the text


@pytest.mark.parametrize("target,error", [("ambig_target_conflict", "field offset ambiguity: 0 != 32"),
                                          ("ambig_target_agree", None)])
def test_duplicate_flavors(target, error, compile_obj, load_btf):
    from bccless.elf.object import open_object_spec
    from bccless.errors import RelocationError
    from bccless.link.linker import link
    from oracle.libbpf_oracle import mask_map_imms, relocate

    obj, target_obj = compile_obj("ambig"), compile_obj(target)
    ref = relocate(obj, target_obj)
    spec = open_object_spec(obj)
    if error:
        assert any(error in line for line in ref.relo_lines)
        with pytest.raises(RelocationError, match=error):
            link(spec, load_btf(target_obj))
        return
    linked = link(spec, load_btf(target_obj))
    assert mask_map_imms(bytes(linked.program("read_b").insns)) == mask_map_imms(
        ref.programs["read_b"])
    assert linked.core_results[0].result.new_value == 12
