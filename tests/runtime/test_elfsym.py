"""Binary/library lookup like ld.so and symbol -> file offset, on synthetic and real files."""
from __future__ import annotations

import os
import struct
import subprocess

import pytest

from bccless.attach import elfsym
from bccless.errors import AttachError

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "runtime")


def _new_cache(entries):
    """An ld.so.cache image in the glibc 2.32+ format with (flags, key, value) entries."""
    strings = b""
    offsets = []
    header_size = 48
    table = header_size + 24 * len(entries)
    for _flags, key, value in entries:
        k = table + len(strings)
        strings += key.encode() + b"\0"
        v = table + len(strings)
        strings += value.encode() + b"\0"
        offsets.append((k, v))
    out = b"glibc-ld.so.cache" + b"1.1" + struct.pack("<IIB3xI12x", len(entries), len(strings), 2, 0)
    assert len(out) == header_size
    for (flags, _k, _v), (k, v) in zip(entries, offsets):
        out += struct.pack("<iIIIQ", flags, k, v, 0, 0)
    return out + strings


def test_parse_new_format_cache_filters_arch():
    data = _new_cache([(0x0303, "libfoo.so.1", "/opt/x64/libfoo.so.1"),
                       (0x0a03, "libfoo.so.1", "/opt/arm64/libfoo.so.1"),
                       (0x0303, "libbar.so", "/opt/x64/libbar.so")])
    assert elfsym.parse_ld_so_cache(data, "x86_64") == [
        ("libfoo.so.1", "/opt/x64/libfoo.so.1"), ("libbar.so", "/opt/x64/libbar.so")]
    assert elfsym.parse_ld_so_cache(data, "aarch64") == [("libfoo.so.1", "/opt/arm64/libfoo.so.1")]


def test_parse_compat_layout_with_old_table_in_front():
    new = _new_cache([(0x0303, "libz.so.1", "/lib/libz.so.1")])
    old = b"ld.so-1.7.0\0" + struct.pack("<I", 0) + b"\0" * 4   # empty old table, then padding
    entries = elfsym.parse_ld_so_cache(old + new, "x86_64")
    assert entries == [("libz.so.1", "/lib/libz.so.1")]


def test_system_cache_and_library_resolution():
    entries = elfsym.parse_ld_so_cache(open("/etc/ld.so.cache", "rb").read())
    libc = [p for k, p in entries if k == "libc.so.6"]
    assert libc and os.path.isfile(libc[0])
    assert os.path.samefile(elfsym.find_library("c"), libc[0])
    assert os.path.samefile(elfsym.find_library("libc.so.6"), libc[0])
    assert elfsym.find_library("surely_not_a_library_xyz") is None


def test_library_from_pid_maps_and_ld_library_path(tmp_path, monkeypatch):
    mapped = elfsym.find_library("c", pid=os.getpid())
    assert mapped and "libc" in os.path.basename(mapped)
    fake = tmp_path / "libbcclesstest.so.3"
    fake.write_bytes(b"\x7fELF")
    monkeypatch.setenv("LD_LIBRARY_PATH", str(tmp_path))
    assert elfsym.find_library("bcclesstest") == str(fake)


def test_executable_lookup(tmp_path, monkeypatch):
    exe = tmp_path / "mytool"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"/nonexistent:{tmp_path}")
    assert elfsym.find_executable("mytool") == str(exe)
    with pytest.raises(AttachError, match="could not find"):
        elfsym.resolve_binary("no_such_tool_xyz")


@pytest.fixture(scope="module")
def target_bin(tmp_path_factory):
    out = tmp_path_factory.mktemp("bin")
    paths = {}
    for name, flags in (("pie", ["-fPIE", "-pie"]), ("nopie", ["-fno-pie", "-no-pie"])):
        exe = out / f"target_{name}"
        subprocess.run(["gcc", "-O1", "-g", *flags, "-o", str(exe),
                        os.path.join(DATA, "target.c")], check=True)
        paths[name] = str(exe)
    return paths


@pytest.mark.parametrize("kind", ["pie", "nopie"])
def test_symbol_offset_matches_readelf(target_bin, kind):
    path = target_bin[kind]
    img = elfsym.elf_image(path)
    sym = img.symbols["bccless_target"]
    off = elfsym.symbol_offset(path, "bccless_target")
    # independent check: the section holding the symbol maps vaddr to offset linearly
    out = subprocess.run(["readelf", "-SW", path], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if "] .text" in line:
            fields = line.split("]", 1)[1].split()
            addr, offset = int(fields[2], 16), int(fields[3], 16)
            assert off == sym.value - addr + offset
            break
    else:
        pytest.fail("no .text in readelf output")
    assert elfsym.symbol_offset(path, "bccless_target", 4) == off + 4
    assert elfsym.address_offset(path, sym.value) == off
    if kind == "nopie":
        assert sym.value >= 0x400000 and off < 0x400000


def test_missing_symbol_and_regex(target_bin):
    path = target_bin["pie"]
    with pytest.raises(AttachError, match="could not determine address of symbol nope"):
        elfsym.symbol_offset(path, "nope")
    names = [n for n, _ in elfsym.find_symbols(path, "bccless_")]
    assert sorted(names) == ["bccless_other", "bccless_target"]


def test_versioned_default_and_ifunc():
    libc = elfsym.find_library("c")
    img = elfsym.elf_image(libc)
    # memcpy exists as memcpy@GLIBC_2.2.5 (plain) and memcpy@@GLIBC_2.14 (IFUNC, default)
    assert img.symbols["memcpy"].type == elfsym.STT_GNU_IFUNC
    resolver = img.vaddr_to_offset(img.symbols["memcpy"].value)
    impl = elfsym.symbol_offset(libc, "memcpy")
    assert impl != resolver
    assert elfsym.symbol_offset(libc, "memcpy", resolve_ifunc=False) == resolver
    assert any(s.executable and s.offset <= impl < s.offset + s.filesz for s in img.segments)
