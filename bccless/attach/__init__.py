"""Attaching loaded programs to the kernel: every attach returns a :class:`Link`.

Names are resolved lazily so that ``import bccless.attach`` costs nothing
until an attach function is used (tools import this on their start path).
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Link": "link", "MultiLink": "link",
    "attach_tracepoint": "tracepoint", "attach_raw_tracepoint": "tracepoint",
    "attach_btf": "tracepoint", "attach_iter": "tracepoint", "open_iter": "tracepoint",
    "link_perf_event": "tracepoint",
    "attach_kprobe": "kprobe", "attach_ksyscall": "kprobe", "attach_kprobe_multi": "kprobe",
    "kprobe_support": "kprobe", "ksyscall_function": "kprobe",
    "attach_uprobe": "uprobe", "attach_uprobe_offset": "uprobe",
    "attach_uprobe_regex": "uprobe", "attach_uprobe_multi": "uprobe",
    "attach_usdt": "usdt", "parse_notes": "usdt", "find_probes": "usdt",
    "attach_perf_event": "perf_event",
    "attach_xdp": "net", "attach_tc": "net", "attach_socket_filter": "net",
    "attach_cgroup": "net",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bccless.attach' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
