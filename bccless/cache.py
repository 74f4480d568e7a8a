"""Content-addressed cache of compiled BPF objects, and bundles of it.

An *entry* is one compiled object plus its JSON metadata (programs, maps with
BCC table kinds and key/leaf type names, output event types, tracepoint
layouts, line map), stored as a single file so that a reader never sees the
object of one writer with the metadata of another:

    MAGIC | u32 header length | JSON header | object bytes | sha256 of all before

The trailing digest is verified on every read; a damaged or tampered entry is
never returned (:class:`CorruptEntry`).  Writes go to a temporary file in the
same directory followed by ``os.replace``, so concurrent writers of one key
leave one complete entry.  A *source alias* maps the key of a BCC source text
(text, cflags, translator version) to an object key; it lets a warm start find
its object without libclang or clang.

Because a root-run tool loads what it finds here into the kernel, the cache
refuses directories and files that another user could have written
(group/other-writable, or owned by someone else).
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
import time
from typing import Dict, Iterable, List, Optional

from .errors import CacheError

MAGIC = b"BCCLESS-ENTRY\x01\n"
_LEN = struct.Struct("<I")
_DIGEST = 32
BUNDLE_FORMAT = "bccless-bundle"
BUNDLE_VERSION = 1
MAX_MEMBER = 256 << 20
_KEY_CHARS = frozenset("0123456789abcdef")


class CorruptEntry(CacheError):
    """An entry whose digest, framing or key does not verify."""


def default_root() -> str:
    """$BCCLESS_CACHE, else /var/cache/bccless for root, else ~/.cache/bccless."""
    env = os.environ.get("BCCLESS_CACHE")
    if env:
        return os.path.abspath(env)
    if os.geteuid() == 0:
        return "/var/cache/bccless"
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(xdg, "bccless")


class Entry:
    """A verified cache entry."""

    __slots__ = ("key", "object", "metadata", "created", "path")

    def __init__(self, key: str, obj: bytes, metadata: dict, created: float, path: str) -> None:
        self.key = key
        self.object = obj
        self.metadata = metadata
        self.created = created
        self.path = path


def encode_entry(key: str, obj: bytes, metadata: dict, created: Optional[float] = None) -> bytes:
    """Serialise one entry (framing + trailing digest)."""
    header = json.dumps({"key": key, "created": created if created is not None else time.time(),
                         "object_size": len(obj),
                         "object_sha256": hashlib.sha256(obj).hexdigest(),
                         "metadata": metadata}, sort_keys=True).encode()
    body = MAGIC + _LEN.pack(len(header)) + header + obj
    return body + hashlib.sha256(body).digest()


def decode_entry(data: bytes, where: str, key: Optional[str] = None) -> Entry:
    """Verify and parse one serialised entry; raises :class:`CorruptEntry`."""
    if len(data) < len(MAGIC) + _LEN.size + _DIGEST or not data.startswith(MAGIC):
        raise CorruptEntry(f"{where}: not a bccless cache entry (bad magic or truncated)")
    body, digest = data[:-_DIGEST], data[-_DIGEST:]
    if hashlib.sha256(body).digest() != digest:
        raise CorruptEntry(f"{where}: checksum mismatch (entry corrupt or tampered with)")
    (hlen,) = _LEN.unpack_from(body, len(MAGIC))
    start = len(MAGIC) + _LEN.size
    try:
        header = json.loads(body[start:start + hlen])
    except ValueError as exc:
        raise CorruptEntry(f"{where}: unreadable header: {exc}") from exc
    obj = body[start + hlen:]
    if len(obj) != header.get("object_size") or \
            hashlib.sha256(obj).hexdigest() != header.get("object_sha256"):
        raise CorruptEntry(f"{where}: object size or digest mismatch")
    if key is not None and header.get("key") != key:
        raise CorruptEntry(f"{where}: entry is for key {header.get('key')}, expected {key}")
    return Entry(header["key"], obj, header.get("metadata") or {}, header.get("created", 0.0), where)


def content_key(*parts: object) -> str:
    """A cache key: the sha256 of ``parts`` as JSON, each part delimited (no ambiguity
    between ``("ab", "c")`` and ``("a", "bc")``)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(json.dumps(part, sort_keys=True).encode())
        h.update(b"\0")
    return h.hexdigest()


