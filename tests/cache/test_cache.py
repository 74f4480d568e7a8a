"""The object cache: atomic writes, verification, permission refusal, bundles, prune."""
from __future__ import annotations

import hashlib
import multiprocessing
import os
import subprocess
import sys
import tarfile

import pytest

from bccless.cache import CorruptEntry, ObjectCache, decode_entry
from bccless.errors import CacheError

KEY = hashlib.sha256(b"a key").hexdigest()
OBJ = bytes(range(256)) * 40
META = {"programs": [{"name": "p", "section": "bccless/p"}], "maps": [{"name": "m", "kind": "hash"}]}


@pytest.fixture
def cache(tmp_path):
    root = tmp_path / "cache"
    root.mkdir(mode=0o755)
    os.chmod(root, 0o755)
    return ObjectCache(str(root))


def _put(args):
    root, n = args
    ObjectCache(root).put(KEY, OBJ + bytes([n % 7]) * n, {"writer": n})


def test_roundtrip(cache):
    cache.put(KEY, OBJ, META)
    entry = cache.get(KEY)
    assert entry.object == OBJ and entry.metadata == META and entry.key == KEY
    assert cache.get(hashlib.sha256(b"other").hexdigest()) is None


def test_concurrent_writers_leave_one_valid_entry(cache):
    with multiprocessing.get_context("fork").Pool(8) as pool:
        pool.map(_put, [(cache.root, n) for n in range(32)])
    entry = cache.get(KEY)
    n = entry.metadata["writer"]
    assert entry.object == OBJ + bytes([n % 7]) * n
    shard = os.path.dirname(entry.path)
    assert os.listdir(shard) == [KEY + ".bce"]   # no temporary files left behind


def test_flipped_byte_is_never_loaded(cache):
    cache.put(KEY, OBJ, META)
    path = os.path.join(cache.root, "objects", KEY[:2], KEY + ".bce")
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0x01
    with open(path, "wb") as fh:
        fh.write(data)
    with pytest.raises(CorruptEntry, match="checksum mismatch"):
        cache.get(KEY)
    with pytest.raises(CorruptEntry):
        decode_entry(bytes(data[:100]), "x")


def test_group_or_other_writable_is_refused(cache):
    cache.put(KEY, OBJ, META)
    os.chmod(cache.root, 0o757)
    with pytest.raises(CacheError, match="writable by group or others.*chmod go-w"):
        cache.get(KEY)
    os.chmod(cache.root, 0o755)
    path = os.path.join(cache.root, "objects", KEY[:2], KEY + ".bce")
    os.chmod(path, 0o666)
    with pytest.raises(CacheError, match=path):
        cache.get(KEY)


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_foreign_owner_is_refused(cache):
    cache.put(KEY, OBJ, META)
    path = os.path.join(cache.root, "objects", KEY[:2], KEY + ".bce")
    os.chown(path, 65534, 65534)
    with pytest.raises(CacheError, match="owned by uid 65534"):
        cache.get(KEY)


def test_export_import_roundtrip(cache, tmp_path):
    other_key = hashlib.sha256(b"b").hexdigest()
    cache.put(KEY, OBJ, META)
    cache.put(other_key, b"second", {"x": 1})
    cache.put_alias(hashlib.sha256(b"src").hexdigest(), KEY, {"tracepoints": []})
    bundle = str(tmp_path / "bundle.tar.gz")
    assert cache.export(bundle) == 2
    fresh = tmp_path / "fresh"
    fresh.mkdir(mode=0o755)
    target = ObjectCache(str(fresh))
    assert target.import_bundle(bundle) == 2
    assert target.get(KEY).object == OBJ and target.get(other_key).object == b"second"
    assert target.get_alias(hashlib.sha256(b"src").hexdigest())["object_key"] == KEY


def test_tampered_bundle_is_rejected(cache, tmp_path):
    cache.put(KEY, OBJ, META)
    bundle = str(tmp_path / "bundle.tar")
    cache.export(bundle)
    with tarfile.open(bundle) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    name = f"objects/{KEY}.bce"
    data = bytearray(members[name])
    data[-40] ^= 0xFF
    members[name] = bytes(data)
    evil = str(tmp_path / "evil.tar")
    with tarfile.open(evil, "w") as tar:
        import io
        for mname, content in members.items():
            info = tarfile.TarInfo(mname)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    fresh = tmp_path / "fresh"
    fresh.mkdir(mode=0o755)
    with pytest.raises(CorruptEntry, match="does not match the manifest"):
        ObjectCache(str(fresh)).import_bundle(evil)
    assert ObjectCache(str(fresh)).keys() == []


