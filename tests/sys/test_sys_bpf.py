"""bpf(2) commands against the running kernel."""
from __future__ import annotations

import errno
import fcntl
import os
import socket
import struct

import pytest

from bccless.sys import bpf
from bccless.sys import bpf_consts as C
from bccless.sys import perf
from sys_helpers import RET0, ensure_bpffs, insn, open_fds, require_root, ret_imm

pytestmark = pytest.mark.usefixtures("root")


@pytest.fixture
def root():
    require_root()


def u32(v: int) -> bytes:
    return struct.pack("<I", v)


def u64(v: int) -> bytes:
    return struct.pack("<Q", v)


@pytest.fixture
def hash_fd():
    fd = bpf.map_create(C.BPF_MAP_TYPE_HASH, 4, 8, 64, name="t_hash")
    yield fd
    os.close(fd)


def test_fd_is_cloexec(hash_fd):
    assert fcntl.fcntl(hash_fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC


def test_hash_crud(hash_fd):
    assert bpf.map_lookup_elem(hash_fd, u32(1), 8) is None
    bpf.map_update_elem(hash_fd, u32(1), u64(0x1122334455667788))
    assert bpf.map_lookup_elem(hash_fd, u32(1), 8) == u64(0x1122334455667788)
    with pytest.raises(FileExistsError):
        bpf.map_update_elem(hash_fd, u32(1), u64(2), C.BPF_NOEXIST)
    with pytest.raises(FileNotFoundError):
        bpf.map_update_elem(hash_fd, u32(2), u64(2), C.BPF_EXIST)
    bpf.map_update_elem(hash_fd, u32(1), u64(3), C.BPF_EXIST)
    assert bpf.map_lookup_elem(hash_fd, u32(1), 8) == u64(3)
    assert bpf.map_delete_elem(hash_fd, u32(1)) is True
    assert bpf.map_delete_elem(hash_fd, u32(1)) is False


def test_iteration(hash_fd):
    for i in range(10):
        bpf.map_update_elem(hash_fd, u32(i), u64(i * i))
    keys, key = [], None
    while True:
        key = bpf.map_get_next_key(hash_fd, key, 4)
        if key is None:
            break
        keys.append(struct.unpack("<I", key)[0])
    assert sorted(keys) == list(range(10))


def test_batch_ops(hash_fd):
    keys = [u32(i) for i in range(20)]
    values = [u64(i + 100) for i in range(20)]
    assert bpf.map_update_batch(hash_fd, keys, values, 4, 8) == 20
    got, token = {}, None
    while True:
        ks, vs, token = bpf.map_lookup_batch(hash_fd, 4, 8, 8, token)
        got.update(zip(ks, vs))
        if token is None:
            break
    assert got == dict(zip(keys, values))
    assert bpf.map_delete_batch(hash_fd, keys[:5], 4) == 5
    ks, vs, token = bpf.map_lookup_and_delete_batch(hash_fd, 4, 8, 64, None)
    assert token is None and sorted(ks) == sorted(keys[5:])
    assert bpf.map_get_next_key(hash_fd, None, 4) is None


def test_array_and_percpu():
    ncpu = len(perf.possible_cpus())
    fd = bpf.map_create(C.BPF_MAP_TYPE_PERCPU_ARRAY, 4, 4, 2)
    try:
        # per-CPU values: one 8-byte-rounded slot per possible CPU
        blob = b"".join(u32(10 + c) + bytes(4) for c in range(ncpu))
        bpf.map_update_elem(fd, u32(1), blob)
        got = bpf.map_lookup_elem(fd, u32(1), 8 * ncpu)
        assert [struct.unpack_from("<I", got, 8 * c)[0] for c in range(ncpu)] == \
            [10 + c for c in range(ncpu)]
        assert bpf.map_lookup_elem(fd, u32(0), 8 * ncpu) == bytes(8 * ncpu)
        with pytest.raises(OSError) as err:  # arrays have a fixed key set
            bpf.map_delete_elem(fd, u32(0))
        assert err.value.errno == errno.EINVAL
    finally:
        os.close(fd)


def test_lru_evicts():
    fd = bpf.map_create(C.BPF_MAP_TYPE_LRU_HASH, 4, 4, 32)
    try:
        for i in range(500):
            bpf.map_update_elem(fd, u32(i), u32(i))
        n, key = 0, None
        while (key := bpf.map_get_next_key(fd, key, 4)) is not None:
            n += 1
        assert 0 < n <= 500 and bpf.map_lookup_elem(fd, u32(499), 4) == u32(499)
    finally:
        os.close(fd)


@pytest.mark.parametrize("map_type,order", [(C.BPF_MAP_TYPE_QUEUE, [1, 2, 3]),
                                            (C.BPF_MAP_TYPE_STACK, [3, 2, 1])])
def test_queue_stack(map_type, order):
    fd = bpf.map_create(map_type, 0, 4, 8)
    try:
        for v in (1, 2, 3):
            bpf.map_update_elem(fd, b"", u32(v))
        assert bpf.map_lookup_elem(fd, b"", 4) == u32(order[0])      # peek
        popped = [bpf.map_lookup_and_delete_elem(fd, None, 4) for _ in range(4)]
        assert popped == [u32(v) for v in order] + [None]
    finally:
        os.close(fd)


def test_lpm_trie():
    # key: u32 prefixlen + IPv4 address
    fd = bpf.map_create(C.BPF_MAP_TYPE_LPM_TRIE, 8, 4, 16, flags=C.BPF_F_NO_PREALLOC)
    try:
        bpf.map_update_elem(fd, u32(8) + bytes([10, 0, 0, 0]), u32(8))
        bpf.map_update_elem(fd, u32(24) + bytes([10, 1, 2, 0]), u32(24))
        assert bpf.map_lookup_elem(fd, u32(32) + bytes([10, 1, 2, 3]), 4) == u32(24)
        assert bpf.map_lookup_elem(fd, u32(32) + bytes([10, 9, 9, 9]), 4) == u32(8)
        assert bpf.map_lookup_elem(fd, u32(32) + bytes([11, 0, 0, 0]), 4) is None
    finally:
        os.close(fd)


def test_ringbuf_map_info():
    page = os.sysconf("SC_PAGE_SIZE")
    fd = bpf.map_create(C.BPF_MAP_TYPE_RINGBUF, 0, 0, 4 * page, name="t_ringbuf")
    try:
        info = bpf.obj_get_info_by_fd(fd, "map")
        assert (info["type"], info["max_entries"], info["name"]) == \
            (C.BPF_MAP_TYPE_RINGBUF, 4 * page, "t_ringbuf")
    finally:
        os.close(fd)


def test_freeze_blocks_updates(hash_fd):
    bpf.map_update_elem(hash_fd, u32(1), u64(1))
    bpf.map_freeze(hash_fd)
    with pytest.raises(PermissionError):
        bpf.map_update_elem(hash_fd, u32(1), u64(2))
    assert bpf.map_lookup_elem(hash_fd, u32(1), 8) == u64(1)


def test_map_info_fields():
    fd = bpf.map_create(C.BPF_MAP_TYPE_HASH, 8, 16, 77, flags=C.BPF_F_NO_PREALLOC,
                        name="a_very_long_map_name_indeed")
    try:
        info = bpf.obj_get_info_by_fd(fd, "map")
        assert info["type"] == C.BPF_MAP_TYPE_HASH
        assert (info["key_size"], info["value_size"], info["max_entries"]) == (8, 16, 77)
        assert info["flags"] == C.BPF_F_NO_PREALLOC
        assert info["name"] == "a_very_long_map"          # 15 chars kept
        assert info["id"] > 0
        fd2 = bpf.get_fd_by_id("map", info["id"])
        try:
            assert bpf.obj_get_info_by_fd(fd2, "map")["id"] == info["id"]
        finally:
            os.close(fd2)
        ids, cur = [], 0
        while (cur := bpf.get_next_id("map", cur)) is not None:
            ids.append(cur)
        assert info["id"] in ids
    finally:
        os.close(fd)


def test_pin_and_get(hash_fd):
    root = ensure_bpffs()
    path = f"{root}/bccless_test_{os.getpid()}"
    bpf.map_update_elem(hash_fd, u32(7), u64(77))
    bpf.obj_pin(hash_fd, path)
    try:
        fd2 = bpf.obj_get(path)
        try:
            assert bpf.map_lookup_elem(fd2, u32(7), 8) == u64(77)
            assert bpf.obj_get_info_by_fd(fd2, "map")["id"] == \
                bpf.obj_get_info_by_fd(hash_fd, "map")["id"]
        finally:
            os.close(fd2)
        with pytest.raises(FileExistsError):
            bpf.obj_pin(hash_fd, path)
    finally:
        os.unlink(path)
    with pytest.raises(FileNotFoundError) as err:
        bpf.obj_get(path)
    assert path in str(err.value)


def test_prog_load_and_info():
    fd, log = bpf.prog_load(C.BPF_PROG_TYPE_SOCKET_FILTER, RET0, "GPL", name="ret0")
    try:
        assert log == ""
        info = bpf.obj_get_info_by_fd(fd, "prog")
        assert info["type"] == C.BPF_PROG_TYPE_SOCKET_FILTER
        assert info["name"] == "ret0" and info["xlated_prog_len"] == 16
        assert info["gpl_compatible"] and len(info["tag"]) == 16
        assert info["verified_insns"] == 2
        retval, _, _ = bpf.prog_test_run(fd, bytes(64))
        assert retval == 0
    finally:
        os.close(fd)


def test_prog_log_on_request():
    fd, log = bpf.prog_load(C.BPF_PROG_TYPE_SOCKET_FILTER, RET0, "GPL", log_level=2)
    os.close(fd)
    assert "processed 2 insns" in log


def test_prog_load_failure_carries_log():
    bad = insn(0x95)  # exit without setting r0
    with pytest.raises(bpf.ProgLoadError) as err:
        bpf.prog_load(C.BPF_PROG_TYPE_SOCKET_FILTER, bad, "GPL", name="bad")
    e = err.value
    assert e.errno == errno.EACCES and isinstance(e, OSError)
    assert "R0 !read_ok" in e.log and "0: (95) exit" in e.log
    assert "prog 'bad'" in str(e)


def test_prog_load_log_grows_past_start_size():
    # 12k instructions at log level 2 print far more than the 64 KiB first buffer
    body = insn(0xb7, imm=1) * 12000 + insn(0x95)
    fd, log = bpf.prog_load(C.BPF_PROG_TYPE_SOCKET_FILTER, body, "GPL", log_level=2)
    os.close(fd)
    assert len(log) > bpf.LOG_START_SIZE and log.rstrip().endswith(
        log.rstrip().splitlines()[-1]) and "processed 12001 insns" in log


def test_prog_map_ids_and_test_run_retval():
    map_fd = bpf.map_create(C.BPF_MAP_TYPE_ARRAY, 4, 8, 1)
    try:
        insns = (insn(0x18, dst=1, src=C.BPF_PSEUDO_MAP_FD, imm=map_fd) + insn(0)
                 + ret_imm(7))
        fd, _ = bpf.prog_load(C.BPF_PROG_TYPE_SOCKET_FILTER, insns, "GPL")
        try:
            info = bpf.obj_get_info_by_fd(fd, "prog")
            assert info["map_ids"] == [bpf.obj_get_info_by_fd(map_fd, "map")["id"]]
            retval, out, duration = bpf.prog_test_run(fd, bytes(64), repeat=10)
            assert retval == 7 and len(out) == 64 and duration >= 0
        finally:
            os.close(fd)
    finally:
        os.close(map_fd)


def _btf_blob(types: bytes, strs: bytes) -> bytes:
    return struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strs)) \
        + types + strs


