"""BCC programs translate, compile with clang -target bpf, and have the expected shape.

Each program in tests/data/bcc_translate is translated against the running
kernel's vmlinux.h, compiled, and checked structurally: ELF sections (one per
program), .maps definitions with BCC's map types, key/value sizes and
max_entries, and the event / tracepoint structs in the object's BTF.  As root
with bpffs mounted, the objects are also loaded through libbpf (bpftool) so
the kernel verifier accepts the CO-RE reads the translator inserted.
"""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from bccless.bcc.translate import translate
from bccless.compile import compile_c

from .conftest import data_path, read_format
from .objinfo import BTFView, sections

# map name -> (BPF_MAP_TYPE_ value, max_entries, key size, value size)
HASH, ARRAY, PERF, PERCPU_HASH, PERCPU_ARRAY, STACK_TRACE = 1, 2, 4, 5, 6, 7
LRU_HASH, LPM_TRIE, QUEUE, STACK, RINGBUF = 9, 11, 22, 23, 27

CASES = {
    "hello.c": {"sections": ["bccless/hello"], "maps": {}},
    "tp_exec.c": {
        "sections": ["tracepoint/sched/sched_process_exec", "tracepoint/syscalls/sys_enter_openat"],
        "maps": {"events": (PERF, None, 4, 4)},
        "event": ("events", "event", 4 + 16 + 64),
    },
    "hist.c": {
        "sections": ["bccless/do_entry", "bccless/do_return"],
        "maps": {"start": (HASH, 10240, 4, 8), "dist": (ARRAY, 64, 4, 8),
                 "dist_by_pid": (HASH, 128, 4, 8), "totals": (ARRAY, 4, 4, 8),
                 "cpu_counts": (PERCPU_ARRAY, 2, 4, 4)},
    },
    "ringbuf.c": {
        "sections": ["raw_tracepoint/sched_switch"],
        "maps": {"buffer": (RINGBUF, 8 * 4096, None, None), "copies": (RINGBUF, 4096, None, None)},
        "event": ("buffer", "data_t", 32),
    },
    "stack.c": {
        "sections": ["bccless/on_event"],
        "maps": {"counts": (HASH, 4096, 4 + 4 + 4 + 16, 8), "stack_traces": (STACK_TRACE, 1024, 4, 127 * 8)},
    },
    "lpm_queue.c": {
        "sections": ["bccless/tick"],
        "maps": {"routes": (LPM_TRIE, 128, 8, 8), "pending": (QUEUE, 64, None, 16),
                 "undo": (STACK, 16, None, 4), "recent": (LRU_HASH, 512, 4, 8),
                 "per_cpu": (PERCPU_HASH, 10240, 4, 4)},
    },
    "uprobe.c": {"sections": ["bccless/probe_call", "bccless/probe_ret"],
                 "maps": {"sizes": (HASH, 10240, 4, 8)}},
    "kprobe_sock.c": {
        "sections": ["kprobe/tcp_v4_connect", "kretprobe/tcp_v4_connect", "bccless/syscall__execve"],
        "maps": {"conns": (PERF, None, 4, 4)},
        "event": ("conns", "conn_t", 16),
    },
}


@pytest.fixture(scope="module")
def built(tmp_path_factory, vmlinux_h, clang):
    """name -> (Translation, object path), compiled once for the module."""
    out = tmp_path_factory.mktemp("objs")
    result = {}
    for name in CASES:
        with open(data_path(name)) as fh:
            text = fh.read()
        tr = translate(text, filename=data_path(name), tracepoint_formats=read_format,
                       vmlinux_h=vmlinux_h)
        obj = compile_c(tr.text, filename=data_path(name), vmlinux_h=vmlinux_h, clang=clang,
                        user_text=text)
        path = out / (name + ".o")
        path.write_bytes(obj)
        result[name] = (tr, str(path))
    return result