def _valid_key(key: str) -> bool:
    return len(key) == 64 and set(key) <= _KEY_CHARS


class ObjectCache:
    """The on-disk cache rooted at ``root`` (default: :func:`default_root`)."""

    def __init__(self, root: Optional[str] = None) -> None:
        self.root = os.path.abspath(root or default_root())

    # -- paths and safety ------------------------------------------------------
    def _entry_path(self, key: str) -> str:
        if not _valid_key(key):
            raise CacheError(f"invalid cache key {key!r} (expected 64 hex digits)")
        return os.path.join(self.root, "objects", key[:2], key + ".bce")

    def _alias_path(self, key: str) -> str:
        if not _valid_key(key):
            raise CacheError(f"invalid source key {key!r} (expected 64 hex digits)")
        return os.path.join(self.root, "sources", key[:2], key + ".json")

    def _check(self, path: str, st: os.stat_result) -> None:
        euid = os.geteuid()
        if st.st_uid not in (euid, 0) or (euid == 0 and st.st_uid != 0):
            raise CacheError(f"{path}: owned by uid {st.st_uid}, not by the current user "
                             f"({euid}); refusing to use it (fix: chown {euid} {path}, or "
                             "remove it)")
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise CacheError(f"{path}: writable by group or others (mode "
                             f"{stat.S_IMODE(st.st_mode):04o}); refusing to use it "
                             f"(fix: chmod go-w {path})")

    def _check_dirs(self, path: str) -> bool:
        """Check root..dirname(path); False when a directory does not exist yet."""
        parts = [self.root]
        rel = os.path.relpath(os.path.dirname(path), self.root)
        if rel != ".":
            for piece in rel.split(os.sep):
                parts.append(os.path.join(parts[-1], piece))
        for directory in parts:
            try:
                st = os.lstat(directory)
            except FileNotFoundError:
                return False
            if not stat.S_ISDIR(st.st_mode):
                raise CacheError(f"{directory}: not a directory; refusing to use it as cache")
            self._check(directory, st)
        return True

    def _read(self, path: str) -> Optional[bytes]:
        if not self._check_dirs(path):
            return None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CacheError(f"{path}: cannot open cache file: {exc}") from exc
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise CacheError(f"{path}: not a regular file; refusing to use it")
            self._check(path, st)
            return fh.read()

    def _write(self, path: str, data: bytes) -> None:
        import tempfile
        directory = os.path.dirname(path)
        os.makedirs(directory, mode=0o755, exist_ok=True)
        self._check_dirs(path)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                os.fchmod(fh.fileno(), 0o644)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise

    # -- entries ----------------------------------------------------------------
    def get(self, key: str) -> Optional[Entry]:
        """The verified entry for ``key``, None when absent.

        Raises :class:`CorruptEntry` for a damaged entry and :class:`CacheError`
        for unsafe permissions; neither is ever silently loaded."""
        path = self._entry_path(key)
        data = self._read(path)
        if data is None:
            return None
        entry = decode_entry(data, path, key)
        self._touch(path)
        return entry

    def put(self, key: str, obj: bytes, metadata: dict) -> Entry:
        """Store an entry atomically (last writer wins, readers see one whole entry)."""
        path = self._entry_path(key)
        data = encode_entry(key, obj, metadata)
        self._write(path, data)
        return decode_entry(data, path, key)

    def discard(self, key: str) -> None:
        """Remove one entry (e.g. after it failed verification)."""
        try:
            os.unlink(self._entry_path(key))
        except FileNotFoundError:
            pass

    @staticmethod
    def _touch(path: str) -> None:
        """Record use for prune(), at most once a day per entry."""
        try:
            if time.time() - os.stat(path).st_mtime > 86400:
                os.utime(path)
        except OSError:
            pass

    # -- source aliases -------------------------------------------------------------
    def get_alias(self, source_key: str) -> Optional[dict]:
        """The alias record of a source key, None when absent or unverifiable."""
        path = self._alias_path(source_key)
        data = self._read(path)
        if data is None:
            return None
        return _verify_alias(data, path, source_key)

    def put_alias(self, source_key: str, object_key: str, extra: Optional[dict] = None) -> None:
        record = dict(extra or {})
        record.update({"source_key": source_key, "object_key": object_key})
        self._write(self._alias_path(source_key), _seal_alias(record))

    # -- management -----------------------------------------------------------------
    def _files(self, sub: str, suffix: str) -> List[str]:
        top = os.path.join(self.root, sub)
        out = []
        if not os.path.isdir(top):
            return out
        for shard in sorted(os.listdir(top)):
            sdir = os.path.join(top, shard)
            if os.path.isdir(sdir):
                out += [os.path.join(sdir, f) for f in sorted(os.listdir(sdir)) if f.endswith(suffix)]
        return out

    def keys(self) -> List[str]:
        return [os.path.basename(p)[:-4] for p in self._files("objects", ".bce")]

    def ls(self) -> List[dict]:
        """One summary per entry: key, size, created, last use, programs and maps."""
        rows = []
        for key in self.keys():
            path = self._entry_path(key)
            try:
                entry = self.get(key)
                status = "ok"
            except CorruptEntry as exc:
                entry, status = None, f"corrupt: {exc}"
            st = os.stat(path)
            meta = entry.metadata if entry else {}
            rows.append({"key": key, "size": st.st_size, "status": status,
                         "created": entry.created if entry else None, "used": st.st_mtime,
                         "filename": meta.get("filename"),
                         "programs": [p.get("name") for p in meta.get("programs", [])],
                         "maps": [m.get("name") for m in meta.get("maps", [])]})
        return rows

    def show(self, key: str) -> dict:
        """Header and metadata of one entry (key may be a unique prefix)."""
        matches = [k for k in self.keys() if k.startswith(key)]
        if len(matches) != 1:
            raise CacheError(f"{self.root}: {'no' if not matches else 'ambiguous'} entry "
                             f"matching {key!r}")
        entry = self.get(matches[0])
        assert entry is not None
        return {"key": entry.key, "path": entry.path, "created": entry.created,
                "object_size": len(entry.object),
                "object_sha256": hashlib.sha256(entry.object).hexdigest(),
                "metadata": entry.metadata}

    def prune(self, max_age_days: Optional[float] = None,
              max_bytes: Optional[int] = None) -> List[str]:
        """Remove corrupt entries, entries unused for ``max_age_days``, then the least
        recently used until the cache holds at most ``max_bytes``; drop dangling aliases
        and leftovers of interrupted writes.  With ``max_age_days``, generated headers and
        precompiled headers unused that long go too.  Returns the removed object keys."""
        now = time.time()
        removed: List[str] = []
        live = []
        for key in self.keys():
            path = self._entry_path(key)
            st = os.stat(path)
            try:
                self._verify_file(path, key)
                stale = max_age_days is not None and now - st.st_mtime > max_age_days * 86400
            except CorruptEntry:
                stale = True
            if stale:
                os.unlink(path)
                removed.append(key)
            else:
                live.append((st.st_mtime, st.st_size, key, path))
        if max_bytes is not None:
            live.sort()
            total = sum(size for _, size, _, _ in live)
            while live and total > max_bytes:
                _, size, key, path = live.pop(0)
                os.unlink(path)
                removed.append(key)
                total -= size
        present = set(self.keys())
        for path in self._files("sources", ".json"):
            try:
                with open(path, "rb") as fh:
                    record = json.loads(fh.read())["record"]
                dangling = record.get("object_key") not in present
            except (ValueError, KeyError, TypeError):
                dangling = True
            if dangling:
                os.unlink(path)
        if max_age_days is not None:
            self._prune_preludes(now - max_age_days * 86400)
        self._remove_temporaries(now)
        return removed

    def _prune_preludes(self, cutoff: float) -> None:
        """Remove generated vmlinux.h directories and precompiled headers unused since
        ``cutoff``: those of kernels no longer booted would otherwise stay forever
        (~35 MB per kernel).  Use is recorded by :meth:`_touch` (a header's
        directory, since clang checks the header's own mtime before using a PCH)."""
        import shutil
        base = os.path.join(self.root, "vmlinux")
        if not os.path.isdir(base):
            return
        self._check_dirs(os.path.join(base, "x"))
        for name in os.listdir(base):
            path = os.path.join(base, name)
            if name == "pch":
                for pch in os.listdir(path):
                    if pch.endswith(".pch") and os.stat(os.path.join(path, pch)).st_mtime < cutoff:
                        for victim in (pch, pch + ".sha256"):
                            try:
                                os.unlink(os.path.join(path, victim))
                            except FileNotFoundError:
                                pass
            elif os.path.isdir(path) and os.stat(path).st_mtime < cutoff:
                shutil.rmtree(path)

    def _verify_file(self, path: str, key: str) -> None:
        data = self._read(path)
        if data is not None:
            decode_entry(data, path, key)

    def _remove_temporaries(self, now: float) -> None:
        for top in ("objects", "sources", "vmlinux"):
            for dirpath, _dirs, files in os.walk(os.path.join(self.root, top)):
                for name in files:
                    path = os.path.join(dirpath, name)
                    if name.startswith(".tmp-") and now - os.stat(path).st_mtime > 3600:
                        os.unlink(path)

    def clear(self) -> int:
        """Remove every entry, alias and generated vmlinux.h; returns the entry count."""
        count = 0
        for top in ("objects", "sources", "vmlinux"):
            base = os.path.join(self.root, top)
            if not os.path.isdir(base):
                continue
            self._check_dirs(os.path.join(base, "x"))
            for dirpath, dirs, files in os.walk(base, topdown=False):
                for name in files:
                    if top == "objects" and name.endswith(".bce"):
                        count += 1
                    os.unlink(os.path.join(dirpath, name))
                for name in dirs:
                    os.rmdir(os.path.join(dirpath, name))
        return count

    # -- bundles ----------------------------------------------------------------------
    def export(self, path: str, keys: Optional[Iterable[str]] = None) -> int:
        """Write a bundle (tar, gzip when the name ends in .gz/.tgz) of the given or all
        entries and their aliases.  Returns the number of entries exported."""
        wanted = list(keys) if keys is not None else self.keys()
        entries: Dict[str, bytes] = {}
        for key in wanted:
            data = self._read(self._entry_path(key))
            if data is None:
                raise CacheError(f"{self.root}: no entry {key}")
            decode_entry(data, self._entry_path(key), key)
            entries[key] = data
        aliases: Dict[str, bytes] = {}
        for apath in self._files("sources", ".json"):
            with open(apath, "rb") as fh:
                data = fh.read()
            skey = os.path.basename(apath)[:-5]
            try:
                record = _verify_alias(data, apath, skey)
            except CorruptEntry:
                continue
            if record and record.get("object_key") in entries:
                aliases[skey] = data
        write_bundle(path, entries, aliases)
        return len(entries)

    def import_bundle(self, path: str) -> int:
        """Verify every member of a bundle against its manifest and its own digest, then
        add the entries and aliases.  Nothing is written unless all verify."""
        entries, aliases = read_bundle(path)
        for key, data in entries.items():
            decode_entry(data, f"{path}:{key}", key)
        for skey, data in aliases.items():
            record = _verify_alias(data, f"{path}:{skey}", skey)
            if record.get("object_key") not in entries:
                raise CorruptEntry(f"{path}: alias {skey} names an object missing from the bundle")
        for key, data in entries.items():
            self._write(self._entry_path(key), data)
        for skey, data in aliases.items():
            self._write(self._alias_path(skey), data)
        return len(entries)


