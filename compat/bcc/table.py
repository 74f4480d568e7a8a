"""BCC's table classes over bccless maps.

Keys and leaves are ctypes instances exactly as in BCC (``Key``/``Leaf``
classes built from the object's BTF), so tools that construct keys with
``table.Key(n)`` or read ``leaf.value`` keep working.  All kernel access goes
through :mod:`bccless.sys.bpf`.
"""
from __future__ import annotations

import ctypes as ct
import errno
import os
from collections.abc import MutableMapping
from functools import reduce
from typing import Any, Callable, Optional

from bccless.sys import bpf as _bpf
from bccless.sys.perf import possible_cpus

from . import _hist, _textfmt

from bccless.sys.bpf_consts import (  # noqa: E402,F401  (BCC exports these)
    BPF_MAP_TYPE_HASH,
    BPF_MAP_TYPE_ARRAY,
    BPF_MAP_TYPE_PROG_ARRAY,
    BPF_MAP_TYPE_PERF_EVENT_ARRAY,
    BPF_MAP_TYPE_PERCPU_HASH,
    BPF_MAP_TYPE_PERCPU_ARRAY,
    BPF_MAP_TYPE_STACK_TRACE,
    BPF_MAP_TYPE_CGROUP_ARRAY,
    BPF_MAP_TYPE_LRU_HASH,
    BPF_MAP_TYPE_LRU_PERCPU_HASH,
    BPF_MAP_TYPE_LPM_TRIE,
    BPF_MAP_TYPE_ARRAY_OF_MAPS,
    BPF_MAP_TYPE_HASH_OF_MAPS,
    BPF_MAP_TYPE_DEVMAP,
    BPF_MAP_TYPE_SOCKMAP,
    BPF_MAP_TYPE_CPUMAP,
    BPF_MAP_TYPE_XSKMAP,
    BPF_MAP_TYPE_SOCKHASH,
    BPF_MAP_TYPE_CGROUP_STORAGE,
    BPF_MAP_TYPE_REUSEPORT_SOCKARRAY,
    BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE,
    BPF_MAP_TYPE_QUEUE,
    BPF_MAP_TYPE_STACK,
    BPF_MAP_TYPE_SK_STORAGE,
    BPF_MAP_TYPE_DEVMAP_HASH,
    BPF_MAP_TYPE_STRUCT_OPS,
    BPF_MAP_TYPE_RINGBUF,
    BPF_MAP_TYPE_INODE_STORAGE,
    BPF_MAP_TYPE_TASK_STORAGE,
)

map_type_name = {v: k[len("BPF_MAP_TYPE_"):] for k, v in list(globals().items())
                 if k.startswith("BPF_MAP_TYPE_") and v <= BPF_MAP_TYPE_TASK_STORAGE}

stars_max = _hist.STARS_MAX
log2_index_max = _hist.LOG2_INDEX_MAX
linear_index_max = _hist.LINEAR_INDEX_MAX

BPF_ANY = 0
BPF_NOEXIST = 1
BPF_EXIST = 2


def get_table_type_name(ttype: int) -> str:
    return map_type_name.get(ttype, "<unknown>")


def _buf(obj) -> bytes:
    return bytes(obj) if not isinstance(obj, bytes) else obj


