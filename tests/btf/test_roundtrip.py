"""Encoding: exact round trips of kernel BTF, records re-encoded by the
encoder, modified blobs, split BTF, and the kernel/module/file sources."""
from __future__ import annotations

import os
import struct

import pytest

from bccless.btf import (
    BTF, Datasec, Int, Kind, Member, Ptr, Struct, Typedef, VarSecInfo, list_module_btfs,
    load_kernel_btf, load_module_btf,
)
from bccless.errors import BTFError

from .conftest import KERNELS, build_all_kinds
from .rawbtf import RawBTF

SYSFS_VMLINUX = "/sys/kernel/btf/vmlinux"
needs_sysfs_btf = pytest.mark.skipif(not os.path.exists(SYSFS_VMLINUX),
                                     reason="this kernel has no /sys/kernel/btf/vmlinux")


@pytest.mark.parametrize("name", KERNELS)
def test_kernel_fixture_roundtrip(name, kernel):
    blob = kernel(name)
    btf = BTF.from_bytes(blob)
    assert btf.encode() == blob
    # Decoding (and caching) records must not disturb exactness either.
    for tid in range(1, len(btf), 97):
        btf[tid]
    assert btf.encode() == blob


@needs_sysfs_btf
def test_host_vmlinux_roundtrip_after_decoding_everything():
    with open(SYSFS_VMLINUX, "rb") as f:
        blob = f.read()
    btf = load_kernel_btf()
    assert btf.type_count > 1000 and btf.encode() == blob
    for tid in btf.ids():
        btf[tid]
    assert btf.encode() == blob


def _rebuild_with_encoder(src: BTF) -> BTF:
    """Every record of ``src`` added to a fresh BTF, encoded and parsed again."""
    out = BTF.new()
    for tid in src.ids():
        assert out.add(src[tid]) == tid
    return BTF.from_bytes(out.encode())


def test_encoder_all_kinds(all_kinds):
    blob, expected = all_kinds
    again = _rebuild_with_encoder(BTF.from_bytes(blob))
    assert {t: again[t] for t in again.ids()} == expected


def test_encoder_clang_object(kinds_object):
    src = BTF.from_elf(str(kinds_object))
    again = _rebuild_with_encoder(src)
    assert all(again[t] == src[t] for t in src.ids())


def test_encoder_whole_kernel(kernel):
    """The newest fixture has every kind in use, including a TYPE_TAG attribute."""
    src = BTF.from_bytes(kernel(KERNELS[-2]))
    again = _rebuild_with_encoder(src)
    assert again.type_count == src.type_count
    assert all(again[t] == src[t] for t in src.ids())
    assert any(src.kind(t) == Kind.TYPE_TAG and src[t].attr for t in src.ids())


def test_modified_kernel_btf(kernel):
    blob = kernel(KERNELS[0])
    btf = BTF.from_bytes(blob)
    ts = btf.find("task_struct", Kind.STRUCT)[0]
    int_id = btf.find("int", Kind.INT)[0]
    old = btf[ts]
    new = Struct("task_struct", old.size + 8, list(old.members) +
                 [Member("bccless_extra", int_id, old.size * 8)], old.kind_flag)
    btf.replace(ts, new)
    head = btf.find("list_head", Kind.STRUCT)[0]
    btf[head].size += 4096  # in-place mutation must be picked up as well
    ptr = btf.add(Ptr(ts))
    td = btf.add(Typedef("bccless_task_ptr", ptr))
    assert btf.find("bccless_task_ptr") == [td] and btf.find("task_struct") == [ts]
    assert btf.name(ts) == "task_struct" and btf.kind(td) == Kind.TYPEDEF
    out = btf.encode()
    again = BTF.from_bytes(out)
    assert again.type_count == btf.type_count
    assert again[ts] == new and again[ptr] == Ptr(ts)
    assert again[td] == Typedef("bccless_task_ptr", ptr)
    assert again[head].size == btf[head].size
    assert again.resolve_size(td) == 8 and again.resolve_size(ts) == old.size + 8
    for tid in range(1, btf.type_count - 2, 211):
        assert again[tid] == btf[tid], tid
    # Records before the first change keep their bytes; strings are only appended.
    first = min(ts, head)
    hdr = struct.unpack_from("<IIII", blob, 8)
    prefix = 24 + 4 * btf._offs[first - 1]
    assert out[24:prefix] == blob[24:prefix]
    s0, s_len = 24 + hdr[2], hdr[3]
    new_hdr = struct.unpack_from("<IIII", out, 8)
    new_strs = out[24 + new_hdr[2]:]
    assert new_strs[:s_len] == blob[s0:s0 + s_len] and len(new_strs) > s_len
    assert BTF.from_bytes(out).encode() == out


def test_replace_and_add_limits(all_kinds):
    btf = BTF.from_bytes(all_kinds[0])
    with pytest.raises(BTFError):
        btf.replace(len(btf), Int("x", 4))
    with pytest.raises(BTFError):
        btf.replace(0, Int("x", 4))
    tid = btf.add(Int("late", 8))
    btf.replace(tid, Int("later", 8))
    assert btf.find("later") == [tid] and btf.find("late") == []
    btf.add(Struct("huge", 4, [Member(f"m{i}", 1, 0) for i in range(70000)]))
    with pytest.raises(BTFError, match="vlen 70000"):
        btf.encode()