def test_btf_load_and_info():
    # [1] int (signed, 32 bits)
    types = struct.pack("<IIII", 1, 1 << 24, 4, (1 << 24) | 32)
    fd = bpf.btf_load(_btf_blob(types, b"\0int\0"))
    try:
        info = bpf.obj_get_info_by_fd(fd, "btf")
        assert info["id"] > 0 and info["btf_size"] == 24 + 16 + 5
        assert info["kernel_btf"] is False
    finally:
        os.close(fd)


def test_btf_load_error_has_log():
    # an INT whose name offset points past the string section
    types = struct.pack("<IIII", 99, 1 << 24, 4, 32)
    with pytest.raises(bpf.BTFLoadError) as err:
        bpf.btf_load(_btf_blob(types, b"\0int\0"))
    assert err.value.errno == errno.EINVAL
    assert "Invalid name_offset" in err.value.log


def test_kernel_btf_by_id():
    cur = 0
    while (cur := bpf.get_next_id("btf", cur)) is not None:
        fd = bpf.get_fd_by_id("btf", cur)
        try:
            info = bpf.obj_get_info_by_fd(fd, "btf")
        finally:
            os.close(fd)
        if info["kernel_btf"]:
            assert info["name"] == "vmlinux"
            return
    pytest.fail("vmlinux BTF not found among BTF objects")