class TableBase(MutableMapping):
    """A BPF map seen as a mutable mapping of ctypes keys to ctypes leaves."""

    def __init__(self, bpf, map_id: int, map_fd: int, keytype, leaftype, name=None) -> None:
        self.bpf = bpf
        self.map_id = map_id
        self.map_fd = map_fd
        self.Key = keytype
        self.Leaf = leaftype
        info = _bpf.obj_get_info_by_fd(map_fd, "map")
        self.ttype = info["type"]
        self.flags = info.get("map_flags", 0)
        self.max_entries = info["max_entries"]
        self._key_size = ct.sizeof(keytype) if keytype is not None else 0
        self._leaf_size = ct.sizeof(leaftype)
        self._cbs: dict = {}
        self._name = name

    def get_fd(self) -> int:
        return self.map_fd

    # -- text forms -------------------------------------------------------
    def key_sprintf(self, key) -> bytes:
        return _textfmt.sprintf(key)

    def leaf_sprintf(self, leaf) -> bytes:
        return _textfmt.sprintf(leaf)

    def key_scanf(self, key_str) -> Any:
        return _textfmt.scanf(self.Key, key_str)

    def leaf_scanf(self, leaf_str) -> Any:
        return _textfmt.scanf(self.Leaf, leaf_str)

    # -- element access ---------------------------------------------------
    def _lookup(self, key) -> Optional[bytes]:
        return _bpf.map_lookup_elem(self.map_fd, _buf(key), self._leaf_size)

    def __getitem__(self, key):
        raw = self._lookup(key)
        if raw is None:
            raise KeyError(key)
        return self.Leaf.from_buffer_copy(raw)

    def __setitem__(self, key, leaf) -> None:
        try:
            _bpf.map_update_elem(self.map_fd, _buf(key), _buf(leaf), BPF_ANY)
        except OSError as exc:
            raise Exception("Could not update table: %s" % os.strerror(exc.errno)) from None

    def __delitem__(self, key) -> None:
        if not _bpf.map_delete_elem(self.map_fd, _buf(key)):
            raise KeyError(key)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __iter__(self):
        return TableBase.Iter(self)

    def iter(self):
        return self.__iter__()

    def keys(self):
        return self.__iter__()

    def itervalues(self):
        for key in self:
            try:
                yield self[key]
            except KeyError:
                pass

    def iteritems(self):
        for key in self:
            try:
                yield (key, self[key])
            except KeyError:
                pass

    def items(self):
        return list(self.iteritems())

    def values(self):
        return list(self.itervalues())

    def clear(self) -> None:
        for k in list(self.keys()):
            self.__delitem__(k)

    def zero(self) -> None:
        for k in list(self.keys()):
            self[k] = self.Leaf()

    def next(self, key):
        raw = _bpf.map_get_next_key(self.map_fd, None if key is None else _buf(key),
                                    self._key_size)
        if raw is None:
            raise StopIteration()
        return self.Key.from_buffer_copy(raw)

    class Iter:
        def __init__(self, table: "TableBase") -> None:
            self.table = table
            self.key = None

        def __iter__(self):
            return self

        def __next__(self):
            self.key = self.table.next(self.key)
            return self.key

        next = __next__

    # -- batch operations -------------------------------------------------
    def _wrap(self, cls, raw: bytes):
        return cls.from_buffer_copy(raw)

    def items_lookup_batch(self):
        yield from self._batch(delete=False)

    def items_lookup_and_delete_batch(self):
        yield from self._batch(delete=True)

    def _batch(self, delete: bool):
        fn = _bpf.map_lookup_and_delete_batch if delete else _bpf.map_lookup_batch
        name = "BPF_MAP_LOOKUP_AND_DELETE_BATCH" if delete else "BPF_MAP_LOOKUP_BATCH"
        pairs = []
        token = None
        while True:
            try:
                keys, vals, token = fn(self.map_fd, self._key_size, self._leaf_size,
                                       self.max_entries, token)
            except OSError as exc:
                if exc.errno == errno.ENOENT:
                    break
                raise Exception("%s has failed: %s" % (name, os.strerror(exc.errno))) from None
            pairs.extend(zip(keys, vals))
            if token is None:
                break
        for k, v in pairs:
            yield (self._wrap(self.Key, k), self._wrap(self.Leaf, v))

    def items_delete_batch(self, ct_keys=None) -> None:
        if ct_keys is None:
            for _ in self.items_lookup_and_delete_batch():
                pass
            return
        try:
            _bpf.map_delete_batch(self.map_fd, _elements(ct_keys), self._key_size)
        except OSError as exc:
            raise Exception("BPF_MAP_DELETE_BATCH has failed: %s" % os.strerror(exc.errno)) from None

    def items_update_batch(self, ct_keys, ct_values) -> None:
        if not isinstance(ct_keys, ct.Array) or not isinstance(ct_values, ct.Array):
            raise TypeError("ct_keys and ct_values must be ctypes arrays")
        if len(ct_keys) != len(ct_values) or not 0 < len(ct_keys) <= self.max_entries:
            raise ValueError("ct_keys and ct_values must have the same length, "
                             "between 1 and max_entries")
        try:
            _bpf.map_update_batch(self.map_fd, _elements(ct_keys), _elements(ct_values),
                                  self._key_size, self._leaf_size)
        except OSError as exc:
            raise Exception("BPF_MAP_UPDATE_BATCH has failed: %s" % os.strerror(exc.errno)) from None

    # -- histograms -------------------------------------------------------
    def decode_c_struct(self, tmp, buckets, bucket_fn, bucket_sort_fn, index_max=log2_index_max):
        found, vals = _hist.decode_struct_buckets(self.items(), index_max, bucket_fn,
                                                  bucket_sort_fn)
        buckets.extend(found)
        tmp.update(vals)
        return buckets

    def _hist(self, printer, index_max, val_type, section_header, section_print_fn,
              bucket_fn, strip_leading_zero, bucket_sort_fn) -> None:
        if isinstance(self.Key(), ct.Structure):
            buckets, vals = _hist.decode_struct_buckets(self.items(), index_max, bucket_fn,
                                                        bucket_sort_fn)
            for bucket in buckets:
                if section_print_fn:
                    print("\n%s = %s" % (section_header, section_print_fn(bucket)))
                else:
                    print("\n%s = %r" % (section_header, bucket))
                printer(vals[bucket], val_type, strip_leading_zero)
        else:
            vals = [0] * index_max
            for k, v in self.items():
                if k.value >= index_max:
                    raise IndexError(("Index in print_linear_hist() of %d " +
                                      "exceeds max of %d.") % (k.value, index_max))
                vals[k.value] = v.value
            printer(vals, val_type, strip_leading_zero)

    def print_log2_hist(self, val_type="value", section_header="Bucket ptr",
                        section_print_fn=None, bucket_fn=None, strip_leading_zero=None,
                        bucket_sort_fn=None) -> None:
        self._hist(_hist.print_log2, log2_index_max, val_type, section_header,
                   section_print_fn, bucket_fn, strip_leading_zero, bucket_sort_fn)

    def print_linear_hist(self, val_type="value", section_header="Bucket ptr",
                          section_print_fn=None, bucket_fn=None, strip_leading_zero=None,
                          bucket_sort_fn=None) -> None:
        self._hist(_hist.print_linear, linear_index_max, val_type, section_header,
                   section_print_fn, bucket_fn, strip_leading_zero, bucket_sort_fn)

    def print_json_hist(self, val_type="value", section_header="Bucket ptr",
                        section_print_fn=None, bucket_fn=None, bucket_sort_fn=None) -> None:
        if isinstance(self.Key(), ct.Structure):
            buckets, vals = _hist.decode_struct_buckets(self.items(), log2_index_max,
                                                        bucket_fn, bucket_sort_fn)
            for bucket in buckets:
                hist = _hist.json_hist(vals[bucket], val_type)
                hist[section_header] = section_print_fn(bucket) if section_print_fn else bucket
                print(hist)
        else:
            vals = [0] * log2_index_max
            for k, v in self.items():
                vals[k.value] = v.value
            print(_hist.json_hist(vals, val_type))


