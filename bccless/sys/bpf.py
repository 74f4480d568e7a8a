"""``bpf(2)`` commands: maps, programs, BTF, pinning; links and info re-exported.

Conventions shared by every function here:

* keys, values and blobs are ``bytes`` (any buffer works as input);
* every fd returned is a plain int owned by the caller and has O_CLOEXEC
  (the kernel sets it on all bpf fds; perf fds get PERF_FLAG_FD_CLOEXEC);
* failures raise ``OSError`` carrying the errno; "not found" outcomes that are
  part of normal iteration (ENOENT on lookup, next key, delete) return
  ``None``/``False`` instead, because raising costs more than the syscall.

Map element functions are the hot path of BCC tools (dumping a 10k-entry hash
from Python), so they allocate one attr and one value buffer per call and go
straight to the fixed-prototype syscall pointer.
"""
from __future__ import annotations

import os
from errno import EAGAIN, ENOENT, ENOSPC

from bccless.sys import bpf_consts as C
from bccless.sys.bpf_call import _sys_bpf, bpf_error, good_fd, obj_name, sys_bpf, sys_bpf_fd
from bccless.sys.bpf_info import get_fd_by_id, get_next_id, obj_get_info_by_fd
from bccless.sys.bpf_link import (
    enable_stats, iter_create, link_create, link_detach, prog_attach, prog_bind_map,
    prog_detach, prog_test_run, raw_tracepoint_open,
)
from bccless.sys.ffi import NR_BPF, ffi

__all__ = [
    "ProgLoadError", "BTFLoadError", "map_create", "map_lookup_elem", "map_update_elem",
    "map_delete_elem", "map_get_next_key", "map_lookup_and_delete_elem", "map_freeze",
    "map_lookup_batch", "map_lookup_and_delete_batch", "map_delete_batch", "map_update_batch",
    "prog_load", "btf_load", "obj_pin", "obj_get", "link_create", "link_detach",
    "raw_tracepoint_open", "prog_attach", "prog_detach", "prog_test_run", "prog_bind_map",
    "iter_create", "obj_get_info_by_fd", "get_next_id", "get_fd_by_id", "enable_stats",
]

_new = ffi.new
_buf = ffi.from_buffer
_unpack = ffi.unpack
_NULL = ffi.NULL
_ELEM_ATTR = "struct bpf_map_elem_attr *"
_ELEM_SIZE = ffi.sizeof("struct bpf_map_elem_attr")

# Module-level copies: a global lookup is cheaper than an attribute on the hot path.
_MAP_CREATE, _LOOKUP, _UPDATE = C.BPF_MAP_CREATE, C.BPF_MAP_LOOKUP_ELEM, C.BPF_MAP_UPDATE_ELEM
_DELETE, _NEXT_KEY = C.BPF_MAP_DELETE_ELEM, C.BPF_MAP_GET_NEXT_KEY
_LOOKUP_AND_DELETE, _FREEZE = C.BPF_MAP_LOOKUP_AND_DELETE_ELEM, C.BPF_MAP_FREEZE

# Verifier/BTF log sizing, as libbpf: start small enough to be cheap, grow on
# ENOSPC so that the log handed to the user is never truncated.
LOG_START_SIZE = 64 * 1024
LOG_MAX_SIZE = 16 * 1024 * 1024
_LOAD_ATTEMPTS = 5  # EAGAIN retries of BPF_PROG_LOAD (libbpf's PROG_LOAD_ATTEMPTS)


class ProgLoadError(OSError):
    """BPF_PROG_LOAD failed; ``log`` is the complete verifier log (may be '')."""

    def __init__(self, err: int, strerror: str, *, log: str, name: str = "") -> None:
        super().__init__(err, strerror)
        self.log = log
        self.prog_name = name

    def __str__(self) -> str:
        who = f"prog '{self.prog_name}': " if self.prog_name else ""
        return f"{who}BPF program load failed: {self.strerror} (errno {self.errno})"


class BTFLoadError(OSError):
    """BPF_BTF_LOAD failed; ``log`` is the kernel's BTF verifier log (may be '')."""

    def __init__(self, err: int, strerror: str, *, log: str) -> None:
        super().__init__(err, strerror)
        self.log = log

    def __str__(self) -> str:
        last = self.log.strip().splitlines()[-1] if self.log.strip() else ""
        return f"BTF load failed: {self.strerror} (errno {self.errno})" + (
            f": {last}" if last else "")


# ---------------------------------------------------------------------------
# maps

