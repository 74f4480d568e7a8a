"""Kernel refusals outside the verifier: BTF upload (non-fatal, like libbpf),
map creation (LoadError naming the map, with a reason), BTF-id targets."""
from __future__ import annotations

import errno
import logging

import pytest

from bccless import BPFObject
from bccless.errors import LoadError
from bccless.sys import bpf

from loader_helpers import u32


def _warm(path: str) -> None:
    """Load once unpatched: fills the relocation cache and the feature probes
    (which upload BTF themselves and must not see the patched syscalls)."""
    with BPFObject.open(path) as obj:
        obj.load()


def test_btf_refused_loads_without_btf(compile_obj, monkeypatch, caplog):
    _warm(compile_obj("globals"))

    def refuse(data, **kw):
        raise bpf.BTFLoadError(errno.EINVAL, "Invalid argument", log="[1] bad\n")
    monkeypatch.setattr(bpf, "btf_load", refuse)
    caplog.set_level(logging.WARNING)
    with BPFObject.open(compile_obj("globals")) as obj:
        obj.load()
        assert "BTF is optional, ignoring" in caplog.text
        info = obj.programs.count.info()
        assert info["btf_id"] == 0 and info["nr_line_info"] == 0
        assert obj.maps[".bss"].info["btf_id"] == 0
        obj.bss.hits = 3                  # global data still works
        assert obj.bss.hits == 3


def test_map_btf_refused_retries_without(compile_obj, monkeypatch, caplog):
    _warm(compile_obj("core"))
    real = bpf.map_create

    def picky(*args, **kw):
        if kw.get("btf_value_type_id"):
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(*args, **kw)
    monkeypatch.setattr(bpf, "map_create", picky)
    caplog.set_level(logging.WARNING)
    with BPFObject.open(compile_obj("core")) as obj:
        obj.load(programs=False)
        assert "Error in bpf_create_map_xattr(out):Invalid argument(-22). Retrying without " \
            "BTF." in caplog.text
        assert obj.maps.out.info["btf_value_type_id"] == 0
        obj.maps.out[u32(1)] = bytes(8)


@pytest.mark.parametrize("err,reason", [
    (errno.EPERM, "needs root or CAP_BPF"),
    (errno.E2BIG, "too big for the kernel: max_entries 16, key_size 4, value_size 8"),
    (errno.EINVAL, "the kernel rejected the attributes: type 2, key_size 4"),
])
def test_map_create_failure_names_map(compile_obj, monkeypatch, err, reason):
    _warm(compile_obj("core"))

    def fail(*args, **kw):
        raise OSError(err, "refused")
    monkeypatch.setattr(bpf, "map_create", fail)
    monkeypatch.setattr("bccless.sys.features.bump_memlock_rlimit", lambda: False)
    with BPFObject.open(compile_obj("core")) as obj:
        with pytest.raises(LoadError, match=f"map 'out': failed to create: .*{reason}"):
            obj.load()
        assert obj.programs.tp_probe.fd == -1


def test_missing_btf_attach_target(compile_obj):
    with BPFObject.open(compile_obj("core")) as obj:
        prog = obj.programs.btf_probe
        prog.set_attach_target("no_such_tracepoint_xyz")
        obj.load(programs=False)
        with pytest.raises(LoadError, match="failed to find kernel BTF type ID of "
                                            "'no_such_tracepoint_xyz'"):
            prog.load()
        assert obj.programs.tp_probe.load() >= 0
