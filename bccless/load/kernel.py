"""The running kernel as the loader sees it: an identity and a lazily loaded BTF.

The identity keys the relocation cache: two kernels with the same identity
give the same CO-RE results.  The GNU build-id note the kernel exports in
``/sys/kernel/notes`` changes with every build, costs one small read and
needs no BTF parse.  Kernels without it fall back to a hash of the BTF
header, size and modification time, still without parsing the BTF.

Kernel BTF itself (5+ MB) is parsed at most once per process and only when a
cold load needs it (CO-RE, BTF-id attach targets, typed ksyms).
"""
from __future__ import annotations

import os
import struct
from typing import TYPE_CHECKING, Dict, Optional, Tuple

from ..errors import LoadError
from . import LazyLogger

if TYPE_CHECKING:
    from ..btf.parse import BTF

log = LazyLogger(__name__)

NOTES_PATH = "/sys/kernel/notes"
VMLINUX_BTF = "/sys/kernel/btf/vmlinux"
BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"
_NT_GNU_BUILD_ID = 3

_identity: Optional[str] = None
_kernel_btf: Optional["BTF"] = None
_module_btfs: Dict[str, "BTF"] = {}


def parse_build_id(notes: bytes) -> Optional[str]:
    """The GNU build id (hex) in a blob of ELF notes, or None."""
    off = 0
    while off + 12 <= len(notes):
        namesz, descsz, ntype = struct.unpack_from("<III", notes, off)
        name_off = off + 12
        desc_off = name_off + ((namesz + 3) & ~3)
        end = desc_off + ((descsz + 3) & ~3)
        if end > len(notes):
            return None
        if ntype == _NT_GNU_BUILD_ID and notes[name_off:name_off + namesz] == b"GNU\0":
            return notes[desc_off:desc_off + descsz].hex()
        off = end
    return None


def kernel_identity() -> str:
    """A string naming this exact kernel build (cached for the process)."""
    global _identity
    if _identity is None:
        _identity = _compute_identity()
    return _identity


def _compute_identity() -> str:
    release = os.uname().release
    try:
        with open(NOTES_PATH, "rb") as f:
            build_id = parse_build_id(f.read())
        if build_id:
            return f"build-id:{build_id}"
    except OSError as exc:
        log.debug("no kernel notes (%s): identifying the kernel by its BTF", exc)
    import hashlib

    try:
        st = os.stat(VMLINUX_BTF)
        with open(VMLINUX_BTF, "rb") as f:
            head = f.read(64)
    except OSError:
        return f"release:{release}:{os.uname().version}"
    digest = hashlib.sha256(head + f"{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()
    return f"btf:{digest}"


def boot_id() -> str:
    """This boot's random id: kallsyms addresses are only valid within one boot."""
    try:
        with open(BOOT_ID_PATH) as f:
            return f.read().strip()
    except OSError:
        return ""


def kernel_btf() -> "BTF":
    """The running kernel's BTF, parsed once per process."""
    global _kernel_btf
    if _kernel_btf is None:
        from ..btf.sources import load_kernel_btf

        _kernel_btf = load_kernel_btf()
    return _kernel_btf


def module_btf(name: str) -> "BTF":
    """Split BTF of kernel module ``name`` on top of :func:`kernel_btf`."""
    btf = _module_btfs.get(name)
    if btf is None:
        from ..btf.sources import load_module_btf

        btf = _module_btfs[name] = load_module_btf(name, kernel_btf())
    return btf


def module_btfs() -> list:
    """(name, BTF) of every module with BTF, for the linker's fallbacks."""
    from ..btf.sources import list_module_btfs

    return [(name, module_btf(name)) for name in list_module_btfs()]


def module_btf_fd(name: str) -> int:
    """A new fd for the kernel BTF object of module ``name`` (for fd_array and
    attach_btf_obj_fd).  Raises LoadError when no loaded module has that name."""
    from ..sys import bpf

    obj_id = 0
    while True:
        next_id = bpf.get_next_id("btf", obj_id)
        if next_id is None:
            break
        obj_id = next_id
        try:
            fd = bpf.get_fd_by_id("btf", obj_id)
        except OSError:
            continue
        try:
            info = bpf.obj_get_info_by_fd(fd, "btf")
        except OSError:
            os.close(fd)
            continue
        if info["kernel_btf"] and info["name"] == name:
            return fd
        os.close(fd)
    raise LoadError(f"kernel module '{name}' has no BTF object loaded (module unloaded?)")


# Expected attach types whose BTF target is a prefixed kernel name (libbpf's
# find_attach_btf_id): BPF_TRACE_RAW_TP, BPF_LSM_MAC, BPF_TRACE_ITER, BPF_LSM_CGROUP.
_TARGET_PREFIX = {23: ("btf_trace_", "TYPEDEF"), 27: ("bpf_lsm_", "FUNC"),
                  28: ("bpf_iter_", "FUNC"), 43: ("bpf_lsm_", "FUNC")}


def attach_btf_name(attach_type: int, target: str) -> Tuple[str, str]:
    """(kernel BTF name, kind name) a BTF-attached program's target resolves to:
    tp_btf/x -> typedef btf_trace_x, lsm/x -> bpf_lsm_x, iter/x -> bpf_iter_x,
    fentry/fexit/fmod_ret/x -> FUNC x."""
    prefix, kind = _TARGET_PREFIX.get(attach_type, ("", "FUNC"))
    return prefix + target, kind


def resolve_attach_btf_id(prog_name: str, attach_type: int, target: str) -> Tuple[int, str]:
    """(BTF id, module name or '') of a tp_btf/fentry/fexit/fmod_ret/lsm/iter target.

    vmlinux is searched first, then every module's BTF, as libbpf does.
    """
    from ..btf.types import Kind

    if not target:
        raise LoadError(f"prog '{prog_name}': attaching by BTF id needs a target name "
                        f"(e.g. SEC(\"tp_btf/sched_switch\"))")
    name, kind_name = attach_btf_name(attach_type, target)
    kind = Kind[kind_name]
    ids = kernel_btf().find(name, kind)
    if ids:
        return ids[0], ""
    for mod, btf in module_btfs():
        found = [i for i in btf.find(name, kind) if i >= btf.start_id]
        if found:
            return found[0], mod
    raise LoadError(f"prog '{prog_name}': failed to find kernel BTF type ID of '{target}': "
                    f"no {kind_name} '{name}' in vmlinux or module BTF")


def kernel_version_code() -> int:
    """KERNEL_VERSION() of the running kernel, what libbpf passes as kern_version."""
    parts = (os.uname().release.split("-")[0].split(".") + ["0", "0"])[:3]
    nums = [int("".join(ch for ch in p if ch.isdigit()) or 0) for p in parts]
    return (nums[0] << 16) | (nums[1] << 8) | min(nums[2], 255)
