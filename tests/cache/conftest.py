"""Fixtures of the build tests: a private cache and the running kernel's vmlinux.h."""
from __future__ import annotations

import os

import pytest

from bccless.cache import ObjectCache
from bccless.compile import find_clang
from bccless.errors import CompileError


@pytest.fixture
def env(tmp_path, request):
    try:
        find_clang()
    except CompileError as exc:
        pytest.skip(str(exc))
    header = request.getfixturevalue("kernel_header")
    root = tmp_path / "cache"
    root.mkdir(mode=0o755)
    return ObjectCache(str(root)), header


@pytest.fixture(scope="session")
def kernel_header(tmp_path_factory):
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        pytest.skip("no /sys/kernel/btf/vmlinux: the kernel has no BTF")
    from bccless.btf.cdump import write_c_header
    from bccless.btf.parse import BTF
    out = tmp_path_factory.mktemp("vmlinux") / "vmlinux.h"
    parts = []
    write_c_header(BTF.from_file("/sys/kernel/btf/vmlinux"), parts.append)
    out.write_text("".join(parts))
    return str(out)
