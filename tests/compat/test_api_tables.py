"""bcc table classes over real kernel maps: element access, per-CPU reduction,
LRU/LPM/queue/stack semantics, batch operations and the ctypes key/leaf shapes."""
import ctypes as ct
import os

import pytest

from bcc import BPF
from bcc.table import (Array, HashTable, LpmTrie, LruHash, PerCpuArray, PerCpuHash, QueueStack,
                       StackTrace)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="loading BPF programs needs root")

TEXT = r"""
struct key_t { u32 a; u64 b; char c; };
struct leaf_t { u8 x; u32 y; u16 z; };
struct lpm_key { u32 prefixlen; u32 addr; };
BPF_HASH(h, u32, u64, 64);
BPF_HASH(sh, struct key_t, struct leaf_t, 16);
BPF_ARRAY(arr, u32, 8);
BPF_PERCPU_ARRAY(pca, u64, 4);
BPF_PERCPU_HASH(pch, u32, u32, 4);
BPF_TABLE("lru_hash", u32, u64, lru, 4);
BPF_LPM_TRIE(trie, struct lpm_key, u32, 16);
BPF_QUEUE(q, u32, 8);
BPF_STACK(st, u32, 8);
BPF_HASH(bh, u32, u64, 32);
BPF_STACK_TRACE(stacks, 8);

TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    u32 two = 2, seven = 7;
    u64 *v = pca.lookup(&two);
    if (v)
        *v += 3;
    u32 *p = pch.lookup(&seven);
    if (p) {
        *p += 10;
    } else {
        u32 init = 10;
        pch.update(&seven, &init);
    }
    u32 cpu = bpf_get_smp_processor_id();
    q.push(&cpu, 0);
    st.push(&cpu, 0);
    return 0;
}
"""


@pytest.fixture(scope="module")
def b():
    with BPF(text=TEXT, cflags=["-DTARGET=%d" % os.getpid()]) as bpf:
        yield bpf


def test_table_classes(b):
    expected = {"h": HashTable, "arr": Array, "pca": PerCpuArray, "pch": PerCpuHash,
                "lru": LruHash, "trie": LpmTrie, "q": QueueStack, "st": QueueStack,
                "stacks": StackTrace}
    assert {name: type(b[name]) for name in expected} == expected
    assert b["h"] is b["h"]                      # cached per BPF object
    assert b.get_table("h") is not b["h"]


def test_hash_table_mapping_api(b):
    h = b["h"]
    h.clear()
    for i in range(10):
        h[h.Key(i)] = h.Leaf(i * i)
    assert len(h) == 10
    assert sorted(k.value for k in h.keys()) == list(range(10))
    assert sorted(v.value for v in h.values()) == [i * i for i in range(10)]
    assert sorted((k.value, v.value) for k, v in h.items()) == [(i, i * i) for i in range(10)]
    assert h[h.Key(3)].value == 9
    assert h.get(h.Key(4)).value == 16 and h.get(h.Key(99)) is None
    assert h.Key(5) in h and h.Key(99) not in h
    del h[h.Key(3)]
    assert len(h) == 9 and h.Key(3) not in h
    with pytest.raises(KeyError):
        del h[h.Key(3)]
    with pytest.raises(KeyError):
        h[h.Key(3)]
    h.zero()
    assert len(h) == 9 and {v.value for v in h.values()} == {0}
    h.clear()
    assert len(h) == 0 and list(h.items()) == []


def test_array_indexing(b):
    a = b["arr"]
    assert len(a) == 8
    a[-1] = a.Leaf(77)
    a[a.Key(2)] = ct.c_uint(5)
    assert a[7].value == 77 and a[a.Key(7)].value == 77 and a[2].value == 5
    assert [k.value for k in a.keys()] == list(range(8))
    with pytest.raises(IndexError, match="Array index out of range"):
        a[8]
    with pytest.raises(IndexError, match="Array index out of range"):
        a[-9]
    with pytest.raises(IndexError, match="Array index must be an integer type"):
        a["x"]
    del a[2]                                     # arrays zero instead of deleting
    assert a[2].value == 0
    a.clear()
    assert [v.value for v in a.values()] == [0] * 8


def _on_every_cpu(fn):
    cpus = sorted(os.sched_getaffinity(0))
    try:
        for cpu in cpus:
            os.sched_setaffinity(0, {cpu})
            fn()
    finally:
        os.sched_setaffinity(0, cpus)
    return cpus


def test_percpu_tables_sum_max_average_reducer(b):
    from bccless.sys.perf import possible_cpus
    ncpu = len(possible_cpus())
    b["pca"].clear()
    b["pch"].clear()
    cpus = _on_every_cpu(os.getppid)
    pca = b["pca"]
    per_cpu = [v for v in pca[2]]
    assert len(per_cpu) == ncpu
    assert [per_cpu[c] for c in cpus] == [3] * len(cpus)
    assert pca.sum(2).value == 3 * len(cpus)
    assert pca.max(2).value == 3
    assert pca.average(2) == 3 * len(cpus) / ncpu
    assert [v for v in pca[-2]] == per_cpu
    pch = b["pch"]
    # a u32 leaf is widened to u64 per CPU, and narrowed back by getvalue/sum
    assert pch.sLeaf is ct.c_uint and ct.sizeof(pch.Leaf) == 8 * ncpu
    assert pch.sum(pch.Key(7)).value == 10 * len(cpus)
    assert isinstance(pch.sum(pch.Key(7)), ct.c_uint)
    assert list(pch.getvalue(pch.Key(7))).count(10) == len(cpus)
    reduced = b.get_table("pch", reducer=lambda x, y: x + y)
    assert reduced[reduced.Key(7)] == 10 * len(cpus)


