"""On-disk cache of the running kernel's BTF index.

Walking the kernel's type section to find where each of its ~130k records
starts, and sorting them by name, costs tens of ms in Python: more than a
whole ``bccless btf type`` may take.  The result only depends on the blob,
so it is saved once per kernel under ``<cache root>/btf/`` and read back in
well under a millisecond.

The file name carries the blob's identity (kernel build-id from
/sys/kernel/notes, size and mtime of the BTF file); the contents are never
trusted on that alone.  A read checks the framing, a CRC of the payload,
that the blob's header is the one indexed, that the last record ends the
type section, and a spread of samples of record lengths and name offsets
against the blob.  Any mismatch means "no cache": the caller parses and
writes a fresh file (atomically: temporary file, then ``os.replace``).  As
root, a cache file or directory that someone else could have written is
refused rather than read.

Layout (arrays in native byte order, their sizes from the header)::

    MAGIC | header (<24s I I I I I) | offs[n] | order[n] | keys[n] | odd[m]
"""
from __future__ import annotations

import os
import struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional, Sequence, Tuple

    from .names import NameIndex

MAGIC = b"BCCLESS-BTFIDX1\n"
# blob header, n records, n odd, unique flag, byte-order marker, crc32 of payload
_HEADER = struct.Struct("<24sIIIII")
_ORDER_MARK = 0x01020304
_SAMPLES = 64
_DEBUG, _WARNING = 10, 30  # logging.DEBUG, logging.WARNING without importing logging
_NOTES = "/sys/kernel/notes"
_NT_GNU_BUILD_ID = 3


def cache_root() -> str:
    """The project's cache root: $BCCLESS_CACHE, else /var/cache/bccless for root,
    else the XDG cache.  Same rule as :func:`bccless.cache.default_root`, which
    is not imported here because it pulls json and hashlib into every start."""
    env = os.environ.get("BCCLESS_CACHE")
    if env:
        return os.path.abspath(env)
    if os.geteuid() == 0:
        return "/var/cache/bccless"
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(xdg, "bccless")


def kernel_build_id(notes_path: str = _NOTES) -> str:
    """Hex GNU build-id of the running kernel ('' when the notes do not have one)."""
    try:
        with open(notes_path, "rb") as f:
            notes = f.read()
    except OSError:
        return ""
    pos = 0
    while pos + 12 <= len(notes):
        namesz, descsz, ntype = struct.unpack_from("=III", notes, pos)
        name_at = pos + 12
        desc_at = name_at + (namesz + 3 & ~3)
        if ntype == _NT_GNU_BUILD_ID and notes[name_at:name_at + namesz] == b"GNU\0":
            return notes[desc_at:desc_at + descsz].hex()
        pos = desc_at + (descsz + 3 & ~3)
    return ""


def index_path(btf_path: str, root: Optional[str] = None) -> Optional[str]:
    """Where the index of the kernel BTF at ``btf_path`` lives (None if it cannot be stat'ed)."""
    try:
        st = os.stat(btf_path)
    except OSError:
        return None
    build_id = kernel_build_id() or "nobuildid"
    name = f"vmlinux-{build_id}-{st.st_size}-{st.st_mtime_ns}.idx"
    return os.path.join(root or cache_root(), "btf", name)


def _log(level: int, msg: str, *args: object) -> None:
    """Log through ``logging``, imported only here: a cache hit must not pay for it."""
    import logging
    logging.getLogger(__name__).log(level, msg, *args)


def _trusted(st: os.stat_result) -> bool:
    """As root, only read what root alone could have written."""
    if os.geteuid() != 0:
        return True
    return st.st_uid == 0 and not st.st_mode & 0o022


def read_index(path: str, blob_header: bytes, words: Sequence[int],
               record_words: Sequence[int]) -> Optional[Tuple[memoryview, NameIndex]]:
    """(record offsets, name index) from ``path`` if it verifies against the
    blob (header bytes, type section ``words``), else None.

    ``record_words`` maps an info word to its record's length in words."""
    import mmap
    import zlib

    from .names import NameIndex

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not _trusted(st) or not _trusted(os.stat(os.path.dirname(path))):
            _log(_WARNING, "%s: ignoring a BTF index cache writable by others", path)
            return None
        # Mapped, not read: the arrays are used in place and only the CRC
        # touches every page.  Writers replace the file, never rewrite it.
        data = mmap.mmap(fd, 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
    except (OSError, ValueError) as exc:
        _log(_DEBUG, "%s: cannot read: %s", path, exc)
        return None
    finally:
        os.close(fd)
    head = len(MAGIC) + _HEADER.size
    if len(data) < head or data[:len(MAGIC)] != MAGIC:
        _log(_DEBUG, "%s: not a BTF index", path)
        return None
    hdr, n, n_odd, unique, mark, crc = _HEADER.unpack_from(data, len(MAGIC))
    if hdr != blob_header or mark != _ORDER_MARK or unique > 1 \
            or len(data) != head + 4 * (3 * n + n_odd) or not n \
            or zlib.crc32(memoryview(data)[head:]) != crc:
        _log(_DEBUG, "%s: stale or damaged BTF index", path)
        return None
    u32 = memoryview(data)[head:].cast("I")
    offs, order, keys, odd = u32[:n], u32[n:2 * n], u32[2 * n:3 * n], u32[3 * n:]
    if not _matches(words, offs, order, keys, record_words):
        _log(_DEBUG, "%s: BTF index does not match the blob", path)
        return None
    return offs, NameIndex(order, keys, odd, bool(unique))


def _matches(words: Sequence[int], offs: Sequence[int], order: Sequence[int],
             keys: Sequence[int], record_words: Sequence[int]) -> bool:
    """Spot checks of a cached index against the blob it claims to describe."""
    n, nwords = len(offs), len(words)
    last = offs[-1]
    try:
        if offs[0] != 0 or last + record_words[words[last + 1]] != nwords:
            return False
        for i in range(0, n - 1, max(1, n // _SAMPLES)):
            o = offs[i]
            if offs[i + 1] - o != record_words[words[o + 1]]:
                return False
            # The name index, sampled at the same spread of positions.
            p = order[i]
            if p >= n or keys[i] != words[offs[p]] or keys[i] > keys[i + 1]:
                return False
    except IndexError:
        return False
    return True


def write_index(path: str, blob_header: bytes, offs: Sequence[int], index: NameIndex) -> None:
    """Save ``offs`` and ``index`` to ``path`` atomically; failures are only logged
    (the cache is an optimisation).  Older kernels' indexes beside it are removed."""
    import zlib
    from array import array

    payload = b"".join((array("I", offs).tobytes(), index.order.tobytes(),
                        index.keys.tobytes(), index.odd.tobytes()))
    header = MAGIC + _HEADER.pack(blob_header, len(offs), len(index.odd), int(index.unique),
                                  _ORDER_MARK, zlib.crc32(payload))
    directory = os.path.dirname(path)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(directory, mode=0o755, exist_ok=True)
        if not _trusted(os.stat(directory)):
            _log(_WARNING, "%s: not writing a BTF index into a directory writable by others",
                        directory)
            return
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                     0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(header + payload)
        os.replace(tmp, path)
    except OSError as exc:
        _log(_DEBUG, "%s: cannot write the BTF index: %s", path, exc)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return
    keep = os.path.basename(path)
    for name in os.listdir(directory):
        if name.startswith("vmlinux-") and name.endswith(".idx") and name != keep:
            try:
                os.unlink(os.path.join(directory, name))
            except OSError:
                pass
