"""Kconfig extern values: parsing rules, type checks, virtual externs."""
from __future__ import annotations

import struct

import pytest

from bccless.elf.spec import ExternSpec
from bccless.errors import RelocationError
from bccless.link.kconfig import (KernelFacts, build_kconfig_image, kernel_version_code,
                                  running_kernel_version)


def ext(name, kind, size, off, signed=False, weak=False):
    return ExternSpec(name=name, sec=".kconfig", btf_id=1, weak=weak, kcfg_type=kind,
                      kcfg_size=size, kcfg_signed=signed, data_off=off)


FACTS = KernelFacts(kernel_version=kernel_version_code(6, 1, 192), has_syscall_wrapper=True,
                    has_bpf_cookie=False)


def test_values_of_every_type():
    exts = [ext("CONFIG_HZ", "int", 4, 0, signed=True), ext("CONFIG_BPF", "bool", 1, 4),
            ext("CONFIG_MOD", "tristate", 4, 8), ext("CONFIG_CH", "char", 1, 12),
            ext("CONFIG_NAME", "char_arr", 8, 13), ext("CONFIG_NEG", "int", 8, 24, signed=True),
            ext("CONFIG_HEX", "int", 2, 32), ext("LINUX_KERNEL_VERSION", "int", 4, 36),
            ext("LINUX_HAS_SYSCALL_WRAPPER", "bool", 1, 40), ext("LINUX_HAS_BPF_COOKIE", "bool", 1, 41),
            ext("CONFIG_UNSET", "bool", 1, 42, weak=True), ext("LINUX_FUTURE", "int", 4, 44, weak=True)]
    text = ("# CONFIG_UNSET is not set\nCONFIG_HZ=250\nCONFIG_BPF=y\nCONFIG_MOD=m\nCONFIG_CH=y\n"
            "CONFIG_NAME=\"a-long-name\"\nCONFIG_NEG=-5\nCONFIG_HEX=0x1f0\nCONFIG_HZ=1000\n")
    img = build_kconfig_image(exts, 48, FACTS, text, read_system=False)
    assert struct.unpack_from("<i", img, 0)[0] == 250          # first line wins
    assert img[4] == 1 and struct.unpack_from("<I", img, 8)[0] == 2   # tristate m = 2
    assert img[12] == ord("y")
    assert img[13:21] == b"a-long-\0"                          # truncated, NUL-terminated
    assert struct.unpack_from("<q", img, 24)[0] == -5
    assert struct.unpack_from("<H", img, 32)[0] == 0x1F0
    assert struct.unpack_from("<I", img, 36)[0] == (6 << 16) + (1 << 8) + 192
    assert img[40] == 1 and img[41] == 0 and img[42] == 0
    assert struct.unpack_from("<I", img, 44)[0] == 0


@pytest.mark.parametrize("decl,line,msg", [
    (("CONFIG_X", "bool", 1), "CONFIG_X=m", "implies tristate or char type"),
    (("CONFIG_X", "int", 1), "CONFIG_X=300", "doesn't fit in 1 bytes"),
    (("CONFIG_X", "int", 4), "CONFIG_X=12abc", "isn't a valid integer"),
    (("CONFIG_X", "tristate", 4), "CONFIG_X=5", "implies integer type"),
    (("CONFIG_X", "int", 4), "CONFIG_X=\"s\"", "implies char array type"),
    (("CONFIG_X", "int", 4), "CONFIG_X=", "no value"),
])
def test_bad_values(decl, line, msg):
    e = ext(*decl, 0)
    with pytest.raises(RelocationError, match=msg):
        build_kconfig_image([e], 8, FACTS, line + "\n", read_system=False)


def test_signed_range():
    e = ext("CONFIG_X", "int", 1, 0, signed=True)
    assert build_kconfig_image([e], 1, FACTS, "CONFIG_X=-128\n", read_system=False)[0] == 0x80
    with pytest.raises(RelocationError):
        build_kconfig_image([e], 1, FACTS, "CONFIG_X=128\n", read_system=False)


def test_strong_unresolved_and_unknown_virtual():
    with pytest.raises(RelocationError, match="extern 'CONFIG_X' \\(strong\\): not resolved"):
        build_kconfig_image([ext("CONFIG_X", "int", 4, 0)], 4, FACTS, "", read_system=False)
    with pytest.raises(RelocationError, match="unrecognized virtual extern"):
        build_kconfig_image([ext("LINUX_FUTURE", "int", 4, 0)], 4, FACTS, None, read_system=False)
    with pytest.raises(RelocationError, match="failed to get kernel version"):
        build_kconfig_image([ext("LINUX_KERNEL_VERSION", "int", 4, 0)], 4, KernelFacts(),
                            None, read_system=False)


def test_kernel_version_rules(tmp_path):
    missing = str(tmp_path / "none")
    assert running_kernel_version("6.1.0-56-amd64", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 "
                                  "(2025-01-01)", missing) == kernel_version_code(6, 1, 192)
    assert running_kernel_version("6.18.44-fc", "#1 SMP @0", missing) == kernel_version_code(6, 18, 44)
    assert running_kernel_version("4.19.0-22-amd64", "#1 SMP Debian 4.19.260-1",
                                  missing) == (4 << 16) + (19 << 8) + 255   # patch clamped
    sig = tmp_path / "version_signature"
    sig.write_text("Ubuntu 5.4.0-12.15-generic 5.4.8\n")
    assert running_kernel_version("5.4.0-12-generic", "#15", str(sig)) == kernel_version_code(5, 4, 8)
    assert running_kernel_version("weird", "#1", missing) == 0
