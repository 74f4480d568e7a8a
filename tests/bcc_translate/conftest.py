"""Shared fixtures: a vmlinux.h for the running kernel, clang, and the test programs."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

DATA = os.path.join(os.path.dirname(__file__), os.pardir, "data", "bcc_translate")


def data_path(name: str) -> str:
    return os.path.abspath(os.path.join(DATA, name))


def read_format(category: str, event: str) -> str:
    """Tracepoint formats copied from a 6.18 kernel, so the tests do not need tracefs."""
    with open(data_path(os.path.join("formats", f"{category}_{event}.format"))) as fh:
        return fh.read()


@pytest.fixture(scope="session")
def vmlinux_h(tmp_path_factory) -> str:
    """vmlinux.h of the running kernel: bccless's own generator, bpftool if it is missing."""
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        pytest.skip("no /sys/kernel/btf/vmlinux: the kernel has no BTF")
    out = tmp_path_factory.mktemp("vmlinux") / "vmlinux.h"
    try:
        from bccless.btf.cdump import write_c_header
        from bccless.btf.parse import BTF
    except ImportError:
        bpftool = shutil.which("bpftool")
        if not bpftool:
            pytest.skip("neither bccless.btf.cdump nor bpftool is available to make vmlinux.h")
        with open(out, "w") as fh:
            subprocess.run([bpftool, "btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "c"],
                           stdout=fh, check=True)
        return str(out)
    parts = []
    write_c_header(BTF.from_file("/sys/kernel/btf/vmlinux"), parts.append)
    out.write_text("".join(parts))
    return str(out)


@pytest.fixture(scope="session")
def clang() -> str:
    from bccless.compile import find_clang
    from bccless.errors import CompileError
    try:
        return find_clang()
    except CompileError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def llvm_objdump() -> str:
    for name in ("llvm-objdump", "llvm-objdump-19", "llvm-objdump-18", "llvm-objdump-17"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("llvm-objdump is not installed")


@pytest.fixture(scope="session")
def bpftool() -> str:
    found = shutil.which("bpftool")
    if not found:
        pytest.skip("bpftool is not installed")
    return found