def _split_pair():
    """A base (the all-kinds blob) and raw split BTF on top of it."""
    raw_base, _ = build_all_kinds()
    base = BTF.from_bytes(raw_base.blob())
    split = RawBTF(first_id=base.type_count, strings=b"", str_start=len(raw_base.strs))
    int_id = base.find("int")[0]
    s = split.rec("STRUCT", "mod_struct", 8, vlen=2,
                  extra=[split.s("a"), int_id, 0, 1, int_id, 32])  # member 2 named by base "int"
    split.records.append([1, 8 << 24, s])  # TYPEDEF named "int" from the base strings
    split.next_id += 1
    p = split.rec("PTR", "", s)
    flavored = split.rec("STRUCT", "foo___mod", 4)
    return base, split, (s, s + 1, p, flavored)


def test_split_btf():
    base, raw, (s, td, p, flavored) = _split_pair()
    blob = raw.blob()
    with pytest.raises(BTFError, match="without its base"):
        BTF.from_bytes(blob)
    split = BTF.from_bytes(blob, base=base, source="mod")
    assert split.start_id == base.type_count == s and split.type_count == flavored + 1
    assert list(split.ids()) == [s, td, p, flavored]
    assert split[s] == Struct("mod_struct", 8, [Member("a", base.find("int")[0], 0),
                                                Member("int", base.find("int")[0], 32)])
    assert split.name(td) == "int" and split[p] == Ptr(s)
    assert split[1] is base[1] and split.kind(1) == base.kind(1) and split.name(1) == "int"
    assert split.find("int") == base.find("int") + [td]
    assert split.find("mod_struct", Kind.STRUCT) == [s]
    assert split.find_essential("foo") == base.find_essential("foo") + [flavored]
    assert split.resolve_size(td) == 8 and split.resolve_size(p) == 8
    assert split.encode() == blob
    extra = split.add(Typedef("mod_extra", p))
    out = split.encode()
    again = BTF.from_bytes(out, base=base)
    assert [again[t] for t in again.ids()] == [split[t] for t in split.ids()]
    assert again[extra] == Typedef("mod_extra", p)
    # Split BTF encodes only its own part.
    assert struct.unpack_from("<I", out, 12)[0] == 4 * sum(len(r) for r in raw.records) + 12


def test_new_split_btf():
    base, _, _ = _split_pair()
    split = BTF.new(base)
    assert split.start_id == base.type_count and len(split) == base.type_count
    t = split.add(Struct("fresh", 4, [Member("int", 1, 0)]))
    again = BTF.from_bytes(split.encode(), base=base)
    assert again[t] == split[t] and again.find("fresh") == [t]


def test_new_btf_accepted_by_bpftool(tmp_path):
    import shutil
    import subprocess
    btf = BTF.new()
    i = btf.add(Int("int", 4, 1))
    s = btf.add(Struct("pair", 8, [Member("a", i, 0), Member("b", i, 32, 0)]))
    btf.add(Datasec(".data", 8, [VarSecInfo(s, 0, 8)]))
    path = tmp_path / "new.btf"
    path.write_bytes(btf.encode())
    assert BTF.from_file(str(path))[s] == btf[s]
    if shutil.which("bpftool") is None:
        pytest.skip("bpftool is not installed: cannot cross-check the encoded blob")
    out = subprocess.run(["bpftool", "btf", "dump", "file", str(path)], check=True,
                         capture_output=True, text=True).stdout
    assert "[2] STRUCT 'pair' size=8 vlen=2" in out and "'b' type_id=1 bits_offset=32" in out


def test_sources(tmp_path, kinds_object):
    with pytest.raises(BTFError, match="CONFIG_DEBUG_INFO_BTF"):
        load_kernel_btf(str(tmp_path / "missing"))
    xz = tmp_path / "k.btf.xz"
    import lzma
    raw_base, expected = build_all_kinds()
    xz.write_bytes(lzma.compress(raw_base.blob()))
    assert BTF.from_file(str(xz))[1] == expected[1]
    plain = tmp_path / "k.btf"
    plain.write_bytes(raw_base.blob())
    assert load_kernel_btf(str(plain)).encode() == raw_base.blob()
    elf = load_kernel_btf(str(kinds_object))
    assert elf.find("holder", Kind.STRUCT)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(BTFError, match="shorter than"):
        BTF.from_file(str(empty))
    bad_xz = tmp_path / "bad.xz"
    bad_xz.write_bytes(b"\xfd7zXZ\x00garbage")
    with pytest.raises(BTFError, match="xz"):
        BTF.from_file(str(bad_xz))
    with pytest.raises(BTFError, match="cannot open"):
        BTF.from_file(str(tmp_path / "nope"))
    with pytest.raises(BTFError, match="invalid kernel module name"):
        load_module_btf("../vmlinux", BTF.new())


@needs_sysfs_btf
def test_kernel_modules():
    names = list_module_btfs()
    assert "vmlinux" not in names
    if not names:
        pytest.skip("no kernel module exposes BTF in /sys/kernel/btf on this kernel")
    vmlinux = load_kernel_btf()
    mod = load_module_btf(names[0], vmlinux)
    assert mod.start_id == vmlinux.type_count and mod.base is vmlinux
    for tid in mod.ids():
        mod[tid]
    with open(os.path.join("/sys/kernel/btf", names[0]), "rb") as f:
        assert mod.encode() == f.read()
