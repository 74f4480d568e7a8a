"""USDT: argument spec parsing, .note.stapsdt reading, attaching with semaphores."""
from __future__ import annotations

import os
import subprocess

import pytest

import asm_helpers as A
from bccless.attach import usdt
from bccless.errors import AttachError
from bccless.sys import bpf_consts as C

PYTHON = "/usr/bin/python3.11"
POSTGRES = "/usr/lib/postgresql/15/bin/postgres"


@pytest.mark.parametrize("spec, expect", [
    ("-4@%edi", dict(size=4, signed=True, kind="reg", reg="di")),
    ("8@%rax", dict(size=8, signed=False, kind="reg", reg="ax")),
    ("1@%r12b", dict(size=1, signed=False, kind="reg", reg="r12")),
    ("-4@$5", dict(size=4, signed=True, kind="const", offset=5)),
    ("8@$-0x10", dict(size=8, kind="const", offset=-16)),
    ("8@-8(%rbp)", dict(size=8, kind="mem", reg="bp", offset=-8)),
    ("-4@112(%rsp)", dict(size=4, signed=True, kind="mem", reg="sp", offset=112)),
    ("8@(%rdi)", dict(size=8, kind="mem", reg="di", offset=0)),
    ("8@8(%rdx,%rcx,8)", dict(size=8, kind="mem", reg="dx", offset=8, index="cx", scale=8)),
    ("-4@40+CheckpointStats(%rip)", dict(kind="mem", reg="ip", offset=40, ident="CheckpointStats")),
    ("-4@NBuffers(%rip)", dict(kind="mem", reg="ip", offset=0, ident="NBuffers")),
])
def test_parse_arg(spec, expect):
    arg = usdt.parse_arg(spec)
    for k, v in expect.items():
        assert getattr(arg, k) == v, (spec, k)
    assert arg.spec == spec


def test_reg_offsets_are_pt_regs_layout():
    assert usdt.parse_arg("8@%rdi").reg_offset == 112
    assert usdt.parse_arg("8@%rax").reg_offset == 80
    assert usdt.parse_arg("8@%r15").reg_offset == 0
    assert usdt.parse_arg("8@%rsp").reg_offset == 152


@pytest.mark.parametrize("bad", ["8@%xmm0", "3@%rax", "%rax", "8@foo bar"])
def test_parse_arg_errors(bad):
    with pytest.raises(AttachError):
        usdt.parse_arg(bad, context="ctx")


def _need(path):
    if not os.path.exists(path):
        pytest.skip(f"{path} not installed (scripts/setup.sh installs it)")


def test_python_notes_match_readelf():
    _need(PYTHON)
    probes = usdt.parse_notes(PYTHON)
    entry = [p for p in probes if p.full_name == "python:function__entry"]
    assert len(entry) >= 1
    out = subprocess.run(["readelf", "-n", PYTHON], capture_output=True, text=True).stdout
    blocks = out.split("Provider: ")[1:]
    assert len(blocks) == len(probes)
    for block, probe in zip(blocks, probes):
        lines = block.splitlines()
        assert lines[0].strip() == probe.provider
        assert lines[1].split(":", 1)[1].strip() == probe.name
        loc = dict(part.strip().split(": ") for part in lines[2].strip().split(", "))
        assert int(loc["Location"], 16) == probe.pc
        assert int(loc["Semaphore"], 16) == probe.semaphore
        assert lines[3].split(":", 1)[1].strip() == probe.args_str
    img = usdt.elf_image(PYTHON)
    for p in probes:
        assert p.semaphore and p.semaphore_offset == img.vaddr_to_offset(p.semaphore)
        assert not p.args_error


def test_postgres_notes_all_parse():
    _need(POSTGRES)
    probes = usdt.parse_notes(POSTGRES)
    assert len(probes) > 50
    assert all(not p.args_error for p in probes)
    assert all(p.semaphore_offset for p in probes)


def test_unknown_probe():
    _need(PYTHON)
    with pytest.raises(AttachError, match="no USDT probe python:nonexistent"):
        usdt.find_probes(PYTHON, "python", "nonexistent")


CHILD = """
import sys
sys.stdin.readline()
def bccless_fn(_):
    pass
# Debian's 3.11 build never reaches its function__entry site; function__return fires
# once per Python function return.
list(map(bccless_fn, range(200)))
print("done", flush=True)
"""


@pytest.mark.parametrize("scoped", [True, False])
def test_attach_python_function_return(kernel, scoped):
    """function__return is semaphore-gated: it fires only if the kernel bumped the semaphore."""
    _need(PYTHON)
    counts = kernel.array()
    child = subprocess.Popen([PYTHON, "-S", "-c", CHILD], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        # Filter on the child's tgid in both modes: binary-wide probes also see other pythons.
        prog = kernel.prog(C.BPF_PROG_TYPE_KPROBE, A.prog(
            A.call(A.GET_CURRENT_PID_TGID), A.rsh64_imm(A.R0, 32),
            A.jeq_imm(A.R0, child.pid, 2), A.mov64_imm(A.R0, 0), A.exit_(),
        ) + A.count_into_array(counts))
        links = usdt.attach_usdt(prog, PYTHON, "python", "function__return",
                                 pid=child.pid if scoped else None, prog_name="usdt_test")
        info = links.links[0].info()
        assert info["ref_ctr_offset"] == usdt.find_probes(PYTHON, "python", "function__return")[1][0].semaphore_offset
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "done"
        child.wait(10)
        links.close()
        assert links.closed
        assert kernel.read_u64(counts) >= 200
    finally:
        child.kill()
        child.wait()
