"""Name lookups: string-start search, packed-offset scans, the sorted name
index and the odd records must all agree with a brute-force pass over
``name()``, on hand-made corner cases and on a whole kernel."""
from __future__ import annotations

import struct

import pytest

from bccless.btf import BTF, Kind, essential_name
from bccless.btf.names import NameIndex, has_unique_strings, string_starts

from .conftest import KERNELS
from .rawbtf import RawBTF


def brute(btf: BTF, name: str, essential: bool = False):
    ids = range(1, btf.type_count)
    if essential:
        return [t for t in ids if essential_name(btf.name(t)) == name]
    return [t for t in ids if btf.name(t) == name]


def tricky_blob() -> bytes:
    """Names at string starts, in the middle of strings (``u32`` inside
    ``__u32``), a NUL in the middle of the section, and one text at two offsets."""
    strs = b"\0__u32\0u32\0hash\0hash\0hash___2\0x___y___z\0"
    off = {text: strs.index(b"\0" + text.encode() + b"\0") + 1
           for text in ("__u32", "u32", "hash", "hash___2", "x___y___z")}
    second_hash = strs.index(b"hash\0", off["hash"] + 1)
    mid_u32 = off["__u32"] + 2          # "u32" inside "__u32": an odd name
    nul_in_middle = off["u32"] - 1      # the NUL ending "__u32": an odd, empty name
    r = RawBTF(strings=strs)
    recs = [
        (off["__u32"], "INT", 4, [32]),
        (mid_u32, "INT", 4, [32]),
        (off["u32"], "INT", 4, [32]),
        (off["hash"], "STRUCT", 0, []),
        (second_hash, "STRUCT", 0, []),
        (off["hash"], "FWD", 0, []),
        (off["hash___2"], "UNION", 0, []),
        (0, "PTR", 1, []),
        (nul_in_middle, "PTR", 1, []),
        (off["x___y___z"], "TYPEDEF", 1, []),
    ]
    for name_off, kind, st, extra in recs:
        tid = r.rec(kind, "", st, extra=extra)
        r.records[tid - 1][0] = name_off
    return r.blob()


PROBES = ["u32", "__u32", "hash", "hash___2", "", "x___y___z", "x___y", "x", "nothing", "32"]


@pytest.mark.parametrize("indexed", [False, True])
def test_corner_cases_match_brute_force(indexed):
    btf = BTF.from_bytes(tricky_blob())
    if indexed:
        btf._scans = 10 ** 6
    assert [btf.name(t) for t in btf.ids()] == [
        "__u32", "u32", "u32", "hash", "hash", "hash", "hash___2", "", "", "x___y___z"]
    for probe in PROBES:
        assert btf.find(probe) == brute(btf, probe), probe
        assert btf.find_essential(probe) == brute(btf, probe, True), probe
    assert btf.find("u32") == [2, 3] and btf.find("hash", Kind.STRUCT) == [4, 5]
    assert btf.find_essential("hash") == [4, 5, 6, 7]
    assert btf.find_essential("x___y") == [10]
    for tid in btf.ids():
        assert btf.find_same_name(tid) == btf.find(btf.name(tid)), tid


def test_index_of_corner_cases():
    blob = tricky_blob()
    btf = BTF.from_bytes(blob)
    index = NameIndex.build(btf._name_offsets(), btf._strs, 0)
    assert not index.unique                        # "hash" is stored twice
    assert index.odd.tolist() == [1, 8]            # positions of mid-string names
    assert list(index.keys) == sorted(index.keys)
    assert index.at(btf._words[btf._offs[3]]) == [3, 5]
    assert has_unique_strings(b"\0a\0b\0\0c\0") and not has_unique_strings(b"\0a\0b\0a\0")
    assert string_starts(b"\0ab\0b\0b\0", b"b", 100) == [104, 106]
    assert string_starts(b"\0ab\0b\0b\0", b"b", 100, unique=True) == [104]


def test_added_and_replaced_types_are_found():
    btf = BTF.from_bytes(tricky_blob())
    btf._scans = 10 ** 6
    btf.replace(4, BTF.from_bytes(tricky_blob())[1])   # struct hash -> int __u32
    new = btf.add(BTF.from_bytes(tricky_blob())[4])     # another struct hash
    assert btf.find("hash") == [5, 6, new]
    assert btf.find("__u32") == [1, 4]
    assert btf.find_same_name(5) == [5, 6, new]
    assert btf.find_same_name(4) == [1, 4]


def test_split_btf_names_in_base_strings():
    """Split BTF may name its records with the base's strings (libbpf's dedup
    does): such records are odd for the split blob and still found."""
    base_raw = RawBTF()
    base_raw.rec("INT", "int", 4, extra=[32])
    base_raw.rec("STRUCT", "shared", 0)
    base_blob = base_raw.blob()
    base = BTF.from_bytes(base_blob)
    base_strs_len = struct.unpack_from("<I", base_blob, 20)[0]
    split = RawBTF(first_id=3, strings=b"", str_start=base_strs_len)
    split.rec("STRUCT", "", 0)
    split.records[-1][0] = base_raw.s("shared")       # a base string
    split.rec("STRUCT", "own", 0)
    split.rec("STRUCT", "shared", 0)                  # same text, own string
    btf = BTF.from_bytes(split.blob(), base=base)
    for indexed in (False, True):
        btf._scans = 10 ** 6 if indexed else 0
        btf._index = None
        assert btf.find("shared") == [2, 3, 5]
        assert btf.find("own") == [4]
        assert btf.find_same_name(3) == [2, 3, 5]
        assert btf.find("int") == [1]


def test_kinds_bulk_accessor(all_kinds):
    btf = BTF.from_bytes(all_kinds[0])
    assert btf.kinds() == [btf.kind(t) for t in range(btf.type_count)]
    btf.replace(1, BTF.from_bytes(all_kinds[0])[5])
    btf.add(BTF.from_bytes(all_kinds[0])[1])
    assert btf.kinds() == [btf.kind(t) for t in range(btf.type_count)]
    assert btf.kinds()[1] == btf.kind(5)


@pytest.mark.parametrize("name", [k for k in KERNELS if k.startswith("host")])
def test_kernel_lookups_match_brute_force(name, kernel):
    btf = BTF.from_bytes(kernel(name))
    names = [btf.name(t) for t in btf.ids()]
    by_name = {}
    for tid, n in enumerate(names, 1):
        by_name.setdefault(n, []).append(tid)
    probes = [names[i] for i in range(0, len(names), 4999)] + ["task_struct", "u32", "id"]
    for indexed in (False, True):
        btf._scans = 10 ** 6 if indexed else 0
        for probe in probes:
            assert btf.find(probe) == by_name.get(probe, []), probe
    assert btf._index is not None and btf._index.unique and len(btf._index.odd) == 0
    assert btf.kinds() == [Kind.UNKN] + [btf.kind(t) for t in btf.ids()]
    dup = next(ids for n, ids in by_name.items() if n and len(ids) > 2)
    for tid in dup:
        assert btf.find_same_name(tid) == dup
