"""bccless.maps.Map against the running kernel."""
from __future__ import annotations

import ctypes
import errno
import gc
import os
import subprocess

import pytest

from bccless.errors import MapError
from bccless.maps import BPF_EXIST, BPF_NOEXIST, Codec, Map, int_codec
from bccless.sys import bpf
from bccless.sys import bpf_consts as C
from bccless.sys import features
from bccless.sys.perf import possible_cpus

BPFFS = "/sys/fs/bpf"


@pytest.fixture(autouse=True)
def root():
    if os.geteuid() != 0:
        pytest.skip("needs root: bpf() map creation is privileged")


def fds() -> set:
    return set(os.listdir("/proc/self/fd"))


class Pair(ctypes.Structure):
    _fields_ = [("a", ctypes.c_uint32), ("b", ctypes.c_uint64)]


def test_info_and_raw_access():
    with Map.create(C.BPF_MAP_TYPE_HASH, 4, 8, 100, name="m_raw") as m:
        assert (m.name, m.type, m.key_size, m.value_size, m.max_entries) == \
            ("m_raw", C.BPF_MAP_TYPE_HASH, 4, 8, 100)
        assert m.id == bpf.obj_get_info_by_fd(m.fd, "map")["id"]
        m[b"\1\0\0\0"] = b"\2" * 8
        assert m.lookup(b"\1\0\0\0") == b"\2" * 8
        assert m.lookup(b"\x09\0\0\0") is None
        with pytest.raises(KeyError):
            m[b"\x09\0\0\0"]
        with pytest.raises(MapError, match="key must be 4 bytes"):
            m.lookup(b"\1")
        with pytest.raises(MapError, match="value must be 8 bytes"):
            m.update(b"\1\0\0\0", b"\1")


def test_int_codecs_and_dict_protocol():
    with Map.create(C.BPF_MAP_TYPE_HASH, 4, 8, 1000, key=int, value=int) as m:
        for i in range(300):
            m[i] = i * 1000
        assert len(m) == 300
        assert sorted(m.keys()) == list(range(300))
        assert dict(m.items()) == {i: i * 1000 for i in range(300)}
        assert sum(m.values()) == sum(i * 1000 for i in range(300))
        assert 5 in m and 5000 not in m
        with pytest.raises(MapError) as err:
            m.update(5, 1, BPF_NOEXIST)
        assert err.value.errno == errno.EEXIST and "m" in str(err.value)
        m.update(5, 1, BPF_EXIST)
        assert m[5] == 1
        assert m.delete(5) and not m.delete(5)
        del m[6]
        assert m.lookup_and_delete(7) == 7000 and m.lookup(7) is None
        m.clear()
        assert len(m) == 0


def test_signed_and_custom_codecs():
    neg = int_codec(8, signed=True)
    upper = Codec(lambda s: s.encode().ljust(8, b"\0"), lambda b: b.rstrip(b"\0").decode())
    with Map.create(C.BPF_MAP_TYPE_HASH, 8, 8, 4, key=upper, value=neg) as m:
        m["cpu"] = -5
        assert m["cpu"] == -5 and list(m.keys()) == ["cpu"]


def test_ctypes_values():
    with Map.create(C.BPF_MAP_TYPE_ARRAY, 4, ctypes.sizeof(Pair), 4, key=int, value=Pair) as m:
        m[2] = Pair(7, 1 << 40)
        got = m[2]
        assert isinstance(got, Pair) and (got.a, got.b) == (7, 1 << 40)
        assert len(m) == 4                       # arrays have every key
        m.clear()
        assert m[2].b == 0
    with pytest.raises(MapError, match="bytes"):
        Map.create(C.BPF_MAP_TYPE_ARRAY, 4, 4, 1, value=Pair)


def test_percpu_values():
    ncpu = len(possible_cpus())
    with Map.create(C.BPF_MAP_TYPE_PERCPU_HASH, 4, 4, 8, key=int, value=int) as m:
        assert m.percpu and m.ncpus == ncpu
        m[1] = list(range(10, 10 + ncpu))
        assert m[1] == list(range(10, 10 + ncpu))
        m[2] = 3                                  # one value for every CPU
        assert m[2] == [3] * ncpu
        with pytest.raises(MapError, match="per-CPU values"):
            m[3] = [1] * (ncpu + 1)
        assert dict(m.batch_lookup()) == {1: list(range(10, 10 + ncpu)), 2: [3] * ncpu}


