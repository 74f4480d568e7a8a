"""Live BPF maps from Python: a :class:`Map` owns one map fd.

Keys and values are raw ``bytes`` unless a codec is given; a codec is an
(encode, decode) pair, so typed access (ints, ctypes structures from BTF via
:mod:`bccless.btf_ctypes`) costs one call each way and nothing when unused.
Per-CPU maps hold one value slot (value size rounded up to 8) per *possible*
CPU; :class:`Map` reads and writes them as lists.

Kernel failures surface as :class:`bccless.errors.MapError` naming the map and
the operation, with the errno kept as ``.errno``.
"""
from __future__ import annotations

import os
from errno import EINVAL, ENOSPC, ENOTSUP

from bccless.errors import MapError
from bccless.sys import bpf
from bccless.sys import bpf_consts as C

BPF_ANY, BPF_NOEXIST, BPF_EXIST = C.BPF_ANY, C.BPF_NOEXIST, C.BPF_EXIST
ENOTSUPP = 524  # kernel-internal "not supported"; leaks to user space
_PERCPU_TYPES = frozenset({C.BPF_MAP_TYPE_PERCPU_HASH, C.BPF_MAP_TYPE_PERCPU_ARRAY,
                           C.BPF_MAP_TYPE_LRU_PERCPU_HASH,
                           C.BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE})
# Maps whose keys are fixed indexes: entries cannot be deleted, only overwritten.
_ARRAY_TYPES = frozenset({C.BPF_MAP_TYPE_ARRAY, C.BPF_MAP_TYPE_PERCPU_ARRAY,
                          C.BPF_MAP_TYPE_PROG_ARRAY, C.BPF_MAP_TYPE_PERF_EVENT_ARRAY,
                          C.BPF_MAP_TYPE_CGROUP_ARRAY, C.BPF_MAP_TYPE_ARRAY_OF_MAPS})
# Map types whose kernel implementation has the batch commands.
_BATCH_TYPES = frozenset({C.BPF_MAP_TYPE_HASH, C.BPF_MAP_TYPE_ARRAY,
                          C.BPF_MAP_TYPE_PERCPU_HASH, C.BPF_MAP_TYPE_PERCPU_ARRAY,
                          C.BPF_MAP_TYPE_LRU_HASH, C.BPF_MAP_TYPE_LRU_PERCPU_HASH})


class Codec:
    """How keys or values are turned into bytes and back."""

    __slots__ = ("encode", "decode")

    def __init__(self, encode, decode) -> None:
        self.encode = encode
        self.decode = decode


def int_codec(size: int, signed: bool = False) -> Codec:
    """Python ints as little-endian integers of ``size`` bytes."""
    def encode(v: int) -> bytes:
        return v.to_bytes(size, "little", signed=signed)

    def decode(b: bytes) -> int:
        return int.from_bytes(b, "little", signed=signed)

    return Codec(encode, decode)


def ctypes_codec(ctype) -> Codec:
    """ctypes instances (passed to the kernel without a copy) and copies back."""
    import ctypes

    size = ctypes.sizeof(ctype)

    def encode(v) -> object:
        if ctypes.sizeof(v) != size:
            raise TypeError(f"expected a {size}-byte {ctype.__name__}, "
                            f"got {ctypes.sizeof(v)} bytes")
        return v

    return Codec(encode, ctype.from_buffer_copy)


def _as_codec(spec, size: int) -> Codec | None:
    """None (raw bytes), a Codec, an (encode, decode) pair, ``int`` or a ctypes type."""
    if spec is None or isinstance(spec, Codec):
        return spec
    if spec is int:
        return int_codec(size)
    if isinstance(spec, tuple) and len(spec) == 2:
        return Codec(*spec)
    if isinstance(spec, type) and hasattr(spec, "from_buffer_copy"):
        import ctypes

        if ctypes.sizeof(spec) != size:
            raise MapError(f"ctypes type {spec.__name__} is {ctypes.sizeof(spec)} bytes, "
                           f"the map's is {size}")
        return ctypes_codec(spec)
    raise TypeError(f"not a codec: {spec!r}")


