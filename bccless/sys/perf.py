"""``perf_event_open(2)``, perf ioctls and the CPU lists BPF tools need.

Perf events carry kprobe/uprobe/tracepoint attachments and are the targets of
BPF_PERF_EVENT links; their ring buffers are read with Python's ``mmap`` and
``select.epoll``, so only the syscall itself and the attr layout live here.
Constant names and values are those of uapi ``<linux/perf_event.h>``.
"""
from __future__ import annotations

import os
from functools import lru_cache

from bccless.sys.ffi import NR_PERF_EVENT_OPEN, ffi, libc

# enum perf_type_id
PERF_TYPE_HARDWARE = 0
PERF_TYPE_SOFTWARE = 1
PERF_TYPE_TRACEPOINT = 2
PERF_TYPE_HW_CACHE = 3
PERF_TYPE_RAW = 4
PERF_TYPE_BREAKPOINT = 5

# enum perf_hw_id
PERF_COUNT_HW_CPU_CYCLES = 0
PERF_COUNT_HW_INSTRUCTIONS = 1
PERF_COUNT_HW_CACHE_REFERENCES = 2
PERF_COUNT_HW_CACHE_MISSES = 3
PERF_COUNT_HW_BRANCH_INSTRUCTIONS = 4
PERF_COUNT_HW_BRANCH_MISSES = 5
PERF_COUNT_HW_BUS_CYCLES = 6
PERF_COUNT_HW_STALLED_CYCLES_FRONTEND = 7
PERF_COUNT_HW_STALLED_CYCLES_BACKEND = 8
PERF_COUNT_HW_REF_CPU_CYCLES = 9

# enum perf_sw_ids
PERF_COUNT_SW_CPU_CLOCK = 0
PERF_COUNT_SW_TASK_CLOCK = 1
PERF_COUNT_SW_PAGE_FAULTS = 2
PERF_COUNT_SW_CONTEXT_SWITCHES = 3
PERF_COUNT_SW_CPU_MIGRATIONS = 4
PERF_COUNT_SW_PAGE_FAULTS_MIN = 5
PERF_COUNT_SW_PAGE_FAULTS_MAJ = 6
PERF_COUNT_SW_ALIGNMENT_FAULTS = 7
PERF_COUNT_SW_EMULATION_FAULTS = 8
PERF_COUNT_SW_DUMMY = 9
PERF_COUNT_SW_BPF_OUTPUT = 10
PERF_COUNT_SW_CGROUP_SWITCHES = 11

# enum perf_event_sample_format
PERF_SAMPLE_IP = 1 << 0
PERF_SAMPLE_TID = 1 << 1
PERF_SAMPLE_TIME = 1 << 2
PERF_SAMPLE_ADDR = 1 << 3
PERF_SAMPLE_READ = 1 << 4
PERF_SAMPLE_CALLCHAIN = 1 << 5
PERF_SAMPLE_ID = 1 << 6
PERF_SAMPLE_CPU = 1 << 7
PERF_SAMPLE_PERIOD = 1 << 8
PERF_SAMPLE_STREAM_ID = 1 << 9
PERF_SAMPLE_RAW = 1 << 10

# enum perf_event_type (ring buffer record types)
PERF_RECORD_LOST = 2
PERF_RECORD_SAMPLE = 9

# perf_event_open flags
PERF_FLAG_FD_NO_GROUP = 1 << 0
PERF_FLAG_FD_OUTPUT = 1 << 1
PERF_FLAG_PID_CGROUP = 1 << 2
PERF_FLAG_FD_CLOEXEC = 1 << 3

# ioctls: _IO('$', n) and _IOW/_IOR('$', n, size) on the generic ioctl layout
PERF_EVENT_IOC_ENABLE = 0x2400
PERF_EVENT_IOC_DISABLE = 0x2401
PERF_EVENT_IOC_REFRESH = 0x2402
PERF_EVENT_IOC_RESET = 0x2403
PERF_EVENT_IOC_SET_OUTPUT = 0x2405
PERF_EVENT_IOC_ID = 0x80082407
PERF_EVENT_IOC_SET_BPF = 0x40042408
PERF_EVENT_IOC_PAUSE_OUTPUT = 0x40042409

# bit positions in perf_event_attr's flag word
_DISABLED, _INHERIT, _EXCLUDE_USER, _EXCLUDE_KERNEL, _WATERMARK = 0, 1, 4, 5, 14
_FREQ, _PRECISE_IP = 10, 15
_ATTR_SIZE = ffi.sizeof("struct perf_event_attr")