def test_perf_event_open_software():
    fd = perf.perf_event_open(perf.PERF_TYPE_SOFTWARE, perf.PERF_COUNT_SW_CPU_CLOCK,
                              sample_period=10_000_000, disabled=True)
    try:
        assert os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[perf_event]"
        assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
        assert perf.perf_event_id(fd) > 0
        perf.perf_event_enable(fd)
        perf.perf_event_disable(fd)
    finally:
        os.close(fd)


def test_perf_event_link_and_info():
    # (not cpu-clock: newer kernels move it to a PMU of its own with a dynamic type)
    prog, _ = bpf.prog_load(C.BPF_PROG_TYPE_PERF_EVENT, RET0, "GPL")
    ev = perf.perf_event_open(perf.PERF_TYPE_SOFTWARE, perf.PERF_COUNT_SW_PAGE_FAULTS,
                              sample_period=10_000_000, disabled=True)
    try:
        link = bpf.link_create(prog, ev, C.BPF_PERF_EVENT, bpf_cookie=0xabcdef)
        try:
            info = bpf.obj_get_info_by_fd(link, "link")
            assert info["type"] == C.BPF_LINK_TYPE_PERF_EVENT
            assert info["prog_id"] == bpf.obj_get_info_by_fd(prog, "prog")["id"]
            assert info["perf_event_type"] == C.BPF_PERF_EVENT_EVENT
            assert info["config"] == perf.PERF_COUNT_SW_PAGE_FAULTS
            assert info["event_type"] == perf.PERF_TYPE_SOFTWARE
            assert info["cookie"] == 0xabcdef
        finally:
            os.close(link)
    finally:
        os.close(ev)
        os.close(prog)


