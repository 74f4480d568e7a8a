"""(g) Nothing outlives close(): fds, mmaps, programs and links, over many cycles."""
from __future__ import annotations

import gc
import os

import pytest

from bccless import BPFObject
from bccless.errors import VerifierError

from loader_helpers import fd_count, prog_ids, u32


def _cycle(core: str, globals_: str, bad: str) -> set:
    """One open/load/attach/close of each object; returns the program ids seen."""
    ids = set()
    with BPFObject.open(core) as obj:
        obj.load()
        obj.maps.out[u32(15)] = os.getpid().to_bytes(8, "little")
        obj.attach()
        os.getppid()
        ids |= {p.info()["id"] for p in obj.programs.values()}
    obj = BPFObject.open(globals_)
    obj.load()
    obj.bss.seen_from_user = 1
    ids |= {p.info()["id"] for p in obj.programs.values()}
    del obj                     # released by garbage collection
    gc.collect()
    failing = BPFObject.open(bad)
    failing.programs["null_deref"].set_autoload(True)
    with pytest.raises(VerifierError):
        failing.load()
    failing.close()
    failing.close()             # idempotent
    return ids


def test_no_fd_leak_and_programs_unloaded(compile_obj, tracefs):
    core, globals_, bad = compile_obj("core"), compile_obj("globals"), compile_obj("bad")
    _cycle(core, globals_, bad)        # warm-up: kernel BTF stays mmapped per process
    before = fd_count()
    seen = set()
    for _ in range(20):
        seen |= _cycle(core, globals_, bad)
        assert fd_count() == before
    assert len(seen) == 20 * 3
    assert not seen & prog_ids()       # the kernel freed every program


def test_close_releases_maps_and_views(compile_obj):
    from bccless.errors import MapError

    obj = BPFObject.open(compile_obj("globals"))
    obj.load()
    bss = obj.bss
    bss.hits = 9
    live = obj.maps[".bss"]
    obj.close()
    assert bss.hits == 9 and bss.read_only
    with pytest.raises(MapError):
        bss.hits = 1
    with pytest.raises(MapError, match="closed"):
        live.fd
    obj.close()
