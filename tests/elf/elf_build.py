"""Compiling the C sources of tests/data/elf into BPF objects with clang-19.

A uniquely named module (not conftest) so test files can import it without
colliding with other test folders' conftest modules."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import List

import pytest

DATA = Path(__file__).resolve().parent.parent / "data" / "elf"
CLANG = shutil.which("clang-19")
# linux/bpf.h includes asm/types.h, which Debian keeps under the multiarch dir.
MULTIARCH = "/usr/include/x86_64-linux-gnu"


def compile_bpf(src: Path, out: Path, extra: List[str] = ()) -> Path:
    if CLANG is None:
        pytest.skip("clang-19 is not installed: cannot build BPF test objects")
    cmd = [CLANG, "-g", "-O2", "-target", "bpf", "-c", str(src), "-o", str(out)]
    if os.path.isdir(MULTIARCH):
        cmd[1:1] = ["-I", MULTIARCH]
    cmd += list(extra)   # later options win: extra may override -target
    subprocess.run(cmd, check=True, capture_output=True)
    return out
