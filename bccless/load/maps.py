"""Creating an object's maps in the kernel, in libbpf's order and with its rules.

For each map in object order (core-semantics.md §1.12, §1.16): reuse a
compatible pinned map or create it (an inner-map template first for
map-in-map, passed as ``inner_map_fd`` and closed again), with the BTF
key/value type ids when BTF was uploaded (retried without them if the
kernel refuses, as libbpf does); then populate global-data maps from their
image, freeze the read-only ones and mmap the mmapable ones so Python sees
live values; pin by name.  Map-in-map initial slots are filled once every
map exists; prog-array slots wait for the programs (:func:`fill_slots`).
"""
from __future__ import annotations

import os
from errno import E2BIG, EINVAL, ENOENT, EPERM
from typing import Callable, Dict, List, Optional

from ..errors import LoadError
from . import LazyLogger
from .plan import LoadPlan, MapInfo

log = LazyLogger(__name__)

# uapi values used here (bccless.sys.bpf_consts has them all; spelled out to
# keep that module off the warm path)
PERF_EVENT_ARRAY, RINGBUF, USER_RINGBUF = 4, 27, 31
PROG_ARRAY, ARRAY_OF_MAPS, HASH_OF_MAPS = 3, 12, 13
F_NUMA_NODE, F_RDONLY_PROG = 0x4, 0x80
# Map types created without BTF key/value ids, as libbpf does (their values
# are fds or kernel objects the kernel has no BTF check for): perf event
# array, stack trace, cgroup array, array/hash of maps, devmap, sockmap,
# cpumap, xskmap, sockhash, queue, stack, devmap hash, arena.
_NO_BTF_TYPES = frozenset({4, 7, 8, 12, 13, 14, 15, 16, 17, 18, 22, 23, 25, 33})
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class CreatedMaps:
    """The fds of one object's maps (index = plan map index) and their mmaps."""

    def __init__(self) -> None:
        self.fds: List[int] = []
        self.mmaps: Dict[int, object] = {}

    def close(self) -> None:
        for m in self.mmaps.values():
            m.close()
        self.mmaps.clear()
        for fd in self.fds:
            if fd >= 0:
                os.close(fd)
        self.fds.clear()