def _elements(arr) -> list:
    """The raw bytes of each element of a ctypes array.

    Iterating an array of simple ctypes yields Python ints, so the elements
    are cut from the array's own buffer instead.
    """
    raw = bytes(arr)
    size = ct.sizeof(arr._type_)
    return [raw[i:i + size] for i in range(0, len(raw), size)]


class HashTable(TableBase):
    pass


class LruHash(HashTable):
    pass


class ArrayBase(TableBase):
    def _normalize_key(self, key):
        if isinstance(key, int):
            if key < 0:
                key = len(self) + key
            key = self.Key(key)
        if not isinstance(key, ct._SimpleCData):
            raise IndexError("Array index must be an integer type")
        # BCC lets an index below -len through to a failing lookup (KeyError);
        # both ends of the range raise IndexError here.
        if not 0 <= key.value < len(self):
            raise IndexError("Array index out of range")
        return key

    def __len__(self) -> int:
        return self.max_entries

    def __getitem__(self, key):
        return super().__getitem__(self._normalize_key(key))

    def __setitem__(self, key, leaf) -> None:
        super().__setitem__(self._normalize_key(key), leaf)

    def __delitem__(self, key) -> None:
        self.clearitem(key)

    def clearitem(self, key) -> None:
        key = self._normalize_key(key)
        super().__setitem__(key, self.Leaf())

    def clear(self) -> None:
        for i in range(len(self)):
            self.clearitem(i)

    def __iter__(self):
        return (self.Key(i) for i in range(len(self)))

    def next(self, key):
        nxt = 0 if key is None else self._normalize_key(key).value + 1
        if nxt >= len(self):
            raise StopIteration()
        return self.Key(nxt)


