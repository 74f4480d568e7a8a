"""tracefs, perf PMUs in sysfs, and legacy dynamic probe events.

Three kinds of attach need a number from a pseudo file system before they can
call perf_event_open: a tracepoint's event id (tracefs ``events/<cat>/<name>/id``),
a dynamic PMU's type (``/sys/bus/event_source/devices/<pmu>/type``) with the
bit its ``format/retprobe`` or ``format/ref_ctr_offset`` field lives at, and
for kernels without those PMUs, an event created by writing a line into
``kprobe_events``/``uprobe_events``.  The last is global state that survives
the process, so it is always paired with a clean-up registration.
"""
from __future__ import annotations

import errno
import os
import re
from functools import lru_cache
from typing import Dict, Optional, Tuple

from ..errors import AttachError
from ..lazylog import LazyLogger

log = LazyLogger(__name__)

TRACEFS_CANDIDATES = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
PMU_DIR = "/sys/bus/event_source/devices"
EVENT_GROUP = "bccless"


def mounts() -> Dict[str, str]:
    """Mount point -> file system type, from /proc/self/mounts."""
    out: Dict[str, str] = {}
    with open("/proc/self/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3:
                out[parts[1].replace("\\040", " ")] = parts[2]
    return out


def ensure_mounted(path: str, fstype: str, source: str = "none") -> bool:
    """True when ``path`` carries ``fstype``, mounting it first if we are allowed to."""
    if mounts().get(path) == fstype:
        return True
    if os.geteuid() != 0 or not os.path.isdir(path):
        return False
    import subprocess  # only when something must be mounted: keep it off the warm path

    res = subprocess.run(["mount", "-t", fstype, source, path],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    if res.returncode != 0:
        log.info("mount -t %s %s failed: %s", fstype, path, res.stderr.decode().strip())
        return False
    log.info("mounted %s on %s", fstype, path)
    return mounts().get(path) == fstype


_tracefs: Optional[str] = None


def tracefs_root() -> str:
    """Where tracefs is mounted (mounting /sys/kernel/tracing when needed and possible)."""
    global _tracefs
    if _tracefs is not None:
        return _tracefs
    table = mounts()
    for cand in TRACEFS_CANDIDATES:
        if table.get(cand) == "tracefs" or (cand.endswith("debug/tracing")
                                            and os.path.isfile(os.path.join(cand, "trace_pipe"))):
            _tracefs = cand
            return cand
    if ensure_mounted(TRACEFS_CANDIDATES[0], "tracefs", "nodev"):
        _tracefs = TRACEFS_CANDIDATES[0]
        return _tracefs
    raise AttachError("tracefs is not mounted and cannot be mounted here "
                      "(mount -t tracefs nodev /sys/kernel/tracing as root)")


def tracepoint_id(category: str, name: str) -> int:
    """The perf event id of tracepoint ``category:name``."""
    path = os.path.join(tracefs_root(), "events", category, name, "id")
    try:
        with open(path) as f:
            return int(f.read())
    except FileNotFoundError:
        raise AttachError(f"tracepoint {category}:{name} does not exist ({path} missing)") from None
    except OSError as exc:
        raise AttachError(f"cannot read {path}: {exc.strerror}") from exc


def tracepoint_exists(category: str, name: str) -> bool:
    return os.path.isfile(os.path.join(tracefs_root(), "events", category, name, "id"))


@lru_cache(maxsize=None)
def pmu_type(pmu: str) -> Optional[int]:
    """perf_event_attr.type of a dynamic PMU ('kprobe', 'uprobe'), None if the kernel has none."""
    try:
        with open(os.path.join(PMU_DIR, pmu, "type")) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


@lru_cache(maxsize=None)
def pmu_format_field(pmu: str, field: str) -> Optional[Tuple[str, int]]:
    """(attr field, first bit) of ``format/<field>``, e.g. ('config', 0) for retprobe."""
    try:
        with open(os.path.join(PMU_DIR, pmu, "format", field)) as f:
            text = f.read().strip()
    except OSError:
        return None
    m = re.fullmatch(r"(config\d?):(\d+)(?:-\d+)?", text)
    return (m.group(1), int(m.group(2))) if m else None


def sanitize_event_name(text: str) -> str:
    """A tracefs event name: only [A-Za-z0-9_] survive (BCC replaces the rest with '_')."""
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


class LegacyProbeEvent:
    """A dynamic event created through ``kprobe_events``/``uprobe_events``.

    ``close`` removes the line again; the event must have no perf fds open,
    which the owning link guarantees by closing them first.
    """

    def __init__(self, events_file: str, prefix: str, name: str, target: str) -> None:
        """``prefix`` is 'p', 'r' or 'r<maxactive>'; ``target`` is 'sym+off' or 'path:0xoff'."""
        self.events_file = events_file
        self.name = name
        self.group = EVENT_GROUP
        self._path = os.path.join(tracefs_root(), events_file)
        self._removed = False
        line = f"{prefix}:{self.group}/{name} {target}"
        try:
            _append(self._path, line)
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                # A previous run with this name died without cleaning up: replace it.
                _append(self._path, f"-:{self.group}/{name}")
                _append(self._path, line)
            else:
                raise AttachError(f"cannot create {events_file} entry '{line}': "
                                  f"{os.strerror(exc.errno or 0)}") from exc
        log.debug("%s: added '%s'", events_file, line)

    def event_id(self) -> int:
        return tracepoint_id(self.group, self.name)

    def close(self) -> None:
        if self._removed:
            return
        self._removed = True
        try:
            _append(self._path, f"-:{self.group}/{self.name}")
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                log.warning("cannot remove %s/%s from %s: %s", self.group, self.name,
                            self.events_file, os.strerror(exc.errno or 0))


def _append(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    try:
        os.write(fd, line.encode() + b"\n")
    finally:
        os.close(fd)