def map_create(map_type: int, key_size: int, value_size: int, max_entries: int, *,
               flags: int = 0, name: str = "", inner_map_fd: int = 0, btf_fd: int = 0,
               btf_key_type_id: int = 0, btf_value_type_id: int = 0, map_extra: int = 0,
               numa_node: int | None = None, btf_vmlinux_value_type_id: int = 0) -> int:
    """BPF_MAP_CREATE; returns the new map fd.  ``numa_node`` sets BPF_F_NUMA_NODE."""
    a = _new("struct bpf_map_create_attr *")
    a.map_type = map_type
    a.key_size = key_size
    a.value_size = value_size
    a.max_entries = max_entries
    a.map_flags = flags
    if numa_node is not None:
        a.map_flags = flags | C.BPF_F_NUMA_NODE
        a.numa_node = numa_node
    if name:
        a.map_name = obj_name(name)
    a.inner_map_fd = inner_map_fd
    a.btf_fd = btf_fd
    a.btf_key_type_id = btf_key_type_id
    a.btf_value_type_id = btf_value_type_id
    a.btf_vmlinux_value_type_id = btf_vmlinux_value_type_id
    a.map_extra = map_extra
    return sys_bpf_fd(_MAP_CREATE, a, ffi.sizeof(a[0]))


def map_lookup_elem(fd: int, key: bytes, value_size: int, flags: int = 0) -> bytes | None:
    """BPF_MAP_LOOKUP_ELEM; None when the key is absent (ENOENT)."""
    a = _new(_ELEM_ATTR)
    v = _new("char[]", value_size)
    a.map_fd = fd
    a.key = _buf(key) if key else _NULL
    a.value = v
    a.flags = flags
    if _sys_bpf(NR_BPF, _LOOKUP, a, _ELEM_SIZE) < 0:
        err = ffi.errno
        if err == ENOENT:
            return None
        raise bpf_error(err, _LOOKUP)
    return _unpack(v, value_size)


def map_update_elem(fd: int, key: bytes, value: bytes, flags: int = 0) -> None:
    """BPF_MAP_UPDATE_ELEM with BPF_ANY/NOEXIST/EXIST/F_LOCK ``flags``."""
    a = _new(_ELEM_ATTR)
    a.map_fd = fd
    a.key = _buf(key) if key else _NULL
    a.value = _buf(value)
    a.flags = flags
    if _sys_bpf(NR_BPF, _UPDATE, a, _ELEM_SIZE) < 0:
        raise bpf_error(ffi.errno, _UPDATE)


def map_delete_elem(fd: int, key: bytes) -> bool:
    """BPF_MAP_DELETE_ELEM; False when the key was absent (ENOENT)."""
    a = _new(_ELEM_ATTR)
    a.map_fd = fd
    a.key = _buf(key)
    if _sys_bpf(NR_BPF, _DELETE, a, _ELEM_SIZE) < 0:
        err = ffi.errno
        if err == ENOENT:
            return False
        raise bpf_error(err, _DELETE)
    return True


def map_get_next_key(fd: int, key: bytes | None, key_size: int) -> bytes | None:
    """BPF_MAP_GET_NEXT_KEY; ``key=None`` gives the first key, None means the end."""
    a = _new(_ELEM_ATTR)
    nk = _new("char[]", key_size)
    a.map_fd = fd
    a.key = _NULL if key is None else _buf(key)
    a.value = nk
    if _sys_bpf(NR_BPF, _NEXT_KEY, a, _ELEM_SIZE) < 0:
        err = ffi.errno
        if err == ENOENT:
            return None
        raise bpf_error(err, _NEXT_KEY)
    return _unpack(nk, key_size)


def map_lookup_and_delete_elem(fd: int, key: bytes | None, value_size: int,
                               flags: int = 0) -> bytes | None:
    """BPF_MAP_LOOKUP_AND_DELETE_ELEM; ``key=None`` pops a queue/stack; None if empty."""
    a = _new(_ELEM_ATTR)
    v = _new("char[]", value_size)
    a.map_fd = fd
    a.key = _buf(key) if key else _NULL
    a.value = v
    a.flags = flags
    if _sys_bpf(NR_BPF, _LOOKUP_AND_DELETE, a, _ELEM_SIZE) < 0:
        err = ffi.errno
        if err == ENOENT:
            return None
        raise bpf_error(err, _LOOKUP_AND_DELETE)
    return _unpack(v, value_size)


def map_freeze(fd: int) -> None:
    """BPF_MAP_FREEZE: no more writes from user space (programs may still write)."""
    a = _new(_ELEM_ATTR)
    a.map_fd = fd
    sys_bpf(_FREEZE, a, _ELEM_SIZE)


def _split(blob: bytes, size: int, n: int) -> list[bytes]:
    return [blob[i:i + size] for i in range(0, size * n, size)] if size else [b""] * n