class Array(ArrayBase):
    pass


class ProgArray(ArrayBase):
    def __setitem__(self, key, leaf) -> None:
        if isinstance(leaf, int):
            leaf = self.Leaf(leaf)
        elif hasattr(leaf, "fd"):
            leaf = self.Leaf(leaf.fd)
        super().__setitem__(key, leaf)

    def __delitem__(self, key) -> None:
        key = self._normalize_key(key)
        _bpf.map_delete_elem(self.map_fd, bytes(key))


class CgroupArray(ArrayBase):
    def __setitem__(self, key, leaf) -> None:
        if isinstance(leaf, int):
            super().__setitem__(key, self.Leaf(leaf))
        elif isinstance(leaf, str):
            fd = os.open(leaf, os.O_RDONLY)
            try:
                super().__setitem__(key, self.Leaf(fd))
            finally:
                os.close(fd)
        else:
            raise Exception("Cgroup array key must be either FD or cgroup path")

    def __delitem__(self, key) -> None:
        _bpf.map_delete_elem(self.map_fd, bytes(self._normalize_key(key)))


class _PerCpuMixin:
    """Per-CPU leaves: one value per possible CPU, reduced on demand."""

    def _percpu_init(self, reducer) -> None:
        self.reducer = reducer
        self.total_cpu = len(possible_cpus())
        self.sLeaf = self.Leaf
        size = ct.sizeof(self.sLeaf)
        if size % 8 == 0:
            self._elem = self.sLeaf
        elif self.sLeaf == ct.c_uint:
            self._elem = ct.c_uint64
        elif self.sLeaf == ct.c_int:
            self._elem = ct.c_int64
        else:
            raise IndexError("Leaf must be aligned to 8 bytes")
        self.Leaf = self._elem * self.total_cpu
        self._leaf_size = ct.sizeof(self.Leaf)

    def getvalue(self, key):
        result = TableBase.__getitem__(self, key)
        if self._elem is not self.sLeaf:
            return (self.sLeaf * self.total_cpu)(*[self.sLeaf(v) for v in result])
        return result

    def __getitem__(self, key):
        values = self.getvalue(key)
        if self.reducer:
            return reduce(self.reducer, values)
        return values

    def __setitem__(self, key, leaf) -> None:
        if not isinstance(leaf, ct.Array):
            raise IndexError("Leaf must be an array of per-cpu values")
        TableBase.__setitem__(self, key, (self._elem * self.total_cpu)(*leaf))

    def sum(self, key):
        if isinstance(self.sLeaf(), ct.Structure):
            raise IndexError("Leaf must be an integer type for default sum functions")
        return self.sLeaf(sum(v.value if hasattr(v, "value") else v for v in self.getvalue(key)))

    def max(self, key):
        if isinstance(self.sLeaf(), ct.Structure):
            raise IndexError("Leaf must be an integer type for default max functions")
        return self.sLeaf(max(v.value if hasattr(v, "value") else v for v in self.getvalue(key)))

    def average(self, key) -> float:
        return self.sum(key).value / self.total_cpu


class PerCpuHash(_PerCpuMixin, HashTable):
    def __init__(self, *args, **kwargs) -> None:
        reducer = kwargs.pop("reducer", None)
        HashTable.__init__(self, *args, **kwargs)
        self._percpu_init(reducer)


