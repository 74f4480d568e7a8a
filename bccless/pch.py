"""Precompiled headers of the prelude every translated BCC program includes.

A cold build parses vmlinux.h (130k lines) twice: once in libclang to
translate, once in clang to compile.  Both happen against the same prelude
(vmlinux.h, libbpf's headers, the compat header), so each compiler gets a PCH
of it, built once per kernel and toolchain and kept in the cache next to the
generated vmlinux.h (``<cache>/vmlinux/pch/``).  They must survive the cache
being copied elsewhere, so neither records the cache's path:

* clang's PCH is *relocatable*: built with ``-isysroot`` at vmlinux.h's
  directory, so vmlinux.h is found relative to the sysroot given at use.
  clang still checks vmlinux.h's size and mtime (a copy must keep them, as
  ``cp -a`` does); one it rejects is removed and rebuilt.
* libclang's PCH (libclang from PyPI is another clang version, it cannot read
  clang's) is saved from a parse where vmlinux.h is an in-memory file at a
  virtual path: the PCH then carries vmlinux.h itself.

A PCH is keyed by everything that shapes it (compiler version, vmlinux.h and
header digests, flags) and verified against a digest recorded next to it on
every use, like cache entries.  One that does not load makes its user fall
back to the plain parse or compile, and is removed so the next build makes a
new one.  A PCH can cost time but never change a program: translations are
identical and objects hold the same instructions and data (clang may number
BTF types in another order).
"""
from __future__ import annotations

import hashlib
import logging
import os
import stat
from typing import List, Optional, Sequence

from .bcc.translate import _OUTPUT_INCLUDES
from .cache import ObjectCache, content_key
from .errors import CacheError

log = logging.getLogger(__name__)

# Bump when the way a PCH is built changes (its files then get new keys).
PCH_VERSION = 1
# Exactly the includes that open every translated program.
PRELUDE_TEXT = "\n".join(_OUTPUT_INCLUDES) + "\n"


