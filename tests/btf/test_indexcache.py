"""The on-disk index of kernel BTF: written once, read back without a walk,
and never trusted when stale, damaged, or writable by others."""
from __future__ import annotations

import os
import struct

import pytest

import bccless.btf.parse as parse_mod
from bccless.btf import BTF
from bccless.btf.indexcache import (
    MAGIC, index_path, kernel_build_id, read_index, write_index,
)
from bccless.btf.sources import VMLINUX_BTF, load_kernel_btf
from bccless.btf.walk import RecordWords

HOST = "host-6.18.44-fc"
OTHER = "debian-6.1.0-56-amd64"
PROBES = ("task_struct", "sk_buff", "u32", "pid_type", "hash", "nonexistent_xyz", "")


def no_walk(monkeypatch):
    def fail(words):
        raise AssertionError("the walk ran although a valid index was cached")
    monkeypatch.setattr(parse_mod, "walk", fail)


def answers(btf: BTF):
    return ([btf.find(p) for p in PROBES], [btf.find_essential(p) for p in PROBES],
            [btf[t] for t in range(1, btf.type_count, 3001)], btf.type_count)


@pytest.fixture()
def host(kernel):
    blob = kernel(HOST)
    return blob, answers(BTF.from_bytes(blob))


def test_written_then_read_without_walking(tmp_path, host, monkeypatch):
    blob, expected = host
    idx = tmp_path / "btf" / "vmlinux.idx"
    first = BTF.from_bytes(blob, index_file=str(idx))
    assert idx.exists() and oct(idx.stat().st_mode & 0o777) == "0o644"
    assert answers(first) == expected
    raw = idx.read_bytes()
    assert raw.startswith(MAGIC)
    n = struct.unpack_from("<I", raw, len(MAGIC) + 24)[0]
    assert n == first.type_count - 1
    no_walk(monkeypatch)
    second = BTF.from_bytes(blob, index_file=str(idx))
    assert list(second._offs) == list(first._offs)
    assert second._index is not None and second._index.unique
    assert answers(second) == expected
    assert second._scans == 0   # every lookup went through the cached index
    assert second.encode() == blob


def damage(path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x40
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("where", ["magic", "header", "payload", "truncated", "empty"])
def test_damaged_index_falls_back_to_parsing(tmp_path, host, where):
    blob, expected = host
    idx = tmp_path / "vmlinux.idx"
    BTF.from_bytes(blob, index_file=str(idx))
    size = idx.stat().st_size
    if where == "magic":
        damage(idx, 3)
    elif where == "header":
        damage(idx, len(MAGIC) + 30)
    elif where == "payload":
        damage(idx, size // 2)
    elif where == "truncated":
        idx.write_bytes(idx.read_bytes()[:size - 4])
    else:
        idx.write_bytes(b"")
    assert read_index(str(idx), blob[:24], BTF.from_bytes(blob)._words, RecordWords()) is None
    again = BTF.from_bytes(blob, index_file=str(idx))
    assert answers(again) == expected
    assert idx.stat().st_size == size   # rewritten whole


def test_index_of_another_blob_is_not_used(tmp_path, kernel, host):
    blob, expected = host
    idx = tmp_path / "vmlinux.idx"
    BTF.from_bytes(kernel(OTHER), index_file=str(idx))
    assert answers(BTF.from_bytes(blob, index_file=str(idx))) == expected


def test_self_consistent_but_wrong_index_is_rejected(tmp_path, host):
    """Right header and CRC, wrong record offsets: the spot checks catch it."""
    blob, expected = host
    btf = BTF.from_bytes(blob)
    idx = tmp_path / "vmlinux.idx"
    offs = list(btf._offs)
    offs[1] += 1
    from bccless.btf.names import NameIndex
    write_index(str(idx), blob[:24], offs,
                NameIndex.build(btf._name_offsets(), btf._strs, 0))
    assert read_index(str(idx), blob[:24], btf._words, RecordWords()) is None
    assert answers(BTF.from_bytes(blob, index_file=str(idx))) == expected


@pytest.mark.skipif(os.geteuid() != 0, reason="the writable-by-others rule applies to root")
def test_root_refuses_index_writable_by_others(tmp_path, host, caplog):
    blob, expected = host
    idx = tmp_path / "vmlinux.idx"
    btf = BTF.from_bytes(blob, index_file=str(idx))
    idx.chmod(0o664)
    assert read_index(str(idx), blob[:24], btf._words, RecordWords()) is None
    assert "writable by others" in caplog.text
    idx.chmod(0o644)
    tmp_path.chmod(0o777)
    try:
        assert read_index(str(idx), blob[:24], btf._words, RecordWords()) is None
        shared = tmp_path / "new.idx"
        assert answers(BTF.from_bytes(blob, index_file=str(shared))) == expected
        assert not shared.exists()
    finally:
        tmp_path.chmod(0o755)


def test_kernel_build_id_from_notes(tmp_path):
    def note(name: bytes, ntype: int, desc: bytes) -> bytes:
        pad = lambda b: b + b"\0" * (-len(b) % 4)  # noqa: E731
        return struct.pack("=III", len(name), len(desc), ntype) + pad(name) + pad(desc)
    notes = tmp_path / "notes"
    notes.write_bytes(note(b"Xen\0", 3, b"\1\2") + note(b"GNU\0", 1, b"abcd")
                      + note(b"GNU\0", 3, bytes(range(20))) + note(b"Linux\0", 1, b"x"))
    assert kernel_build_id(str(notes)) == bytes(range(20)).hex()
    notes.write_bytes(note(b"Linux\0", 1, b"x"))
    assert kernel_build_id(str(notes)) == ""
    assert kernel_build_id(str(tmp_path / "missing")) == ""


@pytest.mark.skipif(not os.path.exists(VMLINUX_BTF), reason="no BTF at /sys/kernel/btf/vmlinux")
def test_load_kernel_btf_uses_cache_root(tmp_path, monkeypatch):
    monkeypatch.setenv("BCCLESS_CACHE", str(tmp_path))
    path = index_path(VMLINUX_BTF)
    assert path.startswith(str(tmp_path / "btf" / "vmlinux-"))
    if os.path.exists("/sys/kernel/notes"):
        build_id = kernel_build_id()
        assert len(build_id) >= 16 and build_id in os.path.basename(path)
    cold = load_kernel_btf()
    assert os.path.exists(path)
    expected = answers(cold)
    no_walk(monkeypatch)
    warm = load_kernel_btf()
    assert answers(warm) == expected
    assert warm.find("task_struct") and warm.kind(warm.find("task_struct")[0]).name == "STRUCT"
