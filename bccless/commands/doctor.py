"""``bccless doctor``: what this kernel and this process can do, found by trying.

Each row is a probe (load a tiny program, open a PMU, attach and detach),
never a guess from kallsyms or the kernel version: a kernel can list
functions it cannot probe (this-machine.md: no CONFIG_KPROBES, fentry loads
fail with EPERM).  Missing pieces get a one-line hint.  Missing kernel file
systems are mounted when running as root, since every later step needs them.
The exit status is 0 whatever the findings: this is a report, not a check.
"""
from __future__ import annotations

import argparse
import os
from typing import Callable, List, NamedTuple, Optional

_CAPS = {"CAP_SYS_ADMIN": 21, "CAP_PERFMON": 38, "CAP_BPF": 39}


class Row(NamedTuple):
    name: str
    ok: bool
    detail: str
    hint: str = ""


def register(subparsers: "argparse._SubParsersAction") -> None:
    parser = subparsers.add_parser(
        "doctor", help="probe which BPF features this kernel and process support",
        description="Probe (by trying) which BPF program, attach and map features work here.")
    parser.add_argument("--no-mount", action="store_true",
                        help="do not mount missing tracefs/debugfs/bpffs")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    rows = collect(mount=not args.no_mount)
    width = max(len(r.name) for r in rows)
    for r in rows:
        status = "yes" if r.ok else "NO "
        line = f"{r.name:<{width}}  {status}  {r.detail}"
        if not r.ok and r.hint:
            line += f"  -> {r.hint}"
        print(line)
    return 0


def collect(mount: bool = True) -> List[Row]:
    """All rows, in display order; every probe is isolated so one failure cannot hide others."""
    checks: List[Callable[[bool], Row]] = [
        _btf, _module_btf, _tracefs, _debugfs, _bpffs, _caps, _memlock, _kprobes, _uprobes,
        _usdt, _tracepoints, _raw_tracepoints, _tp_btf, _fentry, _lsm, _ringbuf, _batch_ops, _perf_link,
        _bpf_cookie, _hw_pmu,
    ]
    rows = []
    for check in checks:
        try:
            rows.append(check(mount))
        except Exception as exc:  # a probe that crashes is itself a finding
            rows.append(Row(check.__name__.strip("_").replace("_", " "), False,
                            f"probe failed: {exc}"))
    return rows


def _btf(_mount: bool) -> Row:
    path = "/sys/kernel/btf/vmlinux"
    if os.path.exists(path):
        return Row("kernel BTF", True, f"{path} ({os.path.getsize(path) // 1024} KiB)")
    return Row("kernel BTF", False, f"{path} missing", "kernel needs CONFIG_DEBUG_INFO_BTF=y")


def _module_btf(_mount: bool) -> Row:
    try:
        mods = [m for m in os.listdir("/sys/kernel/btf") if m != "vmlinux"]
    except OSError:
        mods = []
    if mods:
        return Row("module BTF", True, f"{len(mods)} modules")
    has_modules = os.path.exists("/proc/modules")
    return Row("module BTF", not has_modules,
               "none (kernel without modules)" if not has_modules else "none",
               "CONFIG_DEBUG_INFO_BTF_MODULES=y for module types")


def _fs_row(name: str, path: str, fstype: str, source: str, mount: bool, hint: str) -> Row:
    from ..attach.tracefs import ensure_mounted, mounts

    if mounts().get(path) == fstype:
        return Row(name, True, f"mounted on {path}")
    if mount and ensure_mounted(path, fstype, source):
        return Row(name, True, f"mounted on {path} (mounted now)")
    return Row(name, False, f"not mounted on {path}", hint)


def _tracefs(mount: bool) -> Row:
    return _fs_row("tracefs", "/sys/kernel/tracing", "tracefs", "nodev", mount,
                   "mount -t tracefs nodev /sys/kernel/tracing (as root)")


def _debugfs(mount: bool) -> Row:
    return _fs_row("debugfs", "/sys/kernel/debug", "debugfs", "none", mount,
                   "mount -t debugfs none /sys/kernel/debug (as root)")


