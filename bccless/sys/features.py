"""Kernel feature probes: try the thing, remember the answer for this process.

Every probe loads a tiny program, creates a tiny map, uploads a tiny BTF blob
or looks for a sysfs/tracefs file, never guesses from the kernel version or
/proc/kallsyms (a symbol being present does not mean fentry works; see
this-machine.md).  Results are :class:`Probe` objects: truthy when the feature
works, with the errno and a one-line reason otherwise, so ``bccless doctor``
can say *why* something is missing.  Probes follow libbpf's features.c and
libbpf_probes.c (same programs, same expected errors).
"""
import os
import struct
from errno import EINVAL
from functools import lru_cache

from bccless.sys import bpf
from bccless.sys import bpf_consts as C
from bccless.sys.features_attach import (
    fentry, kprobe_events_file, kprobe_pmu, lsm, perf_link, syscall_wrapper,
    uprobe_events_file, uprobe_pmu,
)
from bccless.sys.features_btf import (
    btf, btf_datasec, btf_decl_tag, btf_enum64, btf_features, btf_float, btf_func,
    btf_global_func, btf_qmark_datasec, btf_type_tag,
)
from bccless.sys.probing import (
    ENOTSUPP, RET0, YES, Probe, btf_blob, btf_int, btf_type, call_exit, failed, insn, try_prog,
)

__all__ = [
    "Probe", "has_prog_type", "has_map_type", "has_helper", "ringbuf", "batch_ops",
    "prog_name", "global_data", "array_mmap", "exp_attach_type", "probe_read_kernel",
    "bpf_cookie", "memcg_account", "bump_memlock_rlimit", "perf_link", "kprobe_pmu",
    "uprobe_pmu", "kprobe_events_file", "uprobe_events_file", "fentry", "lsm",
    "syscall_wrapper", "btf", "btf_func", "btf_global_func", "btf_datasec",
    "btf_qmark_datasec", "btf_float", "btf_decl_tag", "btf_type_tag", "btf_enum64",
    "btf_features",
]


# ---------------------------------------------------------------------------
# program and map types, helpers

# Program types that only load with a particular expected_attach_type.
_EXPECTED_ATTACH = {
    C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR: C.BPF_CGROUP_INET4_CONNECT,
    C.BPF_PROG_TYPE_CGROUP_SOCKOPT: C.BPF_CGROUP_GETSOCKOPT,
    C.BPF_PROG_TYPE_SK_LOOKUP: C.BPF_SK_LOOKUP,
    C.BPF_PROG_TYPE_LIRC_MODE2: C.BPF_LIRC_MODE2,
    C.BPF_PROG_TYPE_NETFILTER: C.BPF_NETFILTER,
}


def _kernel_version_code() -> int:
    """KERNEL_VERSION(major, minor, patch) of the running kernel, patch capped at 255."""
    parts = (os.uname().release.split("-")[0].split(".") + ["0", "0"])[:3]
    nums = [int("".join(ch for ch in p if ch.isdigit()) or 0) for p in parts]
    return (nums[0] << 16) | (nums[1] << 8) | min(nums[2], 255)


def _load_expecting(prog_type: int, insns: bytes, errno: int, message: str, **kw) -> Probe:
    """A load that must fail with ``errno`` and ``message`` in the log to prove support."""
    try:
        fd, _ = bpf.prog_load(prog_type, insns, "GPL", **kw)
    except bpf.ProgLoadError as exc:
        if exc.errno == errno and message in exc.log:
            return YES
        return Probe(False, exc.errno, f"program type {prog_type}: {exc.strerror}")
    os.close(fd)
    return Probe(False, 0, f"program type {prog_type}: unexpectedly loaded")


@lru_cache(maxsize=None)
def has_prog_type(prog_type: int) -> Probe:
    """Whether the verifier accepts programs of ``prog_type`` (libbpf's probe)."""
    name = C.const_name("BPF_PROG_TYPE_", prog_type)
    if prog_type == C.BPF_PROG_TYPE_TRACING:
        # fentry may be refused (no trampolines) while tp_btf works: either proves the type.
        probe = _load_expecting(prog_type, RET0, EINVAL, "attach_btf_id 1 is not a function",
                                expected_attach_type=C.BPF_TRACE_FENTRY, attach_btf_id=1)
        return probe or _load_expecting(prog_type, RET0, EINVAL,
                                        "attach_btf_id 1 is not a typedef",
                                        expected_attach_type=C.BPF_TRACE_RAW_TP, attach_btf_id=1)
    if prog_type == C.BPF_PROG_TYPE_LSM:
        return _load_expecting(prog_type, RET0, EINVAL, "attach_btf_id 1 is not a function",
                               expected_attach_type=C.BPF_LSM_MAC, attach_btf_id=1)
    if prog_type == C.BPF_PROG_TYPE_EXT:
        return _load_expecting(prog_type, RET0, EINVAL, "Cannot replace kernel functions",
                               attach_btf_id=1)
    if prog_type == C.BPF_PROG_TYPE_STRUCT_OPS:
        try:
            fd, _ = bpf.prog_load(prog_type, RET0, "GPL")
        except OSError as exc:
            return YES if exc.errno == ENOTSUPP else failed(exc, name)
        os.close(fd)
        return YES
    kw = {}
    if prog_type in _EXPECTED_ATTACH:
        kw["expected_attach_type"] = _EXPECTED_ATTACH[prog_type]
    elif prog_type == C.BPF_PROG_TYPE_KPROBE:
        kw["kern_version"] = _kernel_version_code()
    elif prog_type == C.BPF_PROG_TYPE_SYSCALL:
        kw["prog_flags"] = C.BPF_F_SLEEPABLE
    return try_prog(prog_type, RET0, name, **kw)


