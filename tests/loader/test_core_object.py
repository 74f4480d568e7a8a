"""(a) The kernel-matrix Appendix D object: CO-RE reads checked against the
running process, tracepoint and tp_btf agreeing; (e) the same objects under
libbpf (bpftool prog loadall) give the same xlated program tags."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from bccless import BPFObject
from bccless.sys import bpf, bpf_consts as C

from conftest import BPFTOOL
from loader_helpers import u32, u64


def _read_out(obj) -> list:
    out = obj.maps["out"]
    return [u64(out[u32(i)]) for i in range(12)]


def test_core_object_reads_match_process(compile_obj, tracefs):
    path = compile_obj("core")
    with BPFObject.open(path) as obj:
        assert list(obj.programs) == ["tp_probe", "btf_probe"]
        tp, btfp = obj.programs["tp_probe"], obj.progs.btf_probe
        assert tp.prog_type == C.BPF_PROG_TYPE_TRACEPOINT
        assert tp.attach_target == "syscalls/sys_enter_getppid"
        assert btfp.prog_type == C.BPF_PROG_TYPE_TRACING
        assert btfp.expected_attach_type == C.BPF_TRACE_RAW_TP
        obj.load()
        assert tp.fd >= 0 and btfp.fd >= 0
        info = btfp.info()
        assert info["attach_btf_id"] > 0          # resolved btf_trace_sys_enter
        assert info["nr_line_info"] > 0 and info["btf_id"] > 0
        out = obj.maps.out
        assert out.max_entries == 16 and out.value_size == 8
        out[u32(15)] = os.getpid().to_bytes(8, "little")
        links = obj.attach()
        assert sorted(link.kind for link in links) == ["tp_btf", "tracepoint"]
        os.getppid()
        vals = _read_out(obj)
    pid, ppid = os.getpid(), os.getppid()
    assert vals[0] == pid and vals[1] == ppid
    assert vals[8] == pid and vals[9] == ppid      # tp_btf agrees with the tracepoint
    assert vals[2] == 1                            # 6.18 has task_struct::mm_cid
    assert vals[4] == 1                            # BPF_PROG_TYPE_NETFILTER exists
    assert vals[6] == vals[10]                     # probed and direct bitfield reads agree
    from bccless.btf.sources import load_kernel_btf
    from bccless.btf.types import Kind

    kbtf = load_kernel_btf()
    task = kbtf[kbtf.find("task_struct", Kind.STRUCT)[0]]
    assert vals[5] == task.size
    tgid = next(m for m in task.members if m.name == "tgid")
    assert vals[7] == tgid.bit_offset // 8
    with open(f"/proc/{pid}/stat") as f:
        prio = int(f.read().rsplit(")", 1)[1].split()[15])   # field 18: priority
    assert vals[11] == prio + 100                  # kernel prio = 100 + nice-based priority


def _libbpf_tags(obj_path: str, pin_dir: str) -> dict:
    """{program name: tag} of the object loaded by libbpf through bpftool."""
    subprocess.run([BPFTOOL, "prog", "loadall", obj_path, pin_dir], check=True,
                   capture_output=True)
    tags = {}
    try:
        for name in os.listdir(pin_dir):
            fd = bpf.obj_get(os.path.join(pin_dir, name))
            try:
                info = bpf.obj_get_info_by_fd(fd, "prog")
                tags[info["name"]] = info["tag"]
            finally:
                os.close(fd)
    finally:
        shutil.rmtree(pin_dir, ignore_errors=True)
    return tags


@pytest.mark.parametrize("name", ["core", "globals", "mim"])
def test_xlated_tags_match_libbpf(compile_obj, bpffs, name):
    if BPFTOOL is None:
        pytest.skip("bpftool is not installed: no libbpf loader to compare with")
    path = compile_obj(name)
    pin_dir = os.path.join(bpffs, f"bccless_test_{os.getpid()}_{name}")
    theirs = _libbpf_tags(path, pin_dir)
    with BPFObject.open(path) as obj:
        obj.load()
        ours = {p.name[:15]: p.info()["tag"] for p in obj.programs.values()}
    assert theirs and ours == theirs
