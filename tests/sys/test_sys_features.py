"""Feature probes on this host: results must match what the machine can do
(see docs: no kprobes, no fentry/LSM; tracepoints, uprobes, ring buffers work)."""
from __future__ import annotations

import errno
import os
import resource

import pytest

from bccless.sys import bpf_consts as C
from bccless.sys import features as F
from bccless.sys.bpf_call import _CMD_NAMES
from sys_helpers import require_root


@pytest.fixture(autouse=True)
def root():
    require_root()


def _kernel_has(path: str) -> bool:
    return os.path.exists(path)


def test_probe_object():
    ok, missing = F.Probe(True), F.Probe(False, errno.EPERM, "why")
    assert ok and not missing and missing.errno == errno.EPERM and "why" in repr(missing)


def test_pmus_match_sysfs():
    assert bool(F.kprobe_pmu()) == _kernel_has("/sys/bus/event_source/devices/kprobe/type")
    assert bool(F.uprobe_pmu()) == _kernel_has("/sys/bus/event_source/devices/uprobe/type")


def test_this_host():
    """The reference machine: kprobes and trampolines absent, the rest present."""
    if not os.uname().release.startswith("6.18.44") or _kernel_has("/sys/bus/event_source/devices/kprobe"):
        pytest.skip("expectations are those of the reference 6.18.44 host without kprobes")
    assert not F.kprobe_pmu() and F.kprobe_pmu().errno == errno.ENOENT
    assert not F.kprobe_events_file()
    assert F.uprobe_pmu() and F.ringbuf() and F.perf_link() and F.bpf_cookie()
    fentry = F.fentry()
    assert not fentry and fentry.errno == errno.EPERM
    assert not F.lsm()
    assert F.has_prog_type(C.BPF_PROG_TYPE_TRACEPOINT)
    assert F.has_prog_type(C.BPF_PROG_TYPE_KPROBE)      # loads, cannot attach
    assert F.has_prog_type(C.BPF_PROG_TYPE_TRACING)     # tp_btf works
    assert not F.has_prog_type(C.BPF_PROG_TYPE_LSM)
    assert F.syscall_wrapper() and F.syscall_wrapper().reason == "__x64_"


def test_modern_kernel_features():
    # every feature below predates 6.1, the oldest kernel bccless is run on in CI
    for probe in (F.btf, F.btf_func, F.btf_global_func, F.btf_datasec, F.btf_float,
                  F.btf_decl_tag, F.btf_type_tag, F.btf_enum64, F.prog_name, F.global_data,
                  F.array_mmap, F.exp_attach_type, F.probe_read_kernel, F.batch_ops,
                  F.memcg_account):
        assert probe(), probe.__name__
    assert F.btf_features().complete()


def test_map_and_prog_types():
    for t in (C.BPF_MAP_TYPE_HASH, C.BPF_MAP_TYPE_PERCPU_ARRAY, C.BPF_MAP_TYPE_LPM_TRIE,
              C.BPF_MAP_TYPE_QUEUE, C.BPF_MAP_TYPE_RINGBUF, C.BPF_MAP_TYPE_HASH_OF_MAPS,
              C.BPF_MAP_TYPE_CGROUP_STORAGE, C.BPF_MAP_TYPE_TASK_STORAGE,
              C.BPF_MAP_TYPE_STRUCT_OPS):
        assert F.has_map_type(t), C.const_name("BPF_MAP_TYPE_", t)
    unknown = F.has_map_type(1000)
    assert not unknown and unknown.errno == errno.EINVAL
    assert F.has_prog_type(C.BPF_PROG_TYPE_SOCKET_FILTER)
    assert F.has_prog_type(C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR)   # needs expected_attach_type
    assert not F.has_prog_type(1000)


def test_helpers():
    assert F.has_helper(C.BPF_PROG_TYPE_TRACEPOINT, C.BPF_FUNC_get_current_pid_tgid)
    assert F.has_helper(C.BPF_PROG_TYPE_KPROBE, C.BPF_FUNC_probe_read_kernel)
    # skb helpers are not for tracing programs; an unknown id is nowhere
    assert not F.has_helper(C.BPF_PROG_TYPE_TRACEPOINT, C.BPF_FUNC_skb_store_bytes)
    missing = F.has_helper(C.BPF_PROG_TYPE_SOCKET_FILTER, 100000)
    assert not missing and "100000" in missing.reason


def test_probes_are_cached():
    assert F.ringbuf() is F.ringbuf()
    assert F.has_map_type(C.BPF_MAP_TYPE_HASH) is F.has_map_type(C.BPF_MAP_TYPE_HASH)


def test_memlock_bump_is_noop_with_memcg():
    before = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    assert F.bump_memlock_rlimit() is False
    assert resource.getrlimit(resource.RLIMIT_MEMLOCK) == before


def test_command_names_match_uapi():
    assert all(getattr(C, name) == i for i, name in enumerate(_CMD_NAMES))
