"""Attach-mechanism probes: perf links, kprobe/uprobe PMUs, tracefs files,
trampolines (fentry, LSM) and the syscall wrapper prefix."""
from __future__ import annotations

import os
from errno import EBADF, ENOENT, ENOTSUP
from functools import lru_cache

from bccless.sys import bpf
from bccless.sys import bpf_consts as C
from bccless.sys.probing import RET0, YES, Probe, failed

@lru_cache(maxsize=None)
def perf_link() -> Probe:
    """BPF_LINK_CREATE on perf events (5.15): attach to a real software event.

    Falls back to libbpf's test (an invalid perf fd gives EBADF only when the
    kernel knows perf links) when software events cannot be opened.
    """
    from bccless.sys import perf

    try:
        prog_fd, _ = bpf.prog_load(C.BPF_PROG_TYPE_PERF_EVENT, RET0, "GPL")
    except OSError as exc:
        return failed(exc, "perf_event program")
    try:
        try:
            ev = perf.perf_event_open(perf.PERF_TYPE_SOFTWARE, perf.PERF_COUNT_SW_CPU_CLOCK,
                                      cpu=perf.online_cpus()[0], sample_period=1 << 62,
                                      disabled=True)
        except OSError:
            ev = -1
        try:
            link = bpf.link_create(prog_fd, ev, C.BPF_PERF_EVENT)
        except OSError as exc:
            if ev < 0 and exc.errno == EBADF:
                return Probe(True, 0, "inferred from EBADF on an invalid perf fd")
            return failed(exc, "perf link")
        finally:
            if ev >= 0:
                os.close(ev)
        os.close(link)
        return YES
    finally:
        os.close(prog_fd)


# ---------------------------------------------------------------------------
# attach mechanisms

_PMU_DIR = "/sys/bus/event_source/devices"
_TRACEFS_DIRS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")


def _path_probe(path: str, what: str) -> Probe:
    if os.path.exists(path):
        return Probe(True, 0, path)
    return Probe(False, ENOENT, f"{what}: {path} does not exist")


@lru_cache(maxsize=None)
def kprobe_pmu() -> Probe:
    """The perf 'kprobe' PMU (4.17, CONFIG_KPROBE_EVENTS)."""
    return _path_probe(f"{_PMU_DIR}/kprobe/type", "kprobe PMU")


@lru_cache(maxsize=None)
def uprobe_pmu() -> Probe:
    """The perf 'uprobe' PMU (4.17, CONFIG_UPROBE_EVENTS)."""
    return _path_probe(f"{_PMU_DIR}/uprobe/type", "uprobe PMU")


def _tracefs_file(name: str) -> Probe:
    for d in _TRACEFS_DIRS:
        if os.path.exists(f"{d}/{name}"):
            return Probe(True, 0, f"{d}/{name}")
    mounted = any(os.path.exists(f"{d}/trace") for d in _TRACEFS_DIRS)
    why = "not provided by this kernel" if mounted else "tracefs is not mounted"
    return Probe(False, ENOENT, f"{name}: {why}")


@lru_cache(maxsize=None)
def kprobe_events_file() -> Probe:
    """Legacy tracefs kprobe_events (the reason holds the path when present)."""
    return _tracefs_file("kprobe_events")


@lru_cache(maxsize=None)
def uprobe_events_file() -> Probe:
    """Legacy tracefs uprobe_events (the reason holds the path when present)."""
    return _tracefs_file("uprobe_events")


def _kernel_func_btf_id(name: str) -> int:
    from bccless.btf import Kind, load_kernel_btf

    ids = load_kernel_btf().find(name, Kind.FUNC)
    if not ids:
        raise LookupError(f"no BTF FUNC named {name!r} in the kernel")
    return ids[0]


def _tracing_load(prog_type: int, attach_type: int, func: str, btf_id: int | None,
                  what: str) -> Probe:
    try:
        target = btf_id if btf_id is not None else _kernel_func_btf_id(func)
    except (LookupError, OSError, ValueError) as exc:
        return Probe(False, 0, f"{what}: {exc}")
    try:
        fd, _ = bpf.prog_load(prog_type, RET0, "GPL", expected_attach_type=attach_type,
                              attach_btf_id=target)
    except bpf.ProgLoadError as exc:
        hint = "" if exc.log.strip() else " without a verifier log (no BPF trampoline support?)"
        return Probe(False, exc.errno, f"{what}: {exc.strerror}{hint}")
    os.close(fd)
    return YES


@lru_cache(maxsize=None)
def fentry(btf_id: int | None = None) -> Probe:
    """fentry/fexit programs load (BPF trampolines; 5.5 on x86-64).

    ``btf_id`` is the kernel BTF id of a function to attach to; by default the
    id of ``bpf_fentry_test1`` (or ``do_nanosleep``) is looked up in vmlinux BTF.
    """
    if btf_id is not None:
        return _tracing_load(C.BPF_PROG_TYPE_TRACING, C.BPF_TRACE_FENTRY, "", btf_id, "fentry")
    probe = Probe(False)
    for func in ("bpf_fentry_test1", "do_nanosleep"):
        probe = _tracing_load(C.BPF_PROG_TYPE_TRACING, C.BPF_TRACE_FENTRY, func, None, "fentry")
        if probe or probe.errno:
            return probe
    return probe


@lru_cache(maxsize=None)
def lsm() -> Probe:
    """BPF LSM programs load (CONFIG_BPF_LSM and trampolines; 5.7)."""
    return _tracing_load(C.BPF_PROG_TYPE_LSM, C.BPF_LSM_MAC, "bpf_lsm_file_open", None, "lsm")


@lru_cache(maxsize=None)
def syscall_wrapper() -> Probe:
    """Syscalls are entered through arch wrappers (``__x64_sys_*``, 4.17 on x86-64).

    Decides whether ksyscall probes target ``__<arch>_sys_<name>`` or
    ``sys_<name>``; the prefix found is the reason text.
    """
    prefix = _SYSCALL_PREFIXES.get(os.uname().machine)
    if prefix is None:
        return Probe(False, ENOTSUP, f"no syscall wrapper prefix known for {os.uname().machine}")
    symbol = f"{prefix}sys_bpf"
    for path in [f"{d}/available_filter_functions" for d in _TRACEFS_DIRS] + ["/proc/kallsyms"]:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            continue
        word = symbol.encode()
        i = data.find(word)
        while i >= 0:
            end = i + len(word)
            if (i == 0 or data[i - 1] in b" \t\n") and (end == len(data) or data[end] in b" \t\n["):
                return Probe(True, 0, prefix)
            i = data.find(word, end)
        return Probe(False, 0, f"{symbol} not in {path}")
    return Probe(False, 0, "neither available_filter_functions nor /proc/kallsyms is readable")


_SYSCALL_PREFIXES = {
    "x86_64": "__x64_", "aarch64": "__arm64_", "s390x": "__s390x_", "riscv64": "__riscv_",
    "ppc64le": "", "loongarch64": "",
}

