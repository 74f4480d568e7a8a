"""build(): compile once, then warm starts from the cache without libclang or clang."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bccless.compile import build
from bccless.errors import CacheError

HELLO = """#include <uapi/linux/ptrace.h>
BPF_HASH(counts, u32);
int hello(void *ctx)
{
    u32 pid = bpf_get_current_pid_tgid();
    counts.increment(pid);
    bpf_trace_printk("hi %d\\n", pid);
    return 0;
}
"""


def test_compile_once_then_cached(env):
    cache, header = env
    first = build(HELLO, filename="hello.c", cache=cache, vmlinux_h=header)
    assert not first.from_cache and first.object.startswith(b"\x7fELF")
    assert [m["name"] for m in first.metadata["maps"]] == ["counts"]
    second = build(HELLO, filename="hello.c", cache=cache, vmlinux_h=header)
    assert second.from_cache and second.object == first.object and second.key == first.key


def test_warm_start_imports_no_libclang(env):
    cache, header = env
    build(HELLO, filename="hello.c", cache=cache, vmlinux_h=header)
    code = ("import sys, json; from bccless.compile import build; from bccless.cache import ObjectCache;"
            f"r = build({HELLO!r}, filename='hello.c', cache=ObjectCache({cache.root!r}));"
            "print(json.dumps([r.from_cache, 'clang.cindex' in sys.modules, 'subprocess' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "BCCLESS_CLANG": "/nonexistent/clang"})
    assert json.loads(out.stdout) == [True, False, False]


def test_tampered_entry_is_rebuilt_or_refused(env):
    cache, header = env
    first = build(HELLO, filename="hello.c", cache=cache, vmlinux_h=header)
    path = os.path.join(cache.root, "objects", first.key[:2], first.key + ".bce")
    data = bytearray(open(path, "rb").read())
    data[200] ^= 0x40
    open(path, "wb").write(data)
    os.environ["BCCLESS_CLANG"] = "/nonexistent/clang"
    try:
        with pytest.raises(CacheError, match="no compiler available"):
            build(HELLO, filename="hello.c", cache=cache, vmlinux_h=header)
    finally:
        del os.environ["BCCLESS_CLANG"]
    again = build(HELLO, filename="hello.c", cache=cache, vmlinux_h=header)
    assert not again.from_cache and again.object == first.object
    assert build(HELLO, filename="hello.c", cache=cache, vmlinux_h=header).from_cache


def test_changed_tracepoint_format_rebuilds(env):
    cache, header = env
    fmt = open(os.path.join(os.path.dirname(__file__), os.pardir, "data", "bcc_translate",
                            "formats", "sched_sched_process_exec.format")).read()
    text = "TRACEPOINT_PROBE(sched, sched_process_exec) { return args->pid == 1; }\n"
    first = build(text, filename="t.c", cache=cache, vmlinux_h=header,
                  tracepoint_formats=lambda c, e: fmt)
    assert build(text, filename="t.c", cache=cache, vmlinux_h=header,
                 tracepoint_formats=lambda c, e: fmt).from_cache
    moved = fmt.replace("offset:12;", "offset:20;").replace("offset:16;", "offset:24;")
    second = build(text, filename="t.c", cache=cache, vmlinux_h=header,
                   tracepoint_formats=lambda c, e: moved)
    assert not second.from_cache and second.key != first.key
