"""Real CO-RE accesses relocated against five real kernels' BTF, compared
instruction by instruction with libbpf 1.1 given the same BTF as
``btf_custom_path``."""
from __future__ import annotations

import lzma
from pathlib import Path

import pytest

from core_helpers import CLANG, DATA, Obj, compile_c, insns, libbpf_or_none, relocate, values
from bccless.btf.parse import BTF

KERNELS = sorted((DATA / "btf").glob("*.btf.xz"))

PROG = r"""
struct task_struct {
    int tgid;
    struct task_struct *real_parent;
    unsigned int mm_cid;
    unsigned in_execve:1;
} PAI;
enum bpf_prog_type { BPF_PROG_TYPE_NETFILTER = 32 };
long o[16];
SEC("socket") int prog(struct task_struct *t) {
    o[0] = t->tgid;
    o[1] = (long)t->real_parent;
    o[2] = F_EXISTS(t->mm_cid);
    o[3] = F_OFF(t->in_execve); o[4] = F_SZ(t->in_execve);
    o[5] = F_LSHIFT(t->in_execve); o[6] = F_RSHIFT(t->in_execve);
    o[7] = E_EXISTS(enum bpf_prog_type, BPF_PROG_TYPE_NETFILTER);
    o[8] = E_VALUE(enum bpf_prog_type, BPF_PROG_TYPE_NETFILTER);
    o[9] = T_SIZE(struct task_struct);
    return 0;
}
"""

# BPF_PROG_TYPE_NETFILTER and an integer task_struct.mm_cid arrived in 6.4; by 7.2
# mm_cid has become a struct, which an int access does not match
NETFILTER = {"debian-5.10": 0, "debian-6.1.": 0, "debian-6.12": 1, "debian-7.2.": 1,
             "host-6.18.4": 1}
INT_MM_CID = dict(NETFILTER, **{"debian-7.2.": 0})

pytestmark = [
    pytest.mark.skipif(CLANG is None, reason="clang not installed: cannot build BPF"),
    pytest.mark.skipif(not KERNELS, reason="tests/data/btf/*.btf.xz missing"),
]


@pytest.fixture(scope="module")
def prog(tmp_path_factory) -> Path:
    return compile_c(tmp_path_factory.mktemp("kern"), "kernel_prog", PROG)


@pytest.mark.parametrize("btf_xz", KERNELS, ids=[k.name.split(".btf")[0] for k in KERNELS])
def test_kernel_btf_matches_libbpf(prog, btf_xz, tmp_path):
    raw = lzma.decompress(btf_xz.read_bytes())
    target = BTF.from_bytes(raw, source=str(btf_xz))
    code, results = relocate(Obj(prog), target, target_desc=btf_xz.name)
    got = values(results)
    new = NETFILTER[btf_xz.name[:11]]
    assert got["field_exists struct task_struct.mm_cid"] == INT_MM_CID[btf_xz.name[:11]]
    assert got["enumval_exists enum bpf_prog_type::BPF_PROG_TYPE_NETFILTER = 32"] == new
    assert got["enumval_value enum bpf_prog_type::BPF_PROG_TYPE_NETFILTER = 32"] == (
        32 if new else "poison")
    assert 1000 < got["type_size struct task_struct"] < 20000
    assert 0 < got["byte_off struct task_struct.tgid"] < got["type_size struct task_struct"]

    libbpf = libbpf_or_none()
    if libbpf is None:
        pytest.skip("libbpf.so.1 not loadable: no oracle to compare with")
    (tmp_path / "k.btf").write_bytes(raw)
    _err, progs, lines = libbpf.relocate(prog, tmp_path / "k.btf")
    theirs, ours = insns(progs["socket"]), insns(code["socket"])
    orig = insns(Obj(prog).code["socket"])
    for r in results:
        span = 2 if orig[r.insn_idx][0] == 0x18 else 1  # LD_IMM64: both halves
        assert ours[r.insn_idx:r.insn_idx + span] == theirs[r.insn_idx:r.insn_idx + span], \
            (r.local_spec, r.description)