def _lookup_batch(cmd: int, fd: int, key_size: int, value_size: int, count: int,
                  in_batch: bytes | None
                  ) -> tuple[list[bytes], list[bytes], bytes | None]:
    a = _new("struct bpf_map_batch_attr *")
    keys = _new("char[]", key_size * count)
    values = _new("char[]", value_size * count)
    # Hash maps use a u32 bucket index as the token; other maps use a key.
    token_size = max(key_size, 4)
    out = _new("char[]", token_size)
    a.in_batch = _NULL if in_batch is None else _buf(in_batch)
    a.out_batch = out
    a.keys = keys
    a.values = values
    a.count = count
    a.map_fd = fd
    done = False
    if _sys_bpf(NR_BPF, cmd, a, ffi.sizeof(a[0])) < 0:
        err = ffi.errno
        if err != ENOENT:
            raise bpf_error(err, cmd)
        done = True  # ENOENT: the last (possibly partial, possibly empty) batch
    n = a.count
    return (_split(_unpack(keys, key_size * n), key_size, n),
            _split(_unpack(values, value_size * n), value_size, n),
            None if done else _unpack(out, token_size))


def map_lookup_batch(fd: int, key_size: int, value_size: int, count: int,
                     in_batch: bytes | None
                     ) -> tuple[list[bytes], list[bytes], bytes | None]:
    """BPF_MAP_LOOKUP_BATCH of up to ``count`` entries after token ``in_batch``.

    Returns (keys, values, next token); the token is None once the map is
    exhausted.  For per-CPU maps ``value_size`` is the full per-CPU value
    (rounded size x possible CPUs).  ENOSPC means a hash bucket holds more than
    ``count`` entries: retry with a larger count.
    """
    return _lookup_batch(C.BPF_MAP_LOOKUP_BATCH, fd, key_size, value_size, count, in_batch)


def map_lookup_and_delete_batch(fd: int, key_size: int, value_size: int, count: int,
                                in_batch: bytes | None
                                ) -> tuple[list[bytes], list[bytes], bytes | None]:
    """BPF_MAP_LOOKUP_AND_DELETE_BATCH; same contract as :func:`map_lookup_batch`."""
    return _lookup_batch(C.BPF_MAP_LOOKUP_AND_DELETE_BATCH, fd, key_size, value_size, count, in_batch)


def map_delete_batch(fd: int, keys: list[bytes], key_size: int) -> int:
    """BPF_MAP_DELETE_BATCH; returns how many keys were deleted."""
    blob = b"".join(keys)
    if len(blob) != key_size * len(keys):
        raise ValueError(f"map_delete_batch: every key must be {key_size} bytes")
    a = _new("struct bpf_map_batch_attr *")
    a.keys = _buf(blob)
    a.count = len(keys)
    a.map_fd = fd
    sys_bpf(C.BPF_MAP_DELETE_BATCH, a, ffi.sizeof(a[0]))
    return a.count


def map_update_batch(fd: int, keys: list[bytes], values: list[bytes], key_size: int,
                     value_size: int, flags: int = 0) -> int:
    """BPF_MAP_UPDATE_BATCH (``flags`` are per-element update flags); returns the count."""
    kblob = b"".join(keys)
    vblob = b"".join(values)
    if len(keys) != len(values) or len(kblob) != key_size * len(keys) \
            or len(vblob) != value_size * len(values):
        raise ValueError(f"map_update_batch: need equal numbers of {key_size}-byte keys "
                         f"and {value_size}-byte values")
    a = _new("struct bpf_map_batch_attr *")
    a.keys = _buf(kblob)
    a.values = _buf(vblob)
    a.count = len(keys)
    a.map_fd = fd
    a.elem_flags = flags
    sys_bpf(C.BPF_MAP_UPDATE_BATCH, a, ffi.sizeof(a[0]))
    return a.count


# ---------------------------------------------------------------------------
# programs and BTF

def _log_text(buf) -> str:
    return ffi.string(buf).decode("utf-8", "replace") if buf is not None else ""