def test_xdp_link_on_lo_and_detach():
    prog, _ = bpf.prog_load(C.BPF_PROG_TYPE_XDP, ret_imm(2), "GPL",   # XDP_PASS
                            expected_attach_type=C.BPF_XDP)
    ifindex = socket.if_nametoindex("lo")
    try:
        try:
            link = bpf.link_create(prog, ifindex, C.BPF_XDP)
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                pytest.skip("another XDP program is attached to lo")
            raise
        try:
            info = bpf.obj_get_info_by_fd(link, "link")
            assert (info["type"], info["ifindex"]) == (C.BPF_LINK_TYPE_XDP, ifindex)
            bpf.link_detach(link)
            assert bpf.obj_get_info_by_fd(link, "link")["ifindex"] == 0   # defunct
        finally:
            os.close(link)
    finally:
        os.close(prog)


def test_raw_tracepoint_open():
    prog, _ = bpf.prog_load(C.BPF_PROG_TYPE_RAW_TRACEPOINT, RET0, "GPL")
    try:
        link = bpf.raw_tracepoint_open("sys_enter", prog)
        try:
            info = bpf.obj_get_info_by_fd(link, "link")
            assert info["type"] == C.BPF_LINK_TYPE_RAW_TRACEPOINT
            assert info["tp_name"] == "sys_enter"
        finally:
            os.close(link)
        with pytest.raises(OSError):
            bpf.raw_tracepoint_open("no_such_tracepoint_xyz", prog)
    finally:
        os.close(prog)


def test_link_create_rejects_unknown_args():
    with pytest.raises(TypeError):
        bpf.link_create(0, 0, C.BPF_PERF_EVENT, path="/bin/true")


def test_errors_name_the_command():
    with pytest.raises(OSError) as err:
        bpf.map_create(C.BPF_MAP_TYPE_HASH, 0, 8, 1)   # hash keys cannot be empty
    assert err.value.errno == errno.EINVAL and "BPF_MAP_CREATE" in str(err.value)


def test_no_fd_leaks():
    before = open_fds()
    for _ in range(200):
        fd = bpf.map_create(C.BPF_MAP_TYPE_ARRAY, 4, 4, 1)
        os.close(fd)
        fd, _ = bpf.prog_load(C.BPF_PROG_TYPE_SOCKET_FILTER, RET0, "GPL")
        os.close(fd)
        try:
            bpf.prog_load(C.BPF_PROG_TYPE_SOCKET_FILTER, insn(0x95), "GPL")
        except bpf.ProgLoadError:
            pass
        ev = perf.perf_event_open(perf.PERF_TYPE_SOFTWARE, perf.PERF_COUNT_SW_DUMMY)
        os.close(ev)
    assert open_fds() == before


def test_stdin_closed_fds_stay_above_2():
    import subprocess
    import sys

    code = ("import os\n"
            "from bccless.sys import bpf\n"
            "os.close(0)\n"
            "fd = bpf.map_create(2, 4, 4, 1)\n"
            "try:\n"
            "    os.fstat(0)\n"
            "    print(fd, 'reused')\n"
            "except OSError:\n"
            "    print(fd, 'free')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert int(out[0]) >= 3 and out[1] == "free"
