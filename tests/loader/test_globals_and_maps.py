"""(b) global data views before and after load; (c) map-in-map and prog-array
initial slots; pinning by name."""
from __future__ import annotations

import os

import pytest

from bccless import BPFObject
from bccless.errors import LoadError, MapError
from bccless.sys import bpf, bpf_consts as C

from loader_helpers import u32, u64


def test_globals_rodata_bss_data_live(compile_obj, tracefs):
    with BPFObject.open(compile_obj("globals")) as obj:
        assert set(obj.rodata) == {"target_tgid", "magic", "label"}
        assert obj.rodata.label == b"none"
        obj.rodata.target_tgid = os.getpid()
        obj.rodata["magic"] = 0x1234_5678_9ABC
        obj.rodata.label = "hello"
        obj.data.step = 5
        assert obj.section("data.custom").custom_val == 77
        with pytest.raises(MapError, match="no global variable 'nope'"):
            obj.bss.nope
        with pytest.raises(MapError, match="does not fit"):
            obj.data.step = -1
        obj.load()
        # internal maps by libbpf name and by section name
        assert obj.maps["globals.rodata"].name == "globals.rodata"
        ro = obj.maps[".rodata"]
        assert ro.flags & C.BPF_F_RDONLY_PROG and ro.flags & C.BPF_F_MMAPABLE
        assert obj.rodata.magic == 0x1234_5678_9ABC and obj.rodata.label == b"hello"
        obj.bss.seen_from_user = 1000           # live write through the mmap
        obj.attach()
        os.getppid()
        os.getppid()
        assert obj.bss.copied_magic == 0x1234_5678_9ABC   # program copied rodata to bss
        assert obj.bss.hits == 10                          # 2 calls x step 5 set before load
        assert obj.bss.echo == 1077                        # sees Python's write + .data.custom
        obj.data.step = 7                                  # live .data write
        os.getppid()
        assert obj.bss.hits == 17
        # the map value seen by the kernel is the mmapped memory
        raw = bpf.map_lookup_elem(obj.maps[".bss"].fd, u32(0), obj.maps[".bss"].value_size)
        assert obj.bss.raw("hits") in raw
        # .rodata is frozen: Python refuses, and so does the kernel
        with pytest.raises(MapError, match="read-only after load"):
            obj.rodata.magic = 1
        with pytest.raises(OSError):
            bpf.map_update_elem(ro.fd, u32(0), bytes(ro.value_size))
        hits = obj.bss.hits
    assert obj.bss.hits == hits          # last values stay readable after close


def test_map_in_map_and_prog_array_slots(compile_obj):
    with BPFObject.open(compile_obj("mim")) as obj:
        outer = obj.maps["outer"]
        assert outer.map_type == C.BPF_MAP_TYPE_ARRAY_OF_MAPS and outer.inner is not None
        assert outer.init_slots == {0: "inner_a", 2: "inner_b"}
        obj.load()
        spec = obj.map_spec("inner_a")         # still available after load, with BTF ids
        assert obj.btf.name(spec.key_type_id) == "__u32"
        assert obj.btf.name(spec.value_type_id) == "__u64"
        maps = obj.maps
        # like libbpf: BTF ids for plain maps, none for map-in-maps
        assert maps.inner_a.info["btf_value_type_id"] == spec.value_type_id
        assert maps.outer.info["btf_key_type_id"] == 0
        # an array-of-maps lookup from user space returns the inner map's id
        assert u64(maps.outer[u32(0)]) == maps.inner_a.id
        assert u64(maps.outer[u32(2)]) == maps.inner_b.id
        assert u32(1) not in maps.outer
        assert u64(maps.jumps[u32(1)]) == obj.programs.tail_target.info()["id"]
        # run it: entry bumps inner_b[0] through the outer map, then tail-calls XDP_TX
        retval, _, _ = bpf.prog_test_run(obj.programs.entry.fd, b"\0" * 64)
        assert retval == 3                                 # XDP_TX from tail_target
        assert u64(maps.inner_b[u32(0)]) == 1 and u64(maps.inner_a[u32(0)]) == 0


def test_lazy_program_load_and_set_type(compile_obj):
    """The BCC-layer workflow: maps first, then programs one by one."""
    with BPFObject.open(compile_obj("mim")) as obj:
        obj.load(programs=False)
        assert obj.programs.entry.fd == -1 and obj.maps.jumps.fd >= 0
        assert u32(1) not in obj.maps.jumps      # prog slots wait for the programs
        obj.programs.tail_target.load()
        fd = obj.programs.entry.load()
        assert fd >= 0 and obj.programs.entry.insns is not None
        assert u64(obj.maps.jumps[u32(1)]) == obj.programs.tail_target.info()["id"]
        with pytest.raises(LoadError, match="after the program was loaded"):
            obj.programs.entry.set_type(C.BPF_PROG_TYPE_XDP)


def test_pinned_map_reuse_and_mismatch(compile_obj, build_dir, bpffs):
    import subprocess

    from conftest import CLANG, DATA

    twin = build_dir / "pin8.bpf.o"
    subprocess.run([CLANG, "-g", "-O2", "-target", "bpf", "-DPIN_ENTRIES=8", f"-I{build_dir}",
                    "-c", str(DATA / "pin.bpf.c"), "-o", str(twin)], check=True)
    pin_root = os.path.join(bpffs, f"bccless_pin_{os.getpid()}")
    os.mkdir(pin_root)
    try:
        with BPFObject.open(compile_obj("pin"), pin_root_path=pin_root) as a:
            assert a.maps.shared.pinning == 1
            a.load()
            a.maps.shared[u32(3)] = (42).to_bytes(8, "little")
            assert os.path.exists(os.path.join(pin_root, "shared"))
            first_id = a.maps.shared.id
        with BPFObject.open(compile_obj("pin"), pin_root_path=pin_root) as b:
            b.load()
            assert b.maps.shared.id == first_id          # reused, not recreated
            assert u64(b.maps.shared[u32(3)]) == 42
            bpf.prog_test_run(b.programs.use_shared.fd, b"\0" * 64)
            assert u64(b.maps.shared[u32(0)]) == 1
        with BPFObject.open(str(twin), pin_root_path=pin_root) as c:
            with pytest.raises(LoadError, match="map 'shared': couldn't reuse pinned map .*"
                                                "max_entries 16 != 8"):
                c.load()
    finally:
        for name in os.listdir(pin_root):
            os.unlink(os.path.join(pin_root, name))
        os.rmdir(pin_root)