def _max_entries(m: MapInfo) -> int:
    """libbpf's adjustments: perf arrays default to one slot per possible CPU,
    ring buffers are rounded up to a power-of-two number of pages."""
    if m.map_type == PERF_EVENT_ARRAY and not m.max_entries:
        from ..sys.perf import possible_cpus

        return len(possible_cpus())
    if m.map_type in (RINGBUF, USER_RINGBUF) and m.max_entries:
        size = max(m.max_entries, _PAGE)
        pages = -(-size // _PAGE)
        return _PAGE * (1 << (pages - 1).bit_length())
    return m.max_entries


def _explain(err: int, m: MapInfo, max_entries: int) -> str:
    if err == EPERM:
        return ("permission denied: loading BPF needs root or CAP_BPF (plus CAP_PERFMON for "
                "tracing), and RLIMIT_MEMLOCK on kernels before 5.11")
    if err == E2BIG:
        return (f"too big for the kernel: max_entries {max_entries}, key_size {m.key_size}, "
                f"value_size {m.value_size}")
    if err == EINVAL:
        return (f"the kernel rejected the attributes: type {m.map_type}, key_size "
                f"{m.key_size}, value_size {m.value_size}, max_entries {max_entries}, "
                f"flags {m.flags:#x}, map_extra {m.map_extra}"
                + (" (is this map type or flag supported by this kernel?)"))
    return os.strerror(err)


def _create(m: MapInfo, btf_fd: int, inner_fd: int = 0) -> int:
    from ..sys import bpf

    max_entries = _max_entries(m)
    kw = dict(flags=m.flags & ~F_NUMA_NODE, name=m.name, inner_map_fd=inner_fd,
              map_extra=m.map_extra,
              numa_node=m.numa_node if m.flags & F_NUMA_NODE else None)
    with_btf = (btf_fd >= 0 and bool(m.key_type_id or m.value_type_id)
                and m.map_type not in _NO_BTF_TYPES)
    if with_btf:
        kw.update(btf_fd=btf_fd, btf_key_type_id=m.key_type_id,
                  btf_value_type_id=m.value_type_id)
    bumped = False
    while True:
        try:
            return bpf.map_create(m.map_type, m.key_size, m.value_size, max_entries, **kw)
        except OSError as exc:
            err = exc.errno
        if with_btf:
            log.warning("Error in bpf_create_map_xattr(%s):%s(-%d). Retrying without BTF.",
                        m.name, os.strerror(err), err)     # libbpf's wording
            with_btf = False
            for k in ("btf_fd", "btf_key_type_id", "btf_value_type_id"):
                kw.pop(k)
            continue
        if err == EPERM and not bumped:
            from ..sys.features import bump_memlock_rlimit

            bumped = True
            if bump_memlock_rlimit():
                continue
        raise LoadError(f"map '{m.name}': failed to create: {_explain(err, m, max_entries)} "
                        f"(errno {err})")


def _compatible(info: dict, m: MapInfo) -> Optional[str]:
    """None when a pinned map can stand in for ``m``, else what differs."""
    want = {"type": m.map_type, "key_size": m.key_size, "value_size": m.value_size,
            "max_entries": _max_entries(m), "flags": m.flags, "map_extra": m.map_extra}
    diff = [f"{k} {info[k]} != {v}" for k, v in want.items() if info.get(k) != v]
    return ", ".join(diff) or None


def _open_pinned(m: MapInfo, path: str) -> int:
    from ..sys import bpf

    try:
        fd = bpf.obj_get(path)
    except OSError as exc:
        if exc.errno == ENOENT:
            return -1
        raise LoadError(f"map '{m.name}': cannot open pinned map {path}: "
                        f"{exc.strerror}") from None
    try:
        why = _compatible(bpf.obj_get_info_by_fd(fd, "map"), m)
    except OSError as exc:
        os.close(fd)
        raise LoadError(f"map '{m.name}': {path} is not a BPF map: {exc.strerror}") from None
    if why:
        os.close(fd)
        raise LoadError(f"map '{m.name}': couldn't reuse pinned map at '{path}': parameter "
                        f"mismatch ({why})")
    log.debug("map '%s': reused pinned map at '%s'", m.name, path)
    return fd


def _populate(m: MapInfo, fd: int, image: bytes, idx: int, out: CreatedMaps) -> None:
    """Write a global-data map's image, freeze read-only ones, mmap mmapable ones."""
    import mmap

    from ..sys import bpf

    try:
        bpf.map_update_elem(fd, b"\0\0\0\0", image)
        if m.flags & F_RDONLY_PROG:
            bpf.map_freeze(fd)
    except OSError as exc:
        raise LoadError(f"map '{m.name}': failed to initialize {m.sec_name} contents: "
                        f"{exc.strerror} (errno {exc.errno})") from None
    if m.mmapable:
        prot = mmap.PROT_READ if m.flags & F_RDONLY_PROG else mmap.PROT_READ | mmap.PROT_WRITE
        try:
            out.mmaps[idx] = mmap.mmap(fd, m.value_size, mmap.MAP_SHARED, prot)
        except OSError as exc:
            raise LoadError(f"map '{m.name}': failed to mmap {m.sec_name}: "
                            f"{exc.strerror}") from None


def create_maps(plan: LoadPlan, images: Dict[int, bytes], btf_fd: int,
                pin_root: str) -> CreatedMaps:
    """Create (or reuse pinned) every map of ``plan``; ``images`` are the current
    initial values of global-data maps by map index (user edits included)."""
    from ..sys import bpf

    out = CreatedMaps()
    try:
        for idx, m in enumerate(plan.maps):
            fd, path = -1, ""
            if m.pinning:
                path = os.path.join(pin_root, m.name)
                fd = _open_pinned(m, path)
                if fd >= 0:
                    out.fds.append(fd)
                    continue
            inner_fd = 0
            if m.inner is not None:
                inner_fd = _create(m.inner, btf_fd)
            try:
                fd = _create(m, btf_fd, inner_fd)
            finally:
                if inner_fd:
                    os.close(inner_fd)
            out.fds.append(fd)
            if m.internal:
                _populate(m, fd, images.get(idx) or m.data or bytes(m.value_size), idx, out)
            if path:
                try:
                    bpf.obj_pin(fd, path)
                except OSError as exc:
                    raise LoadError(f"map '{m.name}': failed to pin at '{path}': "
                                    f"{exc.strerror}") from None
        fill_slots(plan, out.fds, lambda name: out.fds[plan.map_index(name)], maps_only=True)
    except BaseException:
        out.close()
        raise
    return out


def fill_slots(plan: LoadPlan, fds: List[int], target_fd: Callable[[str], int], *,
               maps_only: bool) -> None:
    """Write the initial slots of map-in-maps (``maps_only``) or of prog arrays.

    ``target_fd(name)`` gives the fd of the map or program a slot names.
    """
    from ..sys import bpf

    for idx, m in enumerate(plan.maps):
        if not m.init_slots or (m.map_type == PROG_ARRAY) == maps_only:
            continue
        for slot, name in sorted(m.init_slots.items()):
            try:
                fd = target_fd(name)
            except KeyError:
                raise LoadError(f"map '{m.name}': slot {slot} refers to '{name}', which "
                                f"was not created or loaded") from None
            try:
                bpf.map_update_elem(fds[idx], slot.to_bytes(4, "little"),
                                    fd.to_bytes(4, "little"))
            except OSError as exc:
                raise LoadError(f"map '{m.name}': failed to initialize slot [{slot}] to "
                                f"'{name}': {exc.strerror} (errno {exc.errno})") from None
