"""The generated cffi module matches its cdef, and the cdef matches the kernel ABI."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

import bccless.sys._libc as libc_mod
from bccless.sys import _libc_build
from bccless.sys.ffi import ffi, syscall


def _normalise(text: str) -> str:
    # The cffi version that generated the file is recorded; it is not part of the layout.
    return re.sub(r"_version = 0x[0-9a-fA-F]+", "_version = X", text)


def test_generated_module_matches_cdef(tmp_path):
    out = tmp_path / "_libc.py"
    _libc_build.emit(str(out))
    with open(libc_mod.__file__) as f:
        committed = f.read()
    assert _normalise(out.read_text()) == _normalise(committed), (
        "bccless/sys/_libc.py is stale: run python -m bccless.sys._libc_build")


def test_warm_import_loads_no_parser():
    code = ("import sys, bccless.sys.bpf, bccless.sys.perf; "
            "print(','.join(m for m in ('pycparser', 'cffi', 'ctypes') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == ""


def test_lp64_pointer_fields():
    # attr pointer members are declared void * for __aligned_u64: only valid on LP64
    assert ffi.sizeof("void *") == 8
    assert ffi.offsetof("struct bpf_map_elem_attr", "key") == 8
    assert ffi.sizeof("struct bpf_map_elem_attr") == 32


def test_syscall_and_errno():
    assert syscall(39) == os.getpid()  # getpid on x86-64
    with pytest.raises(OSError) as err:
        syscall(3, -1)  # close(-1)
    assert err.value.errno == 9


# Fields of Debian's (older) uapi header: offsets must agree with the compiler's.
_C_CHECKS = {
    ("struct bpf_map_create_attr", "btf_vmlinux_value_type_id"): "btf_vmlinux_value_type_id",
    ("struct bpf_map_create_attr", "map_extra"): "map_extra",
    ("struct bpf_prog_load_attr", "fd_array"): "fd_array",
    ("struct bpf_prog_load_attr", "attach_prog_fd"): "attach_prog_fd",
    ("struct bpf_prog_load_attr", "line_info_cnt"): "line_info_cnt",
    ("struct bpf_prog_load_attr", "core_relo_rec_size"): "core_relo_rec_size",
    ("struct bpf_map_batch_attr", "elem_flags"): "batch.elem_flags",
    ("struct bpf_test_run_attr", "ctx_out"): "test.ctx_out",
    ("struct bpf_test_run_attr", "cpu"): "test.cpu",
    ("struct bpf_btf_load_attr", "btf_log_level"): "btf_log_level",
    ("struct bpf_raw_tp_attr", "prog_fd"): "raw_tracepoint.prog_fd",
}
_LINK_CHECKS = {
    ("perf_event", "bpf_cookie"): "link_create.perf_event.bpf_cookie",
    ("kprobe_multi", "cookies"): "link_create.kprobe_multi.cookies",
    ("tracing", "cookie"): "link_create.tracing.cookie",
    ("iter", "iter_info_len"): "link_create.iter_info_len",
}
_INFO_CHECKS = {
    ("struct bpf_prog_info", "verified_insns"): ("bpf_prog_info", "verified_insns"),
    ("struct bpf_prog_info", "btf_id"): ("bpf_prog_info", "btf_id"),
    ("struct bpf_map_info", "map_extra"): ("bpf_map_info", "map_extra"),
    ("struct bpf_btf_info", "kernel_btf"): ("bpf_btf_info", "kernel_btf"),
    ("struct perf_event_attr", "sig_data"): ("perf_event_attr", "sig_data"),
}


def test_attr_offsets_match_uapi_header(tmp_path):
    clang = shutil.which("clang-19") or shutil.which("clang")
    if clang is None or not os.path.exists("/usr/include/linux/bpf.h"):
        pytest.skip("no clang or no /usr/include/linux/bpf.h to compile the uapi layout")
    lines = ["#include <stdio.h>", "#include <stddef.h>", "#include <linux/bpf.h>",
             "#include <linux/perf_event.h>", "int main(void) {"]
    expected = {}
    for (struct_name, field), path in _C_CHECKS.items():
        lines.append(f'printf("%zu\\n", offsetof(union bpf_attr, {path}));')
        expected[len(expected)] = ffi.offsetof(struct_name, field)
    for (member, field), path in _LINK_CHECKS.items():
        lines.append(f'printf("%zu\\n", offsetof(union bpf_attr, {path}));')
        expected[len(expected)] = ffi.offsetof("struct bpf_link_create_attr", "u", member, field)
    for (struct_name, field), (c_struct, c_field) in _INFO_CHECKS.items():
        lines.append(f'printf("%zu\\n", offsetof(struct {c_struct}, {c_field}));')
        expected[len(expected)] = ffi.offsetof(struct_name, field)
    for c_struct, ours in (("bpf_map_info", "struct bpf_map_info"),
                           ("bpf_btf_info", "struct bpf_btf_info")):
        lines.append(f'printf("%zu\\n", sizeof(struct {c_struct}));')
        expected[len(expected)] = ffi.sizeof(ours)
    lines.append("return 0; }")
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "layout"
    subprocess.run([clang, "-o", str(exe), str(src)], check=True, capture_output=True)
    got = [int(x) for x in subprocess.run([str(exe)], capture_output=True, text=True,
                                          check=True).stdout.split()]
    assert got == [expected[i] for i in range(len(expected))]
