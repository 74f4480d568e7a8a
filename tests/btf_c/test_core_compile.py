"""A CO-RE program compiles against the generated header and carries CO-RE
relocations against the kernel types it reads."""
from __future__ import annotations

import os
import struct

import pytest
from elftools.elf.elffile import ELFFile

from bccless.btf import BTF, load_kernel_btf
from bccless.btf.cdump import c_header

from .helpers import DATA, clang, needs_clang

PROGRAM = r"""
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	pid_t ppid = BPF_CORE_READ(next, real_parent, tgid);
	unsigned long flags = BPF_CORE_READ(prev, mm, def_flags);
	if (bpf_core_field_exists(prev->__state))
		bpf_printk("%d %lu", ppid, flags);
	return 0;
}
"""

HAVE_LIBBPF_HEADERS = os.path.exists("/usr/include/bpf/bpf_core_read.h")


def _core_relos(obj_path: str):
    """(root type name, access string) of every CO-RE relocation in .BTF.ext."""
    with open(obj_path, "rb") as f:
        elf = ELFFile(f)
        btf_data = elf.get_section_by_name(".BTF").data()
        ext = elf.get_section_by_name(".BTF.ext").data()
    btf = BTF.from_bytes(btf_data)
    hdr_len, = struct.unpack_from("<I", ext, 4)
    assert hdr_len >= 32, ".BTF.ext header has no CO-RE relocation part"
    core_off, core_len = struct.unpack_from("<II", ext, 24)
    pos = hdr_len + core_off
    end = pos + core_len
    rec_size, = struct.unpack_from("<I", ext, pos)
    pos += 4
    out = []
    while pos < end:
        _sec, count = struct.unpack_from("<II", ext, pos)
        pos += 8
        for _ in range(count):
            _insn, type_id, access_off, _kind = struct.unpack_from("<IIII", ext, pos)
            out.append((btf.name(btf.skip_mods_and_typedefs(type_id)), btf.string(access_off)))
            pos += rec_size
    return out


def _kernel_btf():
    if os.path.exists("/sys/kernel/btf/vmlinux"):
        return load_kernel_btf()
    return BTF.from_file(str(DATA / "host-6.18.44-fc.btf.xz"))


@needs_clang
@pytest.mark.skipif(not HAVE_LIBBPF_HEADERS, reason="libbpf-dev headers are not installed")
def test_core_program_compiles_with_relocations(tmp_path):
    (tmp_path / "vmlinux.h").write_text(c_header(_kernel_btf()))
    (tmp_path / "prog.bpf.c").write_text(PROGRAM)
    res = clang(["-g", "-O2", "-target", "bpf", "-D__TARGET_ARCH_x86", "-Werror",
                 "-c", "prog.bpf.c", "-o", "prog.o"], tmp_path)
    assert res.returncode == 0, res.stderr
    relos = _core_relos(str(tmp_path / "prog.o"))
    roots = {name for name, _ in relos}
    assert "task_struct" in roots and "mm_struct" in roots
    # Every read is a field access string rooted at the type's index 0.
    assert all(access.startswith("0:") for _, access in relos)
    assert len(relos) >= 4
