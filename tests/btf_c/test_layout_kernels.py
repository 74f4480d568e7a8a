"""The generated vmlinux.h is layout-exact for real kernels' BTF.

For every named struct/union of each kernel, clang must agree with BTF on
sizeof and on the offset of every named member (bit offset and width for
bit-fields).  The expectations come from BTF alone (layout_oracle), never
from the emitter.
"""
from __future__ import annotations

import os

import pytest

from bccless.btf import BTF, load_kernel_btf

from .helpers import DATA, check_layout, needs_clang

KERNELS = sorted(p.name[:-len(".btf.xz")] for p in DATA.glob("*.btf.xz"))


@needs_clang
@pytest.mark.parametrize("kernel", KERNELS)
def test_kernel_fixture_layout_exact(kernel, tmp_path):
    btf = BTF.from_file(str(DATA / f"{kernel}.btf.xz"))
    count, problems, bad = check_layout(btf, tmp_path)
    assert count > 50000, "the oracle should check tens of thousands of sizes/offsets"
    assert problems == []
    assert bad == []


@needs_clang
def test_host_fixture_layout_exact_on_x86_64(tmp_path):
    btf = BTF.from_file(str(DATA / "host-6.18.44-fc.btf.xz"))
    count, problems, bad = check_layout(btf, tmp_path, target="x86_64-linux-gnu")
    assert problems == []
    assert bad == []


@needs_clang
@pytest.mark.skipif(not os.path.exists("/sys/kernel/btf/vmlinux"),
                    reason="the running kernel exposes no BTF at /sys/kernel/btf/vmlinux")
def test_running_kernel_layout_exact(tmp_path):
    count, problems, bad = check_layout(load_kernel_btf(), tmp_path)
    assert problems == []
    assert bad == []