def _bpffs(mount: bool) -> Row:
    return _fs_row("bpffs", "/sys/fs/bpf", "bpf", "bpf", mount,
                   "mount -t bpf bpf /sys/fs/bpf (needed for pinning)")


def _caps(_mount: bool) -> Row:
    eff = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                eff = int(line.split()[1], 16)
    have = [n for n, bit in _CAPS.items() if eff >> bit & 1]
    ok = "CAP_SYS_ADMIN" in have or {"CAP_BPF", "CAP_PERFMON"} <= set(have)
    return Row("capabilities", ok, ", ".join(have) or "none of CAP_BPF/CAP_PERFMON/CAP_SYS_ADMIN",
               "run as root, or grant CAP_BPF+CAP_PERFMON")


def _memlock(_mount: bool) -> Row:
    import resource

    from ..sys import features

    soft, _hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    limit = "unlimited" if soft == resource.RLIM_INFINITY else f"{soft // 1024} KiB"
    if features.memcg_account():
        return Row("memlock", True, f"RLIMIT_MEMLOCK {limit}; BPF memory is memcg-accounted")
    ok = soft == resource.RLIM_INFINITY or soft >= 64 << 20
    return Row("memlock", ok, f"RLIMIT_MEMLOCK {limit} (charged to BPF maps)",
               "ulimit -l unlimited (bccless raises it when it can)")


def _kprobes(_mount: bool) -> Row:
    from ..attach.kprobe import kprobe_support

    how = kprobe_support()
    if how:
        return Row("kprobes", True, "kprobe PMU" if how == "pmu" else "tracefs kprobe_events")
    return Row("kprobes", False, "no kprobe PMU and no kprobe_events",
               "kernel built without CONFIG_KPROBES: use tracepoints or tp_btf instead")


def _uprobes(_mount: bool) -> Row:
    from ..attach.tracefs import pmu_type, tracefs_root

    if pmu_type("uprobe") is not None:
        return Row("uprobes", True, "uprobe PMU")
    if os.path.exists(os.path.join(tracefs_root(), "uprobe_events")):
        return Row("uprobes", True, "tracefs uprobe_events (legacy)")
    return Row("uprobes", False, "no uprobe PMU and no uprobe_events", "CONFIG_UPROBE_EVENTS=y")


def _usdt(_mount: bool) -> Row:
    from ..attach.tracefs import pmu_format_field, pmu_type

    if pmu_type("uprobe") is None:
        return Row("USDT", False, "needs uprobes", "CONFIG_UPROBE_EVENTS=y")
    if pmu_format_field("uprobe", "ref_ctr_offset") is None:
        return Row("USDT", True, "probes without semaphores only",
                   "kernel 4.20+ maintains USDT semaphores")
    return Row("USDT", True, "uprobes with kernel-maintained semaphores (ref_ctr_offset)")


def _trivial_prog(prog_type: int, **kw) -> int:
    from ..sys import bpf

    ret0 = bytes([0xB7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0])
    fd, _log = bpf.prog_load(prog_type, ret0, "GPL", name="bccless_doctor", **kw)
    return fd


def _tracepoints(_mount: bool) -> Row:
    from ..attach.tracepoint import attach_tracepoint
    from ..sys import bpf_consts as C

    fd = _trivial_prog(C.BPF_PROG_TYPE_TRACEPOINT)
    try:
        with attach_tracepoint(fd, "syscalls:sys_enter_getppid") as link:
            how = "BPF perf link" if link.bpf_link else "PERF_EVENT_IOC_SET_BPF"
        return Row("tracepoints", True, f"attached syscalls:sys_enter_getppid ({how})")
    finally:
        os.close(fd)


def _raw_tracepoints(_mount: bool) -> Row:
    from ..attach.tracepoint import attach_raw_tracepoint
    from ..sys import bpf_consts as C

    fd = _trivial_prog(C.BPF_PROG_TYPE_RAW_TRACEPOINT)
    try:
        with attach_raw_tracepoint(fd, "sys_enter"):
            return Row("raw tracepoints", True, "attached sys_enter")
    finally:
        os.close(fd)


