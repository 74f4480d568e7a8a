"""Fixtures for loader tests: objects under tests/data/loader compiled with
clang-19 against a vmlinux.h of the running kernel, an isolated relocation
cache per test, and root/tracefs/bpffs preconditions."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict

import pytest

TESTS = Path(__file__).resolve().parents[1]
DATA = TESTS / "data" / "loader"
CLANG = shutil.which("clang-19") or shutil.which("clang")
BPFTOOL = shutil.which("bpftool") or ("/usr/sbin/bpftool" if Path("/usr/sbin/bpftool").exists()
                                      else None)


def _vmlinux_h() -> bytes:
    """The running kernel's vmlinux.h: our own C dumper, bpftool as a fallback."""
    run = subprocess.run([sys.executable, "-m", "bccless.cli", "btf", "dump", "--format", "c"],
                         capture_output=True)
    if run.returncode == 0 and b"struct task_struct {" in run.stdout:
        return run.stdout
    if BPFTOOL is None:
        pytest.skip("cannot make vmlinux.h: 'bccless btf dump' failed and bpftool is missing")
    return subprocess.run([BPFTOOL, "btf", "dump", "file", "/sys/kernel/btf/vmlinux",
                           "format", "c"], check=True, capture_output=True).stdout


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory) -> Path:
    if CLANG is None:
        pytest.skip("clang-19 is not installed (scripts/setup.sh installs it)")
    if not Path("/sys/kernel/btf/vmlinux").exists():
        pytest.skip("the running kernel has no BTF at /sys/kernel/btf/vmlinux")
    out = tmp_path_factory.mktemp("loader-build")
    (out / "vmlinux.h").write_bytes(_vmlinux_h())
    return out


@pytest.fixture(scope="session")
def compile_obj(build_dir: Path) -> Callable[[str], str]:
    """Compile tests/data/loader/<name>.bpf.c once per session; returns the .o path."""
    built: Dict[str, str] = {}

    def build(name: str) -> str:
        if name not in built:
            obj = build_dir / f"{name}.bpf.o"
            subprocess.run([CLANG, "-g", "-O2", "-target", "bpf", "-D__TARGET_ARCH_x86",
                            f"-I{build_dir}", "-c", str(DATA / f"{name}.bpf.c"), "-o", str(obj)],
                           check=True, capture_output=True)
            built[name] = str(obj)
        return built[name]
    return build


@pytest.fixture(autouse=True)
def _need_root():
    if os.geteuid() != 0:
        pytest.skip("loader tests create maps and load programs: needs root (CAP_BPF)")


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch) -> Path:
    """A private, empty relocation cache for each test (root-owned, mode 0700)."""
    root = tmp_path / "cache"
    root.mkdir(mode=0o700)
    monkeypatch.setenv("BCCLESS_CACHE", str(root))
    return root


@pytest.fixture(scope="session")
def tracefs() -> str:
    from bccless.attach.tracefs import tracefs_root

    try:
        return tracefs_root()
    except Exception as exc:  # noqa: BLE001 - any failure means no tracepoints
        pytest.skip(f"tracefs is not available: {exc}")


@pytest.fixture(scope="session")
def bpffs() -> str:
    if not os.path.ismount("/sys/fs/bpf"):
        if subprocess.run(["mount", "-t", "bpf", "bpf", "/sys/fs/bpf"]).returncode != 0:
            pytest.skip("/sys/fs/bpf is not a mounted bpffs and mounting it failed")
    return "/sys/fs/bpf"