@pytest.mark.parametrize("name", sorted(CASES))
def test_sections(built, llvm_objdump, name):
    tr, path = built[name]
    secs = sections(llvm_objdump, path)
    for expected in CASES[name]["sections"]:
        assert expected in secs, f"{name}: no section {expected} in {secs}"
    assert "license" in secs and ".BTF" in secs and ".BTF.ext" in secs
    assert sorted(p.section for p in tr.programs) == sorted(CASES[name]["sections"])


@pytest.mark.parametrize("name", sorted(CASES))
def test_maps(built, bpftool, name):
    tr, path = built[name]
    expected = CASES[name]["maps"]
    got = BTFView(bpftool, path).maps() if expected else {}
    assert set(got) == set(expected)
    assert {m.name for m in tr.maps} == set(expected)
    for mname, (mtype, max_entries, ksize, vsize) in expected.items():
        info = got[mname]
        assert info["type"] == mtype, (mname, info)
        assert info.get("max_entries") == max_entries, (mname, info)
        assert info.get("key_size") == ksize, (mname, info)
        assert info.get("value_size") == vsize, (mname, info)


@pytest.mark.parametrize("name", [n for n in sorted(CASES) if "event" in CASES[n]])
def test_event_struct_in_btf(built, bpftool, name):
    tr, path = built[name]
    mapname, struct, size = CASES[name]["event"]
    assert tr.events[mapname].type_name == f"struct {struct}"
    assert BTFView(bpftool, path).by_name(struct, "STRUCT")["size"] == size


def test_tracepoint_args_layout(built, bpftool):
    tr, path = built["tp_exec.c"]
    view = BTFView(bpftool, path)
    exec_args = view.by_name("tracepoint__sched__sched_process_exec", "STRUCT")
    offsets = {m["name"]: m["bits_offset"] // 8 for m in exec_args["members"]}
    assert offsets == {"__do_not_use__": 0, "data_loc_filename": 8, "pid": 12, "old_pid": 16}
    openat = view.by_name("tracepoint__syscalls__sys_enter_openat", "STRUCT")
    offsets = {m["name"]: m["bits_offset"] // 8 for m in openat["members"]}
    assert offsets["__syscall_nr"] == 8 and offsets["dfd"] == 16
    assert offsets["filename"] == 24 and offsets["flags"] == 32 and offsets["mode"] == 40
    meta = {t["event"]: t for t in tr.metadata()["tracepoints"]}
    assert meta["sched_process_exec"]["fields"][0] == {
        "name": "filename", "offset": 8, "size": 4, "signed": False, "data_loc": True, "type": "char[]"}


def test_auto_attach_metadata(built):
    tr, _ = built["kprobe_sock.c"]
    progs = {p.name: p for p in tr.programs}
    kp = progs["kprobe__tcp_v4_connect"]
    assert (kp.kind, kp.target, kp.auto_attach, kp.params) == ("kprobe", "tcp_v4_connect", True, ["sk"])
    assert progs["syscall__execve"].kind == "syscall" and not progs["syscall__execve"].auto_attach
    assert progs["kretprobe__tcp_v4_connect"].ctx_type == "struct pt_regs *"
    raw = built["ringbuf.c"][0].programs[0]
    assert (raw.kind, raw.target, raw.auto_attach) == ("raw_tracepoint", "sched_switch", True)


def _root_with_bpffs() -> bool:
    return os.geteuid() == 0 and os.path.isdir("/sys/fs/bpf") and os.path.ismount("/sys/fs/bpf")


@pytest.mark.skipif(not _root_with_bpffs(), reason="loading needs root and bpffs at /sys/fs/bpf")
@pytest.mark.parametrize("name", sorted(CASES))
def test_kernel_accepts(built, bpftool, name):
    """libbpf (through bpftool) loads every program: the verifier accepts the CO-RE reads."""
    _, path = built[name]
    pin = f"/sys/fs/bpf/bccless_test_{os.getpid()}_{name.replace('.', '_')}"
    cmd = [bpftool, "prog", "loadall", path, pin]
    if any(s.startswith("bccless/") for s in CASES[name]["sections"]):
        cmd += ["type", "kprobe"]   # BCC decides the type at load time; kprobe is what they are
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]
    finally:
        shutil.rmtree(pin, ignore_errors=True)
