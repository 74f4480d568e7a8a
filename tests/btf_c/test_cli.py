"""``bccless btf dump`` / ``bccless btf type`` end to end."""
from __future__ import annotations

import lzma
import os
import shutil
import subprocess
import sys

import pytest

from .helpers import DATA

BCCLESS = [sys.executable, "-m", "bccless.cli"]
HOST = str(DATA / "host-6.18.44-fc.btf.xz")
KERNEL_BTF = os.path.exists("/sys/kernel/btf/vmlinux")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*BCCLESS, *args], capture_output=True, text=True)


@pytest.mark.skipif(not KERNEL_BTF, reason="no BTF at /sys/kernel/btf/vmlinux")
def test_type_on_running_kernel():
    res = run("btf", "type", "task_struct")
    assert res.returncode == 0, res.stderr
    assert "\nstruct task_struct {\n" in res.stdout
    assert "\tpid_t pid;\t/* " in res.stdout
    assert "struct mm_struct;\n" in res.stdout  # dependencies only forward-declared
    assert "struct mm_struct {" not in res.stdout


def test_type_with_kind_and_file():
    res = run("btf", "type", "enum", "pid_type", "--file", HOST)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("enum pid_type {\n\tPIDTYPE_PID = 0,")


def test_unknown_type_is_a_clear_error():
    res = run("btf", "type", "task_strct", "--file", HOST)
    assert res.returncode == 1
    assert "no type named 'task_strct'" in res.stderr
    assert "did you mean: task_struct" in res.stderr


def test_missing_file_is_a_clear_error(tmp_path):
    res = run("btf", "dump", "--file", str(tmp_path / "nope.btf"))
    assert res.returncode == 1
    assert "nope.btf" in res.stderr and "cannot read" in res.stderr


@pytest.mark.skipif(shutil.which("bpftool") is None, reason="bpftool is not installed")
def test_raw_dump_matches_bpftool(tmp_path):
    raw = tmp_path / "k.btf"
    raw.write_bytes(lzma.decompress((DATA / "debian-5.10.0-46-amd64.btf.xz").read_bytes()))
    ours = run("btf", "dump", "--format", "raw", "--file", str(raw))
    assert ours.returncode == 0, ours.stderr
    theirs = subprocess.run(["bpftool", "btf", "dump", "file", str(raw)],
                            capture_output=True, text=True, check=True)
    assert ours.stdout == theirs.stdout


def test_c_dump_to_file(tmp_path):
    out = tmp_path / "vmlinux.h"
    res = run("btf", "dump", "--file", HOST, "-o", str(out))
    assert res.returncode == 0, res.stderr
    text = out.read_text()
    assert text.startswith("#ifndef __VMLINUX_H__")
    assert text.endswith("#endif /* __VMLINUX_H__ */\n")
    assert "\nstruct task_struct {\n" in text