def test_prune_and_clear(cache):
    keys = [hashlib.sha256(bytes([i])).hexdigest() for i in range(4)]
    for i, key in enumerate(keys):
        cache.put(key, OBJ, META)
        old = 1_000_000_000 + i
        os.utime(os.path.join(cache.root, "objects", key[:2], key + ".bce"), (old, old))
    cache.put_alias(hashlib.sha256(b"s").hexdigest(), keys[0])
    assert cache.prune(max_age_days=None, max_bytes=None) == []
    # entry sizes differ by a byte or two (their creation time is recorded)
    keep = sum(os.path.getsize(os.path.join(cache.root, "objects", k[:2], k + ".bce"))
               for k in keys[2:])
    removed = cache.prune(max_bytes=keep)
    assert removed == keys[:2]                       # least recently used first
    assert cache.get_alias(hashlib.sha256(b"s").hexdigest()) is None  # dangling alias dropped
    assert sorted(cache.keys()) == sorted(keys[2:])
    assert sorted(cache.prune(max_age_days=1)) == sorted(keys[2:])
    cache.put(KEY, OBJ, META)
    assert cache.clear() == 1 and cache.keys() == []


def test_prune_days_removes_unused_headers_and_pchs(cache):
    """Headers and PCHs of kernels not used for N days go; used ones (recently touched) stay."""
    old = 1_000_000_000
    layout = {}
    for kernel in ("old-kernel", "current-kernel"):
        d = os.path.join(cache.root, "vmlinux", kernel)
        os.makedirs(d)
        cache._write(os.path.join(d, "vmlinux.h"), b"struct x { int a; };\n")
        layout[kernel] = d
    pch_dir = os.path.join(cache.root, "vmlinux", "pch")
    for name in ("clang-old.pch", "clang-new.pch"):
        cache._write(os.path.join(pch_dir, name), b"CPCH")
        cache._write(os.path.join(pch_dir, name + ".sha256"), b"x\n")
    os.utime(layout["old-kernel"], (old, old))
    os.utime(os.path.join(pch_dir, "clang-old.pch"), (old, old))
    assert cache.prune(max_age_days=None) == []
    assert os.path.isdir(layout["old-kernel"])              # no --days: headers untouched
    cache.prune(max_age_days=30)
    assert not os.path.exists(layout["old-kernel"])
    assert os.path.isfile(os.path.join(layout["current-kernel"], "vmlinux.h"))
    assert sorted(os.listdir(pch_dir)) == ["clang-new.pch", "clang-new.pch.sha256"]


def test_using_a_pch_records_its_use(cache):
    from bccless.pch import Prelude
    header = os.path.join(cache.root, "vmlinux", "k", "vmlinux.h")
    cache._write(header, b"struct x { int a; };\n")
    prelude = Prelude(cache, header, "headers-digest")
    path = prelude.path("clang", "v1")
    tmp = prelude.temporary(path)
    with open(tmp, "wb") as fh:
        fh.write(b"CPCH-bytes")
    prelude.install(tmp, path)
    os.utime(path, (1_000_000_000, 1_000_000_000))
    assert prelude.usable(path)
    assert os.stat(path).st_mtime > 1_000_000_000
    cache.prune(max_age_days=30)
    assert os.path.isfile(path)


def test_cli_ls_show_export(cache, tmp_path):
    cache.put(KEY, OBJ, META)
    run = [sys.executable, "-m", "bccless.cli", "cache", "--dir", cache.root]
    out = subprocess.run(run + ["ls"], capture_output=True, text=True, check=True).stdout
    assert KEY[:16] in out and " ok " in out
    out = subprocess.run(run + ["show", KEY[:10]], capture_output=True, text=True, check=True).stdout
    assert '"object_size": %d' % len(OBJ) in out
    bundle = str(tmp_path / "b.tar")
    subprocess.run(run + ["export", bundle], check=True, capture_output=True)
    assert tarfile.is_tarfile(bundle)
