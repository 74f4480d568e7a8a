"""On-disk cache of load plans: relocate an object once per kernel.

Entries live in ``relo/`` under the object cache's root
(:func:`bccless.cache.default_root`: $BCCLESS_CACHE, /var/cache/bccless for
root, ~/.cache/bccless otherwise).

An entry is keyed by the object's sha256, the kernel's identity
(:func:`bccless.load.kernel.kernel_identity`), the hash of user Kconfig text
and of a custom CO-RE target BTF, and the bccless version (a new linker may
relocate differently).  It holds a whole :class:`LoadPlan`, so a warm load
parses neither the ELF file nor the kernel BTF.

File format (never pickle: a cache entry must not be able to run code)::

    b"BCCLESS-RELO <format> <sha256 of the rest>\\n"
    u32 length of the JSON header, JSON header, then the binary blobs
    (instructions, BTF, data images) back to back, sizes listed in the header.

Writes go to a temporary file in the same directory then ``os.replace``, so
readers see a whole entry or none.  A corrupt or mismatched entry is logged
and ignored (the caller rebuilds it).  As root, the cache must not be
writable by anyone else: a group/other-writable or foreign-owned directory
or file raises :class:`CacheError`, because an entry becomes kernel code.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
from typing import Any, Dict, Optional

from ..errors import CacheError
from . import LazyLogger
from .plan import LoadPlan

log = LazyLogger(__name__)

FORMAT = 1
_MAGIC = b"BCCLESS-RELO"
_SUBDIR = "relo"


def check_private(path: str, st: Optional[os.stat_result] = None) -> None:
    """As root, refuse a path another user could have written (CacheError)."""
    if os.geteuid() != 0:
        return
    if st is None:
        st = os.lstat(path)
    if st.st_uid != 0:
        raise CacheError(f"{path}: owned by uid {st.st_uid}, not root: refusing to use it "
                         f"as root (chown root or remove it)")
    if st.st_mode & 0o022:
        raise CacheError(f"{path}: writable by group or others (mode {st.st_mode & 0o777:o}): "
                         f"refusing to use it as root (chmod go-w)")


def make_key(sha256: str, *, kernel: str, name: Optional[str] = None,
             kconfig: Optional[str] = None, btf_custom: str = "") -> Dict[str, Any]:
    """The fields an entry must match; ``btf_custom`` identifies a custom target BTF."""
    from .. import __version__

    return {"format": FORMAT, "bccless": __version__, "object": sha256, "name": name or "",
            "kernel": kernel,
            "kconfig": hashlib.sha256(kconfig.encode()).hexdigest() if kconfig else "",
            "btf_custom": btf_custom}


class RelocCache:
    """The ``relo/`` directory under the cache root."""

    def __init__(self, root: Optional[str] = None) -> None:
        if root is None:
            from ..cache import default_root   # shared with the object cache

            root = default_root()
        self.root = root
        self.dir = os.path.join(self.root, _SUBDIR)

    def _entry_path(self, key: Dict[str, Any]) -> str:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
        return os.path.join(self.dir, digest[:40] + ".relo")

    def _check_dirs(self) -> bool:
        """False when the cache directory does not exist yet; raises if unsafe."""
        for path in (self.root, self.dir):
            try:
                st = os.stat(path)
            except FileNotFoundError:
                return False
            except OSError as exc:
                raise CacheError(f"{path}: cannot use as cache: {exc.strerror}") from None
            check_private(path, st)
        return True

    def get(self, key: Dict[str, Any]) -> Optional[LoadPlan]:
        """The plan stored for ``key``, or None (missing, corrupt or stale)."""
        if not self._check_dirs():
            return None
        path = self._entry_path(key)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("relocation cache: cannot open %s: %s", path, exc.strerror)
            return None
        with os.fdopen(fd, "rb") as f:
            check_private(path, os.fstat(f.fileno()))
            data = f.read()
        try:
            return _decode(data, key, path)
        except (ValueError, KeyError, TypeError, IndexError, struct.error) as exc:
            log.warning("relocation cache: ignoring bad entry %s: %s", path, exc)
            return None

    def put(self, key: Dict[str, Any], plan: LoadPlan) -> Optional[str]:
        """Store ``plan`` atomically; returns the entry path (None if the cache is
        not writable, which only costs the next load a relocation)."""
        import tempfile

        data = _encode(plan, key)
        try:
            os.makedirs(self.root, mode=0o755, exist_ok=True)
            os.makedirs(self.dir, mode=0o700, exist_ok=True)
        except OSError as exc:
            log.info("relocation cache: cannot create %s: %s", self.dir, exc.strerror)
            return None
        self._check_dirs()
        path = self._entry_path(key)
        try:
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.dir)
        except OSError as exc:
            log.info("relocation cache: cannot write in %s: %s", self.dir, exc.strerror)
            return None
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except OSError as exc:
            log.info("relocation cache: cannot write %s: %s", path, exc.strerror)
            try:
                os.unlink(tmp)
            except OSError:
                pass
            return None
        return path


def _encode(plan: LoadPlan, key: Dict[str, Any]) -> bytes:
    blobs: list = []
    header = {"key": key, "plan": plan.to_json(blobs)}
    header["blob_sizes"] = [len(b) for b in blobs]
    head = json.dumps(header, separators=(",", ":")).encode()
    body = struct.pack("<I", len(head)) + head + b"".join(blobs)
    first = b"%s %d %s\n" % (_MAGIC, FORMAT, hashlib.sha256(body).hexdigest().encode())
    return first + body


def _decode(data: bytes, key: Dict[str, Any], path: str) -> LoadPlan:
    nl = data.find(b"\n", 0, 128)
    if nl < 0:
        raise ValueError("no header line")
    parts = data[:nl].split(b" ")
    if len(parts) != 3 or parts[0] != _MAGIC or parts[1] != b"%d" % FORMAT:
        raise ValueError("not a relocation cache entry of this format")
    body = memoryview(data)[nl + 1:]
    if hashlib.sha256(body).hexdigest().encode() != parts[2]:
        raise ValueError("integrity hash mismatch")
    (hlen,) = struct.unpack_from("<I", body, 0)
    header = json.loads(bytes(body[4:4 + hlen]))
    if header["key"] != key:
        raise ValueError("entry belongs to another object or kernel")
    blobs, off = [], 4 + hlen
    for size in header["blob_sizes"]:
        if off + size > len(body):
            raise ValueError("truncated blobs")
        blobs.append(bytes(body[off:off + size]))
        off += size
    return LoadPlan.from_json(header["plan"], blobs)
