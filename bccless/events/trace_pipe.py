"""Reading bpf_trace_printk output from tracefs ``trace_pipe``.

``trace_pipe`` is a consuming, system-wide stream: every reader steals lines
from every other.  Lines look like::

    <task, right-aligned to 16>-<pid> [<cpu>] <flags> <timestamp>: <symbol>: <message>

and BCC's ``trace_fields`` splits them into a 6-tuple; ``parse_trace_line``
reproduces that split (including its choice to skip lines it cannot split).
"""
from __future__ import annotations

import os
from typing import Optional, Tuple, Union

from ..attach.tracefs import tracefs_root

TraceFields = Tuple[Union[bytes, str, None], Optional[int], Optional[int],
                    Union[bytes, str, None], Optional[float], Union[bytes, str, None]]

_UNKNOWN: TraceFields = ("Unknown", 0, 0, "Unknown", 0.0, "Unknown")


def parse_trace_line(line: bytes) -> Optional[TraceFields]:
    """(task, pid, cpu, flags, ts, msg) of a trace_pipe line, or None when it is to be skipped.

    Skipped: "CPU:N [LOST ...]" notices and lines whose header does not split
    into exactly pid/cpu/flags/timestamp.  A header that splits but does not
    convert gives BCC's ("Unknown", 0, 0, "Unknown", 0.0, "Unknown").
    """
    line = line.rstrip(b"\n")
    if line.startswith(b"CPU:"):
        return None
    task = line[:16].lstrip()
    rest = line[17:]
    ts_end = rest.find(b":")
    header = rest[:ts_end].split()
    if len(header) != 4:
        return None
    pid, cpu, flags, ts = header
    after = rest[ts_end + 1:]
    msg = after[after.find(b":") + 2:]
    try:
        return (task, int(pid), int(cpu[1:-1]), flags, float(ts), msg)
    except ValueError:
        return _UNKNOWN


class TracePipe:
    """A lazily opened ``trace_pipe`` (tracefs is mounted on first use if needed)."""

    def __init__(self, nonblocking: bool = False) -> None:
        path = os.path.join(tracefs_root(), "trace_pipe")
        flags = os.O_RDONLY | os.O_CLOEXEC | (os.O_NONBLOCK if nonblocking else 0)
        self._fd = os.open(path, flags)
        self.file = os.fdopen(self._fd, "rb", buffering=0 if nonblocking else -1)
        self.nonblocking = nonblocking

    def readline(self) -> Optional[bytes]:
        """One line without its trailing whitespace; None when none is ready (non-blocking)."""
        try:
            line = self.file.readline(1024)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            return None
        if not line:
            return None
        return line.rstrip()

    def fields(self) -> TraceFields:
        """The next parseable line, split (BCC trace_fields); (None,)*6 if none is ready."""
        while True:
            line = self.readline()
            if line is None:
                if self.nonblocking:
                    return (None,) * 6
                continue
            parsed = parse_trace_line(line)
            if parsed is not None:
                return parsed

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "TracePipe":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
