"""(f) The relocation cache: warm loads skip the ELF and kernel BTF parsers
and give identical programs; corrupt or foreign entries are rebuilt; unsafe
permissions as root are refused."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bccless import BPFObject
from bccless.errors import CacheError
from bccless.load import kernel, relocache


def _entries(cache_dir) -> list:
    return sorted((cache_dir / "relo").glob("*.relo"))


def _load_tags(path: str) -> dict:
    with BPFObject.open(path) as obj:
        obj.load()
        return {n: (p.info()["tag"], obj._plan.linked[n].insns) for n, p in obj.programs.items()}


def test_warm_load_parses_nothing(compile_obj, cache_dir, monkeypatch):
    path = compile_obj("core")
    cold = _load_tags(path)
    assert len(_entries(cache_dir)) == 1

    import bccless.btf.sources
    import bccless.elf.object
    import bccless.link.linker
    from bccless.btf.parse import BTF

    def forbidden(*args, **kw):
        raise AssertionError("called on a warm load")
    monkeypatch.setattr(kernel, "_kernel_btf", None)       # a parse would have to happen
    monkeypatch.setattr(bccless.btf.sources, "load_kernel_btf", forbidden)
    monkeypatch.setattr(BTF, "from_bytes", classmethod(forbidden))
    monkeypatch.setattr(bccless.elf.object, "open_object_spec", forbidden)
    monkeypatch.setattr(bccless.link.linker, "link", forbidden)
    warm = _load_tags(path)
    assert warm == cold          # same relocated instructions, same kernel tags


def test_warm_load_imports_no_parser(compile_obj, cache_dir):
    """In a fresh process a warm load must not even import the heavy modules."""
    path = compile_obj("core")
    _load_tags(path)
    code = ("import sys; from bccless import BPFObject\n"
            f"o = BPFObject.open({path!r}); o.load(); o.close()\n"
            "heavy = ('elftools', 'bccless.btf.parse', 'bccless.link.linker', "
            "'bccless.core.relocate', 'bccless.elf.object')\n"
            "print(sorted(m for m in sys.modules if m.startswith(heavy)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, BCCLESS_CACHE=str(cache_dir)), check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_corrupt_entry_is_rebuilt(compile_obj, cache_dir, caplog):
    path = compile_obj("globals")
    cold = _load_tags(path)
    (entry,) = _entries(cache_dir)
    data = bytearray(entry.read_bytes())
    data[len(data) // 2] ^= 0xFF
    entry.write_bytes(bytes(data))
    assert _load_tags(path) == cold
    assert "integrity hash mismatch" in caplog.text
    key = relocache.make_key(_sha(path), kernel=kernel.kernel_identity())
    assert relocache.RelocCache().get(key) is not None    # rewritten whole


def _sha(path: str) -> str:
    import hashlib

    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_entry_is_bound_to_object_and_kernel(compile_obj, cache_dir, monkeypatch):
    path = compile_obj("globals")
    _load_tags(path)
    (entry,) = _entries(cache_dir)
    raw = entry.read_bytes()
    body = raw[raw.index(b"\n") + 1:]
    header = json.loads(body[4:4 + int.from_bytes(body[:4], "little")])
    assert header["key"]["object"] == _sha(path)
    assert header["key"]["kernel"] == kernel.kernel_identity()
    assert header["key"]["kernel"].startswith("build-id:")
    cache = relocache.RelocCache()
    for other in ({"kernel": "build-id:00"}, {"kconfig": "CONFIG_X=y"}, {"name": "renamed"}):
        args = {"kernel": kernel.kernel_identity(), **other}
        assert cache.get(relocache.make_key(_sha(path), **args)) is None
    # another object never matches this object's entry, even at the same path
    entry_for = cache._entry_path(relocache.make_key(_sha(path), kernel=kernel.kernel_identity()))
    assert entry_for == str(entry)


def test_group_writable_cache_refused(compile_obj, cache_dir):
    path = compile_obj("globals")
    _load_tags(path)
    os.chmod(cache_dir, 0o770)
    with pytest.raises(CacheError, match=f"{cache_dir}: writable by group or others"):
        BPFObject.open(path)
    os.chmod(cache_dir, 0o700)
    (entry,) = _entries(cache_dir)
    os.chown(entry, 65534, 65534)
    with pytest.raises(CacheError, match="owned by uid 65534, not root"):
        BPFObject.open(path)


def test_build_id_note_parsing():
    note = (b"\x04\x00\x00\x00\x14\x00\x00\x00\x03\x00\x00\x00GNU\x00" + bytes(range(20)))
    other = b"\x06\x00\x00\x00\x04\x00\x00\x00\x01\x01\x00\x00Linux\x00\x00\x00\x00\x00\x00\x00"
    assert kernel.parse_build_id(other + note) == bytes(range(20)).hex()
    assert kernel.parse_build_id(other) is None
    assert kernel.parse_build_id(note[:20]) is None
