"""BPF_PROG_TYPE_PERF_EVENT programs on sampling software/hardware events.

One perf event per CPU (or one for a pid on any CPU); each sample overflow
runs the program.  Exactly one of ``sample_period``/``sample_freq`` is set, as
BCC requires.  A hardware event on a machine without a hardware PMU (VMs
like this one) fails at perf_event_open with ENOENT/EOPNOTSUPP; that is
reported as such instead of as a bare errno.
"""
from __future__ import annotations

import errno
import os
from typing import List, Optional, Sequence

from ..errors import AttachError
from .link import Link, MultiLink
from .tracepoint import link_perf_event

_TYPE_NAMES = {0: "hardware", 1: "software", 2: "tracepoint", 3: "hw-cache", 4: "raw",
               5: "breakpoint"}


def has_hardware_pmu() -> bool:
    """True when the CPU's PMU is exposed (a 'cpu' or 'cpu_core' event source exists)."""
    base = "/sys/bus/event_source/devices"
    return any(os.path.exists(os.path.join(base, d)) for d in ("cpu", "cpu_core", "armv8_pmuv3"))


def attach_perf_event(prog_fd: int, ev_type: int, ev_config: int, *, sample_period: int = 0,
                      sample_freq: int = 0, pid: Optional[int] = None,
                      cpus: Optional[Sequence[int]] = None, bpf_cookie: int = 0,
                      prog_name: str = "") -> MultiLink:
    """Open and link one sampling event per CPU (default: every online CPU).

    With ``pid`` the event follows that task on any CPU (and its children:
    inherit), unless ``cpus`` narrows it.
    """
    from ..sys import perf

    if bool(sample_period) == bool(sample_freq):
        raise AttachError("perf event: exactly one of sample_period and sample_freq must be set")
    if ev_type == perf.PERF_TYPE_SOFTWARE and ev_config == perf.PERF_COUNT_SW_BPF_OUTPUT:
        raise AttachError("perf event: PERF_COUNT_SW_BPF_OUTPUT is for perf buffers, "
                          "not for sampling programs")
    type_name = _TYPE_NAMES.get(ev_type, str(ev_type))
    target_pid = -1 if pid is None or pid < 0 else pid
    if cpus is None:
        cpus = [-1] if target_pid != -1 else perf.online_cpus()
    links: List[Link] = []
    try:
        for cpu in cpus:
            where = f"{type_name} event {ev_config:#x}" + (f" cpu {cpu}" if cpu >= 0 else "") \
                + (f" pid {target_pid}" if target_pid != -1 else "")
            try:
                pfd = perf.perf_event_open(ev_type, ev_config, pid=target_pid, cpu=cpu,
                                           sample_period=sample_period, sample_freq=sample_freq,
                                           inherit=target_pid != -1)
            except OSError as exc:
                raise _open_error(exc, ev_type, where) from exc
            links.append(link_perf_event(prog_fd, pfd, "perf_event", where,
                                         bpf_cookie=bpf_cookie, prog_name=prog_name))
    except BaseException:
        for link in links:
            link.close()
        raise
    return MultiLink(links)


def _open_error(exc: OSError, ev_type: int, where: str) -> AttachError:
    if ev_type in (0, 3) and exc.errno in (errno.ENOENT, errno.EOPNOTSUPP, errno.ENODEV) \
            and not has_hardware_pmu():
        return AttachError(f"cannot open {where}: this machine has no hardware PMU "
                           f"(hardware perf events are unavailable, typical in VMs): {exc.strerror}")
    return AttachError(f"cannot open {where}: {exc.strerror}")