class Map:
    """One live BPF map.  Closing (or garbage collection) releases the fd."""

    def __init__(self, fd: int, *, key=None, value=None, info: dict | None = None) -> None:
        """Wrap (and take ownership of) ``fd``; ``key``/``value`` select codecs."""
        self._fd = fd
        try:
            info = info if info is not None else bpf.obj_get_info_by_fd(fd, "map")
        except OSError as exc:
            os.close(fd)
            self._fd = -1
            raise MapError(f"fd {fd} is not a BPF map: {exc.strerror}") from exc
        self.info = info
        self.name: str = info["name"]
        self.type: int = info["type"]
        self.key_size: int = info["key_size"]
        self.value_size: int = info["value_size"]
        self.max_entries: int = info["max_entries"]
        self.flags: int = info["flags"]
        self.id: int = info["id"]
        self.percpu = self.type in _PERCPU_TYPES
        if self.percpu:
            from bccless.sys.perf import possible_cpus

            self.ncpus = len(possible_cpus())
            self._slot = (self.value_size + 7) & ~7
            self._raw_value_size = self._slot * self.ncpus
        else:
            self.ncpus = 1
            self._slot = self._raw_value_size = self.value_size
        self.key_codec = _as_codec(key, self.key_size)
        self.value_codec = _as_codec(value, self.value_size)
        self._batch_ok: bool | None = None if self.type in _BATCH_TYPES else False

    # -- construction ---------------------------------------------------------

    @classmethod
    def create(cls, map_type: int, key_size: int, value_size: int, max_entries: int, *,
               key=None, value=None, **create_args) -> "Map":
        """BPF_MAP_CREATE a new map; ``create_args`` are :func:`bpf.map_create`'s keywords."""
        try:
            fd = bpf.map_create(map_type, key_size, value_size, max_entries, **create_args)
        except OSError as exc:
            raise _map_error(exc, create_args.get("name", ""), "create") from exc
        return cls(fd, key=key, value=value)

    @classmethod
    def from_pinned(cls, path: str, *, key=None, value=None) -> "Map":
        """Open the map pinned at ``path`` on a bpffs."""
        try:
            fd = bpf.obj_get(path)
        except OSError as exc:
            raise MapError(f"cannot open pinned map {path}: {exc.strerror}") from exc
        return cls(fd, key=key, value=value)

    @classmethod
    def from_id(cls, map_id: int, *, key=None, value=None) -> "Map":
        """Open the map with kernel id ``map_id``."""
        try:
            fd = bpf.get_fd_by_id("map", map_id)
        except OSError as exc:
            raise MapError(f"cannot open map id {map_id}: {exc.strerror}") from exc
        return cls(fd, key=key, value=value)

    # -- lifetime -------------------------------------------------------------

    @property
    def fd(self) -> int:
        if self._fd < 0:
            raise MapError(f"map '{self.name}' is closed")
        return self._fd

    def close(self) -> None:
        """Release the fd (the map lives on while pinned or used by a program)."""
        fd, self._fd = getattr(self, "_fd", -1), -1
        if fd >= 0:
            os.close(fd)

    def __enter__(self) -> "Map":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except OSError:
            pass

    def __repr__(self) -> str:
        state = f"fd={self._fd}" if self._fd >= 0 else "closed"
        return (f"<Map '{self.name}' type={self.type} key={self.key_size} "
                f"value={self.value_size} max={self.max_entries} id={self.id} {state}>")

    def pin(self, path: str) -> None:
        """Pin on a bpffs so the map outlives this process."""
        try:
            bpf.obj_pin(self.fd, path)
        except OSError as exc:
            raise _map_error(exc, self.name, f"pin at {path}") from exc

    def freeze(self) -> None:
        """Forbid further writes from user space (BPF programs may still write)."""
        try:
            bpf.map_freeze(self.fd)
        except OSError as exc:
            raise _map_error(exc, self.name, "freeze") from exc

    # -- encoding -------------------------------------------------------------

    def _key(self, key) -> bytes:
        if self.key_codec is not None:
            key = self.key_codec.encode(key)
        n = len(key) if type(key) is bytes else memoryview(key).nbytes
        if n != self.key_size:
            raise MapError(f"map '{self.name}': key must be {self.key_size} bytes, got {n}")
        return key

    def _decode_key(self, raw: bytes):
        return raw if self.key_codec is None else self.key_codec.decode(raw)

    def _value(self, value) -> bytes:
        codec = self.value_codec
        if self.percpu:
            per_cpu = value if isinstance(value, (list, tuple)) else [value] * self.ncpus
            if len(per_cpu) != self.ncpus:
                raise MapError(f"map '{self.name}': need {self.ncpus} per-CPU values, "
                               f"got {len(per_cpu)}")
            pad = bytes(self._slot - self.value_size)
            return b"".join(self._check_value(codec.encode(v) if codec else v) + pad
                            for v in per_cpu)
        return self._check_value(codec.encode(value) if codec else value)

    def _check_value(self, raw) -> bytes:
        raw = bytes(raw)
        if len(raw) != self.value_size:
            raise MapError(f"map '{self.name}': value must be {self.value_size} bytes, "
                           f"got {len(raw)}")
        return raw

    def _decode_value(self, raw: bytes):
        dec = self.value_codec.decode if self.value_codec is not None else None
        if self.percpu:
            slot, vs = self._slot, self.value_size
            parts = [raw[i:i + vs] for i in range(0, slot * self.ncpus, slot)]
            return [dec(p) for p in parts] if dec else parts
        return dec(raw) if dec else raw

    # -- element access ---------------------------------------------------------

    def lookup(self, key, flags: int = 0):
        """The value at ``key``, or None when absent (a list per CPU for per-CPU maps)."""
        try:
            raw = bpf.map_lookup_elem(self.fd, self._key(key), self._raw_value_size, flags)
        except OSError as exc:
            raise _map_error(exc, self.name, "lookup") from exc
        return None if raw is None else self._decode_value(raw)

    def update(self, key, value, flags: int = BPF_ANY) -> None:
        """Insert or replace (BPF_ANY), insert only (BPF_NOEXIST) or replace only (BPF_EXIST)."""
        try:
            bpf.map_update_elem(self.fd, self._key(key), self._value(value), flags)
        except OSError as exc:
            raise _map_error(exc, self.name, "update") from exc

    def delete(self, key) -> bool:
        """Remove ``key``; False if it was not there."""
        try:
            return bpf.map_delete_elem(self.fd, self._key(key))
        except OSError as exc:
            raise _map_error(exc, self.name, "delete") from exc

    def lookup_and_delete(self, key):
        """Atomically read and remove ``key``; None when absent."""
        try:
            raw = bpf.map_lookup_and_delete_elem(self.fd, self._key(key), self._raw_value_size)
        except OSError as exc:
            raise _map_error(exc, self.name, "lookup_and_delete") from exc
        return None if raw is None else self._decode_value(raw)

    def __getitem__(self, key):
        value = self.lookup(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key, value) -> None:
        self.update(key, value)

    def __delitem__(self, key) -> None:
        if not self.delete(key):
            raise KeyError(key)

    def __contains__(self, key) -> bool:
        return self.lookup(key) is not None

    # -- iteration ----------------------------------------------------------------

    def _raw_keys(self):
        fd, ks, nxt = self.fd, self.key_size, bpf.map_get_next_key
        key = None
        while True:
            try:
                key = nxt(fd, key, ks)
            except OSError as exc:
                raise _map_error(exc, self.name, "get_next_key") from exc
            if key is None:
                return
            yield key

    def keys(self):
        """Iterate over keys (a snapshot is not taken: concurrent changes show)."""
        dec = self.key_codec.decode if self.key_codec is not None else None
        for raw in self._raw_keys():
            yield dec(raw) if dec else raw

    __iter__ = keys

    def items(self):
        """(key, value) pairs; entries deleted while iterating are skipped.

        Map types with batch commands are read a batch per syscall (about six
        times faster than a lookup per key for a 10k-entry hash)."""
        if self._batch_ok is not False:
            yield from self.batch_lookup()
            return
        fd, vs, look = self.fd, self._raw_value_size, bpf.map_lookup_elem
        for raw in self._raw_keys():
            val = look(fd, raw, vs)
            if val is not None:
                yield self._decode_key(raw), self._decode_value(val)

    def values(self):
        for _, value in self.items():
            yield value

    def __len__(self) -> int:
        """Number of keys, counted by iterating (the kernel keeps no count)."""
        return sum(1 for _ in self._raw_keys())

    def clear(self) -> None:
        """Delete every entry; array maps (which cannot delete) get zeroed values."""
        if self.type in _ARRAY_TYPES:
            zero = bytes(self._raw_value_size)
            for raw in list(self._raw_keys()):
                bpf.map_update_elem(self.fd, raw, zero)
            return
        for raw in list(self._raw_keys()):
            bpf.map_delete_elem(self.fd, raw)

    # -- queues and stacks ------------------------------------------------------------

    def push(self, value, flags: int = BPF_ANY) -> None:
        """Queue/stack push; BPF_EXIST overwrites the oldest entry when full."""
        try:
            bpf.map_update_elem(self.fd, b"", self._value(value), flags)
        except OSError as exc:
            raise _map_error(exc, self.name, "push") from exc

    def pop(self):
        """Queue/stack pop; None when empty."""
        try:
            raw = bpf.map_lookup_and_delete_elem(self.fd, None, self._raw_value_size)
        except OSError as exc:
            raise _map_error(exc, self.name, "pop") from exc
        return None if raw is None else self._decode_value(raw)

    def peek(self):
        """Queue/stack peek; None when empty."""
        try:
            raw = bpf.map_lookup_elem(self.fd, b"", self._raw_value_size)
        except OSError as exc:
            raise _map_error(exc, self.name, "peek") from exc
        return None if raw is None else self._decode_value(raw)

    # -- batches -----------------------------------------------------------------------

    def _batch_unsupported(self, exc: OSError) -> bool:
        """Remember a kernel without batch ops (or this map type without them)."""
        if exc.errno in (EINVAL, ENOTSUP, ENOTSUPP) and self._batch_ok is None:
            self._batch_ok = False
            return True
        return False

    def batch_lookup(self, delete: bool = False, count: int = 0) -> list:
        """All (key, value) pairs, read ``count`` per syscall (default: up to 1024).

        With ``delete`` every pair read is also removed (per kernel batch:
        not atomic for the whole map).  Falls back to per-key operations on
        kernels or map types without batch commands.
        """
        if self._batch_ok is not False:
            try:
                return self._batch_lookup(delete, count or min(self.max_entries, 1024) or 1)
            except OSError as exc:
                if not self._batch_unsupported(exc):
                    raise _map_error(exc, self.name, "batch lookup") from exc
        out = []
        for raw in list(self._raw_keys()):
            if delete:
                val = bpf.map_lookup_and_delete_elem(self.fd, raw, self._raw_value_size)
            else:
                val = bpf.map_lookup_elem(self.fd, raw, self._raw_value_size)
            if val is not None:
                out.append((self._decode_key(raw), self._decode_value(val)))
        return out

    def _batch_lookup(self, delete: bool, count: int) -> list:
        fn = bpf.map_lookup_and_delete_batch if delete else bpf.map_lookup_batch
        out, token = [], None
        while True:
            try:
                keys, values, token = fn(self.fd, self.key_size, self._raw_value_size, count,
                                         token)
            except OSError as exc:
                if exc.errno == ENOSPC:   # a hash bucket larger than count
                    count *= 2
                    continue
                raise
            self._batch_ok = True
            out.extend(zip(map(self._decode_key, keys), map(self._decode_value, values)))
            if token is None:
                return out

    def batch_delete(self, keys) -> int:
        """Delete ``keys``; returns how many were deleted."""
        raw = [bytes(self._key(k)) for k in keys]
        if self._batch_ok is not False and raw:
            try:
                n = bpf.map_delete_batch(self.fd, raw, self.key_size)
                self._batch_ok = True
                return n
            except OSError as exc:
                if not self._batch_unsupported(exc):
                    raise _map_error(exc, self.name, "batch delete") from exc
        return sum(bpf.map_delete_elem(self.fd, k) for k in raw)

    def batch_update(self, keys, values, flags: int = BPF_ANY) -> int:
        """Write pairs in one syscall where possible; returns how many were written."""
        raw_k = [bytes(self._key(k)) for k in keys]
        raw_v = [self._value(v) for v in values]
        if len(raw_k) != len(raw_v):
            raise MapError(f"map '{self.name}': {len(raw_k)} keys but {len(raw_v)} values")
        if self._batch_ok is not False and raw_k:
            try:
                n = bpf.map_update_batch(self.fd, raw_k, raw_v, self.key_size,
                                         self._raw_value_size, flags)
                self._batch_ok = True
                return n
            except OSError as exc:
                if not self._batch_unsupported(exc):
                    raise _map_error(exc, self.name, "batch update") from exc
        for k, v in zip(raw_k, raw_v):
            bpf.map_update_elem(self.fd, k, v, flags)
        return len(raw_k)


def _map_error(exc: OSError, name: str, what: str) -> MapError:
    err = MapError(f"map '{name}': {what} failed: {exc.strerror or exc} (errno {exc.errno})")
    err.errno = exc.errno  # type: ignore[attr-defined]
    return err