class LruPerCpuHash(PerCpuHash):
    pass


class PerCpuArray(_PerCpuMixin, ArrayBase):
    def __init__(self, *args, **kwargs) -> None:
        reducer = kwargs.pop("reducer", None)
        ArrayBase.__init__(self, *args, **kwargs)
        self._percpu_init(reducer)

    def __getitem__(self, key):
        return _PerCpuMixin.__getitem__(self, self._normalize_key(key))

    def __setitem__(self, key, leaf) -> None:
        _PerCpuMixin.__setitem__(self, self._normalize_key(key), leaf)

    def __delitem__(self, key) -> None:
        key = self._normalize_key(key)
        TableBase.__setitem__(self, key, (self._elem * self.total_cpu)())

    def getvalue(self, key):
        return _PerCpuMixin.getvalue(self, self._normalize_key(key))


class LpmTrie(TableBase):
    def __len__(self) -> int:
        # BCC refuses too: a trie has no cheap length; callers iterate instead.
        raise NotImplementedError("len() of an LPM trie is not supported; iterate over it")


class _BuildIdOffsetOrIp(ct.Union):
    _fields_ = [("offset", ct.c_ulonglong), ("ip", ct.c_ulonglong)]


class bpf_stack_build_id(ct.Structure):
    """The kernel's per-frame record of a BPF_F_STACK_BUILD_ID stack map."""

    _anonymous_ = ("u",)
    _fields_ = [("status", ct.c_int), ("build_id", ct.c_ubyte * 20), ("u", _BuildIdOffsetOrIp)]


class StackTrace(TableBase):
    MAX_DEPTH = 127
    BPF_F_STACK_BUILD_ID = 1 << 5
    BPF_STACK_BUILD_ID_EMPTY = 0
    BPF_STACK_BUILD_ID_VALID = 1
    BPF_STACK_BUILD_ID_IP = 2

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.Leaf(), ct.Structure):
            # Stack maps carry no BTF value type; BCC's leaf is a struct with
            # ``ip`` (or ``trace`` for build-id maps) sized by the map.
            if self.flags & self.BPF_F_STACK_BUILD_ID:
                elem, field, cname = bpf_stack_build_id, "trace", "bpf_stacktrace_buildid"
            else:
                elem, field, cname = ct.c_ulonglong, "ip", "bpf_stacktrace"
            depth = self._leaf_size // ct.sizeof(elem)
            self.Leaf = type(cname, (ct.Structure,), {"_fields_": [(field, elem * depth)]})

    def walk(self, stack_id, resolve: Optional[Callable] = None):
        leaf = self[self.Key(stack_id)]
        if self.flags & self.BPF_F_STACK_BUILD_ID:
            for entry in leaf.trace[:self.MAX_DEPTH]:
                if entry.status in (self.BPF_STACK_BUILD_ID_IP, self.BPF_STACK_BUILD_ID_EMPTY):
                    return
                yield resolve(entry) if resolve else entry
            return
        for addr in leaf.ip[:self.MAX_DEPTH]:
            if addr == 0:
                return
            yield resolve(addr) if resolve else addr

    def clear(self) -> None:
        """Stack ids are never freed from Python, as in BCC."""


class DevMap(ArrayBase):
    pass


class CpuMap(ArrayBase):
    pass


class XskMap(ArrayBase):
    pass


class MapInMapArray(ArrayBase):
    pass


class MapInMapHash(HashTable):
    pass


