"""Discovery helpers, symbols and the small bcc modules (utils, syscall, tcp,
containers), compared with real BCC 0.26 where it is installed."""
import argparse
import io
import json
import os
import subprocess
import time

import pytest

from bcc import BPF
from bcc.containers import filter_by_containers
from bcc.syscall import syscall_name
from bcc.utils import get_online_cpus, get_possible_cpus, printb

REAL_BCC = os.path.exists("/usr/lib/python3/dist-packages/bcc/__init__.py")
needs_real_bcc = pytest.mark.skipif(not REAL_BCC, reason="real BCC (python3-bpfcc) is not installed")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="loading BPF programs needs root")


def _real(code: str):
    out = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out)


def _kallsyms(name: str) -> int:
    with open("/proc/kallsyms") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[2] == name and parts[1] in "tT":
                return int(parts[0], 16)
    return -1


def test_kernel_symbols():
    addr = _kallsyms("__x64_sys_getppid")
    assert addr > 0
    assert BPF.ksymname("__x64_sys_getppid") == addr == BPF.ksymname(b"__x64_sys_getppid")
    assert BPF.ksymname("no_such_kernel_function_xyz") == -1
    assert BPF.ksym(addr) == b"__x64_sys_getppid"
    assert BPF.ksym(addr + 3, show_offset=True) == b"__x64_sys_getppid+0x3"
    assert BPF.ksym(addr, show_module=True) == b"__x64_sys_getppid [kernel]"
    assert BPF.sym(addr, -1) == b"__x64_sys_getppid"
    assert BPF.sym(0x10, os.getpid()) == b"[unknown]"


def test_user_symbols_of_a_process(target, uprobe_target):
    from bccless.attach.elfsym import elf_image
    img = elf_image(uprobe_target)
    with open("/proc/%d/maps" % target.pid) as f:
        base = min(int(line.split("-")[0], 16) for line in f if uprobe_target in line)
    square = img.symbols["square"].value
    assert BPF.sym(base + square, target.pid) == b"square"
    assert BPF.sym(base + square + 2, target.pid, show_offset=True, show_module=True) == \
        b"square+0x2 [uprobe_target]"


@needs_root
def test_syscall_names_and_prefix():
    b = BPF(text=b"int unused(void *ctx) { return 0; }")
    try:
        assert b.get_syscall_prefix() == b"__x64_sys_"
        assert b.get_syscall_fnname("getppid") == b"__x64_sys_getppid"
        assert b.get_syscall_fnname(b"clone") == b"__x64_sys_clone"
        assert b.fix_syscall_fnname(b"sys_clone") == b"__x64_sys_clone"
        assert b.num_open_kprobes() == b.num_open_uprobes() == b.num_open_tracepoints() == 0
    finally:
        b.cleanup()


def test_kernel_btf_queries():
    assert BPF.kernel_struct_has_field(b"task_struct", b"pid") == 1
    assert BPF.kernel_struct_has_field("task_struct", "no_such_field") == 0
    assert BPF.kernel_struct_has_field("no_such_struct_xyz", "pid") == -1
    assert BPF.kernel_struct_has_field("bpf_map_ops", "map_lookup_and_delete_batch") == 1
    # members of anonymous unions count (sk_buff's len lives in one)
    assert BPF.kernel_struct_has_field("sk_buff", "tstamp") == 1
    assert BPF.kernel_enum_has_val("bpf_attach_type", "BPF_MODIFY_RETURN") == 1
    assert BPF.kernel_enum_has_val("bpf_attach_type", "NO_SUCH_VALUE") == 0
    assert BPF.kernel_enum_has_val("no_such_enum_xyz", "X") == -1


def test_support_probes():
    assert BPF.support_raw_tracepoint() is True
    # this kernel has no fentry (docs/this-machine.md): kfunc support is probed, not assumed
    from bccless.sys import features
    assert BPF.support_kfunc() == bool(features.fentry())
    assert BPF.support_lsm() == bool(features.lsm())
    assert BPF.support_fmod_ret() == (BPF.support_kfunc() and
                                      BPF.kernel_enum_has_val("bpf_attach_type",
                                                              "BPF_MODIFY_RETURN") == 1)


def test_monotonic_time():
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    t = BPF.monotonic_time()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    assert isinstance(t, float) and before <= t <= after  # nanoseconds, as a float (BCC)


def test_printb_and_cpus():
    buf = io.BytesIO()
    printb(b"\xffraw bytes", file=buf)
    printb(b"no newline", file=buf, nl=0)
    assert buf.getvalue() == b"\xffraw bytes\nno newline"
    with open("/sys/devices/system/cpu/online") as f:
        text = f.read().strip()
    expected = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        expected.extend(range(int(lo), int(hi or lo) + 1))
    assert get_online_cpus() == expected
    assert set(get_online_cpus()) <= set(get_possible_cpus())


@needs_real_bcc
def test_utils_and_tcp_match_real_bcc():
    real = _real("import json\nfrom bcc.utils import get_online_cpus, get_possible_cpus\n"
                 "from bcc.tcp import tcpstate, flags2str\n"
                 "print(json.dumps([get_online_cpus(), get_possible_cpus(), "
                 "sorted(tcpstate.items()), [flags2str(f) for f in range(256)]]))")
    from bcc.tcp import flags2str, tcpstate
    ours = [get_online_cpus(), get_possible_cpus(), [list(kv) for kv in sorted(tcpstate.items())],
            [flags2str(f) for f in range(256)]]
    assert ours == real