def test_lru_hash_evicts(b):
    lru = b["lru"]
    for i in range(6):
        lru[lru.Key(i)] = lru.Leaf(i * 100)
    keys = {k.value for k in lru.keys()}
    assert len(keys) <= 4 and 5 in keys
    assert lru[lru.Key(5)].value == 500


def test_lpm_trie_longest_prefix(b):
    trie = b["trie"]
    assert [f[0] for f in trie.Key._fields_] == ["prefixlen", "addr"]
    ip = lambda a, b_, c, d: a | b_ << 8 | c << 16 | d << 24   # network order in memory
    trie[trie.Key(24, ip(192, 168, 1, 0))] = trie.Leaf(1)
    trie[trie.Key(16, ip(192, 168, 0, 0))] = trie.Leaf(2)
    assert trie[trie.Key(32, ip(192, 168, 1, 5))].value == 1
    assert trie[trie.Key(32, ip(192, 168, 2, 5))].value == 2
    with pytest.raises(KeyError):
        trie[trie.Key(32, ip(10, 0, 0, 1))]
    assert sorted(k.prefixlen for k in trie.keys()) == [16, 24]
    with pytest.raises(NotImplementedError):
        len(trie)


def test_queue_and_stack_order(b):
    q, st = b["q"], b["st"]
    q.values(), st.values()                      # drain
    with pytest.raises(KeyError, match="Could not pop from table"):
        q.pop()
    with pytest.raises(KeyError, match="Could not peek table"):
        st.peek()
    for i in (1, 2, 3):
        q.push(q.Leaf(i))
        st.push(st.Leaf(i))
    assert q.Leaf is ct.c_uint
    assert q.peek().value == 1 and st.peek().value == 3
    assert [v.value for v in q.values()] == [1, 2, 3]
    assert [v.value for v in st.values()] == [3, 2, 1]
    for i in range(8):
        q.push(q.Leaf(i))
    with pytest.raises(Exception, match="Could not push to table"):
        q.push(q.Leaf(99))
    q.push(q.Leaf(99), flags=QueueStack.BPF_EXIST)  # overwrite the oldest
    assert [v.value for v in q.values()] == list(range(1, 8)) + [99]
    # values pushed by the BPF program: one per trigger, in order
    cpus = _on_every_cpu(os.getppid)
    assert [v.value for v in q.values()] == cpus
    assert [v.value for v in st.values()] == cpus[::-1]


def test_batch_operations(b):
    bh = b["bh"]
    bh.clear()
    keys = (bh.Key * 5)(*range(5))
    vals = (bh.Leaf * 5)(*[i * 10 for i in range(5)])
    bh.items_update_batch(keys, vals)
    assert sorted((k.value, v.value) for k, v in bh.items_lookup_batch()) == \
        [(i, i * 10) for i in range(5)]
    bh.items_delete_batch((bh.Key * 2)(0, 1))
    assert sorted(k.value for k in bh.keys()) == [2, 3, 4]
    assert sorted((k.value, v.value) for k, v in bh.items_lookup_and_delete_batch()) == \
        [(2, 20), (3, 30), (4, 40)]
    assert len(bh) == 0
    bh.items_update_batch(keys, vals)
    bh.items_delete_batch()
    assert len(bh) == 0
    with pytest.raises(ValueError):
        bh.items_update_batch((bh.Key * 2)(1, 2), (bh.Leaf * 1)(1))
    with pytest.raises(TypeError):
        bh.items_update_batch([bh.Key(1)], [bh.Leaf(1)])


def test_key_leaf_shapes_follow_bcc(b):
    sh = b["sh"]
    # BCC packs plain structs and names the holes __pad_<index of next field>
    assert [(n, ct.sizeof(t)) for n, t in sh.Key._fields_] == [
        ("a", 4), ("__pad_1", 4), ("b", 8), ("c", 1), ("__pad_end", 7)]
    assert [(n, ct.sizeof(t)) for n, t in sh.Leaf._fields_] == [
        ("x", 1), ("__pad_1", 3), ("y", 4), ("z", 2), ("__pad_end", 2)]
    assert sh.Key.__name__ == "key_t" and sh.Leaf.__name__ == "leaf_t"
    assert sh.Key._pack_ == 1 and ct.sizeof(sh.Key) == 24 and ct.sizeof(sh.Leaf) == 12
    assert sh.Key.b.offset == 8 and sh.Leaf.z.offset == 8
    k = sh.Key(a=1, b=2, c=b"z")
    sh[k] = sh.Leaf(x=7, y=8, z=9)
    got = sh[sh.Key(a=1, b=2, c=b"z")]
    assert (got.x, got.y, got.z) == (7, 8, 9)


def test_key_leaf_sprintf_scanf(b):
    sh = b["sh"]
    k = sh.Key(a=1, b=(1 << 64) - 2, c=b"z")
    # BCC prints the LLVM view: no padding, chars as integers, unsigned hex
    assert sh.key_sprintf(k) == b"{ 0x1 0xfffffffffffffffe 0x7a }"
    assert sh.leaf_sprintf(sh.Leaf(x=255, y=16, z=3)) == b"{ 0xff 0x10 0x3 }"
    back = sh.key_scanf(b"{ 0x1 0xfffffffffffffffe 0x7a }")
    assert (back.a, back.b, back.c) == (1, (1 << 64) - 2, b"z")
    h = b["h"]
    assert h.key_sprintf(h.Key(42)) == b"0x2a"
    assert h.leaf_scanf("0x10").value == 16
    with pytest.raises(Exception, match="Could not scanf"):
        sh.key_scanf("{ 0x1 }")