class QueueStack:
    """Queue/stack maps: push/pop/peek, no keys."""

    BPF_EXIST = BPF_EXIST

    def __init__(self, bpf, map_id: int, map_fd: int, leaftype) -> None:
        self.bpf = bpf
        self.map_id = map_id
        self.map_fd = map_fd
        self.Leaf = leaftype
        info = _bpf.obj_get_info_by_fd(map_fd, "map")
        self.ttype = info["type"]
        self.flags = info.get("map_flags", 0)
        self.max_entries = info["max_entries"]

    def leaf_sprintf(self, leaf) -> bytes:
        return _textfmt.sprintf(leaf)

    def leaf_scanf(self, leaf_str):
        return _textfmt.scanf(self.Leaf, leaf_str)

    def push(self, leaf, flags: int = 0) -> None:
        try:
            _bpf.map_update_elem(self.map_fd, b"", bytes(leaf), flags)
        except OSError as exc:
            raise Exception("Could not push to table: %s" % os.strerror(exc.errno)) from None

    def pop(self):
        raw = _bpf.map_lookup_and_delete_elem(self.map_fd, None, ct.sizeof(self.Leaf))
        if raw is None:
            raise KeyError("Could not pop from table")
        return self.Leaf.from_buffer_copy(raw)

    def peek(self):
        raw = _bpf.map_lookup_elem(self.map_fd, b"", ct.sizeof(self.Leaf))
        if raw is None:
            raise KeyError("Could not peek table")
        return self.Leaf.from_buffer_copy(raw)

    def itervalues(self):
        for _ in range(self.max_entries):
            try:
                yield self.pop()
            except KeyError:
                return

    def values(self):
        return list(self.itervalues())


class FileDesc:
    def __init__(self, fd: int) -> None:
        if fd is None or fd < 0:
            raise Exception("Invalid file descriptor")
        self.fd = fd

    def clean_up(self) -> None:
        if self.fd is not None and self.fd >= 0:
            os.close(self.fd)
            self.fd = None

    def __del__(self) -> None:
        self.clean_up()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.clean_up()



# Event tables live in their own module; re-exported here as BCC has them.
from ._events import PerfEventArray, RingBuf  # noqa: E402

_TABLE_CLASSES = {
    BPF_MAP_TYPE_HASH: HashTable, BPF_MAP_TYPE_ARRAY: Array, BPF_MAP_TYPE_PROG_ARRAY: ProgArray,
    BPF_MAP_TYPE_LPM_TRIE: LpmTrie, BPF_MAP_TYPE_STACK_TRACE: StackTrace,
    BPF_MAP_TYPE_LRU_HASH: LruHash, BPF_MAP_TYPE_CGROUP_ARRAY: CgroupArray,
    BPF_MAP_TYPE_DEVMAP: DevMap, BPF_MAP_TYPE_CPUMAP: CpuMap, BPF_MAP_TYPE_XSKMAP: XskMap,
    BPF_MAP_TYPE_ARRAY_OF_MAPS: MapInMapArray, BPF_MAP_TYPE_HASH_OF_MAPS: MapInMapHash,
    # BCC forwards no reducer to LRU per-CPU hashes.
    BPF_MAP_TYPE_LRU_PERCPU_HASH: LruPerCpuHash,
}


def Table(bpf, map_id, map_fd, keytype, leaftype, name, **kwargs):
    """BCC's factory: the table class for a map's type."""
    ttype = _bpf.obj_get_info_by_fd(map_fd, "map")["type"]
    event_type_id = kwargs.pop("event_type_id", 0)
    if ttype in (BPF_MAP_TYPE_PERF_EVENT_ARRAY, BPF_MAP_TYPE_RINGBUF):
        cls = PerfEventArray if ttype == BPF_MAP_TYPE_PERF_EVENT_ARRAY else RingBuf
        return cls(bpf, map_id, map_fd, keytype, leaftype, name, event_type_id=event_type_id)
    if ttype in (BPF_MAP_TYPE_PERCPU_HASH, BPF_MAP_TYPE_PERCPU_ARRAY):
        cls = PerCpuHash if ttype == BPF_MAP_TYPE_PERCPU_HASH else PerCpuArray
        return cls(bpf, map_id, map_fd, keytype, leaftype, **kwargs)
    if ttype in (BPF_MAP_TYPE_QUEUE, BPF_MAP_TYPE_STACK):
        return QueueStack(bpf, map_id, map_fd, leaftype)
    if ttype in _TABLE_CLASSES:
        return _TABLE_CLASSES[ttype](bpf, map_id, map_fd, keytype, leaftype)
    raise Exception("Unknown table type %d" % ttype)
