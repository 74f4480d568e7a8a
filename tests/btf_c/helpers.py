"""Shared helpers of the C-header tests: fixtures' paths and clang runs."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import List, Tuple

import pytest

from bccless.btf.cdump import c_header

from . import layout_oracle

DATA = Path(__file__).resolve().parent.parent / "data" / "btf"
CLANG = shutil.which("clang-19")
needs_clang = pytest.mark.skipif(CLANG is None, reason="clang-19 is not installed")


def clang(args: List[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([CLANG, *args], cwd=cwd, capture_output=True, text=True)


def check_layout(btf, tmp: Path, target: str = "bpf") -> Tuple[int, List[str], List[str]]:
    """Write the header and a file of BTF-derived asserts, compile it, and
    return (assert count, clang errors/warnings, bit-field mismatches)."""
    header = tmp / "vmlinux.h"
    header.write_text(c_header(btf))
    names = layout_oracle.c_names(btf)
    asserts, count = layout_oracle.static_asserts(btf, names)
    (tmp / "check.c").write_text('#include "vmlinux.h"\n' + asserts)
    # preserve_access_index exists only for target bpf; the header's guard
    # lets other targets skip it.
    defines = [] if target == "bpf" else ["-DBPF_NO_PRESERVE_ACCESS_INDEX"]
    res = clang(["-target", target, *defines, "-fsyntax-only", "-ferror-limit=0",
                 "-Xclang", "-fdump-record-layouts", "check.c"], tmp)
    problems = [line for line in res.stderr.splitlines()
                if "error:" in line or "warning:" in line]
    want = layout_oracle.bitfields(btf, names)
    got = layout_oracle.clang_bitfields(res.stdout, want)
    bad = [f"{rec}.{path}: BTF {exp}, clang {got.get(rec, {}).get(path)}"
           for rec, fields in want.items() for path, exp in fields.items()
           if got.get(rec, {}).get(path) != exp]
    return count, problems, bad
