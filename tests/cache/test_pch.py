"""Precompiled prelude headers: faster cold builds that never change a result.

A cold build with the PCHs in the cache must translate to the same text and
compile to the same instructions as one without them; a damaged, stale or
unsafe PCH must fall back to the plain parse/compile and be replaced.
"""
from __future__ import annotations

import glob
import hashlib
import logging
import os
import shutil
import stat

import pytest
from elftools.elf.elffile import ELFFile

from bccless.cache import ObjectCache
from bccless.compile import build, compile_c

DATA = os.path.join(os.path.dirname(__file__), os.pardir, "data", "bcc_translate")

TRACEPOINT = """BPF_HASH(seen, u32, u64);
TRACEPOINT_PROBE(sched, sched_process_exec) {
    u32 pid = args->pid;
    struct task_struct *t = (struct task_struct *)bpf_get_current_task();
    u64 ppid = t->real_parent->tgid;
    seen.update(&pid, &ppid);
    return 0;
}
"""
OTHER = TRACEPOINT.replace("seen", "seen2")


def _format(category: str, event: str) -> str:
    with open(os.path.join(DATA, "formats", f"{category}_{event}.format")) as fh:
        return fh.read()


def _pch_files(cache: ObjectCache) -> dict:
    found = glob.glob(os.path.join(cache.root, "vmlinux", "pch", "*.pch"))
    return {os.path.basename(p).split("-")[0]: p for p in found}


def _code_sections(obj: bytes) -> dict:
    """Instructions and data of an object: everything but BTF, whose type order may differ."""
    import io
    elf = ELFFile(io.BytesIO(obj))
    return {s.name: s.data() for s in elf.iter_sections()
            if s.name and not s.name.startswith((".BTF", ".rel.BTF", ".debug", ".rel.debug"))
            and s["sh_type"] not in ("SHT_SYMTAB", "SHT_STRTAB", "SHT_NOBITS")}


def _build(text, cache, header, **kw):
    return build(text, filename="t.c", cache=cache, vmlinux_h=header, tracepoint_formats=_format,
                 **kw)


def test_pch_build_equals_plain_build(env, tmp_path):
    cache, header = env
    with_pch = _build(TRACEPOINT, cache, header)
    assert set(_pch_files(cache)) == {"clang", "libclang"}
    # cflags turn the PCH off (they may change what the prelude means): the plain build.
    plain_cache = ObjectCache(str(tmp_path / "plain"))
    plain = _build(TRACEPOINT, plain_cache, header, cflags=["-DUNUSED_BY_THE_PROGRAM"])
    assert not _pch_files(plain_cache)
    assert with_pch.metadata == plain.metadata
    assert _code_sections(with_pch.object) == _code_sections(plain.object)


@pytest.mark.parametrize("name", ["hist.c", "stack.c", "uprobe.c"])
def test_translation_through_pch_is_identical(env, name):
    from bccless.bcc.translate import translate
    from bccless.compile import _headers_digest, libbpf_include_dir
    from bccless.pch import Prelude
    cache, header = env
    text = open(os.path.join(DATA, name)).read()
    prelude = Prelude(cache, header, _headers_digest(libbpf_include_dir()))
    plain = translate(text, filename=name, tracepoint_formats=_format, vmlinux_h=header)
    fast = translate(text, filename=name, tracepoint_formats=_format, vmlinux_h=header,
                     prelude=prelude)
    assert "libclang" in _pch_files(cache)
    assert fast.text == plain.text and fast.metadata() == plain.metadata()


def test_second_cold_build_uses_the_pchs(env, caplog):
    cache, header = env
    _build(TRACEPOINT, cache, header)
    before = {k: os.stat(p).st_mtime_ns for k, p in _pch_files(cache).items()}
    with caplog.at_level(logging.INFO):
        second = _build(OTHER, cache, header)
    assert not second.from_cache
    assert "without" not in caplog.text and "precompiled" not in caplog.text
    assert "digest" not in caplog.text
    assert {k: os.stat(p).st_mtime_ns for k, p in _pch_files(cache).items()} == before


