"""Reading tracefs format files and fingerprinting them.

Split from :mod:`tracepoints` because a warm start only has to check that
the tracepoint layouts a cached object was built against are still the
kernel's, without the struct-generation machinery.
"""
from __future__ import annotations

import hashlib
import os
from typing import Callable

from ..errors import CompileError

TRACEFS_ROOTS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")

FormatReader = Callable[[str, str], str]


def read_format(category: str, event: str) -> str:
    """Read ``events/<category>/<event>/format`` from the mounted tracefs."""
    for root in TRACEFS_ROOTS:
        path = os.path.join(root, "events", category, event, "format")
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                return fh.read()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise CompileError(f"tracepoint {category}:{event}: cannot read {path}: {exc}") from exc
    mounted = [r for r in TRACEFS_ROOTS if os.path.isdir(os.path.join(r, "events"))]
    if not mounted:
        raise CompileError(f"tracepoint {category}:{event}: tracefs is not mounted "
                           "(mount -t tracefs nodev /sys/kernel/tracing)")
    raise CompileError(f"tracepoint {category}:{event} does not exist on this kernel "
                       f"(no {os.path.join(mounted[0], 'events', category, event, 'format')})")


def format_digest(text: str) -> str:
    """The digest recorded in metadata to detect a different kernel's layout."""
    return hashlib.sha256(text.encode()).hexdigest()