@lru_cache(maxsize=None)
def has_helper(prog_type: int, helper_id: int) -> Probe:
    """Whether programs of ``prog_type`` may call helper ``helper_id``.

    The verifier names an unknown or forbidden helper in specific words; any
    other verdict (even a rejection about arguments) means the call is allowed.
    """
    kw = {"expected_attach_type": _EXPECTED_ATTACH.get(prog_type, 0)}
    if prog_type == C.BPF_PROG_TYPE_KPROBE:
        kw["kern_version"] = _kernel_version_code()
    try:
        fd, _ = bpf.prog_load(prog_type, call_exit(helper_id), "GPL", **kw)
    except bpf.ProgLoadError as exc:
        for words in ("invalid func ", "unknown func ", "program of this type cannot use helper "):
            if words in exc.log:
                return Probe(False, exc.errno, f"helper {helper_id}: "
                             + next(ln for ln in exc.log.splitlines() if words in ln))
        if not exc.log:
            return failed(exc, f"program type {prog_type}")
        return YES
    os.close(fd)
    return YES


def _map_probe_args(map_type: int) -> dict:
    key, value, entries, flags = 4, 4, 1, 0
    if map_type == C.BPF_MAP_TYPE_STACK_TRACE:
        value = 8
    elif map_type == C.BPF_MAP_TYPE_LPM_TRIE:
        key, value, flags = 8, 8, C.BPF_F_NO_PREALLOC
    elif map_type in (C.BPF_MAP_TYPE_CGROUP_STORAGE, C.BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE):
        key, value, entries = 16, 8, 0   # struct bpf_cgroup_storage_key, padded
    elif map_type in (C.BPF_MAP_TYPE_QUEUE, C.BPF_MAP_TYPE_STACK, C.BPF_MAP_TYPE_BLOOM_FILTER):
        key = 0
    elif map_type in (C.BPF_MAP_TYPE_RINGBUF, C.BPF_MAP_TYPE_USER_RINGBUF):
        key, value, entries = 0, 0, os.sysconf("SC_PAGE_SIZE")
    elif map_type == C.BPF_MAP_TYPE_ARENA:
        key, value, flags = 0, 0, C.BPF_F_MMAPABLE
    return {"key_size": key, "value_size": value, "max_entries": entries, "flags": flags}


_LOCAL_STORAGE = frozenset({C.BPF_MAP_TYPE_SK_STORAGE, C.BPF_MAP_TYPE_INODE_STORAGE,
                            C.BPF_MAP_TYPE_TASK_STORAGE, C.BPF_MAP_TYPE_CGRP_STORAGE})


@lru_cache(maxsize=None)
def has_map_type(map_type: int) -> Probe:
    """Whether BPF_MAP_CREATE knows ``map_type`` (libbpf's minimal map per type)."""
    name = C.const_name("BPF_MAP_TYPE_", map_type)
    args = _map_probe_args(map_type)
    extra = {}
    closing = []
    try:
        if map_type in (C.BPF_MAP_TYPE_ARRAY_OF_MAPS, C.BPF_MAP_TYPE_HASH_OF_MAPS):
            extra["inner_map_fd"] = bpf.map_create(C.BPF_MAP_TYPE_HASH, 4, 4, 1)
            closing.append(extra["inner_map_fd"])
        elif map_type in _LOCAL_STORAGE:
            # int key, struct { int } value: local storage maps require BTF
            types = (btf_int(1) + btf_type(5, 4, 1, 4) + struct.pack("<III", 9, 1, 0))
            extra["btf_fd"] = bpf.btf_load(btf_blob(types, b"\0int\0val\0cnt\0"))
            closing.append(extra["btf_fd"])
            extra.update(btf_key_type_id=1, btf_value_type_id=2)
            args.update(value_size=4, max_entries=0, flags=C.BPF_F_NO_PREALLOC)
        elif map_type == C.BPF_MAP_TYPE_STRUCT_OPS:
            extra["btf_vmlinux_value_type_id"] = 1
        fd = bpf.map_create(map_type, args["key_size"], args["value_size"], args["max_entries"],
                            flags=args["flags"], **extra)
    except OSError as exc:
        if map_type == C.BPF_MAP_TYPE_STRUCT_OPS and exc.errno == ENOTSUPP:
            return YES
        return failed(exc, name)
    finally:
        for fd_ in closing:
            os.close(fd_)
    os.close(fd)
    return YES