@pytest.mark.parametrize("map_type,order", [(C.BPF_MAP_TYPE_QUEUE, [1, 2, 3]),
                                            (C.BPF_MAP_TYPE_STACK, [3, 2, 1])])
def test_queue_and_stack(map_type, order):
    with Map.create(map_type, 0, 4, 3, value=int) as q:
        for v in (1, 2, 3):
            q.push(v)
        with pytest.raises(MapError) as err:
            q.push(4)
        assert err.value.errno == errno.E2BIG
        assert q.peek() == order[0]
        assert [q.pop() for _ in range(4)] == order + [None]
        assert q.peek() is None


def test_queue_push_exist_overwrites_oldest():
    with Map.create(C.BPF_MAP_TYPE_QUEUE, 0, 4, 2, value=int) as q:
        q.push(1)
        q.push(2)
        q.push(3, BPF_EXIST)
        assert [q.pop(), q.pop()] == [2, 3]


def test_batches():
    with Map.create(C.BPF_MAP_TYPE_HASH, 4, 4, 5000, key=int, value=int) as m:
        assert m.batch_update(range(3000), range(1, 3001)) == 3000
        assert dict(m.batch_lookup(count=128)) == {i: i + 1 for i in range(3000)}
        assert m.batch_delete(range(1000)) == 1000
        drained = m.batch_lookup(delete=True)
        assert sorted(drained) == [(i, i + 1) for i in range(1000, 3000)]
        assert len(m) == 0


def test_batch_fallback_for_types_without_batch():
    # LPM tries have no batch commands: per-key operations are used instead
    with Map.create(C.BPF_MAP_TYPE_LPM_TRIE, 8, 4, 16, flags=C.BPF_F_NO_PREALLOC,
                    value=int) as m:
        keys = [(24).to_bytes(4, "little") + bytes([10, i, 0, 0]) for i in range(5)]
        assert m.batch_update(keys, range(5)) == 5
        assert sorted(v for _, v in m.batch_lookup()) == list(range(5))
        assert sorted(v for _, v in m.items()) == list(range(5))
        assert m.batch_delete(keys[:2]) == 2
        assert len(m) == 3


def test_batch_ops_feature_agrees():
    assert features.batch_ops()


def test_freeze():
    with Map.create(C.BPF_MAP_TYPE_ARRAY, 4, 4, 1, key=int, value=int) as m:
        m[0] = 1
        m.freeze()
        with pytest.raises(MapError) as err:
            m[0] = 2
        assert err.value.errno == errno.EPERM
        assert m[0] == 1


def _ensure_bpffs() -> None:
    if not os.path.ismount(BPFFS):
        res = subprocess.run(["mount", "-t", "bpf", "bpf", BPFFS], capture_output=True)
        if res.returncode:
            pytest.skip(f"bpffs not mounted and mount failed: {res.stderr.decode().strip()}")


def test_pin_from_pinned_and_from_id():
    _ensure_bpffs()
    path = f"{BPFFS}/bccless_maps_{os.getpid()}"
    with Map.create(C.BPF_MAP_TYPE_HASH, 4, 4, 8, key=int, value=int, name="pinme") as m:
        m[1] = 11
        m.pin(path)
        try:
            with Map.from_pinned(path, key=int, value=int) as p:
                assert p.id == m.id and p[1] == 11 and p.name == "pinme"
                p[2] = 22
            with Map.from_id(m.id, key=int, value=int) as q:
                assert q[2] == 22
        finally:
            os.unlink(path)
    with pytest.raises(MapError, match="pinned map"):
        Map.from_pinned(path)


def test_close_and_gc_release_fds():
    before = fds()
    for _ in range(100):
        with Map.create(C.BPF_MAP_TYPE_HASH, 4, 4, 4):
            pass
        m = Map.create(C.BPF_MAP_TYPE_ARRAY, 4, 4, 4)
        del m
        Map.create(C.BPF_MAP_TYPE_QUEUE, 0, 4, 4).close()
    gc.collect()
    assert fds() == before
    m = Map.create(C.BPF_MAP_TYPE_HASH, 4, 4, 4)
    m.close()
    m.close()                                    # idempotent
    with pytest.raises(MapError, match="closed"):
        m.lookup(b"\0" * 4)


def test_not_a_map():
    r, w = os.pipe()
    os.close(w)
    with pytest.raises(MapError, match="not a BPF map"):
        Map(r)
    with pytest.raises(OSError):
        os.close(r)                              # Map() took ownership and closed it
