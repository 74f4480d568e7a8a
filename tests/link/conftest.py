"""Fixtures for linker tests: a vmlinux.h of the running kernel, the corpus
under tests/data/link compiled with clang-19, and the kernel BTF fixtures
decompressed for libbpf (which cannot read .xz)."""
from __future__ import annotations

import lzma
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import pytest

TESTS = Path(__file__).resolve().parents[1]
DATA = TESTS / "data" / "link"
BTF_DIR = TESTS / "data" / "btf"
sys.path.insert(0, str(TESTS))  # for oracle.libbpf_oracle

CLANG = shutil.which("clang-19") or shutil.which("clang")
BPFTOOL = shutil.which("bpftool") or ("/usr/sbin/bpftool" if Path("/usr/sbin/bpftool").exists() else None)
KCONFIG = "CONFIG_HZ=250\nCONFIG_BPF_SYSCALL=y\n"


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory) -> Path:
    if CLANG is None:
        pytest.skip("clang-19 is not installed (scripts/setup.sh installs it)")
    if BPFTOOL is None:
        pytest.skip("bpftool is not installed (scripts/setup.sh installs it)")
    if not Path("/sys/kernel/btf/vmlinux").exists():
        pytest.skip("the running kernel has no BTF at /sys/kernel/btf/vmlinux")
    out = tmp_path_factory.mktemp("link-build")
    header = subprocess.run([BPFTOOL, "btf", "dump", "file", "/sys/kernel/btf/vmlinux",
                             "format", "c"], check=True, capture_output=True).stdout
    (out / "vmlinux.h").write_bytes(header)
    return out


@pytest.fixture(scope="session")
def compile_obj(build_dir: Path) -> Callable[[str], str]:
    """Compile tests/data/link/<name>.bpf.c (or <name>.c for plain-BTF
    targets) once per session; returns the object path."""
    cache: Dict[str, str] = {}

    def build(name: str) -> str:
        if name not in cache:
            src = DATA / f"{name}.bpf.c"
            if not src.exists():
                src = DATA / f"{name}.c"
            obj = build_dir / f"{name}.o"
            subprocess.run([CLANG, "-g", "-O2", "-target", "bpf", "-D__TARGET_ARCH_x86",
                            f"-I{build_dir}", "-c", str(src), "-o", str(obj)],
                           check=True, capture_output=True)
            cache[name] = str(obj)
        return cache[name]
    return build


def kernel_btf_labels() -> List[str]:
    return sorted(p.name[:-len(".btf.xz")] for p in BTF_DIR.glob("*.btf.xz"))


@pytest.fixture(scope="session")
def kernel_btf_paths(tmp_path_factory) -> Dict[str, str]:
    out = tmp_path_factory.mktemp("kernel-btf")
    paths = {}
    for label in kernel_btf_labels():
        dst = out / f"{label}.btf"
        dst.write_bytes(lzma.decompress((BTF_DIR / f"{label}.btf.xz").read_bytes()))
        paths[label] = str(dst)
    return paths


@pytest.fixture(scope="session")
def load_btf() -> Callable[[str], object]:
    from bccless.btf.parse import BTF
    cache: Dict[str, object] = {}

    def load(path: str):
        if path not in cache:
            with open(path, "rb") as f:
                elf = f.read(4) == b"\x7fELF"
            cache[path] = BTF.from_elf(path) if elf else BTF.from_file(path)
        return cache[path]
    return load


@pytest.fixture(scope="session")
def host_btf():
    from bccless.btf.sources import load_kernel_btf
    return load_kernel_btf()


def libbpf_can_relocate() -> Tuple[bool, str]:
    """libbpf creates maps in the host kernel before it relocates: it needs
    root and libbpf.so.1."""
    import ctypes.util
    import os
    if os.geteuid() != 0:
        return False, "the libbpf oracle needs root (it creates maps before relocating)"
    if ctypes.util.find_library("bpf") is None:
        return False, "libbpf.so.1 is not installed"
    return True, ""