@lru_cache(maxsize=None)
def ringbuf() -> Probe:
    """BPF_MAP_TYPE_RINGBUF (5.8)."""
    return has_map_type(C.BPF_MAP_TYPE_RINGBUF)


@lru_cache(maxsize=None)
def batch_ops() -> Probe:
    """BPF_MAP_*_BATCH commands (5.6): a lookup batch on an empty hash."""
    try:
        fd = bpf.map_create(C.BPF_MAP_TYPE_HASH, 4, 4, 1)
    except OSError as exc:
        return failed(exc, "hash map")
    try:
        bpf.map_lookup_batch(fd, 4, 4, 1, None)
    except OSError as exc:
        return failed(exc, "BPF_MAP_LOOKUP_BATCH")
    finally:
        os.close(fd)
    return YES


# ---------------------------------------------------------------------------
# loader features (libbpf's FEAT_*)

@lru_cache(maxsize=None)
def prog_name() -> Probe:
    """Programs may carry a name (4.15)."""
    return try_prog(C.BPF_PROG_TYPE_SOCKET_FILTER, RET0, "named program", name="bccless_probe")


@lru_cache(maxsize=None)
def global_data() -> Probe:
    """Direct map-value addressing, i.e. .data/.bss/.rodata (5.2)."""
    try:
        map_fd = bpf.map_create(C.BPF_MAP_TYPE_ARRAY, 4, 32, 1)
    except OSError as exc:
        return failed(exc, "array map")
    try:
        insns = (insn(0x18, dst=1, src=C.BPF_PSEUDO_MAP_VALUE, imm=map_fd) + insn(0, imm=16)
                 + insn(0x7a, dst=1, imm=42)     # *(u64 *)(r1 + 0) = 42
                 + RET0)
        return try_prog(C.BPF_PROG_TYPE_SOCKET_FILTER, insns, "global data")
    finally:
        os.close(map_fd)


@lru_cache(maxsize=None)
def array_mmap() -> Probe:
    """BPF_F_MMAPABLE array maps (5.5)."""
    try:
        fd = bpf.map_create(C.BPF_MAP_TYPE_ARRAY, 4, 4, 1, flags=C.BPF_F_MMAPABLE)
    except OSError as exc:
        return failed(exc, "mmapable array")
    os.close(fd)
    return YES


@lru_cache(maxsize=None)
def exp_attach_type() -> Probe:
    """expected_attach_type at load time (4.17)."""
    return try_prog(C.BPF_PROG_TYPE_CGROUP_SOCK, RET0, "expected_attach_type",
                     expected_attach_type=C.BPF_CGROUP_INET_SOCK_CREATE)


@lru_cache(maxsize=None)
def probe_read_kernel() -> Probe:
    """bpf_probe_read_kernel() (5.5); older kernels only have bpf_probe_read()."""
    insns = (insn(0xbf, dst=1, src=10)            # r1 = r10
             + insn(0x07, dst=1, imm=-8)          # r1 += -8
             + insn(0xb7, dst=2, imm=8)           # r2 = 8
             + insn(0xb7, dst=3, imm=0)           # r3 = 0
             + call_exit(C.BPF_FUNC_probe_read_kernel))
    return try_prog(C.BPF_PROG_TYPE_TRACEPOINT, insns, "bpf_probe_read_kernel")


@lru_cache(maxsize=None)
def bpf_cookie() -> Probe:
    """bpf_get_attach_cookie() (5.15)."""
    return try_prog(C.BPF_PROG_TYPE_TRACEPOINT, call_exit(C.BPF_FUNC_get_attach_cookie),
                     "bpf_get_attach_cookie")


@lru_cache(maxsize=None)
def memcg_account() -> Probe:
    """BPF memory charged to the memory cgroup, not RLIMIT_MEMLOCK (5.11).

    Detected like libbpf: bpf_ktime_get_coarse_ns() arrived in the same release.
    """
    return try_prog(C.BPF_PROG_TYPE_SOCKET_FILTER, call_exit(C.BPF_FUNC_ktime_get_coarse_ns),
                     "memcg accounting")


def bump_memlock_rlimit(limit: int = -1) -> bool:
    """Raise RLIMIT_MEMLOCK for kernels that still charge BPF memory to it.

    Does nothing (returns False) on memcg-accounted kernels; otherwise sets both
    soft and hard limits to ``limit`` (default: unlimited) and returns True.
    """
    if memcg_account():
        return False
    import resource

    value = resource.RLIM_INFINITY if limit < 0 else limit
    resource.setrlimit(resource.RLIMIT_MEMLOCK, (value, value))
    return True