def test_copied_cache_keeps_using_its_pchs(env, tmp_path, caplog):
    """Neither PCH records the cache's path: a cache copied elsewhere still uses them."""
    cache, header = env
    _build(TRACEPOINT, cache, header)
    moved_header = tmp_path / "elsewhere" / "vmlinux.h"
    moved_header.parent.mkdir()
    shutil.copy2(header, moved_header)        # new path, same content and mtime (cp -a)
    moved = ObjectCache(str(tmp_path / "moved"))
    shutil.copytree(cache.root, moved.root)
    pchs = _pch_files(moved)
    stamps = {k: os.stat(p).st_mtime_ns for k, p in pchs.items()}
    with caplog.at_level(logging.INFO):
        result = _build(OTHER, moved, str(moved_header))
    assert not result.from_cache
    assert "without" not in caplog.text and "could not" not in caplog.text
    assert "precompiled prelude headers into" not in caplog.text    # nothing rebuilt
    assert _pch_files(moved) == pchs
    assert {k: os.stat(p).st_mtime_ns for k, p in pchs.items()} == stamps


def _damage(path: str, fix_digest: bool) -> None:
    with open(path, "r+b") as fh:
        fh.truncate(os.path.getsize(path) // 2)
    if fix_digest:
        with open(path, "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()
        with open(path + ".sha256", "w") as fh:
            fh.write(digest + "\n")


def _build_after_damage(env, caplog, fix_digest: bool) -> None:
    """Build, damage both PCHs, build another program: it must equal a plain build."""
    cache, header = env
    _build(TRACEPOINT, cache, header)
    for path in _pch_files(cache).values():
        _damage(path, fix_digest)
    with caplog.at_level(logging.INFO):
        second = _build(OTHER, cache, header)
    assert _code_sections(second.object) == _code_sections(
        compile_c(_translated(OTHER, header), filename="t.c", vmlinux_h=header))


def test_damaged_pchs_are_caught_by_their_digest(env, caplog):
    cache, header = env
    _build_after_damage(env, caplog, fix_digest=False)
    assert caplog.text.count("does not match its recorded digest") == 2
    assert "could not use" not in caplog.text       # rebuilt before use, never read
    caplog.clear()
    with caplog.at_level(logging.INFO):
        _build(OTHER.replace("seen2", "seen3"), cache, header)
    assert "digest" not in caplog.text and "precompiled" not in caplog.text


def test_pch_that_does_not_load_is_removed(env, caplog):
    """A PCH with a valid digest that the compiler rejects (e.g. stale): plain build, removed."""
    cache, header = env
    _build_after_damage(env, caplog, fix_digest=True)
    assert caplog.text.count("could not use this precompiled header; removed") == 2
    assert not _pch_files(cache)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        _build(OTHER.replace("seen2", "seen3"), cache, header)
    assert set(_pch_files(cache)) == {"clang", "libclang"}


def _translated(text: str, header: str) -> str:
    from bccless.bcc.translate import translate
    return translate(text, filename="t.c", tracepoint_formats=_format, vmlinux_h=header).text


def test_unsafe_pch_is_not_used(env, caplog):
    """A PCH writable by others is a file anyone could have changed: rebuilt, never read."""
    cache, header = env
    _build(TRACEPOINT, cache, header)
    for path in _pch_files(cache).values():
        os.chmod(path, 0o666)
    with caplog.at_level(logging.WARNING):
        _build(OTHER, cache, header)
    assert caplog.text.count("writable by group or others") == 2
    for path in _pch_files(cache).values():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


def test_cache_prepare_readies_the_first_build(tmp_path, caplog):
    """`bccless cache prepare` does the once-per-kernel work: the first build then builds no PCH."""
    import subprocess
    import sys
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        pytest.skip("no /sys/kernel/btf/vmlinux: the kernel has no BTF")
    root = tmp_path / "cache"
    out = subprocess.run([sys.executable, "-m", "bccless.cli", "cache", "--dir", str(root),
                          "prepare"], capture_output=True, text=True, check=True).stdout
    lines = dict(line.split(None, 1) for line in out.splitlines())
    assert set(lines) == {"vmlinux.h", "clang", "libclang"}
    assert all(os.path.isfile(path.strip()) for path in lines.values())
    cache = ObjectCache(str(root))
    with caplog.at_level(logging.INFO):
        result = build(TRACEPOINT, filename="t.c", cache=cache, tracepoint_formats=_format)
    assert not result.from_cache
    assert "generated" not in caplog.text and "precompiled prelude headers into" not in caplog.text
    assert "without" not in caplog.text