def perf_event_open(type: int, config: int, *, pid: int = -1, cpu: int = 0, group_fd: int = -1,
                    flags: int = PERF_FLAG_FD_CLOEXEC, sample_period: int = 0,
                    sample_freq: int = 0, sample_type: int = 0, wakeup_events: int = 0,
                    wakeup_watermark: int = 0, config1: int | str | bytes = 0,
                    config2: int = 0, bp_type: int = 0, probe_offset: int = 0,
                    ref_ctr_offset: int = 0, disabled: bool = False, inherit: bool = False,
                    exclude_kernel: bool = False, exclude_user: bool = False,
                    precise_ip: int = 0, watermark: bool = False,
                    size: int | None = None) -> int:
    """``perf_event_open(2)``; returns the event fd (CLOEXEC unless ``flags`` drop it).

    ``config1`` may be a str/bytes: it is then passed by pointer, which is how
    the kprobe and uprobe PMUs take ``kprobe_func``/``uprobe_path``.
    ``probe_offset`` shares ``config2``'s slot.  ``ref_ctr_offset`` (USDT
    semaphores) is shifted into ``config`` at the position the uprobe PMU
    declares in ``format/ref_ctr_offset``.  ``size`` overrides attr.size for
    kernels that reject the newest layout (E2BIG).
    """
    a = ffi.new("struct perf_event_attr *")
    a.type = type
    a.size = _ATTR_SIZE if size is None else size
    if ref_ctr_offset:
        config |= ref_ctr_offset << pmu_format_shift("uprobe", "ref_ctr_offset")
    a.config = config
    bits = (disabled << _DISABLED) | (inherit << _INHERIT) | (exclude_user << _EXCLUDE_USER) \
        | (exclude_kernel << _EXCLUDE_KERNEL) | (watermark << _WATERMARK) \
        | ((precise_ip & 3) << _PRECISE_IP)
    if sample_freq:
        bits |= 1 << _FREQ
        a.sample_period = sample_freq
    else:
        a.sample_period = sample_period
    a.flags = bits
    a.sample_type = sample_type
    a.wakeup_events = wakeup_watermark if watermark else wakeup_events
    a.bp_type = bp_type
    keep = None  # a string config1 must outlive the syscall
    if isinstance(config1, (str, bytes)):
        keep = ffi.new("char[]", os.fsencode(config1))
        a.config1 = int(ffi.cast("uintptr_t", keep))
    else:
        a.config1 = config1
    a.config2 = probe_offset or config2
    fd = libc.syscall(NR_PERF_EVENT_OPEN, a, ffi.cast("int", pid), ffi.cast("int", cpu),
                      ffi.cast("int", group_fd), ffi.cast("unsigned long", flags))
    if fd < 0:
        err = ffi.errno
        raise OSError(err, os.strerror(err), f"perf_event_open(type={type}, config={config:#x})")
    return fd


def ioctl(fd: int, request: int, arg: int = 0) -> int:
    """``ioctl(fd, request, arg)`` with an integer argument; OSError on failure."""
    import fcntl

    return fcntl.ioctl(fd, request, arg)


def perf_event_enable(fd: int) -> None:
    """PERF_EVENT_IOC_ENABLE."""
    ioctl(fd, PERF_EVENT_IOC_ENABLE, 0)


def perf_event_disable(fd: int) -> None:
    """PERF_EVENT_IOC_DISABLE."""
    ioctl(fd, PERF_EVENT_IOC_DISABLE, 0)


def perf_event_set_bpf(fd: int, prog_fd: int) -> None:
    """PERF_EVENT_IOC_SET_BPF: the pre-bpf_link way to attach a program to an event."""
    ioctl(fd, PERF_EVENT_IOC_SET_BPF, prog_fd)


def perf_event_id(fd: int) -> int:
    """PERF_EVENT_IOC_ID: the kernel's id of the event (matches PERF_SAMPLE_ID)."""
    import fcntl

    buf = bytearray(8)
    fcntl.ioctl(fd, PERF_EVENT_IOC_ID, buf, True)
    return int.from_bytes(buf, "little")


def _parse_cpu_list(text: str) -> list[int]:
    """Parse the kernel's cpulist format ("0-3,5,7-8")."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


@lru_cache(maxsize=None)
def _possible() -> tuple:
    with open("/sys/devices/system/cpu/possible") as f:
        return tuple(_parse_cpu_list(f.read()))


def possible_cpus() -> list[int]:
    """CPUs that may ever come online: per-CPU map values have one slot each.

    Read once per process (the set is fixed at boot)."""
    return list(_possible())


def online_cpus() -> list[int]:
    """CPUs online now (not cached: CPUs can be hot-plugged)."""
    with open("/sys/devices/system/cpu/online") as f:
        return _parse_cpu_list(f.read())


@lru_cache(maxsize=None)
def pmu_type(pmu: str) -> int:
    """The dynamic PMU type number of ``pmu`` (e.g. "uprobe"); OSError if absent."""
    with open(f"/sys/bus/event_source/devices/{pmu}/type") as f:
        return int(f.read())


@lru_cache(maxsize=None)
def pmu_format_shift(pmu: str, field: str) -> int:
    """First bit of ``field`` in ``config`` per the PMU's format file ("config:32-63")."""
    with open(f"/sys/bus/event_source/devices/{pmu}/format/{field}") as f:
        spec = f.read().strip()
    where, _, bits = spec.partition(":")
    if where != "config":
        raise OSError(f"{pmu} PMU puts {field} in {where}, not config")
    return int(bits.split("-")[0])