@needs_real_bcc
def test_syscall_names_match_real_bcc():
    real = _real("import json\nfrom bcc.syscall import syscalls\n"
                 "print(json.dumps({n: v.decode() for n, v in syscalls.items()}))")
    real = {int(n): v.encode() for n, v in real.items()}
    assert len(real) > 300
    # every number BCC 0.26 knows has the same name; newer calls (clone3, ...) are
    # named by bccless where BCC 0.26 prints "[unknown: N]" (its table predates them)
    assert {n: syscall_name(n) for n in real} == real
    assert syscall_name(110) == b"getppid" and syscall_name(435) == b"clone3"
    assert syscall_name(9999) == b"[unknown: 9999]"


@needs_root
def test_filter_by_containers_without_maps_filters_nothing():
    args = argparse.Namespace(cgroupmap=None, mntnsmap=None)
    text = filter_by_containers(args) + r"""
    BPF_ARRAY(c, u64, 1);
    TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
        if (container_should_be_filtered())
            return 0;
        if ((bpf_get_current_pid_tgid() >> 32) == TARGET)
            c.increment(0);
        return 0;
    }
    """
    with BPF(text=text, cflags=["-DTARGET=%d" % os.getpid()]) as b:
        os.getppid()
        os.getppid()
        assert b["c"][0].value == 2


@needs_root
def test_filter_by_mount_namespace_map():
    """--mntnsmap: only tasks whose mount namespace is in the map are traced.

    The filter text tests LINUX_VERSION_CODE, which the drop-in defines for the
    running kernel as BCC's kernel headers do.  The map is filled through the
    table here (BCC would share it through its pin path)."""
    pin = "/sys/fs/bpf/bccless_test_mntns_%d" % os.getpid()
    text = filter_by_containers(argparse.Namespace(cgroupmap=None, mntnsmap=pin)) + r"""
    BPF_ARRAY(c, u64, 1);
    TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
        if (container_should_be_filtered())
            return 0;
        if ((bpf_get_current_pid_tgid() >> 32) == TARGET)
            c.increment(0);
        return 0;
    }
    """
    with BPF(text=text, cflags=["-DTARGET=%d" % os.getpid()]) as b:
        os.getppid()
        assert b["c"][0].value == 0                  # the set is empty: filtered out
        ns = b["mount_ns_set"]
        ns[ns.Key(os.stat("/proc/self/ns/mnt").st_ino)] = ns.Leaf(1)
        os.getppid()
        assert b["c"][0].value == 1


_STRCMP_CASES = [['STRCMP("foo", arg1) && STRCMP("ba", arg2)', False, False, ["arg2"], "", 3],
                 ['STRCMP("foo",arg1)', True, True, [], "x", 0],
                 ["arg1 > 0", False, False, [], "", 1]]


@needs_real_bcc
def test_strcmp_rewrite_matches_real_bcc():
    from bcc.utils import StrcmpRewrite
    real = _real("import json\nfrom bcc.utils import StrcmpRewrite\n"
                 "print(json.dumps([StrcmpRewrite.rewrite_expr(*c) for c in %r]))" % _STRCMP_CASES)
    assert [StrcmpRewrite.rewrite_expr(*c) for c in _STRCMP_CASES] == real


@needs_root
def test_strcmp_rewrite_compiles_and_matches_a_prefix(tmp_path):
    from bcc.utils import StrcmpRewrite
    r = StrcmpRewrite.rewrite_expr('STRCMP("%s", args->filename)' % tmp_path, False, True,
                                   [], "", 0)
    text = r["streq_functions"] + r"""
    BPF_ARRAY(hits, u64, 1);
    TRACEPOINT_PROBE(syscalls, sys_enter_openat) {
        if ((bpf_get_current_pid_tgid() >> 32) == TARGET && (%s))
            hits.increment(0);
        return 0;
    }
    """ % r["expr"]
    (tmp_path / "f").write_text("x")
    with BPF(text=text, cflags=["-DTARGET=%d" % os.getpid()]) as b:
        for path in (tmp_path / "f", "/etc/hostname", tmp_path / "f"):
            open(path).close()
        assert b["hits"][0].value == 2


@needs_real_bcc
def test_user_discovery_matches_real_bcc(uprobe_target):
    """Library/executable lookup and function enumeration (including a stripped
    libc's local functions, found in its separate debug file when installed)."""
    code = ("import json\nfrom bcc import BPF\n"
            "libc = BPF.find_library(b'c')\n"
            "print(json.dumps([libc.decode(), BPF.find_library(b'no_such_lib_xyz'), "
            "BPF.find_exe(b'ls').decode(), BPF.find_exe(b'no_such_exe_xyz'), "
            "sorted([n.decode(), a] for n, a in "
            "BPF.get_user_functions_and_addresses(%r, b'deep')), "
            "sorted(n.decode() for n in BPF.get_user_functions(libc, b'mallo'))]))"
            % uprobe_target.encode())
    libc = BPF.find_library("c")
    ours = [libc.decode(), BPF.find_library("no_such_lib_xyz"), BPF.find_exe(b"ls").decode(),
            BPF.find_exe(b"no_such_exe_xyz"),
            sorted([n.decode(), a] for n, a in
                   BPF.get_user_functions_and_addresses(uprobe_target, b"deep")),
            sorted(n.decode() for n in BPF.get_user_functions(libc, b"mallo"))]
    assert ours == _real(code)
    assert [n for n, _ in ours[4]] == ["deep1", "deep2"]
    assert BPF.find_exe("/bin/ls") == "/bin/ls"