def write_bundle(path: str, entries: Dict[str, bytes], aliases: Dict[str, bytes]) -> None:
    """A tar with ``manifest.json`` listing every member with its sha256, written
    atomically next to ``path``."""
    import io
    import tarfile
    import tempfile
    manifest = {"format": BUNDLE_FORMAT, "version": BUNDLE_VERSION, "created": time.time(),
                "entries": [], "sources": []}
    members = []
    for section, prefix, items, suffix in (("entries", "objects", entries, ".bce"),
                                           ("sources", "sources", aliases, ".json")):
        for key, data in sorted(items.items()):
            name = f"{prefix}/{key}{suffix}"
            manifest[section].append({"key": key, "path": name, "size": len(data),
                                      "sha256": hashlib.sha256(data).hexdigest()})
            members.append((name, data))
    members.insert(0, ("manifest.json", json.dumps(manifest, indent=1, sort_keys=True).encode()))
    mode = "w:gz" if path.endswith((".gz", ".tgz")) else "w"
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-bundle-")
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode=mode) as tar:
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), 0o644, int(manifest["created"])
                tar.addfile(info, io.BytesIO(data))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_bundle(path: str):
    """(entries, aliases) of a bundle, each member checked against the manifest.  Only
    members the manifest names are read; nothing is extracted to disk."""
    import tarfile
    try:
        tar = tarfile.open(path, mode="r:*")
    except (OSError, tarfile.TarError) as exc:
        raise CacheError(f"{path}: not a readable bundle: {exc}") from exc
    with tar:
        manifest = json.loads(_member(tar, path, "manifest.json"))
        if manifest.get("format") != BUNDLE_FORMAT or manifest.get("version") != BUNDLE_VERSION:
            raise CorruptEntry(f"{path}: not a {BUNDLE_FORMAT} version {BUNDLE_VERSION} bundle")
        result = []
        for section in ("entries", "sources"):
            items: Dict[str, bytes] = {}
            for item in manifest.get(section, []):
                key = str(item.get("key"))
                if not _valid_key(key):
                    raise CorruptEntry(f"{path}: bad key {key!r} in manifest")
                data = _member(tar, path, str(item.get("path")))
                if hashlib.sha256(data).hexdigest() != item.get("sha256"):
                    raise CorruptEntry(f"{path}: {item.get('path')}: sha256 does not match "
                                       "the manifest")
                items[key] = data
            result.append(items)
    return result[0], result[1]


def _member(tar, path: str, name: str) -> bytes:
    try:
        info = tar.getmember(name)
    except KeyError:
        raise CorruptEntry(f"{path}: member {name} missing") from None
    if not info.isfile() or info.size > MAX_MEMBER:
        raise CorruptEntry(f"{path}: member {name} is not a regular file of sane size")
    fh = tar.extractfile(info)
    assert fh is not None
    return fh.read()


def _seal_alias(record: dict) -> bytes:
    body = json.dumps(record, sort_keys=True)
    digest = hashlib.sha256(body.encode()).hexdigest()
    return json.dumps({"record": record, "sha256": digest}, sort_keys=True).encode()


def _verify_alias(data: bytes, where: str, source_key: str) -> dict:
    try:
        outer = json.loads(data)
        record = outer["record"]
        digest = outer["sha256"]
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptEntry(f"{where}: unreadable source alias: {exc}") from exc
    if hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest() != digest:
        raise CorruptEntry(f"{where}: checksum mismatch (alias corrupt or tampered with)")
    if record.get("source_key") != source_key or not _valid_key(str(record.get("object_key"))):
        raise CorruptEntry(f"{where}: alias does not belong to key {source_key}")
    return record