def prog_load(prog_type: int, insns: bytes, license: str, *, name: str = "",
              expected_attach_type: int = 0, prog_btf_fd: int = 0, func_info: bytes = b"",
              func_info_rec_size: int = 8, line_info: bytes = b"", line_info_rec_size: int = 16,
              attach_btf_id: int = 0, attach_btf_obj_fd: int = 0, attach_prog_fd: int = 0,
              prog_flags: int = 0, kern_version: int = 0, fd_array: list[int] | None = None,
              log_level: int = 0, log_size: int = 0) -> tuple[int, str]:
    """BPF_PROG_LOAD; returns (fd, log).

    Without ``log_level`` the first attempt runs without a log (fast path); a
    failure is retried with log level 1 so the error carries the verifier's
    reasons.  A truncated log (ENOSPC) is retried with a larger buffer, up to
    16 MiB.  ``attach_btf_obj_fd`` and ``attach_prog_fd`` share one attr slot.
    """
    if len(insns) % 8:
        raise ValueError(f"prog_load: instruction bytes ({len(insns)}) not a multiple of 8")
    if attach_btf_obj_fd and attach_prog_fd:
        raise ValueError("prog_load: attach_btf_obj_fd and attach_prog_fd are exclusive")
    a = _new("struct bpf_prog_load_attr *")
    keep = [_buf(insns), _new("char[]", license.encode())]
    a.prog_type = prog_type
    a.insn_cnt = len(insns) // 8
    a.insns = keep[0]
    a.license = keep[1]
    a.kern_version = kern_version
    a.prog_flags = prog_flags
    if name:
        a.prog_name = obj_name(name)
    a.expected_attach_type = expected_attach_type
    a.prog_btf_fd = prog_btf_fd
    if func_info:
        keep.append(_buf(func_info))
        a.func_info = keep[-1]
        a.func_info_rec_size = func_info_rec_size
        a.func_info_cnt = len(func_info) // func_info_rec_size
    if line_info:
        keep.append(_buf(line_info))
        a.line_info = keep[-1]
        a.line_info_rec_size = line_info_rec_size
        a.line_info_cnt = len(line_info) // line_info_rec_size
    a.attach_btf_id = attach_btf_id
    a.attach_prog_fd = attach_prog_fd or attach_btf_obj_fd
    if fd_array:
        keep.append(_new("int[]", fd_array))
        a.fd_array = keep[-1]
    size = ffi.sizeof(a[0])

    log = None
    if log_level:
        log = _new("char[]", log_size or LOG_START_SIZE)
        a.log_level, a.log_size, a.log_buf = log_level, len(log), log
    while True:
        for _ in range(_LOAD_ATTEMPTS):
            fd = _sys_bpf(NR_BPF, C.BPF_PROG_LOAD, a, size)
            if fd >= 0:
                return good_fd(fd), _log_text(log)
            err = ffi.errno
            if err != EAGAIN:
                break
        if log is None:
            log = _new("char[]", LOG_START_SIZE)
            a.log_level, a.log_size, a.log_buf = 1, len(log), log
        elif err == ENOSPC and len(log) < LOG_MAX_SIZE:
            want = max(len(log) * 4, a.log_true_size)
            log = _new("char[]", min(want, LOG_MAX_SIZE))
            a.log_size, a.log_buf = len(log), log
        else:
            raise ProgLoadError(err, bpf_error(err, C.BPF_PROG_LOAD).strerror,
                                log=_log_text(log), name=name)


def btf_load(data: bytes, *, log_level: int = 0) -> int:
    """BPF_BTF_LOAD of a raw BTF blob; returns the BTF fd.

    Like :func:`prog_load`, a failure is retried with a (growing) log, and the
    raised :class:`BTFLoadError` carries it as ``.log``.
    """
    a = _new("struct bpf_btf_load_attr *")
    blob = _buf(data)
    a.btf = blob
    a.btf_size = len(data)
    size = ffi.sizeof(a[0])
    log = None
    if log_level:
        log = _new("char[]", LOG_START_SIZE)
        a.btf_log_level, a.btf_log_size, a.btf_log_buf = log_level, len(log), log
    while True:
        fd = _sys_bpf(NR_BPF, C.BPF_BTF_LOAD, a, size)
        if fd >= 0:
            return good_fd(fd)
        err = ffi.errno
        if log is None:
            log = _new("char[]", LOG_START_SIZE)
            a.btf_log_level, a.btf_log_size, a.btf_log_buf = 1, len(log), log
        elif err == ENOSPC and len(log) < LOG_MAX_SIZE:
            want = max(len(log) * 4, a.btf_log_true_size)
            log = _new("char[]", min(want, LOG_MAX_SIZE))
            a.btf_log_size, a.btf_log_buf = len(log), log
        else:
            raise BTFLoadError(err, bpf_error(err, C.BPF_BTF_LOAD).strerror, log=_log_text(log))


# ---------------------------------------------------------------------------
# bpffs

def obj_pin(fd: int, path: str) -> None:
    """BPF_OBJ_PIN ``fd`` (map, prog, link or BTF) at ``path`` on a bpffs."""
    a = _new("struct bpf_obj_attr *")
    p = _new("char[]", os.fsencode(path))
    a.pathname = p
    a.bpf_fd = fd
    sys_bpf(C.BPF_OBJ_PIN, a, ffi.sizeof(a[0]), where=path)


def obj_get(path: str, file_flags: int = 0) -> int:
    """BPF_OBJ_GET: a new fd for the object pinned at ``path``."""
    a = _new("struct bpf_obj_attr *")
    p = _new("char[]", os.fsencode(path))
    a.pathname = p
    a.file_flags = file_flags
    return sys_bpf_fd(C.BPF_OBJ_GET, a, ffi.sizeof(a[0]), where=path)