def _btf_func_id(name: str) -> Optional[int]:
    from ..btf import Kind, load_kernel_btf

    ids = load_kernel_btf().find(name, Kind.FUNC)
    return ids[0] if ids else None


def _load_btf_prog(label: str, prog_type: int, attach_type: int, func: str, hint: str) -> Row:
    btf_id = _btf_func_id(func)
    if btf_id is None:
        return Row(label, False, f"{func} not in kernel BTF", hint)
    try:
        fd = _trivial_prog(prog_type, expected_attach_type=attach_type, attach_btf_id=btf_id)
    except OSError as exc:
        return Row(label, False, f"load against {func} failed: {exc.strerror}", hint)
    os.close(fd)
    return Row(label, True, f"loaded against {func}")


def _tp_btf(_mount: bool) -> Row:
    from ..btf import Kind, load_kernel_btf
    from ..sys import bpf_consts as C

    ids = load_kernel_btf().find("btf_trace_sys_enter", Kind.TYPEDEF)
    if not ids:
        return Row("tp_btf", False, "btf_trace_sys_enter not in kernel BTF", "kernel 5.5+ with BTF")
    try:
        fd = _trivial_prog(C.BPF_PROG_TYPE_TRACING, expected_attach_type=C.BPF_TRACE_RAW_TP,
                           attach_btf_id=ids[0])
    except OSError as exc:
        return Row("tp_btf", False, f"load failed: {exc.strerror}", "kernel 5.5+ with BTF")
    os.close(fd)
    return Row("tp_btf", True, "loaded against btf_trace_sys_enter")


def _fentry(_mount: bool) -> Row:
    from ..sys import bpf_consts as C

    return _load_btf_prog("fentry/fexit", C.BPF_PROG_TYPE_TRACING, C.BPF_TRACE_FENTRY,
                          "vfs_read", "kernel lacks BPF trampolines here: use tp_btf/tracepoints")


def _lsm(_mount: bool) -> Row:
    from ..sys import bpf_consts as C

    row = _load_btf_prog("LSM", C.BPF_PROG_TYPE_LSM, C.BPF_LSM_MAC, "bpf_lsm_file_open",
                         "needs CONFIG_BPF_LSM=y and 'bpf' in the lsm= boot list")
    if row.ok:
        try:
            with open("/sys/kernel/security/lsm") as f:
                active = f.read().strip().split(",")
        except OSError:
            active = []
        if "bpf" not in active:
            return Row("LSM", False, "loads, but 'bpf' is not an active LSM", row.hint)
    return row


def _feature_row(label: str, probe_name: str, detail: str, hint: str) -> Row:
    from ..sys import features

    probe = getattr(features, probe_name)()
    return Row(label, bool(probe), detail if probe else (probe.reason or "unavailable"), hint)


def _ringbuf(_mount: bool) -> Row:
    return _feature_row("ring buffer", "ringbuf", "BPF_MAP_TYPE_RINGBUF", "kernel 5.8+")


def _batch_ops(_mount: bool) -> Row:
    return _feature_row("batch map ops", "batch_ops", "BPF_MAP_LOOKUP_BATCH", "kernel 5.6+")


def _perf_link(_mount: bool) -> Row:
    from ..attach.tracepoint import attach_tracepoint
    from ..sys import bpf_consts as C

    fd = _trivial_prog(C.BPF_PROG_TYPE_TRACEPOINT)
    try:
        with attach_tracepoint(fd, "syscalls:sys_enter_getppid") as link:
            ok = link.bpf_link
    finally:
        os.close(fd)
    return Row("BPF links (perf)", ok, "BPF_LINK_CREATE on perf events" if ok else "ioctl only",
               "kernel 5.15+")


def _bpf_cookie(_mount: bool) -> Row:
    return _feature_row("bpf cookie", "bpf_cookie", "bpf_get_attach_cookie()", "kernel 5.15+")


def _hw_pmu(_mount: bool) -> Row:
    from ..attach.perf_event import has_hardware_pmu

    if has_hardware_pmu():
        return Row("hardware PMU", True, "hardware perf events available")
    return Row("hardware PMU", False, "no hardware PMU (typical in VMs)",
               "use software events (cpu-clock) for sampling")