class Prelude:
    """The prelude of one vmlinux.h and header set, and its PCH files in ``cache``."""

    def __init__(self, cache: ObjectCache, vmlinux_h: str, headers_digest: str) -> None:
        self.cache = cache
        self.vmlinux_h = os.path.realpath(vmlinux_h)
        with open(self.vmlinux_h, "rb") as fh:
            self.vmlinux_text = fh.read()
        self.vmlinux_digest = hashlib.sha256(self.vmlinux_text).hexdigest()
        self.headers_digest = headers_digest
        self.directory = os.path.join(cache.root, "vmlinux", "pch")
        # Where libclang sees vmlinux.h: not on disk, tied to its content only.
        self.virtual_vmlinux_h = f"/__bccless_prelude__/{self.vmlinux_digest[:32]}/vmlinux.h"

    def path(self, tool: str, *parts: object) -> str:
        """The cache path of the PCH ``tool`` builds from the prelude with ``parts``."""
        key = content_key("bccless-pch", PCH_VERSION, tool, self.vmlinux_digest,
                          self.headers_digest, *parts)
        return os.path.join(self.directory, f"{tool}-{key}.pch")

    def usable(self, path: str) -> bool:
        """True when ``path`` exists, passes the cache's ownership/permission rules
        and matches the digest recorded when it was built.

        A PCH carries no checksum of its own and clang reads it lazily, so
        damage could go unnoticed: like cache entries, it is verified on every use."""
        try:
            if not self.cache._check_dirs(path):
                return False
            with open(path, "rb") as fh:
                st = os.fstat(fh.fileno())
                if not stat.S_ISREG(st.st_mode):
                    raise CacheError(f"{path}: not a regular file; refusing to use it")
                self.cache._check(path, st)
                digest = hashlib.sha256(fh.read()).hexdigest()
            recorded = self.cache._read(path + ".sha256")
        except FileNotFoundError:
            return False
        except CacheError as exc:
            log.warning("%s; not using the precompiled header", exc)
            return False
        if recorded is None:
            log.warning("%s: no recorded digest; building it again", path)
            return False
        if recorded.decode(errors="replace").strip() != digest:
            log.warning("%s: does not match its recorded digest; building it again", path)
            return False
        self.cache._touch(path)     # for prune
        return True

    def temporary(self, path: str) -> Optional[str]:
        """A fresh temporary name next to ``path`` (None when the cache is not writable)."""
        import tempfile
        try:
            os.makedirs(self.directory, mode=0o755, exist_ok=True)
            self.cache._check_dirs(path)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".pch")
        except (OSError, CacheError) as exc:
            log.info("cannot write precompiled headers to %s (%s)", self.directory, exc)
            return None
        os.close(fd)
        return tmp

    def install(self, tmp: str, path: str) -> None:
        """Publish a finished PCH atomically, with the digest :meth:`usable` checks.

        Concurrent builders: last one wins; a reader that sees one builder's
        digest and another's file rebuilds, it never uses a mismatch."""
        os.chmod(tmp, 0o644)
        with open(tmp, "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()
        self.cache._write(path + ".sha256", digest.encode() + b"\n")
        os.replace(tmp, path)
        log.info("precompiled prelude headers into %s", path)


class ClangPCH:
    """clang's PCH of the prelude: found in the cache, or being built in the background."""

    def __init__(self, prelude: Prelude, clang: str, clang_ver: str, flags: Sequence[str]) -> None:
        self.prelude = prelude
        self.sysroot = os.path.dirname(prelude.vmlinux_h)
        # The key holds the flags, but not where the cache is (``-I`` vmlinux.h's
        # directory): a copied cache keeps its PCH, as the PCH is relocatable.
        self.path = prelude.path("clang", clang_ver,
                                 ["<vmlinux.h dir>" if f == self.sysroot else f for f in flags])
        self._proc = None
        self._tmp: Optional[str] = None
        self._found = prelude.usable(self.path)
        if not self._found:
            self._start(clang, flags)

    def _start(self, clang: str, flags: Sequence[str]) -> None:
        import subprocess
        self._tmp = self.prelude.temporary(self.path)
        if self._tmp is None:
            return
        cmd = [clang, *flags, "-isysroot", self.sysroot, "-Xclang", "-relocatable-pch",
               "-x", "c-header", "-", "-o", self._tmp]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE)
        assert self._proc.stdin is not None
        self._proc.stdin.write(PRELUDE_TEXT.encode())
        self._proc.stdin.close()

    def use_flags(self) -> List[str]:
        """What a compile adds to use the PCH (``-isysroot`` relocates vmlinux.h)."""
        return ["-isysroot", self.sysroot, "-include-pch", self.path]

    def discard(self) -> None:
        """Remove a PCH that failed where the plain compile succeeded (e.g. stale)."""
        self._found = False
        discard(self.path)

    def ready(self) -> Optional[str]:
        """The PCH path once it exists (waits for a background build), else None."""
        if self._proc is None:
            return self.path if self._found else None
        assert self._proc.stderr is not None
        err = self._proc.stderr.read().decode(errors="replace")
        rc = self._proc.wait()
        self._proc = None
        tmp, self._tmp = self._tmp, None
        assert tmp is not None
        if rc != 0:
            log.info("clang could not precompile the prelude (exit %d): %s", rc, err.strip())
            _unlink(tmp)
            return None
        try:
            self.prelude.install(tmp, self.path)
        except OSError as exc:
            log.info("cannot store %s: %s", self.path, exc)
            _unlink(tmp)
            return None
        self._found = True
        return self.path


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def discard(path: str) -> None:
    """Remove a PCH (and its digest) that failed where the plain parse or compile succeeded."""
    log.warning("%s: the compiler could not use this precompiled header; removed", path)
    _unlink(path)
    _unlink(path + ".sha256")
